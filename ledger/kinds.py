"""The kinds of entry: what each one's body holds, who may sign it, what it refers to and which files it
carries: the one registry (``KINDS``) the rest of the project derives from.

How a kind changes the state is ``ledger.state``'s applier of that name (the state's dispatch table is checked
against this registry when ``ledger.state`` is imported). Adding a kind: ``docs/adding-an-entry-kind.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .formats import (
    DATE,
    ENTRY_ID,
    RULE_CODE,
    SAFE_FILENAME,
    SHA256_HEX,
    Strict,
    amount_field,
    bool_field,
    choice_field,
    id_field,
    key_field,
    pattern_field,
    require_valid_date,
    text_field,
)

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


# --- bodies of each kind -------------------------------------------------------------------------


class Authority(Strict):
    """The township (乡镇) as the village's outside authority: a member with the ``township`` role whose
    key co-signs the genesis, so no village is founded without it."""

    member = id_field()
    name = text_field(32)
    key = key_field()


class VillageGenesis(Strict):
    name = text_field(64)
    name_en = text_field(64, required=False)
    township = text_field(64)
    county = text_field(64)
    origin = pattern_field(r"^[\x21-\x7e]{1,200}\Z", "a checkpoint origin line (printable ASCII, no spaces)")
    green_card_threshold = amount_field()
    founder = id_field()
    founder_name = text_field(32)
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


class MemberAdd(Strict):
    member = id_field()
    name = text_field(32)
    roles = fields.List(choice_field(ROLES), required=True, validate=validate.Length(min=1, max=len(ROLES)))
    grid = id_field(required=False)
    household = id_field(required=False)
    key = key_field()

    @validates_schema
    def _grid_for_grid_workers(self, data: dict[str, Any], **_: Any) -> None:
        _require_grid_iff_grid_worker(data)


class MemberRole(Strict):
    member = id_field()
    roles = fields.List(choice_field(ROLES), required=True, validate=validate.Length(max=len(ROLES)))
    grid = id_field(required=False)

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


class KeyAdd(Strict):
    member = id_field()
    key = key_field()


class KeyRevoke(Strict):
    key = key_field()
    reason = text_field(200)


class GridDefine(Strict):
    grid = id_field()
    name = text_field(64)
    name_en = text_field(64, required=False)


class HouseholdPublic(Strict):
    """The only household fields that may ever be public. Personal data (names of members, ID numbers,
    phones, exact addresses) is never here: it lives in the erasable table, committed to by ``commitment``."""

    label = text_field(32, required=False)
    group = text_field(32, required=False)
    lead_household = bool_field(required=False)


class HouseholdRegister(Strict):
    household = id_field()
    grid = id_field()
    number = text_field(32)
    public = fields.Nested(HouseholdPublic, required=True)
    commitment = pattern_field(SHA256_HEX, "a SHA-256 commitment in lowercase hex")


class HouseholdUpdate(Strict):
    household = id_field()
    grid = id_field(required=False)
    number = text_field(32, required=False)
    public = fields.Nested(HouseholdPublic, required=False)
    commitment = pattern_field(SHA256_HEX, "a SHA-256 commitment in lowercase hex", required=False)

    @validates_schema
    def _changes_something(self, data: dict[str, Any], **_: Any) -> None:
        if data.keys() <= {"household"}:
            raise ValidationError("must change at least one of grid, number, public, commitment", "household")


class RulePublish(Strict):
    rule = pattern_field(RULE_CODE, "a rule code of capitals, digits and '-' (at most 32)")
    title_zh = text_field(64)
    title_en = text_field(96)
    ledger = choice_field(LEDGERS)
    direction = choice_field(("award", "deduct"))
    amount = amount_field(required=False)
    min = amount_field(required=False)
    max = amount_field(required=False)
    evidence_required = bool_field()
    description = text_field(1000, required=False)

    @validates_schema
    def _fixed_or_bounded(self, data: dict[str, Any], **_: Any) -> None:
        bounds = ("min" in data, "max" in data)
        if "amount" in data and any(bounds):
            raise ValidationError("give either a fixed amount or min and max, not both", "amount")
        if "amount" not in data and not all(bounds):
            raise ValidationError("is required unless both min and max are given", "amount")
        if all(bounds) and data["min"] > data["max"]:
            raise ValidationError(f"must not exceed max ({data['max']})", "min")


class RuleRetire(Strict):
    rule = pattern_field(RULE_CODE, "a rule code")
    reason = text_field(200)


class PointsMove(Strict):
    household = id_field()
    rule = pattern_field(RULE_CODE, "a rule code")
    amount = amount_field()
    reason = text_field(500)
    evidence = fields.List(pattern_field(SHA256_HEX, "a SHA-256 in lowercase hex"), validate=validate.Length(max=20))
    # The day of the deed when it is older than the entry (a spreadsheet of last year's points), kept in the
    # signed entry; every public figure counts the entry's own time, which its author cannot choose.
    occurred_on = pattern_field(DATE, "a date YYYY-MM-DD", required=False)

    @validates_schema
    def _occurred_on_is_a_day(self, data: dict[str, Any], **_: Any) -> None:
        require_valid_date(data.get("occurred_on"), "occurred_on")


class PointsRedeem(Strict):
    household = id_field()
    amount = amount_field()
    item = text_field(64)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(1, 1000))


class PointsReverse(Strict):
    entry = pattern_field(ENTRY_ID, "an entry id (32 lowercase hex)")
    reason = text_field(500)
    case = pattern_field(ENTRY_ID, "a complaint receipt id (32 lowercase hex)", required=False)


class Attachment(Strict):
    name = pattern_field(SAFE_FILENAME, "a file name without path separators or leading dot")
    sha256 = pattern_field(SHA256_HEX, "a SHA-256 in lowercase hex")
    media_type = pattern_field(r"^[a-z]+/[a-z0-9.+-]{1,64}\Z", "a media type such as image/jpeg")
    size = fields.Integer(strict=True, required=True, validate=validate.Range(0, 50 * 1024 * 1024))


class Finance(Strict):
    direction = choice_field(("income", "expense"))
    amount_fen = fields.Integer(strict=True, required=True, validate=validate.Range(0, 10**13))
    counterparty = text_field(64, required=False)


class Project(Strict):
    budget_fen = fields.Integer(strict=True, required=True, validate=validate.Range(0, 10**13))
    contractor = text_field(64)
    progress = fields.Integer(strict=True, required=True, validate=validate.Range(0, 100))
    status = choice_field(("planned", "ongoing", "done"))


class Decision(Strict):
    meeting = text_field(64)
    outcome = text_field(500)
    votes_for = fields.Integer(strict=True, validate=validate.Range(0, 100_000))
    votes_against = fields.Integer(strict=True, validate=validate.Range(0, 100_000))
    votes_abstain = fields.Integer(strict=True, validate=validate.Range(0, 100_000))


class AffairPublish(Strict):
    affair = id_field()
    category = choice_field(AFFAIR_CATEGORIES)
    title = text_field(100)
    text = text_field(5000)
    date = pattern_field(DATE, "a date YYYY-MM-DD")
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
        require_valid_date(data.get("date"), "date")


class ComplaintReceipt(Strict):
    """A complaint was filed: its id, where it was routed, and a salted commitment to its content (the
    content itself never enters the log)."""

    receipt = pattern_field(ENTRY_ID, "a receipt id (32 lowercase hex)")
    commitment = pattern_field(SHA256_HEX, "a SHA-256 commitment in lowercase hex")
    route = choice_field(COMPLAINT_ROUTES)
    grid = id_field(required=False)

    @validates_schema
    def _grid_iff_grid_route(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("route") == "grid" and "grid" not in data:
            raise ValidationError("is required when the route is grid", "grid")
        if data.get("route") != "grid" and "grid" in data:
            raise ValidationError("is only for the grid route", "grid")


class ComplaintStep(Strict):
    """One step of a complaint's handling. Content (a reply, a villager's answer) is committed, never
    shown: ``commitment`` is SHA-256 over a salted record kept off the log."""

    receipt = pattern_field(ENTRY_ID, "a receipt id (32 lowercase hex)")
    step = choice_field(COMPLAINT_STEPS)
    commitment = pattern_field(SHA256_HEX, "a SHA-256 commitment in lowercase hex", required=False)
    assignee = id_field(required=False)
    rating = choice_field(RATINGS, required=False)
    resolved = bool_field(required=False)
    reason = choice_field(ESCALATION_REASONS, required=False)

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


# --- what people wrote --------------------------------------------------------------------------


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


def free_texts(kind: str, body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, text) of every free-text field of a ``kind`` body (already valid): what people wrote."""
    for path in KINDS[kind].free_text_paths:
        yield from _values_at(body, path, "entry.body")


def _values_at(value: Any, path: tuple[str, ...], where: str) -> Iterator[tuple[str, str]]:
    if not path:
        yield where, value
    elif path[0] == "*":
        for index, item in enumerate(value):
            yield from _values_at(item, path[1:], f"{where}.{index}")
    elif path[0] in value:
        yield from _values_at(value[path[0]], path[1:], f"{where}.{path[0]}")


# --- the registry --------------------------------------------------------------------------------

SIGNING_ROLES = frozenset({"committee", "grid_worker", "supervisor", "township", "intake"})  # auditors sign nothing


@dataclass(frozen=True)
class Kind:
    """One kind of entry: everything about it that varies by kind, but how it changes the state.

    ``signers`` may sign it under rules 1; under rules 2 the township also may when ``township_appoints``
    (the appointments on its side of the village). ``moves_points``: it moves a household's points (a member
    of that household needs an independent cosigner; a grid worker acts only in the household's grid).
    ``refers_to``: the body field naming what the entry is found by (a reversal by the entry it reverses, a
    receipt by its case). ``files``: the body fields listing files kept beside the log, each item a SHA-256
    or an object with one."""

    name: str
    body: Schema
    signers: frozenset[str]
    township_appoints: bool = False
    moves_points: bool = False
    refers_to: str | None = None
    files: tuple[str, ...] = ()
    free_text_paths: tuple[tuple[str, ...], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "free_text_paths", tuple(_free_text_paths(self.body)))

    def may_sign(self, rules: int) -> frozenset[str]:
        """The roles that may sign this kind in a log of ``rules``."""
        return self.signers | {"township"} if rules >= 2 and self.township_appoints else self.signers

    def file_hashes(self, body: Mapping[str, Any]) -> list[str]:
        """The SHA-256 of every file a (valid) body of this kind lists."""
        return [item if isinstance(item, str) else item["sha256"] for name in self.files for item in body.get(name, ())]


def _registry(*kinds: Kind) -> dict[str, Kind]:
    return {kind.name: kind for kind in kinds}


_COMMITTEE = frozenset({"committee"})
_COMMITTEE_AND_GRID = frozenset({"committee", "grid_worker"})
_POINTS = PointsMove()

KINDS: Mapping[str, Kind] = _registry(
    Kind("village.genesis", VillageGenesis(), frozenset()),  # signed by its founder; only ever entry 0
    Kind("member.add", MemberAdd(), _COMMITTEE, township_appoints=True),
    Kind("member.role", MemberRole(), _COMMITTEE, township_appoints=True),
    Kind("key.add", KeyAdd(), _COMMITTEE, township_appoints=True),
    Kind("key.revoke", KeyRevoke(), SIGNING_ROLES),
    Kind("grid.define", GridDefine(), _COMMITTEE),
    Kind("household.register", HouseholdRegister(), _COMMITTEE_AND_GRID),
    Kind("household.update", HouseholdUpdate(), _COMMITTEE_AND_GRID),
    Kind("rule.publish", RulePublish(), _COMMITTEE),
    Kind("rule.retire", RuleRetire(), _COMMITTEE),
    Kind("points.award", _POINTS, _COMMITTEE_AND_GRID, moves_points=True, files=("evidence",)),
    Kind("points.deduct", _POINTS, _COMMITTEE_AND_GRID, moves_points=True, files=("evidence",)),
    Kind("points.redeem", PointsRedeem(), _COMMITTEE_AND_GRID, moves_points=True),
    Kind("points.reverse", PointsReverse(), frozenset({"committee", "supervisor"}), moves_points=True,
         refers_to="entry"),
    Kind("affair.publish", AffairPublish(), _COMMITTEE, files=("attachments",)),
    Kind("complaint.receipt", ComplaintReceipt(), frozenset({"intake"}), refers_to="receipt"),
    Kind("complaint.step", ComplaintStep(), SIGNING_ROLES),
)
KIND_NAMES = tuple(KINDS)
POINT_KINDS = tuple(name for name, kind in KINDS.items() if kind.moves_points)
