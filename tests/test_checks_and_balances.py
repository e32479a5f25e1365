"""Checks and balances through the server, on both databases: what a committee member with a valid key
tried (see the issue "the committee can never supervise itself") is refused on every append path with a
problem naming the rule, and writes nothing; entries are dated by the server's clock; a household that
spoke up is protected; the desk is replaced without a day without a desk; one bad case blocks nobody;
no request body, however large its numbers, answers 500.

The ledger's side of each rule is specified in test_state.py ("Rules 2"), and the verifier's in
test_verify.py ("A server that logs what the checks and balances forbid").
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from kit import Kit, StoredVillage

from ledger.canonical import b64encode
from ledger.entries import Entry, decode_leaf, format_time
from storage import complaints, plates

BASE = "/api/v1/villages/testvillage"


@pytest.fixture
def kit(request: pytest.FixtureRequest) -> Kit:
    """The test village's kit: rules 2, or the rules given by indirect parametrization."""
    return Kit(rules=getattr(request, "param", 2))


def post(client: FlaskClient, *entries: Entry) -> Any:
    return client.post(f"{BASE}/entries", json={"entries": [e.to_wire() for e in entries]})


def refused_naming(response: Any, status: int, rule: str, field: str) -> None:
    assert response.status_code == status, response.json
    (error,) = response.json["errors"]
    assert error["field"] == field and rule in error["problem"], response.json


def file(client: FlaskClient, category: str = "finances", **form: Any) -> Any:
    response = client.post(f"{BASE}/complaints", data={"category": category, "text": "村道硬化工程账目不公开", **form},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json


OVERSTEPS: dict[str, tuple[Callable[[Kit], Entry], int, str, str]] = {
    "she makes herself supervisor": (lambda kit: kit.sign(
        "member.role", {"member": "secretary", "roles": ["committee", "supervisor"]}, by="secretary"),
        403, "rule 2 (appointments)", "entry.body.roles"),
    "she silences the supervisor": (lambda kit: kit.sign(
        "member.role", {"member": "supervisor", "roles": []}, by="secretary"), 403, "rule 2 (appointments)", "entry.body.roles"),
    "she switches the desk off": (lambda kit: kit.sign(
        "key.revoke", {"key": kit.key_b64("intake"), "reason": "关闭"}, by="secretary"),
        403, "rule 2 (appointments)", "entry.body.key"),
    "she gives herself the desk's role": (lambda kit: kit.sign(
        "member.role", {"member": "secretary", "roles": ["intake"]}, by="secretary"), 403, "rule 2 (appointments)", "entry.body.roles"),
    "a second self cosigns for his household": (lambda kit: kit.sign(
        "points.award", {"household": "h1", "rule": "M-01", "amount": 5, "reason": "x"}, by="chen", cosigner="chen-2"),
        403, "rule 2 (independent cosigner)", "entry.cosigner"),
    "a deduction rule nobody approved": (lambda kit: kit.sign("rule.publish", {
        "rule": "D-09", "title_zh": "越级反映", "title_en": "Going over heads", "ledger": "morality",
        "direction": "deduct", "amount": 5, "evidence_required": False}, by="secretary"), 403, "rule 2 (approval)", "entry.cosigner"),
    "an award dated 2099": (lambda kit: kit.sign(
        "points.award", {"household": "h2", "rule": "M-01", "amount": 5, "reason": "x"}, time="2099-01-01T00:00:00Z"),
        422, "rule 2 (time)", "entry.time"),
    "five awards dated January": (lambda kit: kit.sign(
        "points.award", {"household": "h2", "rule": "M-01", "amount": 5, "reason": "x"}, time="2026-01-15T08:00:00Z"),
        422, "rule 2 (time)", "entry.time"),
}


@pytest.mark.parametrize("overstep", list(OVERSTEPS))
def test_every_overstep_is_refused_with_its_rule_and_writes_nothing(
    client: FlaskClient, village: StoredVillage, overstep: str
) -> None:
    kit = village.kit
    village.append(kit.sign("member.add", {"member": "chen-2", "name": "陈二", "roles": ["committee"],
                                           "key": kit.new_key("chen-2")}, by="chen"))
    make, status, rule, field = OVERSTEPS[overstep]
    size = village.size()
    refused_naming(post(client, kit.award("h2", 1), make(kit)), status, rule, field)
    assert village.size() == size, "the batch is refused whole"


def test_a_step_not_dated_now_is_refused_on_the_desk_path_too(
    client: FlaskClient, village: StoredVillage, desk: str, login: Callable[[str], dict[str, str]]
) -> None:
    receipt = file(client)["receipt"]
    late = village.kit.sign("complaint.step", {"receipt": receipt, "step": "accept"}, by="supervisor",
                            time=format_time(village.kit.clock() + timedelta(days=30)))
    refused_naming(client.post(f"{BASE}/complaints/{receipt}/steps", headers=login("supervisor"),
                               json={"entry": late.to_wire()}), 422, "rule 2 (time)", "entry.entry.time")


# Never a penalty for speaking up -------------------------------------------------------------------------


def deduction(kit: Kit, household: str, *, by: str = "founder", cosigner: str | None = None) -> Entry:
    return kit.sign("points.deduct", {"household": household, "rule": "D-01", "amount": 5, "reason": "柴草乱堆"},
                    by=by, cosigner=cosigner)


def test_a_deduction_from_a_household_that_spoke_up_needs_a_supervisor(
    client: FlaskClient, village: StoredVillage, desk: str, login: Callable[[str], dict[str, str]]
) -> None:
    kit = village.kit
    file(client, plate=plates.token_for(village.store, village.slug, "h2"))  # under its own name
    file(client, plate=plates.token_for(village.store, village.slug, "h3"), anonymous="true")
    refused_naming(post(client, deduction(kit, "h2")), 403, "rule 2 (protection)", "entry.cosigner")
    refused_naming(post(client, deduction(kit, "h2", by="secretary", cosigner="chen")), 403, "rule 2 (protection)",
                   "entry.cosigner")  # an independent committee cosigner is not enough
    assert post(client, deduction(kit, "h3")).status_code == 201, "an anonymous filing leaves no trace to protect"
    approved = deduction(kit, "h2", cosigner="supervisor")
    assert post(client, approved).status_code == 201
    listed = client.get(f"{BASE}/complaints/protected-deductions", headers=login("supervisor"))
    assert [(d["entry_id"], d["household"], d["supervisor_cosigned"]) for d in listed.json["items"]] == [
        (approved.id, "h2", True)]
    assert client.get(f"{BASE}/complaints/protected-deductions", headers=login("secretary")).status_code == 403


def test_the_protection_lapses_after_ninety_days(client: FlaskClient, village: StoredVillage, desk: str) -> None:
    kit = village.kit
    kit.clock.set(kit.clock())
    file(client, plate=plates.token_for(village.store, village.slug, "h2"))
    kit.clock.advance(days=90, seconds=1)
    assert post(client, deduction(kit, "h2")).status_code == 201


# The desk: appointed by the township, replaced without a day without a desk --------------------------------


def receipt_author(village: StoredVillage, filed: dict[str, Any]) -> str:
    return b64encode(decode_leaf(village.store.leaf(village.slug, filed["index"])).author)


def test_the_desk_key_is_replaced_while_villagers_keep_filing(
    client: FlaskClient, village: StoredVillage, desk: str
) -> None:
    kit = village.kit
    new = b64encode(complaints.replace_desk_key(village.store, village.slug))
    assert receipt_author(village, file(client)) == desk, "the old key signs until the new one is registered"
    village.append(kit.sign("key.add", {"member": "desk", "key": new}, by="township"))
    assert receipt_author(village, file(client)) == new
    village.append(kit.sign("key.revoke", {"key": desk, "reason": "泄露"}, by="township"))
    assert receipt_author(village, file(client)) == new
    refused_naming(post(client, kit.sign("key.revoke", {"key": new, "reason": "关闭"}, by="secretary")),
                   403, "rule 2 (appointments)", "entry.body.key")
    village.append(kit.sign("key.revoke", {"key": kit.key_b64("intake"), "reason": "停用"}, by="township"))
    refused_naming(post(client, kit.sign("key.revoke", {"key": new, "reason": "关闭"}, by="township")),
                   422, "no active complaint desk key", "entry.body")  # not even the township leaves none


# One case with bad data blocks nobody ----------------------------------------------------------------------


@pytest.mark.parametrize("kit", [1], indirect=True, ids=["a log of rules 1"])
def test_a_case_with_a_step_dated_2099_blocks_neither_figures_nor_tracking_nor_escalation(
    client: FlaskClient, village: StoredVillage, desk: str, login: Callable[[str], dict[str, str]]
) -> None:
    """Rules 1 did not order entry times: a server whose clock once said 2099 logged a step so dated.
    The other cases still escalate, and every page still answers."""
    clock = village.kit.clock
    clock.set(clock())
    start = clock()
    bad, good = file(client), file(client)
    clock.set(start.replace(year=2099))
    step = village.kit.sign("complaint.step", {"receipt": bad["receipt"], "step": "accept"}, by="supervisor")
    assert client.post(f"{BASE}/complaints/{bad['receipt']}/steps", headers=login("supervisor"),
                       json={"entry": step.to_wire()}).status_code == 201
    clock.set(start + timedelta(days=16))
    (escalated,) = [c for c in client.get(f"{BASE}/complaints", headers=login("township")).json["items"] if c["escalated"]]
    assert escalated["receipt"] == good["receipt"]
    assert client.get(f"{BASE}/complaint-figures").status_code == 200
    for filed in (bad, good):
        assert client.post(f"{BASE}/complaints/track", json={"code": filed["tracking_code"]}).status_code == 200
    assert client.get(f"/v/{village.slug}/track").status_code == 200


# No 500, whatever the numbers ------------------------------------------------------------------------------

HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("method", "path", "body", "member", "field"),
    [
        ("POST", "/entries", '{"entries": [%s]}', None, "entries"),
        ("POST", "/auth/token", '{"key": "x", "challenge": "y", "signature": %s}', None, "signature"),
        ("POST", "/complaints/track", '{"code": %s}', None, "code"),
        ("POST", "/complaints/rate", '{"code": "ABCD", "rating": "satisfied", "resolved": %s}', None, "resolved"),
        ("PUT", "/supermarket/soap", '{"name": "香皂", "price": %s, "stock": 1}', "secretary", "price"),
        ("POST", "/households/h1/private", '{"head": %s}', "secretary", "head"),
        ("PUT", "/complaint-settings", '{"routes": {}, "respond_days": %s, "resolve_days": 15}', "supervisor", "respond_days"),
    ],
)
def test_an_integer_of_thousands_of_digits_gets_a_problem_naming_the_field(
    client: FlaskClient, village: StoredVillage, login: Callable[[str], dict[str, str]],
    method: str, path: str, body: str, member: str | None, field: str,
) -> None:
    size = village.size()
    headers = {"Content-Type": "application/json", **(login(member) if member else {})}
    response = client.open(f"{BASE}{path}", method=method, data=io.BytesIO((body % HUGE).encode()), headers=headers)
    assert 400 <= response.status_code < 500, response.data[:300]
    assert response.mimetype == "application/problem+json"
    assert any(error["field"].startswith(field) for error in response.json.get("errors", [])), response.json
    assert village.size() == size
