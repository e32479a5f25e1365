"""What crosses HTTP for the committee console (``api.views.console``): members and grids, the household
search, attachments, the points supermarket and the import preview."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from ledger.formats import ID, MAX_AMOUNT
from storage.imports import IMPORT_FIELDS, IMPORT_KINDS

from .common import BINARY, MONTH, SignedEntry, sha256_hash

MAX_STOCK = 1_000_000
# A supermarket item's name is what a points.redeem entry carries as ``item``: the ledger's text rules.
ITEM_NAME = [validate.Length(1, 64),
             validate.Regexp(r"^(?=[\s\S]*\S)[^\x00-\x08\x0b-\x1f\x7f-\x9f]*\Z", error="must not be blank or contain control characters")]


# --- members and grids -------------------------------------------------------------------------------


class MemberKeySchema(Schema):
    key = fields.String(required=True, metadata={"description": "base64 Ed25519 public key"})
    added_at = fields.Integer(required=True, metadata={"description": "log index of the entry that added it"})
    revoked_at = fields.Integer(allow_none=True, metadata={"description": "log index of its revocation"})


class MemberItem(Schema):
    member = fields.String(required=True)
    name = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    grid = fields.String(allow_none=True)
    household = fields.String(allow_none=True, metadata={"description": "The member's own household (conflicts of interest)"})
    keys = fields.List(fields.Nested(MemberKeySchema), required=True)


class MemberList(Schema):
    items = fields.List(fields.Nested(MemberItem), required=True)


class GridItem(Schema):
    grid = fields.String(required=True)
    name = fields.String(required=True)
    name_en = fields.String(allow_none=True)


class GridList(Schema):
    items = fields.List(fields.Nested(GridItem), required=True)


# --- household search ----------------------------------------------------------------------------------


class HouseholdSearchQuery(Schema):
    q = fields.String(load_default="", validate=validate.Length(max=100),
                      metadata={"description": "Part of the number, the public label or the head of household's name; empty: all"})
    grid = fields.String(validate=validate.Regexp(ID))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


class HouseholdMatchSchema(Schema):
    household = fields.String(required=True)
    number = fields.String(required=True)
    label = fields.String(allow_none=True)
    grid = fields.String(required=True)
    name = fields.String(allow_none=True, metadata={"description": "Head of household, from the personal data (PIPL)"})


class HouseholdMatches(Schema):
    items = fields.List(fields.Nested(HouseholdMatchSchema), required=True)


# --- attachments ---------------------------------------------------------------------------------------


class AttachmentUpload(Schema):
    file = fields.Raw(required=True, metadata={**BINARY, "description": "A JPEG, PNG or WebP photo, or a PDF"})


class AttachmentSchema(Schema):
    sha256 = fields.String(required=True, metadata={"description": "lowercase hex SHA-256 of the stored bytes"})
    media_type = fields.String(required=True)
    size = fields.Integer(required=True)
    name = fields.String(required=True, metadata={"description": "A file name for the entry's attachment record"})


# --- the points supermarket ------------------------------------------------------------------------------


class GoodSchema(Schema):
    item = fields.String(required=True)
    name = fields.String(required=True)
    price = fields.Integer(required=True, metadata={"description": "morality points"})
    stock = fields.Integer(required=True)


class GoodList(Schema):
    items = fields.List(fields.Nested(GoodSchema), required=True)


class PutGood(Schema):
    name = fields.String(required=True, validate=ITEM_NAME,
                         metadata={"description": "What a points.redeem entry names as its item"})
    price = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_AMOUNT))
    stock = fields.Integer(strict=True, required=True, validate=validate.Range(0, MAX_STOCK))


class RedeemRequest(Schema):
    item = fields.String(required=True, validate=validate.Regexp(ID))
    entry = fields.Nested(SignedEntry, required=True,
                          metadata={"description": "The member's own signed points.redeem: item = the good's name, amount = price x quantity"})


class RedeemResult(Schema):
    index = fields.Integer(required=True)
    entry_id = fields.String(required=True)
    tree_size = fields.Integer(required=True)
    checkpoint = fields.String(required=True)
    inclusion_proof = fields.List(sha256_hash(), required=True)
    stock = fields.Integer(required=True, metadata={"description": "The item's stock after the redemption"})


class RedemptionsQuery(Schema):
    month = fields.String(required=True, validate=validate.Regexp(MONTH))


class RedemptionItem(Schema):
    index = fields.Integer(required=True)
    time = fields.String(required=True)
    household = fields.String(required=True)
    item = fields.String(required=True)
    quantity = fields.Integer(required=True)
    amount = fields.Integer(required=True)
    reversed = fields.Boolean(required=True, metadata={"description": "Undone by a points.reverse: not in the totals"})


class ItemTotal(Schema):
    quantity = fields.Integer(required=True)
    amount = fields.Integer(required=True)


class RedemptionReport(Schema):
    items = fields.List(fields.Nested(RedemptionItem), required=True)
    totals = fields.Dict(keys=fields.String(), values=fields.Nested(ItemTotal), required=True,
                         metadata={"description": "Per item name, the redemptions not reversed"})


# --- import preview ------------------------------------------------------------------------------------


class JsonMapping(fields.String):
    """A form field holding a JSON object ``{"<field>": "<column header>" or null}``."""

    # A String (so the form documents it as one) that loads into a mapping: marshmallow's types tie a field's
    # loaded type to String's str.
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, str | None]:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 10_000:
            raise ValidationError("is longer than 10,000 characters")
        try:
            mapping = json.loads(text)
        except ValueError as exc:
            raise ValidationError("is not JSON") from exc
        if not isinstance(mapping, dict):
            raise ValidationError("must be a JSON object")
        for name, column in mapping.items():
            if name not in IMPORT_FIELDS:
                raise ValidationError(f"{name!r} is not one of {', '.join(IMPORT_FIELDS)}")
            if column is not None and not isinstance(column, str):
                raise ValidationError(f"{name}: must be a column header or null")
        return mapping


class ImportUpload(Schema):
    file = fields.Raw(required=True, metadata={**BINARY, "description": "CSV (UTF-8 or GB18030) or XLSX, at most 1,000 rows"})
    kind = fields.String(required=True, validate=validate.OneOf(IMPORT_KINDS))
    mapping = JsonMapping(metadata={
        "description": 'JSON: {"household": "<column header>", "rule": ..., "amount": ..., "reason": ...}; '
                       "default: suggested from the headers"})


class RowProblem(Schema):
    field = fields.String(required=True)
    problem = fields.String(required=True)


class ImportRowSchema(Schema):
    row = fields.Integer(required=True, metadata={"description": "1-based, counting the rows after the header"})
    household = fields.String(allow_none=True, metadata={"description": "The household's id, found by id or number"})
    number = fields.String(allow_none=True, metadata={"description": "The household as written in the file"})
    rule = fields.String(allow_none=True)
    amount = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    errors = fields.List(fields.Nested(RowProblem), required=True)


class ImportPreviewSchema(Schema):
    columns = fields.List(fields.String(), required=True)
    mapping = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True), required=True)
    rows = fields.List(fields.Nested(ImportRowSchema), required=True)
    valid = fields.Integer(required=True)
    invalid = fields.Integer(required=True)
