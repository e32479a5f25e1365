"""What several view areas share: the problem document every error is, the signed entry that entries,
complaint steps and redemptions carry, and field helpers (bytes as base64)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from ledger.canonical import b64decode, b64encode
from ledger.entries import SignatureSchema as LedgerSignature
from ledger.errors import EncodingError

BINARY = {"type": "string", "format": "binary"}
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])\Z"
MAX_SIZE = 2**31 - 1  # entries a village log can hold (the index column is a 32-bit integer)


class Base64Bytes(fields.Field[bytes]):
    """Bytes on the wire as canonical standard base64 (RFC 4648 section 4, padded), as the ledger writes it.

    Dumps ``bytes`` with ``ledger.canonical.b64encode`` (None stays null). Loads only a canonical spelling
    (``text == b64encode(raw)``) and refuses anything else saying why: not a string, not valid base64, or
    not canonical. Documented as ``type: string, format: byte``: ``api.extensions`` registers it with the API.
    """

    def _serialize(self, value: bytes | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else b64encode(value)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bytes:
        if not isinstance(value, str):
            raise ValidationError("Not a valid string.")
        try:
            return b64decode(value, what=self.name or "value")
        except EncodingError as exc:
            raise ValidationError(str(exc)) from exc


def sha256_hash(**kwargs: Any) -> Base64Bytes:
    """A SHA-256 hash (a leaf hash, a tree root, a proof's node hash): 32 bytes, base64 on the wire."""
    return Base64Bytes(metadata={"description": "base64 SHA-256 hash (32 bytes)"}, **kwargs)


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
