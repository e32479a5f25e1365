"""Canonical bytes: RFC 8785 JSON Canonicalization Scheme (JCS), and strict base64 (from ``keys.encoding``).

Invariant: ``canonical_json(parse_canonical(b)) == b`` for every ``b`` that ``parse_canonical`` accepts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import rfc8785

from keys.encoding import b64decode, b64encode

from .errors import EncodingError

__all__ = [  # base64 is keys' (the bottom layer), re-exported: the ledger's encodings are all here
    "MAX_INTEGER_DIGITS", "MAX_SAFE_INTEGER", "OversizedInteger", "b64decode", "b64encode", "canonical_json",
    "canonical_json_of_checked", "parse_canonical", "parse_json", "parse_json_for_canonical_check",
]

MAX_SAFE_INTEGER = 2**53 - 1  # JCS numbers are IEEE 754 doubles; larger integers would lose precision.


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``. Raises EncodingError for floats-as-ints abuse,
    lone surrogates or integers beyond 2^53-1, which JCS cannot represent exactly."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, ValueError, TypeError) as exc:
        raise EncodingError(f"value cannot be canonicalised: {exc}") from exc


# Built once (``json.dumps`` builds an encoder per call). A checked value is parsed JSON, a tree, so the
# encoder need not look for cycles; a cyclic value raises RecursionError instead of ValueError.
_CHECKED_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False, check_circular=False
)


def canonical_json_of_checked(value: Any) -> bytes:
    """``canonical_json(value)``, four times faster, for a value a strict schema has already checked:
    every object key ASCII, every number an integer of at most 2^53-1, no floats.

    Under that precondition Python's json with sorted keys and no ASCII escaping writes exactly RFC 8785:
    ASCII keys sort the same by code point as by UTF-16 code unit, and both escape only the quote, the
    backslash and control characters (the short forms \\b \\t \\n \\f \\r, else lowercase \\u00xx).
    Entries are parsed this way (the verifier's hot path); tests hold it to ``canonical_json`` on every
    kind of entry and on arbitrary text. Raises EncodingError for a lone surrogate, as canonical_json does.
    """
    try:
        return _CHECKED_ENCODER.encode(value).encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError, RecursionError) as exc:
        raise EncodingError(f"value cannot be canonicalised: {exc}") from exc


def _reject_constant(name: str) -> Any:
    raise EncodingError(f"JSON constant {name} is not allowed")


def _reject_float(text: str) -> Any:
    raise EncodingError(f"non-integer number {text} is not allowed; amounts are integers")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise EncodingError(f"duplicate JSON member {key!r}")
        obj[key] = value
    return obj


MAX_INTEGER_DIGITS = 30  # far beyond any amount; far below Python's 4,300-digit limit on int()


@dataclass(frozen=True)
class OversizedInteger:
    """A JSON integer of more than MAX_INTEGER_DIGITS digits, as parsed: no field takes one, so a schema
    refuses it with a message naming the field (converting it could exceed Python's limit on int())."""

    digits: int

    def __str__(self) -> str:
        return f"an integer of {self.digits} digits"


def _bounded_int(text: str) -> int | OversizedInteger:
    digits = len(text) - text.startswith("-")
    return int(text) if digits <= MAX_INTEGER_DIGITS else OversizedInteger(digits)


def parse_json(data: bytes | str) -> Any:
    """Parse strict JSON: UTF-8, no duplicate members, no NaN/Infinity, no floats."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise EncodingError(f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_reject_constant,
            parse_float=_reject_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        raise EncodingError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise EncodingError("malformed JSON: nested too deeply") from exc


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_reject_float, parse_int=_bounded_int)


def parse_json_for_canonical_check(data: bytes) -> Any:
    """``parse_json(data)``, twice as fast, for a caller that will require ``data`` to be the canonical bytes
    of the result: a duplicate member is not refused here (the last one wins), since the canonical form of
    the result has one member fewer than ``data`` then and the check fails. Raises EncodingError, with a
    less precise message than ``parse_json``; parse again with ``parse_json`` to say what is wrong."""
    try:
        text = data.decode("utf-8")
        value, end = _DECODER.raw_decode(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EncodingError("not strict JSON") from exc
    if end != len(text):
        raise EncodingError("not strict JSON: extra data")
    return value


def parse_canonical(data: bytes) -> Any:
    """Parse ``data`` and require that it is already in canonical form."""
    value = parse_json(data)
    if canonical_json(value) != data:
        raise EncodingError("bytes are not RFC 8785 canonical JSON")
    return value
