"""What crosses HTTP for the server's self-check (``api.views.check``)."""

from __future__ import annotations

from marshmallow import Schema, fields

from .common import sha256_hash


class CheckFailure(Schema):
    index = fields.Integer(allow_none=True, metadata={"description": "The first bad entry (or checkpoint size)"})
    kind = fields.String(allow_none=True)
    message = fields.String(required=True)


class CheckReport(Schema):
    ok = fields.Boolean(required=True)
    size = fields.Integer(allow_none=True)
    root = sha256_hash(allow_none=True)
    checkpoints = fields.Integer(allow_none=True)
    failure = fields.Nested(CheckFailure, allow_none=True)
