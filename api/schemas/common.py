"""What several view areas share: the problem document every error is, the signed entry that entries,
complaint steps and redemptions carry, and field helpers."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ledger.entries import SignatureSchema as LedgerSignature

B64_HASH = {"description": "base64 SHA-256 hash (32 bytes)"}
BINARY = {"type": "string", "format": "binary"}
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])\Z"
MAX_SIZE = 2**31 - 1  # entries a village log can hold (the index column is a 32-bit integer)


class FieldProblem(Schema):
    field = fields.String(required=True, metadata={"description": "Dotted path of the field, or the query parameter"})
    problem = fields.String(required=True)


class ProblemSchema(Schema):
    """An RFC 9457 problem document: every error response of the API (see ``api.problems``)."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    errors = fields.List(fields.Nested(FieldProblem))
    position = fields.Integer(metadata={"description": "Index in the posted batch of the entry at fault"})


class SignedEntry(Schema):
    """A signed entry as in ``docs/data-model.md``; its body is validated by the ledger per kind."""

    entry = fields.Dict(required=True, metadata={"description": "The unsigned entry: v, kind, village, id, time, author, [cosigner], body"})
    signatures = fields.List(fields.Nested(LedgerSignature), required=True, validate=validate.Length(1, 2))
