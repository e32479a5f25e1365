"""Specification of ``ledger.entries`` and ``ledger.canonical``: the schema of every entry kind, the
canonical leaf bytes, the signing message, and the household commitment."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import FrozenInstanceError, fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kit import EVIDENCE, Kit

from ledger.canonical import MAX_SAFE_INTEGER, b64encode, canonical_json, parse_canonical, parse_json
from ledger.entries import (
    SIGNING_DOMAIN,
    Entry,
    check_signatures,
    complaint_commitment,
    decode_leaf,
    household_commitment,
    parse_entry,
    signing_message,
    step_commitment,
)
from ledger.errors import BadSignature, EncodingError, MalformedEntry
from ledger.formats import MAX_AMOUNT
from ledger.kinds import KIND_NAMES as KINDS

Wire = dict[str, Any]

SHA = "ab" * 32
RECEIPT = "0123456789abcdef" * 2
NON_CANONICAL_KEY = "A" * 42 + "B="  # 43 base64 digits whose last one sets bits beyond the 32 bytes
NON_CANONICAL_SIG = "A" * 85 + "B=="


@pytest.fixture
def award_wire(kit: Kit) -> Wire:
    """The wire form of a valid signed award (amount 5), to be broken by each test."""
    return kit.award(amount=5).to_wire()


@pytest.fixture
def cosigned(kit: Kit) -> Entry:
    return kit.award("h1", by="chen", cosigner="founder")


def refusal(wire: Any) -> MalformedEntry:
    """The MalformedEntry that ``parse_entry`` raises for ``wire``."""
    with pytest.raises(MalformedEntry) as caught:
        parse_entry(wire)
    return caught.value


# A valid body of every kind ------------------------------------------------------------------------------

AFFAIR = {
    "affair": "road-2026",
    "category": "finance",
    "title": "村道修缮付款",
    "text": "第一期工程款",
    "date": "2026-03-01",
    "finance": {"direction": "expense", "amount_fen": 1_250_000, "counterparty": "建德路桥"},
    "attachments": [{"name": "发票 1.jpg", "sha256": SHA, "media_type": "image/jpeg", "size": 48213}],
}

VALID_BODIES: dict[str, Callable[[Kit], dict[str, Any]]] = {
    "member.add": lambda kit: {
        "member": "newbie",
        "name": "新人",
        "roles": ["supervisor", "intake"],
        "key": kit.key_b64("stranger"),
    },
    "member.role": lambda kit: {"member": "grid1", "roles": ["grid_worker"], "grid": "g2"},
    "key.add": lambda kit: {"member": "supervisor", "key": kit.key_b64("stranger")},
    "key.revoke": lambda kit: {"key": kit.key_b64("grid1"), "reason": "手机丢失"},
    "grid.define": lambda kit: {"grid": "g3", "name": "三组", "name_en": "Group 3"},
    "household.register": lambda kit: {
        **kit.household_body("h4", "g1"),
        "public": {"label": "4号", "group": "一组", "lead_household": True},
    },
    "household.update": lambda kit: {"household": "h2", "number": "g1-22"},
    "rule.publish": lambda kit: {
        "rule": "M-09",
        "title_zh": "孝老爱亲",
        "title_en": "Caring for elders",
        "ledger": "morality",
        "direction": "award",
        "min": 1,
        "max": 3,
        "evidence_required": False,
        "description": "照顾老人",
    },
    "rule.retire": lambda kit: {"rule": "M-01", "reason": "细则修订"},
    "points.award": lambda kit: {
        "household": "h2",
        "rule": "M-05",
        "amount": 50,
        "reason": "救人",
        "evidence": [EVIDENCE],
    },
    "points.deduct": lambda kit: {"household": "h2", "rule": "D-01", "amount": 5, "reason": "乱堆乱放"},
    "points.redeem": lambda kit: {"household": "h2", "amount": 3, "item": "洗衣粉", "quantity": 1},
    "points.reverse": lambda kit: {"entry": "f" * 32, "reason": "录入错误", "case": RECEIPT},
    "affair.publish": lambda kit: AFFAIR,
    "complaint.receipt": lambda kit: {"receipt": RECEIPT, "commitment": SHA, "route": "grid", "grid": "g1"},
    "complaint.step": lambda kit: {"receipt": RECEIPT, "step": "reply", "commitment": SHA},
}


def valid_entry(kit: Kit, kind: str) -> Entry:
    return kit.genesis() if kind == "village.genesis" else kit.sign(kind, VALID_BODIES[kind](kit))


def test_every_kind_has_a_valid_example() -> None:
    assert set(VALID_BODIES) | {"village.genesis"} == set(KINDS), "the table below covers every kind"


@pytest.mark.parametrize("kind", KINDS)
def test_a_valid_entry_of_every_kind_parses(kit: Kit, kind: str) -> None:
    entry = valid_entry(kit, kind)
    again = parse_entry(json.loads(entry.leaf))
    assert again == entry, "the wire form parses back to the same entry"
    assert again.kind == kind and again.author == kit.public("founder")
    assert again.cosigner == (kit.public("township") if kind == "village.genesis" else None), "the township co-founds"
    assert decode_leaf(entry.leaf) == entry, "the leaf bytes decode to the same entry"
    assert parse_canonical(entry.leaf) == entry.to_wire(), "the leaf is the canonical form of the wire form"
    assert entry.leaf == canonical_json(entry.to_wire()), "the fast path writes exactly what rfc8785 writes"
    check_signatures(entry)


def test_a_parsed_entry_is_the_entry_its_constructor_builds(cosigned: Entry) -> None:
    """``parse_entry`` builds entries without ``Entry.__init__``: every field set, nothing else."""
    entry = decode_leaf(cosigned.leaf)
    assert vars(entry).keys() == {f.name for f in fields(Entry)}
    assert entry == Entry(**vars(entry)) == cosigned
    with pytest.raises(FrozenInstanceError):
        entry.kind = "points.award"  # type: ignore[misc]


def test_a_cosigned_entry_names_both_signers(cosigned: Entry, kit: Kit) -> None:
    assert cosigned.signers == (kit.public("chen"), kit.public("founder")), "author first, then cosigner"
    assert [s["key"] for s in cosigned.to_wire()["signatures"]] == [
        kit.key_b64("chen"),
        kit.key_b64("founder"),
    ]
    check_signatures(cosigned)


# Malformed entries name the field ------------------------------------------------------------------------


def _parent(document: Any, path: str) -> tuple[Any, Any]:
    """The container of the last step of dotted ``path`` (list steps are numbers), and that step."""
    *parents, last = path.split(".")
    for step in parents:
        document = document[int(step) if isinstance(document, list) else step]
    return document, int(last) if isinstance(document, list) else last


def _set(path: str, value: Any) -> Callable[[Any], None]:
    def mutate(document: Any) -> None:
        container, step = _parent(document, path)
        container[step] = value

    return mutate


def _delete(path: str) -> Callable[[Any], None]:
    def mutate(document: Any) -> None:
        container, step = _parent(document, path)
        del container[step]

    return mutate


RANGE = "Must be greater than or equal to 1 and less than or equal to 1000000"

MALFORMED_AWARDS = [
    pytest.param(
        _set("entry.kind", "points.steal"), "entry.kind", "Must be one of: village.genesis", id="unknown kind"
    ),
    pytest.param(_set("entry.v", 2), "entry.v", "Must be equal to 1", id="schema version 2"),
    pytest.param(
        _delete("entry.body.amount"),
        "entry.body.amount",
        "Missing data for required field",
        id="missing amount",
    ),
    pytest.param(
        _delete("entry.author"), "entry.author", "Missing data for required field", id="missing author"
    ),
    pytest.param(_set("entry.body.bonus", 1), "entry.body.bonus", "Unknown field", id="extra body field"),
    pytest.param(_set("entry.note", "x"), "entry.note", "Unknown field", id="extra envelope field"),
    pytest.param(_set("comment", "x"), "comment", "Unknown field", id="extra top-level field"),
    pytest.param(
        _set("entry.body.amount", "5"), "entry.body.amount", "Not a valid integer", id="amount as string"
    ),
    pytest.param(
        _set("entry.body.amount", True), "entry.body.amount", "Not a valid integer", id="amount as bool"
    ),
    pytest.param(
        _set("entry.body.amount", 5.0), "entry.body.amount", "Not a valid integer", id="amount as float"
    ),
    pytest.param(_set("entry.body.amount", 0), "entry.body.amount", RANGE, id="amount 0"),
    pytest.param(_set("entry.body.amount", -5), "entry.body.amount", RANGE, id="negative amount"),
    pytest.param(
        _set("entry.body.amount", MAX_AMOUNT + 1), "entry.body.amount", RANGE, id="amount over MAX_AMOUNT"
    ),
    pytest.param(
        _set("entry.body.household", "H1"),
        "entry.body.household",
        "must be an id of lowercase",
        id="household id",
    ),
    pytest.param(
        _set("entry.body.household", "h" * 65),
        "entry.body.household",
        "must be an id",
        id="household id too long",
    ),
    pytest.param(_set("entry.body.rule", "m-01"), "entry.body.rule", "must be a rule code", id="rule code"),
    pytest.param(_set("entry.id", "0" * 31), "entry.id", "must be an entry id", id="short entry id"),
    pytest.param(_set("entry.id", "A" * 32), "entry.id", "must be an entry id", id="uppercase entry id"),
    pytest.param(
        _set("entry.village", "Test Village"), "entry.village", "must be a village slug", id="village slug"
    ),
    pytest.param(
        _set("entry.author", "not a key"),
        "entry.author",
        "must be a canonical base64 Ed25519 public key (32 bytes)",
        id="author",
    ),
    pytest.param(
        _set("entry.body.evidence", ["abc"]), "entry.body.evidence.0", "must be a SHA-256", id="evidence hash"
    ),
    pytest.param(
        _set("entry.body.reason", "   "), "entry.body.reason", "must not be blank", id="blank reason"
    ),
    pytest.param(
        _set("entry.body.reason", "a\x00b"), "entry.body.reason", "must not contain control", id="NUL in text"
    ),
    pytest.param(
        _set("entry.time", "2026-02-30T00:00:00Z"), "entry.time", "not a real calendar date", id="30 February"
    ),
    pytest.param(
        _set("entry.time", "2026-01-01T24:00:00Z"), "entry.time", "not a real calendar date", id="hour 24"
    ),
    pytest.param(
        _set("entry.time", "2026-01-01 08:30:00"),
        "entry.time",
        "must be a UTC time",
        id="time without T and Z",
    ),
    pytest.param(
        _set("entry.time", "2026-01-01T08:30:00+08:00"),
        "entry.time",
        "must be a UTC time",
        id="time with offset",
    ),
    pytest.param(_set("entry.body", []), "entry.body", "Not a valid mapping type", id="body not an object"),
    pytest.param(_set("entry", "x"), "entry", "Not a valid mapping type", id="entry not an object"),
    pytest.param(_set("signatures", []), "signatures", "Length must be between 1 and 2", id="no signature"),
    # Every pattern matches the whole string: "$" would let a trailing newline through (data model 4.1).
    pytest.param(
        _set("entry.body.household", "h2\n"), "entry.body.household", "must be an id", id="id + newline"
    ),
    pytest.param(
        _set("entry.id", "0" * 32 + "\n"), "entry.id", "must be an entry id", id="entry id + newline"
    ),
    pytest.param(
        _set("entry.body.rule", "M-01\n"), "entry.body.rule", "must be a rule code", id="rule + newline"
    ),
    pytest.param(
        _set("entry.village", "testvillage\n"), "entry.village", "must be a village slug", id="slug + newline"
    ),
    pytest.param(
        _set("entry.body.evidence", [EVIDENCE + "\n"]),
        "entry.body.evidence.0",
        "must be a SHA-256",
        id="hash + newline",
    ),
    pytest.param(
        _set("entry.time", "2026-01-01T00:00:00Z\n"), "entry.time", "must be a UTC time", id="time + newline"
    ),
    pytest.param(
        _set("entry.time", "\uff12\uff10\uff12\uff16-01-01T00:00:00Z"),
        "entry.time",
        "must be a UTC time",
        id="fullwidth digits",
    ),
    pytest.param(
        _set("entry.time", "2026-12-31T23:59:60Z"), "entry.time", "not a real calendar date", id="leap second"
    ),
    pytest.param(
        _set("entry.body.reason", "a\x85b"), "entry.body.reason", "must not contain control", id="C1 control"
    ),
    pytest.param(
        _set("entry.body.reason", "a\x7fb"), "entry.body.reason", "must not contain control", id="DEL"
    ),
]


@pytest.mark.parametrize(("mutate", "field", "message"), MALFORMED_AWARDS)
def test_a_malformed_award_is_refused_naming_the_field(
    award_wire: Wire, mutate: Callable[[Wire], None], field: str, message: str
) -> None:
    mutate(award_wire)
    error = refusal(award_wire)
    assert error.field == field, "the error names the offending field"
    assert str(error).startswith(f"{field}: ") and message in str(error)


def test_a_wire_entry_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(MalformedEntry, match="^entry: must be a JSON object$"):
        parse_entry([])


def test_the_cosigner_must_differ_from_the_author(award_wire: Wire, kit: Kit) -> None:
    award_wire["entry"]["cosigner"] = kit.key_b64("founder")
    award_wire["signatures"] *= 2
    error = refusal(award_wire)
    assert (error.field, str(error)) == (
        "entry.cosigner",
        "entry.cosigner: must be a different key from the author",
    )


def test_signatures_in_the_wrong_order_are_refused(cosigned: Entry) -> None:
    wire = cosigned.to_wire()
    wire["signatures"].reverse()
    with pytest.raises(
        MalformedEntry, match="^signatures: expected 2 signature.s. by the author then the cosigner"
    ):
        parse_entry(wire)


def test_a_missing_cosignature_is_refused(cosigned: Entry) -> None:
    wire = cosigned.to_wire()
    del wire["signatures"][1]
    with pytest.raises(
        MalformedEntry, match="expected 2 signature.s. by the author then the cosigner, got 1"
    ):
        parse_entry(wire)


def test_a_signature_by_a_key_that_is_not_a_signer_is_refused(award_wire: Wire, kit: Kit) -> None:
    award_wire["signatures"][0]["key"] = kit.key_b64("stranger")
    with pytest.raises(
        MalformedEntry, match="^signatures: expected 1 signature.s. by the author, got 1 by other"
    ):
        parse_entry(award_wire)


def test_three_signatures_are_refused(cosigned: Entry) -> None:
    wire = cosigned.to_wire()
    wire["signatures"].append(wire["signatures"][0])
    with pytest.raises(MalformedEntry, match="^signatures: Length must be between 1 and 2"):
        parse_entry(wire)


KEY_MESSAGE = "must be a canonical base64 Ed25519 public key (32 bytes)"
SIG_MESSAGE = "must be a canonical base64 Ed25519 signature (64 bytes)"


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        pytest.param(_set("entry.author", NON_CANONICAL_KEY), "entry.author", KEY_MESSAGE, id="author"),
        pytest.param(
            _set("signatures.0.key", NON_CANONICAL_KEY), "signatures.0.key", KEY_MESSAGE, id="signer"
        ),
        pytest.param(
            _set("signatures.0.sig", NON_CANONICAL_SIG), "signatures.0.sig", SIG_MESSAGE, id="signature"
        ),
        pytest.param(
            _set("signatures.0.sig", "A" * 86), "signatures.0.sig", SIG_MESSAGE, id="unpadded signature"
        ),
    ],
)
def test_non_canonical_base64_is_a_malformed_entry(
    award_wire: Wire, mutate: Callable[[Wire], None], field: str, message: str
) -> None:
    # Two spellings of one key would give two leaves for one signed statement (data model section 2).
    mutate(award_wire)
    error = refusal(award_wire)
    assert (error.field, str(error)) == (field, f"{field}: {message}")


@pytest.mark.parametrize("kind", ["key.add", "member.add", "key.revoke"])
def test_a_non_canonical_key_in_a_body_is_a_malformed_entry(kit: Kit, kind: str) -> None:
    body = {**VALID_BODIES[kind](kit), "key": NON_CANONICAL_KEY}
    with pytest.raises(MalformedEntry, match=f"^entry.body.key: {re.escape(KEY_MESSAGE)}$") as caught:
        kit.sign(kind, body)
    assert caught.value.field == "entry.body.key"


@pytest.mark.parametrize(
    ("kind", "field"),
    [("rule.publish", "evidence_required"), ("household.register", "public.lead_household")],
)
@pytest.mark.parametrize("number", [1, 0])
def test_a_boolean_given_as_a_number_is_refused(kit: Kit, kind: str, field: str, number: int) -> None:
    body = copy.deepcopy(VALID_BODIES[kind](kit))
    _set(field, number)(body)
    with pytest.raises(MalformedEntry, match="Not a valid boolean") as caught:
        kit.sign(kind, body)
    assert caught.value.field == f"entry.body.{field}"


# Kinds with rules of their own ---------------------------------------------------------------------------


RULE = {
    "rule": "M-09",
    "title_zh": "孝老爱亲",
    "title_en": "Caring for elders",
    "ledger": "morality",
    "direction": "award",
    "evidence_required": False,
}


@pytest.mark.parametrize(
    ("amounts", "field", "message"),
    [
        pytest.param(
            {"amount": 5, "min": 1, "max": 9},
            "amount",
            "give either a fixed amount or min and max, not both",
            id="both",
        ),
        pytest.param({}, "amount", "is required unless both min and max are given", id="neither"),
        pytest.param({"min": 1}, "amount", "is required unless both min and max are given", id="min only"),
        pytest.param({"max": 9}, "amount", "is required unless both min and max are given", id="max only"),
        pytest.param({"min": 4, "max": 3}, "min", r"must not exceed max \(3\)", id="min above max"),
        pytest.param({"min": 0, "max": 3}, "min", "Must be greater than or equal to 1", id="min 0"),
    ],
)
def test_a_rule_has_a_fixed_amount_or_bounds(
    kit: Kit, amounts: dict[str, int], field: str, message: str
) -> None:
    with pytest.raises(MalformedEntry, match=f"^entry.body.{field}: {message}") as caught:
        kit.sign("rule.publish", {**RULE, **amounts})
    assert caught.value.field == f"entry.body.{field}"


@pytest.mark.parametrize(
    "amounts",
    [{"amount": 5}, {"min": 1, "max": 9}, {"min": 3, "max": 3}],
    ids=["fixed", "bounded", "min equals max"],
)
def test_a_rule_with_a_fixed_amount_or_bounds_parses(kit: Kit, amounts: dict[str, int]) -> None:
    assert kit.sign("rule.publish", {**RULE, **amounts}).body == {**RULE, **amounts}


DECISION = {"meeting": "村民代表大会", "outcome": "通过", "votes_for": 31, "votes_against": 2}
PROJECT = {"budget_fen": 5_000_000, "contractor": "建德路桥", "progress": 40, "status": "ongoing"}


@pytest.mark.parametrize(
    ("category", "details", "field", "message"),
    [
        pytest.param("finance", {}, "finance", "is required for a finance record", id="finance missing"),
        pytest.param("decision", {}, "decision", "is required for a decision record", id="decision missing"),
        pytest.param(
            "project",
            {"project": {**PROJECT, "progress": 101}},
            "project.progress",
            "Must be greater than or equal to 0 and less than or equal to 100",
            id="project progress 101",
        ),
        pytest.param(
            "decision",
            {"decision": DECISION, "project": PROJECT},
            "project",
            "is only for a project record",
            id="project details on a decision",
        ),
    ],
)
def test_affair_details_match_the_category(
    kit: Kit, category: str, details: dict[str, Any], field: str, message: str
) -> None:
    base = {key: value for key, value in AFFAIR.items() if key not in ("finance", "attachments")}
    with pytest.raises(MalformedEntry, match=f"^entry.body.{field}: {message}"):
        kit.sign("affair.publish", {**base, "category": category, **details})


def test_an_affair_date_must_be_real(kit: Kit) -> None:
    with pytest.raises(MalformedEntry, match="^entry.body.date: is not a real calendar date"):
        kit.sign("affair.publish", {**AFFAIR, "date": "2026-02-29"})


@pytest.mark.parametrize("personal", ["phone", "name", "id_number", "address"])
def test_household_public_data_has_no_room_for_personal_data(kit: Kit, personal: str) -> None:
    body = kit.household_body("h4", "g1")
    body["public"] = {"label": "4号", personal: "13812345678"}
    with pytest.raises(MalformedEntry, match=f"^entry.body.public.{personal}: Unknown field"):
        kit.sign("household.register", body)
    with pytest.raises(MalformedEntry, match=f"^entry.body.public.{personal}: Unknown field"):
        kit.sign("household.update", {"household": "h2", "public": body["public"]})


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "/etc/passwd",
        ".hidden",
        "..",
        "a/b.jpg",
        "a\\b.jpg",
        "",
        "a\nb",
        "a.jpg\n",
        "a\x85.jpg",
        pytest.param("x" * 129, id="129 characters"),
    ],
)
def test_attachment_names_cannot_leave_their_folder(kit: Kit, name: str) -> None:
    attachment = {"name": name, "sha256": SHA, "media_type": "image/jpeg", "size": 1}
    with pytest.raises(MalformedEntry, match="^entry.body.attachments.0.name: must be a file name") as caught:
        kit.sign("affair.publish", {**AFFAIR, "attachments": [attachment]})
    assert caught.value.field == "entry.body.attachments.0.name"


@pytest.mark.parametrize("name", ["发票 1.jpg", "report.v2.pdf", "a..b"])
def test_ordinary_attachment_names_are_accepted(kit: Kit, name: str) -> None:
    attachment = {"name": name, "sha256": SHA, "media_type": "application/pdf", "size": 0}
    assert (
        kit.sign("affair.publish", {**AFFAIR, "attachments": [attachment]}).body["attachments"][0]["name"]
        == name
    )


def test_a_grid_worker_needs_a_grid_and_only_grid_workers_have_one(kit: Kit) -> None:
    body = {"member": "newbie", "name": "新人", "key": kit.key_b64("stranger")}
    with pytest.raises(MalformedEntry, match="^entry.body.grid: is required for a grid worker"):
        kit.sign("member.add", {**body, "roles": ["grid_worker"]})
    with pytest.raises(MalformedEntry, match="^entry.body.grid: is only for grid workers"):
        kit.sign("member.add", {**body, "roles": ["supervisor"], "grid": "g1"})
    with pytest.raises(MalformedEntry, match="^entry.body.roles: must not repeat a role"):
        kit.sign("member.add", {**body, "roles": ["supervisor", "supervisor"]})


def test_a_household_update_must_change_something(kit: Kit) -> None:
    with pytest.raises(MalformedEntry, match="^entry.body.household: must change at least one of"):
        kit.sign("household.update", {"household": "h2"})


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param({"route": "grid"}, "entry.body.grid: is required when the route is grid", id="grid route, no grid"),
        pytest.param({"route": "supervision", "grid": "g1"}, "entry.body.grid: is only for the grid route",
                     id="grid on another route"),
        pytest.param({"route": "mayor"}, "entry.body.route: Must be one of", id="unknown route"),
    ],
)
def test_a_complaint_receipt_names_its_route(kit: Kit, body: dict[str, Any], problem: str) -> None:
    with pytest.raises(MalformedEntry, match=f"^{re.escape(problem)}"):
        kit.sign("complaint.receipt", {"receipt": RECEIPT, "commitment": SHA, **body}, by="intake")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param({"step": "assign"}, "entry.body.assignee: is required for the assign step", id="assign, nobody"),
        pytest.param({"step": "reply"}, "entry.body.commitment: is required for the reply step", id="empty reply"),
        pytest.param({"step": "rate", "rating": "satisfied"}, "entry.body.resolved: is required for the rate step",
                     id="rating without resolved"),
        pytest.param({"step": "escalate"}, "entry.body.reason: is required for the escalate step", id="escalate, no reason"),
        pytest.param({"step": "accept", "rating": "satisfied"}, "entry.body.rating: is not part of the accept step",
                     id="rating on accept"),
        pytest.param({"step": "escalate", "reason": "bored"}, "entry.body.reason: Must be one of", id="unknown reason"),
        pytest.param({"step": "delete"}, "entry.body.step: Must be one of", id="no delete step"),
    ],
)
def test_a_complaint_step_carries_exactly_its_fields(kit: Kit, body: dict[str, Any], problem: str) -> None:
    with pytest.raises(MalformedEntry, match=f"^{re.escape(problem)}"):
        kit.sign("complaint.step", {"receipt": RECEIPT, **body}, by="intake")


# Leaf bytes: strict JSON in canonical form ---------------------------------------------------------------


@pytest.fixture
def leaf(kit: Kit) -> bytes:
    leaf = kit.award(amount=5).leaf
    assert b'"amount":5,' in leaf
    return leaf


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda b: b.replace(b'"amount":5,', b'"amount":5.0,'),
            "non-integer number 5.0 is not allowed",
            id="amount 5.0",
        ),
        pytest.param(
            lambda b: b.replace(b'"amount":5,', b'"amount":5e0,'), "non-integer number 5e0", id="amount 5e0"
        ),
        pytest.param(
            lambda b: b.replace(b'"amount":5,', b'"amount":NaN,'),
            "JSON constant NaN is not allowed",
            id="NaN",
        ),
        pytest.param(
            lambda b: b.replace(b'"amount":5,', b'"amount":Infinity,'),
            "JSON constant Infinity",
            id="Infinity",
        ),
        pytest.param(
            lambda b: b.replace(b'"amount":5,', b'"amount":5,"amount":50,'),
            "duplicate JSON member 'amount'",
            id="duplicate key",
        ),
        pytest.param(
            lambda b: b.replace("垃圾".encode(), b"\xff\xfe"),
            "not UTF-8: invalid start byte",
            id="invalid UTF-8",
        ),
        pytest.param(
            lambda b: b.replace("垃圾".encode(), b"\xed\xa0\x80"), "not UTF-8", id="UTF-8 of a surrogate"
        ),
        pytest.param(lambda b: b[:-1], "malformed JSON", id="truncated"),
        pytest.param(lambda b: b + b"{}", "malformed JSON: Extra data", id="trailing data"),
    ],
)
def test_a_leaf_must_be_strict_json(leaf: bytes, change: Callable[[bytes], bytes], message: str) -> None:
    with pytest.raises(EncodingError, match=message):
        decode_leaf(change(leaf))


@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param(
            lambda w: json.dumps(w, ensure_ascii=False, separators=(",", ":")).encode(), id="keys unsorted"
        ),
        pytest.param(lambda w: json.dumps(w, sort_keys=True, ensure_ascii=False).encode(), id="spaces"),
        pytest.param(
            lambda w: json.dumps(w, sort_keys=True, separators=(",", ":")).encode(), id="escaped non-ASCII"
        ),
        pytest.param(lambda w: canonical_json(w) + b"\n", id="trailing newline"),
    ],
)
def test_a_leaf_that_is_not_canonical_is_refused(kit: Kit, rewrite: Callable[[Wire], bytes]) -> None:
    entry = kit.award(amount=5)
    data = rewrite(entry.to_wire())
    assert data != entry.leaf and parse_json(data) == entry.to_wire(), "same JSON value, other bytes"
    with pytest.raises(EncodingError, match="^leaf bytes are not the RFC 8785 canonical form of the entry$"):
        decode_leaf(data)


def test_a_lone_surrogate_cannot_be_canonicalised(leaf: bytes) -> None:
    with pytest.raises(EncodingError, match="cannot be canonicalised"):
        decode_leaf(leaf.replace("垃圾".encode(), b"\\ud800"))


def test_a_leaf_over_the_size_limit_is_refused(kit: Kit) -> None:
    entry = kit.sign(
        "affair.publish",
        {
            **AFFAIR,
            "text": "长" * 5000,
            "attachments": [{**AFFAIR["attachments"][0], "name": f"{i:03d}" + "x" * 125} for i in range(20)],
        },
    )
    assert len(entry.leaf) < 64 * 1024, "the largest valid affair still fits"
    with pytest.raises(MalformedEntry, match=r"^entry: \d+ bytes, at most 65535$"):
        decode_leaf(entry.leaf + b" " * (64 * 1024))


# Signatures ----------------------------------------------------------------------------------------------


def test_a_changed_body_breaks_the_signature(kit: Kit, award_wire: Wire) -> None:
    award_wire["entry"]["body"]["amount"] = 6
    entry = parse_entry(award_wire)
    with pytest.raises(
        BadSignature,
        match=f"^signature by the author key {re.escape(kit.key_b64('founder'))} does not verify$",
    ):
        check_signatures(entry)


def test_a_signature_by_the_wrong_key_does_not_verify(kit: Kit, award_wire: Wire) -> None:
    message = signing_message(award_wire["entry"])
    award_wire["signatures"][0]["sig"] = b64encode(kit.keys["stranger"].sign(message))
    with pytest.raises(BadSignature, match="^signature by the author key .* does not verify$"):
        check_signatures(parse_entry(award_wire))


def test_a_cosignature_by_the_wrong_key_does_not_verify(kit: Kit, cosigned: Entry) -> None:
    wire = cosigned.to_wire()
    wire["signatures"][1]["sig"] = b64encode(kit.keys["secretary"].sign(signing_message(wire["entry"])))
    with pytest.raises(
        BadSignature,
        match=f"^signature by the cosigner key {re.escape(kit.key_b64('founder'))} does not verify$",
    ):
        check_signatures(parse_entry(wire))


def test_a_missing_cosignature_does_not_verify(cosigned: Entry) -> None:
    # An Entry made by hand rather than by parse_entry: check_signatures must still check every signer.
    with pytest.raises(BadSignature, match="cosigner"):
        check_signatures(replace(cosigned, signatures=cosigned.signatures[:1]))


def test_the_signing_message_is_domain_separated(kit: Kit, award_wire: Wire) -> None:
    unsigned = award_wire["entry"]
    assert SIGNING_DOMAIN == b"villageledger/entry/v1\n"
    assert signing_message(unsigned) == b"villageledger/entry/v1\n" + canonical_json(unsigned)
    award_wire["signatures"][0]["sig"] = b64encode(kit.keys["founder"].sign(canonical_json(unsigned)))
    with pytest.raises(BadSignature, match="^signature by the author key .* does not verify$"):
        check_signatures(parse_entry(award_wire))


# Household commitments -----------------------------------------------------------------------------------


PERSONAL = {"head": "王小明", "phone": "13812345678", "address": "新安江街道 12 号"}


def test_a_household_commitment_depends_on_salt_and_data() -> None:
    salt = bytes(range(16))
    commitment = household_commitment(salt, PERSONAL)
    assert len(commitment) == 64 and commitment == commitment.lower()
    assert household_commitment(salt, dict(reversed(PERSONAL.items()))) == commitment, (
        "key order is irrelevant"
    )
    assert household_commitment(bytes(range(1, 17)), PERSONAL) != commitment, (
        "another salt, another commitment"
    )
    assert household_commitment(salt, {**PERSONAL, "phone": "13812345679"}) != commitment


def test_commitments_are_domain_separated() -> None:
    salt = bytes(range(16))
    made = {household_commitment(salt, PERSONAL), complaint_commitment(salt, PERSONAL), step_commitment(salt, PERSONAL)}
    assert len(made) == 3, "the same data committed for another purpose gives another commitment"


@pytest.mark.parametrize("size", [0, 8, 15])
def test_a_household_commitment_refuses_a_short_salt(size: int) -> None:
    with pytest.raises(ValueError, match="^salt must be at least 16 bytes$"):
        household_commitment(b"s" * size, PERSONAL)


# Canonical JSON (RFC 8785) -------------------------------------------------------------------------------

safe_integers = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
unicode_text = st.text(
    st.characters(exclude_categories=["Cs"]), max_size=12
)  # non-BMP included, no lone surrogates
json_values = st.recursive(
    st.none() | st.booleans() | safe_integers | unicode_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(unicode_text, children, max_size=4),
    max_leaves=12,
)
FAST = settings(max_examples=60, deadline=None)


@FAST
@given(value=json_values)
def test_canonical_bytes_round_trip(value: Any) -> None:
    data = canonical_json(value)
    assert parse_canonical(data) == value
    assert canonical_json(parse_canonical(data)) == data


@FAST
@given(members=st.dictionaries(unicode_text, safe_integers, min_size=1, max_size=8), data=st.data())
def test_canonical_bytes_do_not_depend_on_key_order(members: dict[str, int], data: st.DataObject) -> None:
    shuffled = dict(data.draw(st.permutations(list(members.items()))))
    assert canonical_json(shuffled) == canonical_json(members)


@FAST
@given(members=st.dictionaries(unicode_text, st.none(), min_size=2, max_size=8))
def test_canonical_keys_are_sorted_by_utf16_code_units(members: dict[str, None]) -> None:
    order = list(parse_canonical(canonical_json(members)))
    assert order == sorted(members, key=lambda key: key.encode("utf-16-be")), "RFC 8785 section 3.2.3"


def test_utf16_key_order_differs_from_code_point_order() -> None:
    # U+1F600 is the surrogate pair D83D DE00 in UTF-16, which sorts before U+FFFF; by code point it is after.
    assert (
        canonical_json({"\uffff": 1, "\U0001f600": 2, "a": 3}) == '{"a":3,"\U0001f600":2,"\uffff":1}'.encode()
    )


@FAST
@given(text=unicode_text)
def test_strings_are_utf8_not_escaped(text: str) -> None:
    data = canonical_json(text)
    assert parse_canonical(data) == text
    assert all(ch.encode() in data for ch in text if ord(ch) >= 0x80), "non-ASCII is written as UTF-8"


@FAST
@given(number=safe_integers)
def test_integers_up_to_2_53_minus_1_are_canonical(number: int) -> None:
    assert canonical_json(number) == str(number).encode()
    assert parse_canonical(str(number).encode()) == number


@FAST
@given(number=st.integers(min_value=MAX_SAFE_INTEGER + 1) | st.integers(max_value=-MAX_SAFE_INTEGER - 1))
def test_integers_beyond_2_53_minus_1_are_refused(number: int) -> None:
    with pytest.raises(EncodingError, match="cannot be canonicalised"):
        canonical_json(number)
    with pytest.raises(EncodingError, match="cannot be canonicalised"):
        parse_canonical(str(number).encode())


@FAST
@given(value=json_values, padding=st.sampled_from([b" ", b"\n", b"\t"]))
def test_canonical_parsing_refuses_other_spellings(value: Any, padding: bytes) -> None:
    with pytest.raises(EncodingError, match="^bytes are not RFC 8785 canonical JSON$"):
        parse_canonical(padding + canonical_json(value))


@given(reason=st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and t.isprintable()))
@settings(max_examples=50, deadline=None)
def test_the_signing_message_sliced_from_the_leaf_is_the_canonical_entry(reason: str) -> None:
    entry = Kit().award("h2", 3, reason=reason)
    assert entry.message == signing_message(entry.unsigned)


@given(reason=st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60))
@settings(max_examples=200, deadline=None)
def test_entries_are_written_exactly_as_rfc8785_writes_them(reason: str) -> None:
    """The leaf comes from ``canonical_json_of_checked`` (Python's json); the reference is rfc8785."""
    try:
        entry = Kit().award("h2", 3, reason=reason)
    except MalformedEntry:
        return  # blank, or control characters the schema refuses
    assert entry.leaf == canonical_json(entry.to_wire())
