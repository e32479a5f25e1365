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

import functools
import hashlib
import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
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
from .compiled import Check, StrictBoolean, compile_schema
from .errors import EncodingError, LedgerError, MalformedEntry
from .signatures import check_signatures_of

SCHEMA_VERSION = 1
SIGNING_DOMAIN = b"villageledger/entry/v1\n"
MAX_AMOUNT = 1_000_000
MAX_ENTRY_BYTES = 64 * 1024

LEDGERS = ("morality", "credit")
ROLES = ("committee", "grid_worker", "supervisor", "township", "auditor", "intake")
# The rules a log is written under, named by its genesis: 1 (no ``rules`` field, logs written before
# 2026-12) gives the committee every power; 2 names the township as the village's outside authority and
# adds the checks and balances of ``ledger.state`` (docs/data-model.md, "Rules of a log").
CURRENT_RULES = 2
AFFAIR_CATEGORIES = ("finance", "project", "decision")
COMPLAINT_ROUTES = ("supervision", "jury", "committee", "grid")
COMPLAINT_STEPS = ("accept", "assign", "start", "reply", "close", "answer", "rate", "escalate")
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")
ESCALATION_REASONS = ("response_overdue", "resolution_overdue")

# Patterns are matched from the start and must end with \Z: "$" would accept a trailing newline.
ID = r"^[a-z0-9][a-z0-9_-]{0,63}\Z"
ENTRY_ID = r"^[0-9a-f]{32}\Z"
SHA256_HEX = r"^[0-9a-f]{64}\Z"
RULE_CODE = r"^[A-Z0-9][A-Z0-9-]{0,31}\Z"
TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"
SAFE_FILENAME = r"^(?!\.)[^/\\\x00-\x1f\x7f-\x9f]{1,128}\Z"


# --- field helpers -------------------------------------------------------------------------------


def _text(max_length: int, *, required: bool = True) -> fields.String:
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


def _pattern(regex: str, what: str, *, required: bool = True) -> fields.String:
    return fields.String(required=required, validate=validate.Regexp(regex, error=f"must be {what}"))


def _ident(*, required: bool = True) -> fields.String:
    return _pattern(ID, "an id of lowercase letters, digits, '-' or '_' (at most 64)", required=required)


def _amount(*, required: bool = True) -> fields.Integer:
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


def _public_key(*, required: bool = True) -> fields.String:
    return fields.String(required=required, validate=CanonicalBase64(32, "a canonical base64 Ed25519 public key (32 bytes)"))


def _bool(*, required: bool = True) -> fields.Boolean:
    return StrictBoolean(required=required)


def _one_of(choices: tuple[str, ...], *, required: bool = True) -> fields.String:
    return fields.String(required=required, validate=validate.OneOf(choices))


class _Strict(Schema):
    """Unknown fields are errors: a field the schema does not know is a field the verifier ignores."""


# --- bodies of each kind -------------------------------------------------------------------------


class Authority(_Strict):
    """The township (乡镇) as the village's outside authority: a member with the ``township`` role whose
    key co-signs the genesis, so no village is founded without it."""

    member = _ident()
    name = _text(32)
    key = _public_key()


class VillageGenesis(_Strict):
    name = _text(64)
    name_en = _text(64, required=False)
    township = _text(64)
    county = _text(64)
    origin = _pattern(r"^[\x21-\x7e]{1,200}\Z", "a checkpoint origin line (printable ASCII, no spaces)")
    green_card_threshold = _amount()
    founder = _ident()
    founder_name = _text(32)
    rules = fields.Integer(strict=True, validate=validate.Range(2, CURRENT_RULES))  # absent: rules 1
    authority = fields.Nested(Authority)

    @validates_schema
    def _authority_iff_rules_2(self, data: dict[str, Any], **_: Any) -> None:
        if "rules" in data and "authority" not in data:
            raise ValidationError("is required under rules 2: the township co-founds the village", "authority")
        if "authority" in data and "rules" not in data:
            raise ValidationError("is only for rules 2", "authority")
        if data.get("authority", {}).get("member") == data.get("founder"):
            raise ValidationError("must be another member than the founder", "authority")


class MemberAdd(_Strict):
    member = _ident()
    name = _text(32)
    roles = fields.List(_one_of(ROLES), required=True, validate=validate.Length(min=1, max=len(ROLES)))
    grid = _ident(required=False)
    household = _ident(required=False)
    key = _public_key()

    @validates_schema
    def _grid_for_grid_workers(self, data: dict[str, Any], **_: Any) -> None:
        _require_grid_iff_grid_worker(data)


class MemberRole(_Strict):
    member = _ident()
    roles = fields.List(_one_of(ROLES), required=True, validate=validate.Length(max=len(ROLES)))
    grid = _ident(required=False)

    @validates_schema
    def _grid_for_grid_workers(self, data: dict[str, Any], **_: Any) -> None:
        _require_grid_iff_grid_worker(data)


def _require_grid_iff_grid_worker(data: Mapping[str, Any]) -> None:
    roles = data.get("roles", [])
    if len(set(roles)) != len(roles):
        raise ValidationError("must not repeat a role", "roles")
    if "grid_worker" in roles and "grid" not in data:
        raise ValidationError("is required for a grid worker", "grid")
    if "grid_worker" not in roles and "grid" in data:
        raise ValidationError("is only for grid workers", "grid")


class KeyAdd(_Strict):
    member = _ident()
    key = _public_key()


class KeyRevoke(_Strict):
    key = _public_key()
    reason = _text(200)


class GridDefine(_Strict):
    grid = _ident()
    name = _text(64)
    name_en = _text(64, required=False)


class HouseholdPublic(_Strict):
    """The only household fields that may ever be public. Personal data (names of members, ID numbers,
    phones, exact addresses) is never here: it lives in the erasable table, committed to by ``commitment``."""

    label = _text(32, required=False)
    group = _text(32, required=False)
    lead_household = _bool(required=False)


class HouseholdRegister(_Strict):
    household = _ident()
    grid = _ident()
    number = _text(32)
    public = fields.Nested(HouseholdPublic, required=True)
    commitment = _pattern(SHA256_HEX, "a SHA-256 commitment in lowercase hex")


class HouseholdUpdate(_Strict):
    household = _ident()
    grid = _ident(required=False)
    number = _text(32, required=False)
    public = fields.Nested(HouseholdPublic, required=False)
    commitment = _pattern(SHA256_HEX, "a SHA-256 commitment in lowercase hex", required=False)

    @validates_schema
    def _changes_something(self, data: dict[str, Any], **_: Any) -> None:
        if data.keys() <= {"household"}:
            raise ValidationError("must change at least one of grid, number, public, commitment", "household")


class RulePublish(_Strict):
    rule = _pattern(RULE_CODE, "a rule code of capitals, digits and '-' (at most 32)")
    title_zh = _text(64)
    title_en = _text(96)
    ledger = _one_of(LEDGERS)
    direction = _one_of(("award", "deduct"))
    amount = _amount(required=False)
    min = _amount(required=False)
    max = _amount(required=False)
    evidence_required = _bool()
    description = _text(1000, required=False)

    @validates_schema
    def _fixed_or_bounded(self, data: dict[str, Any], **_: Any) -> None:
        bounds = ("min" in data, "max" in data)
        if "amount" in data and any(bounds):
            raise ValidationError("give either a fixed amount or min and max, not both", "amount")
        if "amount" not in data and not all(bounds):
            raise ValidationError("is required unless both min and max are given", "amount")
        if all(bounds) and data["min"] > data["max"]:
            raise ValidationError(f"must not exceed max ({data['max']})", "min")


class RuleRetire(_Strict):
    rule = _pattern(RULE_CODE, "a rule code")
    reason = _text(200)


class PointsMove(_Strict):
    household = _ident()
    rule = _pattern(RULE_CODE, "a rule code")
    amount = _amount()
    reason = _text(500)
    evidence = fields.List(_pattern(SHA256_HEX, "a SHA-256 in lowercase hex"), validate=validate.Length(max=20))
    # The day of the deed when it is older than the entry (a spreadsheet of last year's points), kept in the
    # signed entry; every public figure counts the entry's own time, which its author cannot choose.
    occurred_on = _pattern(DATE, "a date YYYY-MM-DD", required=False)

    @validates_schema
    def _occurred_on_is_a_day(self, data: dict[str, Any], **_: Any) -> None:
        _require_valid_date(data.get("occurred_on"), "occurred_on")


class PointsRedeem(_Strict):
    household = _ident()
    amount = _amount()
    item = _text(64)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(1, 1000))


class PointsReverse(_Strict):
    entry = _pattern(ENTRY_ID, "an entry id (32 lowercase hex)")
    reason = _text(500)
    case = _pattern(ENTRY_ID, "a complaint receipt id (32 lowercase hex)", required=False)


class Attachment(_Strict):
    name = _pattern(SAFE_FILENAME, "a file name without path separators or leading dot")
    sha256 = _pattern(SHA256_HEX, "a SHA-256 in lowercase hex")
    media_type = _pattern(r"^[a-z]+/[a-z0-9.+-]{1,64}\Z", "a media type such as image/jpeg")
    size = fields.Integer(strict=True, required=True, validate=validate.Range(0, 50 * 1024 * 1024))


class Finance(_Strict):
    direction = _one_of(("income", "expense"))
    amount_fen = fields.Integer(strict=True, required=True, validate=validate.Range(0, 10**13))
    counterparty = _text(64, required=False)


class Project(_Strict):
    budget_fen = fields.Integer(strict=True, required=True, validate=validate.Range(0, 10**13))
    contractor = _text(64)
    progress = fields.Integer(strict=True, required=True, validate=validate.Range(0, 100))
    status = _one_of(("planned", "ongoing", "done"))


class Decision(_Strict):
    meeting = _text(64)
    outcome = _text(500)
    votes_for = fields.Integer(strict=True, validate=validate.Range(0, 100_000))
    votes_against = fields.Integer(strict=True, validate=validate.Range(0, 100_000))
    votes_abstain = fields.Integer(strict=True, validate=validate.Range(0, 100_000))


class AffairPublish(_Strict):
    affair = _ident()
    category = _one_of(AFFAIR_CATEGORIES)
    title = _text(100)
    text = _text(5000)
    date = _pattern(DATE, "a date YYYY-MM-DD")
    finance = fields.Nested(Finance)
    project = fields.Nested(Project)
    decision = fields.Nested(Decision)
    attachments = fields.List(fields.Nested(Attachment), validate=validate.Length(max=20))

    @validates_schema
    def _details_match_category(self, data: dict[str, Any], **_: Any) -> None:
        for category in AFFAIR_CATEGORIES:
            if category == data.get("category") and category not in data:
                raise ValidationError(f"is required for a {category} record", category)
            if category != data.get("category") and category in data:
                raise ValidationError(f"is only for a {category} record", category)
        _require_valid_date(data.get("date"), "date")


class ComplaintReceipt(_Strict):
    """A complaint was filed: its id, where it was routed, and a salted commitment to its content (the
    content itself never enters the log)."""

    receipt = _pattern(ENTRY_ID, "a receipt id (32 lowercase hex)")
    commitment = _pattern(SHA256_HEX, "a SHA-256 commitment in lowercase hex")
    route = _one_of(COMPLAINT_ROUTES)
    grid = _ident(required=False)

    @validates_schema
    def _grid_iff_grid_route(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("route") == "grid" and "grid" not in data:
            raise ValidationError("is required when the route is grid", "grid")
        if data.get("route") != "grid" and "grid" in data:
            raise ValidationError("is only for the grid route", "grid")


class ComplaintStep(_Strict):
    """One step of a complaint's handling. Content (a reply, a villager's answer) is committed, never
    shown: ``commitment`` is SHA-256 over a salted record kept off the log."""

    receipt = _pattern(ENTRY_ID, "a receipt id (32 lowercase hex)")
    step = _one_of(COMPLAINT_STEPS)
    commitment = _pattern(SHA256_HEX, "a SHA-256 commitment in lowercase hex", required=False)
    assignee = _ident(required=False)
    rating = _one_of(RATINGS, required=False)
    resolved = _bool(required=False)
    reason = _one_of(ESCALATION_REASONS, required=False)

    @validates_schema
    def _fields_of_the_step(self, data: dict[str, Any], **_: Any) -> None:
        step = data.get("step", "")
        needs = {"assign": {"assignee"}, "reply": {"commitment"}, "answer": {"commitment"},
                 "rate": {"rating", "resolved"}, "escalate": {"reason"}}.get(step, set())
        allowed = needs | {"commitment"} if step in ("accept", "start", "close") else needs
        for name in sorted(needs - data.keys()):
            raise ValidationError(f"is required for the {step} step", name)
        for name in sorted(data.keys() - allowed - {"receipt", "step"}):
            raise ValidationError(f"is not part of the {step} step", name)


BODY_SCHEMAS: dict[str, Schema] = {
    "village.genesis": VillageGenesis(),
    "member.add": MemberAdd(),
    "member.role": MemberRole(),
    "key.add": KeyAdd(),
    "key.revoke": KeyRevoke(),
    "grid.define": GridDefine(),
    "household.register": HouseholdRegister(),
    "household.update": HouseholdUpdate(),
    "rule.publish": RulePublish(),
    "rule.retire": RuleRetire(),
    "points.award": PointsMove(),
    "points.deduct": PointsMove(),
    "points.redeem": PointsRedeem(),
    "points.reverse": PointsReverse(),
    "affair.publish": AffairPublish(),
    "complaint.receipt": ComplaintReceipt(),
    "complaint.step": ComplaintStep(),
}
KINDS = tuple(BODY_SCHEMAS)


def _free_text_paths(schema: Schema) -> list[tuple[str, ...]]:
    """The paths of the free-text fields of ``schema``; "*" stands for every item of a list."""
    paths: list[tuple[str, ...]] = []
    for name, declared in schema.fields.items():
        if isinstance(declared, fields.Nested):
            paths += [(name, *rest) for rest in _free_text_paths(declared.schema)]
        elif isinstance(declared, fields.List) and isinstance(declared.inner, fields.Nested):
            paths += [(name, "*", *rest) for rest in _free_text_paths(declared.inner.schema)]
        elif declared.metadata.get("free_text"):
            paths.append((name,))
    return paths


FREE_TEXT_PATHS: dict[str, list[tuple[str, ...]]] = {kind: _free_text_paths(schema) for kind, schema in BODY_SCHEMAS.items()}


def free_texts(kind: str, body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, text) of every free-text field of a ``kind`` body (already valid): what people wrote."""
    for path in FREE_TEXT_PATHS[kind]:
        yield from _values_at(body, path, "entry.body")


def _values_at(value: Any, path: tuple[str, ...], where: str) -> Iterator[tuple[str, str]]:
    if not path:
        yield where, value
    elif path[0] == "*":
        for index, item in enumerate(value):
            yield from _values_at(item, path[1:], f"{where}.{index}")
    elif path[0] in value:
        yield from _values_at(value[path[0]], path[1:], f"{where}.{path[0]}")


class Envelope(_Strict):
    v = fields.Integer(strict=True, required=True, validate=validate.Equal(SCHEMA_VERSION))
    kind = _one_of(KINDS)
    village = _pattern(r"^[a-z0-9][a-z0-9-]{0,39}\Z", "a village slug (lowercase letters, digits, '-')")
    id = _pattern(ENTRY_ID, "an entry id (32 lowercase hex)")
    time = _pattern(TIME, "a UTC time YYYY-MM-DDTHH:MM:SSZ")
    author = _public_key()
    cosigner = _public_key(required=False)
    body = fields.Dict(required=True)

    @validates_schema
    def _time_is_real(self, data: dict[str, Any], **_: Any) -> None:
        _require_valid_date(data.get("time"), "time")
        if "cosigner" in data and data["cosigner"] == data.get("author"):
            raise ValidationError("must be a different key from the author", "cosigner")


class SignatureSchema(_Strict):
    key = _public_key()
    sig = fields.String(required=True, validate=CanonicalBase64(64, "a canonical base64 Ed25519 signature (64 bytes)"))


class SignedEntrySchema(_Strict):
    entry = fields.Dict(required=True)
    signatures = fields.List(fields.Nested(SignatureSchema), required=True, validate=validate.Length(1, 2))


SIGNED_ENTRY = SignedEntrySchema()  # schemas are built once: building one costs more than a load
ENVELOPE = Envelope()


def _require_valid_date(value: Any, name: str) -> None:
    """``value``, already shaped ``YYYY-MM-DD[THH:MM:SSZ]`` by its pattern, names a real date and time.
    (The verifier runs this for every entry: days are few and cached, and a clock of two-digit fields is
    real exactly when it is at most 23:59:59, which string comparison tells.)"""
    if not isinstance(value, str):
        return
    clock = value[11:19]
    if not _is_real_day(value[:10]) or (clock and (clock[0:2] > "23" or clock[3:5] > "59" or clock[6:8] > "59")):
        raise ValidationError("is not a real calendar date and time", name)


@functools.lru_cache(maxsize=4096)
def _is_real_day(day: str) -> bool:
    try:
        date(int(day[0:4]), int(day[5:7]), int(day[8:10]))
    except ValueError:
        return False
    return True


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
_LOAD_BODY = {kind: _loader(schema) for kind, schema in BODY_SCHEMAS.items()}


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
