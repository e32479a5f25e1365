"""Strict standard base64 (RFC 4648 section 4), the one spelling of bytes in keys, entries and notes.

Invariant: ``b64decode(b64encode(raw)) == raw``, and ``b64decode`` accepts exactly the texts ``b64encode``
writes: no missing padding, no stray bits, no whitespace.
"""

from __future__ import annotations

import base64
import binascii
import functools

from .errors import EncodingError


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 section 4) with padding."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")  # base64.b64encode, minus two calls


def b64decode(text: str, *, length: int | None = None, what: str = "value") -> bytes:
    """Strict standard base64; ``length`` if given is the exact decoded length required.

    Accepts exactly the canonical spellings (``text == b64encode(raw)``). The fast test decides those; any
    other text goes through the reference path, which says what is wrong with it."""
    raw = _canonical_b64decode(text) if type(text) is str else None
    if raw is None:
        raw = _b64decode_explained(text, what)
    if length is not None and len(raw) != length:
        raise EncodingError(f"{what} decodes to {len(raw)} bytes, expected {length}")
    return raw


@functools.lru_cache(maxsize=1024)
def _canonical_b64decode(text: str) -> bytes | None:
    """The bytes whose base64 is exactly ``text``, or None. (Any decoder returns the right bytes for a
    canonical text; the comparison with the re-encoding is what makes the test exact.) Cached: an entry's
    keys recur in every entry its signers sign, and each key and signature is decoded twice per entry,
    once by the schema and once for the ``Entry``."""
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError, TypeError):
        return None
    return raw if binascii.b2a_base64(raw, newline=False) == text.encode("ascii") else None


def _b64decode_explained(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise EncodingError(f"{what} is not valid base64") from exc
    if b64encode(raw) != text:
        raise EncodingError(f"{what} is not canonical base64")
    return raw
