"""Entries: the versioned schema of every kind, canonical leaf bytes and the signing message.

Wire form of a signed entry (its RFC 8785 canonical bytes are the Merkle leaf)::

    {"entry": {"v": 1, "kind": "points.award", "village": "demo", "id": "<32 hex>",
               "time": "2026-11-22T08:30:00Z", "author": "<base64 Ed25519 key>",
               ["cosigner": "<base64 Ed25519 key>",] "body": {...}},
     "signatures": [{"key": "<author>", "sig": "<base64>"}, {"key": "<cosigner>", "sig": "<base64>"}]}

Invariants:
- every signature is Ed25519 over ``SIGNING_DOMAIN || JCS(entry)``, so a signature made for one purpose
  (a checkpoint, a login challenge) can never be replayed as an entry and vice versa;
- ``signatures[0].key == entry.author`` and, iff ``entry.cosigner`` is present, ``signatures[1].key ==
  entry.cosigner``; there are no other signatures;
- amounts are integers in ``[1, MAX_AMOUNT]``; the sign of a movement comes from the kind, never from
  the number.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

import keys

from .canonical import (
    b64decode,
    b64encode,
    canonical_json,
    canonical_json_of_checked,
    parse_json,
    parse_json_for_canonical_check,
)
from .compiled import compile_schema
from .errors import EncodingError, LedgerError, MalformedEntry
from .formats import (
    ENTRY_ID,
    TIME,
    CanonicalBase64,
    Strict,
    choice_field,
    key_field,
    pattern_field,
    require_valid_date,
)
from .kinds import KIND_NAMES, KINDS
from .signatures import check_signatures_of
from .tiles import MAX_BUNDLED_LEAF

SCHEMA_VERSION = 1
SIGNING_DOMAIN = b"villageledger/entry/v1\n"
MAX_ENTRY_BYTES = MAX_BUNDLED_LEAF  # 64 KiB - 1: every leaf fits a tlog-tiles entry bundle (uint16 length)

class Envelope(Strict):
    v = fields.Integer(strict=True, required=True, validate=validate.Equal(SCHEMA_VERSION))
    kind = choice_field(KIND_NAMES)
    village = pattern_field(r"^[a-z0-9][a-z0-9-]{0,39}\Z", "a village slug (lowercase letters, digits, '-')")
    id = pattern_field(ENTRY_ID, "an entry id (32 lowercase hex)")
    time = pattern_field(TIME, "a UTC time YYYY-MM-DDTHH:MM:SSZ")
    author = key_field()
    cosigner = key_field(required=False)
    body = fields.Dict(required=True)

    @validates_schema
    def _time_is_real(self, data: dict[str, Any], **_: Any) -> None:
        require_valid_date(data.get("time"), "time")
        if "cosigner" in data and data["cosigner"] == data.get("author"):
            raise ValidationError("must be a different key from the author", "cosigner")


class SignatureSchema(Strict):
    key = key_field()
    sig = fields.String(required=True, validate=CanonicalBase64(64, "a canonical base64 Ed25519 signature (64 bytes)"))


class SignedEntrySchema(Strict):
    entry = fields.Dict(required=True)
    signatures = fields.List(fields.Nested(SignatureSchema), required=True, validate=validate.Length(1, 2))


SIGNED_ENTRY = SignedEntrySchema()  # schemas are built once: building one costs more than a load
ENVELOPE = Envelope()


# --- the entry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A validated signed entry. ``leaf`` is its canonical bytes (the Merkle leaf data).

    Construct with ``parse_entry`` or ``sign_entry``; both guarantee the schema of ``kind`` holds.
    Signatures are checked separately by ``check_signatures`` (the verifier does it in parallel).
    """

    kind: str
    village: str
    id: str
    time: str
    author: bytes
    cosigner: bytes | None
    body: Mapping[str, Any]
    signatures: tuple[bytes, ...]
    unsigned: Mapping[str, Any] = field(repr=False)
    leaf: bytes = field(repr=False)

    @property
    def signers(self) -> tuple[bytes, ...]:
        """The keys that must have signed, in signature order."""
        return (self.author,) if self.cosigner is None else (self.author, self.cosigner)

    @property
    def message(self) -> bytes:
        """The signing message, sliced from the canonical leaf: RFC 8785 sorts ``entry`` before
        ``signatures``, so the leaf is ``{"entry":`` JCS(entry) ``,"signatures":[...]}``; no field inside the
        entry is named ``signatures`` (the schemas refuse unknown fields), so the last such key is the outer one.
        Equals ``signing_message(self.unsigned)`` without canonicalising the entry again."""
        end = self.leaf.rindex(b',"signatures":[')
        return SIGNING_DOMAIN + self.leaf[len(b'{"entry":') : end]

    def to_wire(self) -> dict[str, Any]:
        return {
            "entry": dict(self.unsigned),
            "signatures": [
                {"key": b64encode(k), "sig": b64encode(s)} for k, s in zip(self.signers, self.signatures)
            ],
        }


def signing_message(unsigned: Mapping[str, Any]) -> bytes:
    """The exact bytes every signer of ``unsigned`` signs."""
    return SIGNING_DOMAIN + canonical_json(unsigned)


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict as {"body.amount": ["..."]}."""
    if isinstance(messages, dict):
        out: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = str(key) if key != "_schema" else ""
            path = f"{prefix}.{name}" if prefix and name else (prefix or name or "entry")
            out.update(_flatten(value, path))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "entry": list(messages)}
    if isinstance(messages, list):
        out = {}
        for item in messages:
            out.update(_flatten(item, prefix))
        return out
    return {prefix or "entry": [str(messages)]}


Loader = Callable[[Any, str], dict[str, Any]]


def _loader(schema: Schema) -> Loader:
    """``load(data, prefix)``: ``schema.load(data)`` by the fast path compiled from the schema when it
    accepts (the same result), else by marshmallow, whose messages name the field at fault."""
    accept = compile_schema(schema)

    def load(data: Any, prefix: str) -> dict[str, Any]:
        loaded = accept(data)
        return loaded if loaded is not None else _load(schema, data, prefix)

    return load


def _load(schema: Schema, data: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise MalformedEntry(f"{prefix or 'entry'}: must be a JSON object", field=prefix or "entry")
    try:
        loaded: dict[str, Any] = schema.load(data)
        return loaded
    except ValidationError as exc:
        problems = _flatten(exc.messages, prefix)
        first, reasons = next(iter(sorted(problems.items())))
        raise MalformedEntry(f"{first}: {reasons[0]}", field=first, problems=problems) from exc


_LOAD_SIGNED_ENTRY = _loader(SIGNED_ENTRY)
_LOAD_ENVELOPE = _loader(ENVELOPE)
_LOAD_BODY = {name: _loader(kind.body) for name, kind in KINDS.items()}


def parse_entry(signed: Any) -> Entry:
    """Validate a signed entry (already parsed JSON) against the envelope and its kind's body schema.

    Raises MalformedEntry naming the first offending field. Does not check signatures.
    """
    outer = _LOAD_SIGNED_ENTRY(signed, "")
    unsigned = outer["entry"]
    envelope = _LOAD_ENVELOPE(unsigned, "entry")
    body = _LOAD_BODY[envelope["kind"]](envelope["body"], "entry.body")
    signers = [envelope["author"]] if "cosigner" not in envelope else [envelope["author"], envelope["cosigner"]]
    # Keys are compared as text: the schemas let through only canonical base64, one text for each key.
    if [s["key"] for s in outer["signatures"]] != signers:
        raise MalformedEntry(
            f"signatures: expected {len(signers)} signature(s) by the author"
            + (" then the cosigner" if len(signers) > 1 else "")
            + f", got {len(outer['signatures'])} by other or reordered keys",
            field="signatures",
        )
    leaf = canonical_json_of_checked(signed)  # every key and number of ``signed`` is checked above
    if len(leaf) > MAX_ENTRY_BYTES:
        raise MalformedEntry(f"entry: {len(leaf)} bytes, at most {MAX_ENTRY_BYTES}", field="entry")
    return _new_entry(
        kind=envelope["kind"],
        village=envelope["village"],
        id=envelope["id"],
        time=envelope["time"],
        author=b64decode(signers[0], length=32, what="entry.author"),
        cosigner=b64decode(signers[1], length=32, what="entry.cosigner") if len(signers) > 1 else None,
        body=body,
        signatures=tuple(b64decode(s["sig"], length=64, what="signatures.sig") for s in outer["signatures"]),
        unsigned=unsigned,
        leaf=leaf,
    )


def _new_entry(**values: Any) -> Entry:
    """``Entry(**values)`` for every field, without the frozen dataclass's ``object.__setattr__`` per field
    (a tenth of ``decode_leaf``): the same object, since ``Entry`` has no ``__post_init__`` or slots."""
    entry: Entry = object.__new__(Entry)
    entry.__dict__.update(values)
    return entry


def decode_leaf(leaf: bytes) -> Entry:
    """The entry whose canonical bytes are exactly ``leaf``. Raises EncodingError or MalformedEntry.

    Fast path: parse without refusing duplicate members (``parse_json_for_canonical_check``); a leaf it
    accepts is canonical, so it has none. Anything else takes the reference path, which raises the error.
    """
    if len(leaf) > MAX_ENTRY_BYTES:
        raise MalformedEntry(f"entry: {len(leaf)} bytes, at most {MAX_ENTRY_BYTES}", field="entry")
    try:
        entry: Entry | None = parse_entry(parse_json_for_canonical_check(leaf))
    except (LedgerError, RecursionError):
        entry = None
    if entry is None or entry.leaf != leaf:
        return _decode_leaf_explained(leaf)
    return entry


def _decode_leaf_explained(leaf: bytes) -> Entry:
    """``decode_leaf`` by the reference path: strict JSON first, so the error says what is wrong."""
    entry = parse_entry(parse_json(leaf))
    if entry.leaf != leaf:
        raise EncodingError("leaf bytes are not the RFC 8785 canonical form of the entry")
    return entry


def open_leaf(leaf: bytes) -> dict[str, Any]:
    """The signed entry a stored leaf holds, as JSON (``{"entry": ..., "signatures": [...]}``): the one place
    the log's own rows are opened for reading. The leaf was checked when it was appended; bytes from
    elsewhere go through ``decode_leaf``."""
    opened: dict[str, Any] = json.loads(leaf)
    return opened


def leaf_body(leaf: bytes) -> dict[str, Any]:
    """The body of the entry a stored leaf holds (see ``open_leaf``)."""
    body: dict[str, Any] = open_leaf(leaf)["entry"]["body"]
    return body


def check_signatures(entry: Entry) -> None:
    """Every required signature verifies over the signing message. Raises BadSignature naming the signer."""
    check_signatures_of(entry.signers, entry.signatures, entry.message)


_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def new_entry_id() -> str:
    return secrets.token_hex(16)


def make_unsigned(
    *,
    kind: str,
    village: str,
    body: Mapping[str, Any],
    author: bytes,
    cosigner: bytes | None = None,
    time: str | None = None,
    entry_id: str | None = None,
) -> dict[str, Any]:
    """The unsigned part of a new entry, ready for every signer to sign."""
    unsigned: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "kind": kind,
        "village": village,
        "id": entry_id or new_entry_id(),
        "time": time or utc_now(),
        "author": b64encode(author),
        "body": dict(body),
    }
    if cosigner is not None:
        unsigned["cosigner"] = b64encode(cosigner)
    return unsigned


def sign_entry(unsigned: Mapping[str, Any], author: keys.SigningKey, cosigner: keys.SigningKey | None = None) -> Entry:
    """Sign ``unsigned`` with the author's (and the cosigner's) key and return the validated entry."""
    message = signing_message(unsigned)
    signers = [author] if cosigner is None else [author, cosigner]
    signed = {
        "entry": dict(unsigned),
        "signatures": [{"key": b64encode(k.public_bytes), "sig": b64encode(k.sign(message))} for k in signers],
    }
    return parse_entry(signed)


def parse_time(text: str) -> datetime:
    """A UTC time as written in entries (``YYYY-MM-DDTHH:MM:SSZ``)."""
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """``moment`` as entries write it (UTC, to the second)."""
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def entry_time(entry: Entry) -> datetime:
    return parse_time(entry.time)


HOUSEHOLD_COMMITMENT_DOMAIN = b"villageledger/household/v1\n"
COMPLAINT_COMMITMENT_DOMAIN = b"villageledger/complaint/v1\n"
STEP_COMMITMENT_DOMAIN = b"villageledger/complaint-step/v1\n"


def salted_commitment(domain: bytes, salt: bytes, data: Mapping[str, Any]) -> str:
    """SHA-256(domain || salt || JCS(data)) in lowercase hex: binds ``data`` without revealing it.

    The salt (at least 16 random bytes) keeps the commitment from being brute-forced from guessable
    content; erasing the salt and data leaves the commitment meaningless but every signature valid.
    """
    if len(salt) < 16:
        raise ValueError("salt must be at least 16 bytes")
    return hashlib.sha256(domain + salt + canonical_json(dict(data))).hexdigest()


def household_commitment(salt: bytes, personal: Mapping[str, Any]) -> str:
    """The commitment in ``household.register``/``update`` to a household's personal data."""
    return salted_commitment(HOUSEHOLD_COMMITMENT_DOMAIN, salt, personal)


def complaint_commitment(salt: bytes, content: Mapping[str, Any]) -> str:
    """The commitment in ``complaint.receipt`` to what was filed (category, text, photos' hashes...)."""
    return salted_commitment(COMPLAINT_COMMITMENT_DOMAIN, salt, content)


def step_commitment(salt: bytes, content: Mapping[str, Any]) -> str:
    """The commitment in ``complaint.step`` to its text (a reply, a villager's answer)."""
    return salted_commitment(STEP_COMMITMENT_DOMAIN, salt, content)
