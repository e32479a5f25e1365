"""What crosses HTTP for villages and their logs (``api.views.log``)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import MAX_SIZE, sha256_hash


class VillageSchema(Schema):
    slug = fields.String(required=True)
    name = fields.String(allow_none=True)
    name_en = fields.String(allow_none=True)
    township = fields.String(allow_none=True)
    county = fields.String(allow_none=True)
    origin = fields.String(required=True, metadata={"description": "The checkpoint origin line of the village log"})
    size = fields.Integer(required=True, metadata={"description": "Number of entries in the log"})
    log_keys = fields.List(fields.String(), required=True, metadata={"description": "Note verifier keys, current last"})
    green_card_threshold = fields.Integer(allow_none=True)


class VillageList(Schema):
    villages = fields.List(fields.Nested(VillageSchema), required=True)


class InclusionQuery(Schema):
    index = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_SIZE - 1))
    tree_size = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SIZE))


class ConsistencyQuery(Schema):
    first = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SIZE))
    second = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SIZE))


class ProofSchema(Schema):
    hashes = fields.List(sha256_hash(), required=True)
