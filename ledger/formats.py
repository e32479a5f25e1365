"""The formats of values in entries: the patterns ids, hashes and times follow, and the marshmallow field
types every schema of the ledger builds on (``ledger.kinds`` for bodies, ``ledger.entries`` for the envelope).

Invariant: a pattern is matched from the start and ends with ``\\Z`` ("$" would accept a trailing newline).
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from .canonical import b64decode
from .compiled import Check, StrictBoolean
from .errors import EncodingError

MAX_AMOUNT = 1_000_000

# Patterns are matched from the start and must end with \Z: "$" would accept a trailing newline.
ID = r"^[a-z0-9][a-z0-9_-]{0,63}\Z"
ENTRY_ID = r"^[0-9a-f]{32}\Z"
SHA256_HEX = r"^[0-9a-f]{64}\Z"
RULE_CODE = r"^[A-Z0-9][A-Z0-9-]{0,31}\Z"
TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"
SAFE_FILENAME = r"^(?!\.)[^/\\\x00-\x1f\x7f-\x9f]{1,128}\Z"


# --- field helpers -------------------------------------------------------------------------------


def text_field(max_length: int, *, required: bool = True) -> fields.String:
    """Printable text, no control characters, not blank: what people write (``free_texts`` finds it)."""
    return fields.String(
        required=required,
        metadata={"free_text": True},
        validate=[
            validate.Length(min=1, max=max_length),
            validate.Regexp(r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*\Z", error="must not contain control characters"),
            validate.Regexp(r"(?s).*\S", error="must not be blank"),
        ],
    )


def pattern_field(regex: str, what: str, *, required: bool = True) -> fields.String:
    return fields.String(required=required, validate=validate.Regexp(regex, error=f"must be {what}"))


def id_field(*, required: bool = True) -> fields.String:
    return pattern_field(ID, "an id of lowercase letters, digits, '-' or '_' (at most 64)", required=required)


def amount_field(*, required: bool = True) -> fields.Integer:
    return fields.Integer(strict=True, required=required, validate=validate.Range(1, MAX_AMOUNT))


class CanonicalBase64(Check):
    """The canonical base64 (``b64encode`` of the bytes) of exactly ``length`` bytes."""

    def __init__(self, length: int, what: str) -> None:
        self.length, self.error = length, f"must be {what}"

    def accepts(self, value: Any) -> bool:
        try:
            b64decode(value, length=self.length)
        except EncodingError:
            return False
        return True


def key_field(*, required: bool = True) -> fields.String:
    return fields.String(required=required, validate=CanonicalBase64(32, "a canonical base64 Ed25519 public key (32 bytes)"))


def bool_field(*, required: bool = True) -> fields.Boolean:
    return StrictBoolean(required=required)


def choice_field(choices: tuple[str, ...], *, required: bool = True) -> fields.String:
    return fields.String(required=required, validate=validate.OneOf(choices))


class Strict(Schema):
    """Unknown fields are errors: a field the schema does not know is a field the verifier ignores."""


def require_valid_date(value: Any, name: str) -> None:
    """``value``, already shaped ``YYYY-MM-DD[THH:MM:SSZ]`` by its pattern, names a real date and time.
    (The verifier runs this for every entry: days are few and cached, and a clock of two-digit fields is
    real exactly when it is at most 23:59:59, which string comparison tells.)"""
    if not isinstance(value, str):
        return
    clock = value[11:19]
    if not is_real_day(value[:10]) or (clock and (clock[0:2] > "23" or clock[3:5] > "59" or clock[6:8] > "59")):
        raise ValidationError("is not a real calendar date and time", name)


@functools.lru_cache(maxsize=4096)
def is_real_day(day: str) -> bool:
    try:
        date(int(day[0:4]), int(day[5:7]), int(day[8:10]))
    except ValueError:
        return False
    return True
