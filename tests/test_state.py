"""Specification of ``ledger.state.apply``: the one code path that decides whether an entry may be
appended, and what it changes.

Every refusal is checked for its error class, its message, and that it changed nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import EVIDENCE, Kit, MemoryLedger

from ledger.entries import Entry
from ledger.errors import EntryError, MalformedEntry, NotAuthorised, Replay, RuleViolation
from ledger.kinds import KINDS
from ledger.state import ISSUER, SUPERMARKET, State, apply, check_accounts_balance

H2 = "household:h2"
MISSING_ID = "f" * 32
RECEIPT = "0123456789abcdef" * 2


def snapshot(state: State) -> tuple[Any, ...]:
    """Everything ``apply`` may change, as comparable values."""
    recent = state.recent
    return (
        state.size,
        state.village,
        dict(state.members),
        dict(state.keys),
        dict(state.grids),
        dict(state.households),
        dict(state.rules),
        dict(state.balances),
        set(recent.ids),
        dict(recent.movements),
        dict(recent.reversals),
        dict(state.cases),
    )


def refused(state: State, entry: Entry, error: type[EntryError], message: str) -> EntryError:
    """Apply ``entry``, expect ``error`` matching ``message``, and require the state to be unchanged."""
    before = snapshot(state)
    with pytest.raises(error, match=message) as caught:
        apply(state, entry)
    assert type(caught.value) is error, f"{type(caught.value).__name__}, not a subclass, is the contract"
    assert snapshot(state) == before, "a refused entry changes nothing"
    return caught.value


@pytest.fixture(scope="module")
def standard() -> MemoryLedger:
    """The kit's standard village (see ``kit.py``), signed once for the module: never changed itself."""
    return MemoryLedger(Kit())


@pytest.fixture
def kit(standard: MemoryLedger) -> Kit:
    """The standard village's kit, with keys of its own for this test."""
    return standard.kit.copy()


@pytest.fixture
def ledger(standard: MemoryLedger, kit: Kit) -> MemoryLedger:
    """This test's copy of the standard village: genesis and setup, no points yet."""
    return standard.copy(kit)


@pytest.fixture(scope="module")
def standard_v1() -> MemoryLedger:
    """The standard village written under rules 1 (before the checks and balances), signed once."""
    return MemoryLedger(Kit(rules=1))


@pytest.fixture
def old(standard_v1: MemoryLedger) -> MemoryLedger:
    """This test's copy of the rules-1 village (its kit: ``old.kit``, with keys of its own)."""
    return standard_v1.copy(standard_v1.kit.copy())


@pytest.fixture
def refuse(ledger: MemoryLedger) -> Callable[[Entry, type[EntryError], str], EntryError]:
    """``refuse(entry, error, message)``: ``refused`` on the standard village."""

    def refuse(entry: Entry, error: type[EntryError], message: str) -> EntryError:
        count = len(ledger.entries)
        caught = refused(ledger.state, entry, error, message)
        assert len(ledger.entries) == count
        return caught

    return refuse


@pytest.fixture
def awarded(ledger: MemoryLedger, kit: Kit) -> Entry:
    """An award of 10 morality points to h2 (grid g1) by the founder, already in the log."""
    return ledger.append(kit.award("h2", 10))


def balance(ledger: MemoryLedger, account: str, book: str = "morality") -> int:
    return ledger.state.balance(account, book)


def key_pattern(kit: Kit, name: str) -> str:
    return re.escape(kit.key_b64(name))


# (1) Genesis and the village -----------------------------------------------------------------------------


def test_genesis_founds_the_village(kit: Kit) -> None:
    state = State()
    apply(state, kit.genesis())
    assert state.size == 1 and state.village is not None
    assert (state.village.slug, state.village.origin) == (kit.slug, kit.origin)
    assert state.members["founder"].roles == {"committee"}
    assert state.keys[kit.public("founder")].member == "founder"


def test_the_first_entry_must_be_genesis(kit: Kit) -> None:
    refused(
        State(),
        kit.sign("grid.define", {"grid": "g1", "name": "一组"}),
        NotAuthorised,
        "^the first entry must be village.genesis, not grid.define$",
    )


def test_genesis_is_only_the_first_entry(refuse: Callable[..., EntryError], kit: Kit) -> None:
    refuse(kit.genesis(), NotAuthorised, "^village.genesis may only be the first entry of a log$")


def test_genesis_is_signed_by_the_founder_alone_under_rules_1(old: MemoryLedger) -> None:
    cosigned = old.kit.sign("village.genesis", old.kit.genesis().body, cosigner="secretary")
    error = refused(State(), cosigned, NotAuthorised, "^village.genesis is signed by the founder alone under rules 1$")
    assert error.field == "entry.cosigner"


def test_an_entry_for_another_village_is_refused(refuse: Callable[..., EntryError], kit: Kit) -> None:
    entry = kit.sign("grid.define", {"grid": "g3", "name": "三组"}, village="othervillage")
    refuse(entry, NotAuthorised, "^entry is for village 'othervillage', this log is 'testvillage'$")


# (2) Replay ----------------------------------------------------------------------------------------------


def test_an_entry_already_in_the_log_is_a_replay(refuse: Callable[..., EntryError], awarded: Entry) -> None:
    refuse(awarded, Replay, f"^entry {awarded.id} is already in the log$")


def test_another_entry_reusing_an_id_is_a_replay(
    refuse: Callable[..., EntryError], awarded: Entry, kit: Kit
) -> None:
    other = kit.sign(
        "points.deduct", {"household": "h3", "rule": "D-01", "amount": 5, "reason": "乱堆"}, id=awarded.id
    )
    error = refuse(other, Replay, f"^entry {awarded.id} is already in the log$")
    assert error.field == "entry.id"


# (3) Keys and members ------------------------------------------------------------------------------------


def test_an_unregistered_key_signs_nothing(refuse: Callable[..., EntryError], kit: Kit) -> None:
    refuse(
        kit.award(by="stranger"),
        NotAuthorised,
        f"^the author key {key_pattern(kit, 'stranger')} is not registered in this village$",
    )


def test_an_unregistered_cosigner_signs_nothing(refuse: Callable[..., EntryError], kit: Kit) -> None:
    refuse(
        kit.award("h1", by="chen", cosigner="stranger"),
        NotAuthorised,
        f"^the cosigner key {key_pattern(kit, 'stranger')} is not registered in this village$",
    )


def test_a_revoked_key_signs_nothing_after_its_revocation(ledger: MemoryLedger, kit: Kit) -> None:
    before = ledger.append(kit.award("h2", 3, by="grid1"))
    revocation = ledger.post(
        "key.revoke", {"key": kit.key_b64("grid1"), "reason": "手机丢失"}, by="secretary"
    )
    at = len(ledger.entries) - 1
    refused(
        ledger.state,
        kit.award("h2", 3, by="grid1"),
        NotAuthorised,
        f"^the author key {key_pattern(kit, 'grid1')} was revoked at index {at}$",
    )
    refused(
        ledger.state,
        kit.award("h1", 3, by="chen", cosigner="grid1"),
        NotAuthorised,
        f"^the cosigner key {key_pattern(kit, 'grid1')} was revoked at index {at}$",
    )
    replayed = MemoryLedger.replay(kit, ledger.entries)
    assert before in replayed.entries and revocation in replayed.entries, "entries before it remain valid"
    assert balance(replayed, H2) == 3


def test_a_key_revoked_twice_is_refused(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.post("key.revoke", {"key": kit.key_b64("grid1"), "reason": "手机丢失"})
    at = len(ledger.entries) - 1
    refused(
        ledger.state,
        kit.sign("key.revoke", {"key": kit.key_b64("grid1"), "reason": "再次"}),
        RuleViolation,
        f"^key {key_pattern(kit, 'grid1')} was already revoked at index {at}$",
    )


def test_a_member_without_a_role_signs_nothing(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.post("member.role", {"member": "grid1", "roles": []})
    refused(
        ledger.state, kit.award(by="grid1"), NotAuthorised, r"^member grid1 \(no role\) may not sign entries$"
    )


def test_an_auditor_signs_nothing(refuse: Callable[..., EntryError], kit: Kit) -> None:
    refuse(
        kit.sign("key.add", {"member": "auditor", "key": kit.new_key("auditor-phone")}, by="auditor"),
        NotAuthorised,
        r"^member auditor \(auditor\) may not sign entries$",
    )


def test_an_auditor_cannot_cosign(refuse: Callable[..., EntryError], kit: Kit) -> None:
    refuse(
        kit.award("h1", by="chen", cosigner="auditor"),
        NotAuthorised,
        r"^member auditor \(auditor\) may not sign entries$",
    )


# (4) Roles: which role may sign which kind ---------------------------------------------------------------

# The specification, written out (docs/data-model.md); the registry of kinds must say the same. Who may appoint whom
# (the committee its side, the township the oversight side) is in test_checks_and_balances.py.
ALLOWED: dict[str, set[str]] = {
    "member.add": {"committee", "township"},
    "member.role": {"committee", "township"},
    "key.add": {"committee", "township"},  # a stolen key must not mint another that outlives its revocation
    "key.revoke": {"committee", "grid_worker", "supervisor", "township", "intake"},
    "grid.define": {"committee"},
    "household.register": {"committee", "grid_worker"},
    "household.update": {"committee", "grid_worker"},
    "rule.publish": {"committee"},
    "rule.retire": {"committee"},
    "points.award": {"committee", "grid_worker"},
    "points.deduct": {"committee", "grid_worker"},
    "points.redeem": {"committee", "grid_worker"},
    "points.reverse": {"committee", "supervisor"},
    "affair.publish": {"committee"},
    "complaint.receipt": {"intake"},  # the complaint desk files; nobody can file in a complainant's name
    "complaint.step": {"committee", "grid_worker", "supervisor", "township", "intake"},  # and see may_handle
}
SIGNER_OF_ROLE = {
    "committee": "secretary",
    "grid_worker": "grid1",
    "supervisor": "supervisor",
    "township": "township",
    "intake": "intake",
    "auditor": "auditor",
}


def test_may_sign_is_the_specified_table() -> None:
    signed_by_members = [kind for kind in KINDS.values() if kind.name != "village.genesis"]
    assert {kind.name: set(kind.may_sign(2)) for kind in signed_by_members} == ALLOWED
    appointments = ("member.add", "member.role", "key.add")
    assert {kind.name: set(kind.may_sign(1)) for kind in signed_by_members} == {
        **ALLOWED, **{kind: {"committee"} for kind in appointments}}, "rules 1: the committee appointed everyone"
    assert KINDS["village.genesis"].may_sign(2) == frozenset(), "genesis is signed by whoever founds the village"


def body_for(kind: str, signer: str, ledger: MemoryLedger, awarded: Entry) -> dict[str, Any]:
    """A body of ``kind`` that ``signer`` may sign if their role allows the kind (own side, own key, own
    grid g1)."""
    kit = ledger.kit
    side = "township" if signer in ("township", "supervisor", "intake", "auditor") else "committee"

    def spare_key() -> str:  # a second key of the signer's, so revoking one leaves the member a key
        ledger.post("key.add", {"member": signer, "key": kit.new_key(f"{signer}-spare")},
                    by="township" if side == "township" else "founder")
        return kit.key_b64(f"{signer}-spare")

    bodies: dict[str, Callable[[], dict[str, Any]]] = {
        "member.add": lambda: {
            "member": "newbie",
            "name": "新人",
            "roles": ["supervisor" if side == "township" else "committee"],
            "key": kit.new_key("newbie"),
        },
        "member.role": lambda: {"member": "supervisor", "roles": ["supervisor", "auditor"]} if side == "township"
        else {"member": "secretary", "roles": ["committee"]},
        "key.add": lambda: {"member": signer, "key": kit.new_key(f"{signer}-phone")},
        "key.revoke": lambda: {"key": spare_key(), "reason": "换手机"},
        "grid.define": lambda: {"grid": "g3", "name": "三组"},
        "household.register": lambda: kit.household_body("h4", "g1"),
        "household.update": lambda: {"household": "h2", "number": "g1-22"},
        "rule.publish": lambda: {
            "rule": "M-09",
            "title_zh": "孝老爱亲",
            "title_en": "Caring for elders",
            "ledger": "morality",
            "direction": "award",
            "amount": 2,
            "evidence_required": False,
        },
        "rule.retire": lambda: {"rule": "M-01", "reason": "细则修订"},
        "points.award": lambda: {"household": "h2", "rule": "M-01", "amount": 3, "reason": "垃圾分类"},
        "points.deduct": lambda: {"household": "h2", "rule": "D-01", "amount": 5, "reason": "乱堆乱放"},
        "points.redeem": lambda: {"household": "h2", "amount": 4, "item": "洗衣粉", "quantity": 1},
        "points.reverse": lambda: {"entry": awarded.id, "reason": "录入错误"},
        "affair.publish": lambda: {
            "affair": "m1",
            "category": "decision",
            "title": "决议",
            "text": "通过",
            "date": "2026-01-05",
            "decision": {"meeting": "村民代表大会", "outcome": "通过"},
        },
        "complaint.receipt": lambda: {"receipt": RECEIPT, "commitment": "cd" * 32, "route": "committee"},
    }
    return bodies[kind]()


@pytest.mark.parametrize("role", list(SIGNER_OF_ROLE))
@pytest.mark.parametrize("kind", [kind for kind in ALLOWED if kind != "complaint.step"])  # steps: see below
def test_each_role_signs_only_its_kinds(
    ledger: MemoryLedger, kit: Kit, awarded: Entry, kind: str, role: str
) -> None:
    signer = SIGNER_OF_ROLE[role]
    entry = kit.sign(kind, body_for(kind, signer, ledger, awarded), by=signer)
    if role == "auditor":
        refused(ledger.state, entry, NotAuthorised, r"^member auditor \(auditor\) may not sign entries$")
    elif role in ALLOWED[kind]:
        size = ledger.state.size
        ledger.append(entry)
        assert ledger.state.size == size + 1, f"a {role} may sign {kind}"
    else:
        error = refused(
            ledger.state, entry, NotAuthorised, f"^a member with role {role} may not sign {re.escape(kind)}$"
        )
        assert error.field == "entry.kind"


# Grid workers act only in their own grid -----------------------------------------------------------------


OUTSIDE_G1 = "^grid worker grid1 may act only in grid g1, not g2$"


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        pytest.param(
            "points.award", {"household": "h3", "rule": "M-01", "amount": 3, "reason": "x"}, id="award"
        ),
        pytest.param(
            "points.deduct", {"household": "h3", "rule": "D-01", "amount": 5, "reason": "x"}, id="deduct"
        ),
        pytest.param(
            "points.redeem", {"household": "h3", "amount": 1, "item": "香皂", "quantity": 1}, id="redeem"
        ),
        pytest.param("household.register", Kit.household_body("h4", "g2"), id="register in g2"),
        pytest.param(
            "household.update", {"household": "h3", "number": "g2-33"}, id="update a household of g2"
        ),
        pytest.param("household.update", {"household": "h2", "grid": "g2"}, id="move own household into g2"),
    ],
)
def test_a_grid_worker_acts_only_in_their_grid(
    refuse: Callable[..., EntryError], kit: Kit, kind: str, body: dict[str, Any]
) -> None:
    refuse(kit.sign(kind, body, by="grid1"), NotAuthorised, OUTSIDE_G1)


def test_a_grid_worker_cannot_take_a_household_from_another_grid(
    refuse: Callable[..., EntryError], kit: Kit
) -> None:
    refuse(
        kit.sign("household.update", {"household": "h2", "grid": "g2"}, by="grid2"),
        NotAuthorised,
        "^grid worker grid2 may act only in grid g2, not g1$",
    )


def test_a_grid_worker_acts_in_their_own_grid(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.append(kit.award("h2", 4, by="grid1"))
    ledger.post("household.register", kit.household_body("h4", "g1"), by="grid1")
    ledger.post("household.update", {"household": "h4", "number": "g1-44"}, by="grid1")
    ledger.append(kit.award("h3", 4, by="grid2"))
    assert (balance(ledger, H2), balance(ledger, "household:h3")) == (4, 4)


# Keys: the committee adds them; a member may revoke their own ----------------------------------------


@pytest.mark.parametrize("member", ["supervisor", "grid1"])
def test_only_the_committee_and_the_township_add_keys(refuse: Callable[..., EntryError], kit: Kit, member: str) -> None:
    for owner in (member, "intake"):  # their own key, or another member's
        entry = kit.sign(
            "key.add", {"member": owner, "key": kit.new_key(f"{owner}-phone-{member}")}, by=member
        )
        role = "supervisor" if member == "supervisor" else "grid_worker"
        refuse(entry, NotAuthorised, f"^a member with role {role} may not sign key.add$")


def test_a_member_may_revoke_their_own_key(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.post("key.add", {"member": "supervisor", "key": kit.new_key("supervisor-phone")}, by="township")
    ledger.post(
        "key.revoke", {"key": kit.key_b64("supervisor"), "reason": "旧手机丢失"}, by="supervisor-phone"
    )
    assert ledger.state.keys[kit.public("supervisor")].revoked_at == len(ledger.entries) - 1
    assert ledger.state.keys[kit.public("supervisor-phone")].revoked_at is None


def test_a_member_may_not_revoke_another_members_key(refuse: Callable[..., EntryError], kit: Kit) -> None:
    entry = kit.sign("key.revoke", {"key": kit.key_b64("grid1"), "reason": "恶意"}, by="supervisor")
    error = refuse(entry, NotAuthorised, r"^rule 2 \(appointments\): only the committee may appoint, change or remove "
                                         r"a member holding grid_worker, or add or revoke their keys; supervisor may not$")
    assert error.field == "entry.body.key"


def test_under_rules_1_only_the_committee_revoked_another_members_key(old: MemoryLedger) -> None:
    entry = old.kit.sign("key.revoke", {"key": old.kit.key_b64("grid1"), "reason": "恶意"}, by="supervisor")
    error = refused(old.state, entry, NotAuthorised, r"^only the committee may revoke another member's keys \(grid1\)$")
    assert error.field == "entry.body.key"
    old.post("key.revoke", {"key": old.kit.key_b64("supervisor"), "reason": "换人"}, by="secretary")


def test_revoking_an_unregistered_key_is_refused(refuse: Callable[..., EntryError], kit: Kit) -> None:
    entry = kit.sign("key.revoke", {"key": kit.key_b64("stranger"), "reason": "x"}, by="supervisor")
    refuse(entry, RuleViolation, f"^key {key_pattern(kit, 'stranger')} is not registered$")


def test_the_committee_may_add_and_revoke_the_keys_of_its_side(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.post("key.add", {"member": "grid1", "key": kit.new_key("grid1-phone")}, by="secretary")
    ledger.post("key.revoke", {"key": kit.key_b64("grid1"), "reason": "手机丢失"}, by="secretary")
    ledger.append(kit.award("h2", 2, by="grid1-phone"))
    assert balance(ledger, H2) == 2, "the new key signs for grid1"


def test_a_key_cannot_be_registered_twice(refuse: Callable[..., EntryError], kit: Kit) -> None:
    refuse(
        kit.sign("key.add", {"member": "secretary", "key": kit.key_b64("grid1")}),
        RuleViolation,
        f"^key {key_pattern(kit, 'grid1')} is already registered$",
    )


# (5) Conflicts of interest -------------------------------------------------------------------------------

CONFLICT = (
    r"^rule 2 \(conflict of interest\): member chen belongs to household h1: points for it need the cosignature "
    "of an independent committee member or a supervisor$"
)


@pytest.fixture
def chen_phone(ledger: MemoryLedger, kit: Kit) -> str:
    """A second key of chen's, registered."""
    ledger.post("key.add", {"member": "chen", "key": kit.new_key("chen-phone")})
    return "chen-phone"


@pytest.fixture
def chens_wife(ledger: MemoryLedger, kit: Kit) -> str:
    """Another committee member of household h1."""
    ledger.post(
        "member.add",
        {
            "member": "chenwife",
            "name": "林芳",
            "roles": ["committee"],
            "household": "h1",
            "key": kit.new_key("chenwife"),
        },
    )
    return "chenwife"


def test_points_for_ones_own_household_need_a_cosigner(refuse: Callable[..., EntryError], kit: Kit) -> None:
    error = refuse(kit.award("h1", by="chen"), NotAuthorised, CONFLICT)
    assert error.field == "entry.cosigner"


def test_the_cosigner_is_not_the_same_member(
    refuse: Callable[..., EntryError], kit: Kit, chen_phone: str
) -> None:
    refuse(
        kit.award("h1", by="chen", cosigner=chen_phone),
        NotAuthorised,
        r"^rule 2 \(independent cosigner\): the cosigner chen is the author$",
    )


def test_the_cosigner_is_a_committee_member_or_a_supervisor(refuse: Callable[..., EntryError], kit: Kit) -> None:
    refuse(
        kit.award("h1", by="chen", cosigner="grid1"),
        NotAuthorised,
        r"^rule 2 \(conflict of interest\).*; the cosigner grid1 holds grid_worker$",
    )


def test_the_cosigner_is_not_of_the_same_household(
    refuse: Callable[..., EntryError], kit: Kit, chens_wife: str
) -> None:
    refuse(
        kit.award("h1", by="chen", cosigner=chens_wife),
        NotAuthorised,
        r"^rule 2 \(independent cosigner\): the cosigner chenwife belongs to the author's household h1$",
    )
    refuse(
        kit.award("h1", by="secretary", cosigner="chen"),
        NotAuthorised,
        r"^rule 2 \(independent cosigner\): the cosigner chen belongs to household h1, which the entry is about$",
    )


def test_under_rules_1_the_cosigner_was_any_other_committee_member(old: MemoryLedger) -> None:
    kit = old.kit
    refused(old.state, kit.award("h1", by="chen"), NotAuthorised,
            "^member chen belongs to household h1: points for it need a cosignature from another committee member$")
    refused(old.state, kit.award("h1", by="chen", cosigner="grid1"), NotAuthorised,
            "^the cosigner grid1 is not a committee member$")
    old.post("member.add", {"member": "chens-friend", "name": "陈友", "roles": ["committee"], "key": kit.new_key("chens-friend")},
             by="chen")
    old.append(kit.award("h1", 2, by="chen", cosigner="chens-friend"))


def test_a_committee_cosignature_resolves_the_conflict(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.append(kit.award("h1", 4, by="chen", cosigner="founder"))
    assert balance(ledger, "household:h1") == 4


def test_points_for_another_household_need_no_cosigner(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.append(kit.award("h2", 4, by="chen"))
    assert balance(ledger, H2) == 4


@pytest.fixture
def h1_award(ledger: MemoryLedger, kit: Kit) -> Entry:
    """10 morality points for h1, by the founder (no conflict)."""
    return ledger.append(kit.award("h1", 10))


@pytest.mark.parametrize("kind", ["points.award", "points.deduct", "points.redeem", "points.reverse"])
def test_the_conflict_rule_covers_every_points_kind(
    ledger: MemoryLedger, kit: Kit, h1_award: Entry, kind: str
) -> None:
    body = {
        "points.award": {"household": "h1", "rule": "M-01", "amount": 2, "reason": "x"},
        "points.deduct": {"household": "h1", "rule": "D-01", "amount": 5, "reason": "x"},
        "points.redeem": {"household": "h1", "amount": 3, "item": "香皂", "quantity": 1},
        "points.reverse": {"entry": h1_award.id, "reason": "x"},  # the reversed entry's household counts
    }[kind]
    refused(ledger.state, kit.sign(kind, body, by="chen"), NotAuthorised, CONFLICT)
    ledger.append(kit.sign(kind, body, by="chen", cosigner="founder"))


# (6) Rules of each kind: points --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "amount", "expected"),
    [("M-01", 11, "between 1 and 10"), ("M-05", 49, "exactly 50"), ("M-05", 51, "exactly 50")],
)
def test_an_amount_outside_the_rule_is_refused(
    refuse: Callable[..., EntryError], kit: Kit, rule: str, amount: int, expected: str
) -> None:
    error = refuse(
        kit.award("h2", amount, rule=rule, evidence=[EVIDENCE]),
        RuleViolation,
        f"^amount {amount} is outside rule {rule}: {expected}$",
    )
    assert error.field == "entry.body.amount"


def test_a_deduction_has_its_rules_amount(refuse: Callable[..., EntryError], kit: Kit) -> None:
    entry = kit.sign("points.deduct", {"household": "h2", "rule": "D-01", "amount": 6, "reason": "x"})
    refuse(entry, RuleViolation, "^amount 6 is outside rule D-01: exactly 5$")


def test_a_rule_may_require_evidence(ledger: MemoryLedger, kit: Kit) -> None:
    error = refused(
        ledger.state,
        kit.award("h2", 50, rule="M-05"),
        RuleViolation,
        r"^rule M-05 requires evidence \(a photo or document hash\)$",
    )
    assert error.field == "entry.body.evidence"
    refused(ledger.state, kit.award("h2", 50, rule="M-05", evidence=[]), RuleViolation, "requires evidence")
    ledger.append(kit.award("h2", 50, rule="M-05", evidence=[EVIDENCE]))
    assert balance(ledger, H2) == 50


def test_a_retired_rule_awards_nothing(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.post("rule.retire", {"rule": "M-01", "reason": "细则修订"})
    at = len(ledger.entries) - 1
    refused(ledger.state, kit.award("h2", 3), RuleViolation, f"^rule M-01 was retired at index {at}$")
    refused(
        ledger.state,
        kit.sign("rule.retire", {"rule": "M-01", "reason": "again"}),
        RuleViolation,
        f"^rule M-01 was already retired at index {at}$",
    )


def test_an_award_cannot_use_a_deduction_rule(refuse: Callable[..., EntryError], kit: Kit) -> None:
    refuse(
        kit.award("h2", 5, rule="D-01"), RuleViolation, "^rule D-01 is for points.deduct, not points.award$"
    )


def test_a_deduction_cannot_use_an_award_rule(refuse: Callable[..., EntryError], kit: Kit) -> None:
    entry = kit.sign("points.deduct", {"household": "h2", "rule": "M-01", "amount": 5, "reason": "x"})
    refuse(entry, RuleViolation, "^rule M-01 is for points.award, not points.deduct$")


@pytest.mark.parametrize(
    ("kind", "body", "message", "field"),
    [
        pytest.param(
            "points.award",
            {"household": "h9", "rule": "M-01", "amount": 1, "reason": "x"},
            "^household 'h9' is not registered$",
            "entry.body.household",
            id="household",
        ),
        pytest.param(
            "points.redeem",
            {"household": "h9", "amount": 1, "item": "香皂", "quantity": 1},
            "^household 'h9' is not registered$",
            "entry.body.household",
            id="household to redeem",
        ),
        pytest.param(
            "household.update",
            {"household": "h9", "number": "9"},
            "^household 'h9' is not registered$",
            "entry.body.household",
            id="household to update",
        ),
        pytest.param(
            "points.award",
            {"household": "h2", "rule": "X-99", "amount": 1, "reason": "x"},
            "^rule X-99 does not exist$",
            "entry.body.rule",
            id="rule",
        ),
        pytest.param(
            "rule.retire",
            {"rule": "X-99", "reason": "x"},
            "^rule X-99 does not exist$",
            "entry.body.rule",
            id="rule to retire",
        ),
        pytest.param(
            "household.register",
            Kit.household_body("h4", "g9"),
            "^grid 'g9' is not defined$",
            "entry.body.grid",
            id="grid",
        ),
        pytest.param(
            "household.update",
            {"household": "h2", "grid": "g9"},
            "^grid 'g9' is not defined$",
            "entry.body.grid",
            id="grid to move to",
        ),
        pytest.param(
            "member.role",
            {"member": "nobody", "roles": ["committee"]},
            "^member 'nobody' does not exist$",
            "entry.body.member",
            id="member",
        ),
    ],
)
def test_an_unknown_target_is_refused(
    refuse: Callable[..., EntryError], kit: Kit, kind: str, body: dict[str, Any], message: str, field: str
) -> None:
    assert refuse(kit.sign(kind, body), RuleViolation, message).field == field


def test_a_key_for_an_unknown_member_is_refused(refuse: Callable[..., EntryError], kit: Kit) -> None:
    refuse(
        kit.sign("key.add", {"member": "nobody", "key": kit.key_b64("stranger")}),
        RuleViolation,
        "^member 'nobody' does not exist$",
    )


def test_a_member_in_an_unknown_grid_is_refused(refuse: Callable[..., EntryError], kit: Kit) -> None:
    body = {
        "member": "newbie",
        "name": "新人",
        "roles": ["grid_worker"],
        "grid": "g9",
        "key": kit.key_b64("stranger"),
    }
    refuse(kit.sign("member.add", body), RuleViolation, "^grid 'g9' is not defined$")


def test_existing_things_are_not_created_again(refuse: Callable[..., EntryError], kit: Kit) -> None:
    refuse(
        kit.sign("grid.define", {"grid": "g1", "name": "一组"}),
        RuleViolation,
        "^grid 'g1' is already defined$",
    )
    refuse(
        kit.sign("household.register", kit.household_body("h1", "g1")),
        RuleViolation,
        "^household 'h1' is already registered$",
    )
    refuse(
        kit.sign("member.add", {**kit.member_body("grid1"), "key": kit.key_b64("stranger")}),
        RuleViolation,
        "^member 'grid1' already exists$",
    )


def test_a_redemption_cannot_exceed_the_balance(ledger: MemoryLedger, kit: Kit) -> None:
    def redeem(amount: int) -> Entry:
        return kit.sign(
            "points.redeem", {"household": "h2", "amount": amount, "item": "洗衣粉", "quantity": 1}
        )

    refused(ledger.state, redeem(1), RuleViolation, "^household h2 has 0 morality points, cannot redeem 1$")
    ledger.append(kit.award("h2", 7))
    refused(ledger.state, redeem(8), RuleViolation, "^household h2 has 7 morality points, cannot redeem 8$")
    ledger.append(redeem(7))
    assert (balance(ledger, H2), balance(ledger, SUPERMARKET)) == (0, 7)


def test_credit_points_cannot_be_redeemed(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.append(kit.award("h2", 10, rule="C-01"))
    refused(
        ledger.state,
        kit.sign("points.redeem", {"household": "h2", "amount": 1, "item": "香皂", "quantity": 1}),
        RuleViolation,
        "^household h2 has 0 morality points, cannot redeem 1$",
    )


def test_a_deduction_may_make_a_balance_negative(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.post("points.deduct", {"household": "h2", "rule": "D-01", "amount": 5, "reason": "乱堆乱放"})
    assert (balance(ledger, H2), balance(ledger, ISSUER)) == (-5, 5)
    refused(
        ledger.state,
        kit.sign("points.redeem", {"household": "h2", "amount": 1, "item": "香皂", "quantity": 1}),
        RuleViolation,
        "^household h2 has -5 morality points, cannot redeem 1$",
    )


# Reversals -----------------------------------------------------------------------------------------------


def reverse(kit: Kit, target: str, **body: Any) -> Entry:
    return kit.sign("points.reverse", {"entry": target, "reason": "录入错误", **body}, by="supervisor")


def test_a_reversal_restores_both_balances(ledger: MemoryLedger, kit: Kit, awarded: Entry) -> None:
    assert (balance(ledger, H2), balance(ledger, ISSUER)) == (10, -10)
    ledger.append(reverse(kit, awarded.id))
    assert (balance(ledger, H2), balance(ledger, ISSUER)) == (0, 0)


def test_a_reversed_redemption_returns_the_points(ledger: MemoryLedger, kit: Kit, awarded: Entry) -> None:
    redemption = ledger.post(
        "points.redeem", {"household": "h2", "amount": 4, "item": "洗衣粉", "quantity": 2}
    )
    ledger.append(reverse(kit, redemption.id))
    assert (balance(ledger, H2), balance(ledger, SUPERMARKET)) == (10, 0)


def test_a_reversal_of_a_missing_entry_is_refused(refuse: Callable[..., EntryError], kit: Kit) -> None:
    error = refuse(reverse(kit, MISSING_ID), RuleViolation, f"^entry {MISSING_ID} is not in the log$")
    assert error.field == "entry.body.entry"


def test_only_points_entries_are_reversed(ledger: MemoryLedger, kit: Kit) -> None:
    grid = ledger.entries[1]
    assert grid.kind == "grid.define"
    refused(
        ledger.state,
        reverse(kit, grid.id),
        RuleViolation,
        f"^entry {grid.id} is not a points award, deduction or redemption$",
    )


def test_a_reversal_is_not_reversed(ledger: MemoryLedger, kit: Kit, awarded: Entry) -> None:
    reversal = ledger.append(reverse(kit, awarded.id))
    refused(
        ledger.state,
        reverse(kit, reversal.id),
        RuleViolation,
        f"^entry {reversal.id} is itself a reversal and cannot be reversed$",
    )


def test_an_entry_is_reversed_once(ledger: MemoryLedger, kit: Kit, awarded: Entry) -> None:
    first = ledger.append(reverse(kit, awarded.id))
    refused(
        ledger.state,
        reverse(kit, awarded.id),
        RuleViolation,
        f"^entry {awarded.id} was already reversed by {first.id}$",
    )




# Complaints: routed away from the accused, handled step by step, never a penalty -------------------------

RECEIPTS = {route: f"{n:032x}" for n, route in enumerate(("supervision", "jury", "committee", "grid"), start=1)}
ESCALATE = {"step": "escalate", "reason": "response_overdue"}


def file_complaint(ledger: MemoryLedger, route: str, receipt: str | None = None) -> str:
    receipt = receipt or RECEIPTS[route]
    body = {"receipt": receipt, "commitment": "cd" * 32, "route": route, **({"grid": "g1"} if route == "grid" else {})}
    ledger.post("complaint.receipt", body, by="intake")
    return receipt


def step(kit: Kit, receipt: str, name: str, *, by: str, **body: Any) -> Entry:
    return kit.sign("complaint.step", {"receipt": receipt, "step": name, **body}, by=by)


@pytest.fixture
def complaints(ledger: MemoryLedger) -> MemoryLedger:
    """The standard village with one new complaint on each route (the grid route: grid g1)."""
    for route in RECEIPTS:
        file_complaint(ledger, route)
    return ledger


def test_a_complaint_receipt_opens_a_case(complaints: MemoryLedger) -> None:
    case = complaints.state.cases[RECEIPTS["grid"]]
    assert (case.route, case.grid, case.status, case.escalated, case.reopened) == ("grid", "g1", "received", False, False)


def test_a_complaint_receipt_is_recorded_once(complaints: MemoryLedger, kit: Kit) -> None:
    again = kit.sign("complaint.receipt", {"receipt": RECEIPTS["jury"], "commitment": "ef" * 32, "route": "jury"}, by="intake")
    refused(complaints.state, again, RuleViolation, f"^complaint receipt {RECEIPTS['jury']} is already in the log$")


def test_a_complaint_routed_to_a_grid_needs_a_defined_grid(ledger: MemoryLedger, kit: Kit) -> None:
    entry = kit.sign("complaint.receipt", {"receipt": RECEIPT, "commitment": "cd" * 32, "route": "grid", "grid": "g9"},
                     by="intake")
    refused(ledger.state, entry, RuleViolation, "^grid 'g9' is not defined$")


HANDLERS = {
    "supervision": {"supervisor", "township"},  # finances, cadre conduct: never the village committee
    "jury": {"supervisor"},  # appeals of points: the morality jury
    "committee": {"secretary", "founder", "chen"},
    "grid": {"grid1", "secretary", "founder", "chen"},  # grid g1's worker, not g2's
}


@pytest.mark.parametrize("route", list(HANDLERS))
@pytest.mark.parametrize("member", ["founder", "secretary", "chen", "grid1", "grid2", "supervisor", "township"])
def test_only_the_handlers_of_a_route_may_act_on_it(complaints: MemoryLedger, kit: Kit, route: str, member: str) -> None:
    entry = step(kit, RECEIPTS[route], "accept", by=member)
    if member in HANDLERS[route]:
        complaints.append(entry)
        assert complaints.state.cases[RECEIPTS[route]].status == "accepted"
    else:
        refused(complaints.state, entry, NotAuthorised, f"^member {member} may not handle a complaint routed to {route}$")


def test_an_escalated_case_reaches_the_township(complaints: MemoryLedger, kit: Kit) -> None:
    receipt = RECEIPTS["jury"]
    refused(complaints.state, step(kit, receipt, "accept", by="township"), NotAuthorised, "may not handle")
    complaints.append(step(kit, receipt, "escalate", by="intake", **ESCALATE))
    complaints.append(step(kit, receipt, "accept", by="township"))
    assert complaints.state.cases[receipt].escalated


@pytest.mark.parametrize("name", ["answer", "rate", "escalate"])
def test_only_the_desk_speaks_for_the_villager_and_the_clock(complaints: MemoryLedger, kit: Kit, name: str) -> None:
    body = {"answer": {"commitment": "ef" * 32}, "rate": {"rating": "satisfied", "resolved": True},
            "escalate": {"reason": "resolution_overdue"}}[name]
    entry = step(kit, RECEIPTS["supervision"], name, by="supervisor", **body)
    refused(complaints.state, entry, NotAuthorised, f"^only the complaint desk may record the {name} step$")


def test_a_case_goes_from_received_to_rated(complaints: MemoryLedger, kit: Kit) -> None:
    receipt = RECEIPTS["supervision"]
    statuses = []
    for make in (
        lambda: step(kit, receipt, "accept", by="supervisor"),
        lambda: step(kit, receipt, "assign", by="supervisor", assignee="township"),
        lambda: step(kit, receipt, "start", by="township"),
        lambda: step(kit, receipt, "answer", by="intake", commitment="12" * 32),
        lambda: step(kit, receipt, "reply", by="township", commitment="34" * 32),
        lambda: step(kit, receipt, "close", by="supervisor"),
        lambda: step(kit, receipt, "rate", by="intake", rating="basically_satisfied", resolved=True),
    ):
        kit.clock.advance(hours=1)
        complaints.append(make())
        statuses.append(complaints.state.cases[receipt].status)
    assert statuses == ["accepted", "assigned", "in_progress", "in_progress", "replied", "closed", "closed"]
    case = complaints.state.cases[receipt]
    assert (case.rating, case.resolved, case.reopened, case.escalated) == ("basically_satisfied", True, False, False)
    assert case.filed < case.accepted < case.replied < case.closed, "each first time is the entry's own time"


@pytest.mark.parametrize(
    ("done", "name", "body", "status"),
    [
        pytest.param([], "close", {}, "received", id="close before a reply"),
        pytest.param([], "reply", {"commitment": "34" * 32}, "received", id="reply before accepting"),
        pytest.param(["accept"], "accept", {}, "accepted", id="accept twice"),
        pytest.param(["accept"], "rate", {"rating": "satisfied", "resolved": True}, "accepted", id="rate while open"),
        pytest.param(["accept", "reply", "close"], "answer", {"commitment": "12" * 32}, "closed", id="answer a closed case"),
        pytest.param(["accept", "reply", "close"], "escalate", {"reason": "resolution_overdue"}, "closed",
                     id="escalate a closed case"),
    ],
)
def test_a_step_out_of_order_is_refused(
    complaints: MemoryLedger, kit: Kit, done: list[str], name: str, body: dict[str, Any], status: str
) -> None:
    receipt = RECEIPTS["committee"]
    for earlier in done:
        complaints.append(step(kit, receipt, earlier, by="secretary", **({"commitment": "34" * 32} if earlier == "reply" else {})))
    entry = step(kit, receipt, name, by="intake" if name in ("rate", "answer", "escalate") else "secretary", **body)
    refused(complaints.state, entry, RuleViolation, f"^complaint {receipt} is {status}; it cannot take the {name} step$")


def closed_case(ledger: MemoryLedger, kit: Kit, route: str = "committee") -> str:
    receipt = RECEIPTS[route]
    for name, body in (("accept", {}), ("reply", {"commitment": "34" * 32}), ("close", {})):
        ledger.append(step(kit, receipt, name, by="secretary", **body))
    return receipt


@pytest.mark.parametrize(
    ("rating", "resolved"), [("unsatisfied", True), ("satisfied", False)], ids=["unsatisfied", "not resolved"]
)
def test_an_unhappy_villager_reopens_a_case_once_and_escalates_it(
    complaints: MemoryLedger, kit: Kit, rating: str, resolved: bool
) -> None:
    receipt = closed_case(complaints, kit)
    complaints.append(step(kit, receipt, "rate", by="intake", rating=rating, resolved=resolved))
    case = complaints.state.cases[receipt]
    assert (case.status, case.reopened, case.escalated) == ("reopened", True, True)
    complaints.append(step(kit, receipt, "accept", by="township"))  # escalated: the township may take it up
    for name, body in (("reply", {"commitment": "56" * 32}), ("close", {})):
        complaints.append(step(kit, receipt, name, by="township", **body))
    complaints.append(step(kit, receipt, "rate", by="intake", rating=rating, resolved=resolved))
    case = complaints.state.cases[receipt]
    assert (case.status, case.rating, case.resolved) == ("closed", rating, resolved), "reopened once only"


def test_a_case_is_rated_once_per_closing(complaints: MemoryLedger, kit: Kit) -> None:
    receipt = closed_case(complaints, kit)
    complaints.append(step(kit, receipt, "rate", by="intake", rating="satisfied", resolved=True))
    again = step(kit, receipt, "rate", by="intake", rating="unsatisfied", resolved=False)
    refused(complaints.state, again, RuleViolation, f"^complaint {receipt} was already rated since it was closed$")


def test_a_case_is_escalated_once(complaints: MemoryLedger, kit: Kit) -> None:
    receipt = RECEIPTS["grid"]
    complaints.append(step(kit, receipt, "escalate", by="intake", **ESCALATE))
    again = step(kit, receipt, "escalate", by="intake", reason="resolution_overdue")
    refused(complaints.state, again, RuleViolation, f"^complaint {receipt} is already escalated$")


def test_a_case_is_assigned_only_to_one_of_its_handlers(complaints: MemoryLedger, kit: Kit) -> None:
    receipt = RECEIPTS["supervision"]
    complaints.append(step(kit, receipt, "accept", by="supervisor"))
    entry = step(kit, receipt, "assign", by="supervisor", assignee="secretary")
    error = refused(complaints.state, entry, RuleViolation, "^member 'secretary' may not handle a complaint routed to supervision$")
    assert error.field == "entry.body.assignee"


def test_a_step_needs_a_filed_complaint(ledger: MemoryLedger, kit: Kit) -> None:
    refused(ledger.state, step(kit, RECEIPT, "accept", by="secretary"), RuleViolation,
            f"^complaint receipt {RECEIPT} is not in the log$")


# Never a penalty for speaking up

def test_an_upheld_appeal_reverses_the_deduction_it_names(complaints: MemoryLedger, kit: Kit) -> None:
    deduction = complaints.post("points.deduct", {"household": "h2", "rule": "D-01", "amount": 5, "reason": "乱堆乱放"})
    error = refused(complaints.state, reverse(kit, deduction.id, case=RECEIPT), RuleViolation,
                    f"^complaint receipt {RECEIPT} is not in the log$")
    assert error.field == "entry.body.case"
    complaints.append(reverse(kit, deduction.id, case=RECEIPTS["jury"]))
    assert balance(complaints, H2) == 0


def test_a_reversal_linked_to_a_complaint_never_takes_points(complaints: MemoryLedger, kit: Kit, awarded: Entry) -> None:
    refused(complaints.state, reverse(kit, awarded.id, case=RECEIPTS["jury"]), RuleViolation,
            "^a reversal linked to a complaint may only undo a deduction, not a points.award$")


def test_a_deduction_may_not_name_a_complaint(complaints: MemoryLedger, kit: Kit) -> None:
    body = {"household": "h2", "rule": "D-01", "amount": 5, "reason": f"诬告，见投诉 {RECEIPTS['grid']}"}
    error = refused(complaints.state, kit.sign("points.deduct", body), RuleViolation,
                    f"^a deduction may not refer to complaint {RECEIPTS['grid']}$")
    assert error.field == "entry.body.reason"
    complaints.post("points.deduct", {**body, "reason": f"乱堆乱放，照片 {'ab' * 16}"})  # not a receipt id


@pytest.mark.parametrize(
    ("field", "text"),
    [("title_zh", "恶意投诉"), ("title_zh", "越级上访"), ("title_en", "Frivolous APPEALS"), ("description", "reporting via the complaint channel")],
)
def test_no_deduction_rule_may_target_speaking_up(ledger: MemoryLedger, kit: Kit, field: str, text: str) -> None:
    body = {"rule": "D-09", "title_zh": "乱扔垃圾", "title_en": "Littering", "ledger": "morality", "direction": "deduct",
            "amount": 5, "evidence_required": False, field: text}
    approved = kit.sign("rule.publish", body, cosigner="supervisor")  # even a supervisor cannot approve it
    error = refused(ledger.state, approved, RuleViolation, "^a deduction rule may not target speaking up")
    assert error.field == f"entry.body.{field}"
    ledger.post("rule.publish", {**body, "direction": "award", "rule": "M-09"})  # an award for reporting is fine


# Rules, committee ----------------------------------------------------------------------------------------

M01 = {
    "rule": "M-01",
    "title_zh": "垃圾分类",
    "title_en": "Garbage sorting",
    "ledger": "morality",
    "direction": "award",
    "min": 1,
    "max": 20,
    "evidence_required": False,
}


def test_a_new_version_of_a_rule_replaces_it(ledger: MemoryLedger, kit: Kit) -> None:
    assert ledger.state.rules["M-01"].version == 1
    refused(ledger.state, kit.award("h2", 15), RuleViolation, "between 1 and 10")
    ledger.post("rule.publish", M01)
    assert ledger.state.rules["M-01"].version == 2
    ledger.append(kit.award("h2", 15))
    assert balance(ledger, H2) == 15


@pytest.mark.parametrize(
    "change", [{"ledger": "credit"}, {"direction": "deduct"}], ids=["ledger", "direction"]
)
def test_a_new_version_keeps_ledger_and_direction(
    refuse: Callable[..., EntryError], kit: Kit, change: dict[str, str]
) -> None:
    error = refuse(
        kit.sign("rule.publish", {**M01, **change}, cosigner="supervisor" if "direction" in change else None),
        RuleViolation,
        "^a new version of rule M-01 must keep ledger morality and direction award$",
    )
    assert error.field == "entry.body.ledger"


@pytest.fixture
def founder_only(standard: MemoryLedger, kit: Kit) -> MemoryLedger:
    """A village whose only member is the founder."""
    return MemoryLedger.replay(kit, standard.entries[:1])


def test_the_last_committee_key_cannot_be_revoked(founder_only: MemoryLedger, kit: Kit) -> None:
    refused(
        founder_only.state,
        kit.sign("key.revoke", {"key": kit.key_b64("founder"), "reason": "离任"}),
        RuleViolation,
        "^the village would be left with no active committee key; add the new key or member first$",
    )


def test_the_last_committee_member_keeps_the_role(founder_only: MemoryLedger, kit: Kit) -> None:
    refused(
        founder_only.state,
        kit.sign("member.role", {"member": "founder", "roles": []}),
        RuleViolation,
        "^the village would be left with no active committee key; add the new key or member first$",
    )


def test_a_committee_member_may_go_while_another_remains(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.post("key.revoke", {"key": kit.key_b64("chen"), "reason": "离任"})
    ledger.post("member.role", {"member": "secretary", "roles": []})
    refused(
        ledger.state,
        kit.sign("key.revoke", {"key": kit.key_b64("founder"), "reason": "离任"}),
        RuleViolation,
        "^the village would be left with no active committee key; add the new key or member first$",
    )


def test_a_non_canonical_key_in_a_body_is_malformed(ledger: MemoryLedger, kit: Kit) -> None:
    # apply promises an EntryError (the append path positions only EntryErrors within a batch); wherever
    # the key is checked, signing or applying, the refusal is a MalformedEntry naming the field.
    before = snapshot(ledger.state)
    with pytest.raises(MalformedEntry, match="base64") as caught:
        apply(ledger.state, kit.sign("key.revoke", {"key": "A" * 42 + "B=", "reason": "x"}, by="supervisor"))
    assert caught.value.field == "entry.body.key"
    assert snapshot(ledger.state) == before


# Accounting ----------------------------------------------------------------------------------------------


def ledger_totals(state: State) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (_, book), amount in state.balances.items():
        totals[book] = totals.get(book, 0) + amount
    return totals


def test_every_ledger_sums_to_zero_after_ordinary_activity(ledger: MemoryLedger, kit: Kit) -> None:
    for entry in kit.activity(rounds=4):
        ledger.append(entry)
    check_accounts_balance(ledger.state)
    assert set(ledger_totals(ledger.state)) == {"morality", "credit"}
    assert all(total == 0 for total in ledger_totals(ledger.state).values())


def test_an_unbalanced_ledger_is_reported(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.state.balances[(H2, "credit")] = 3
    with pytest.raises(RuleViolation, match="^the credit accounts sum to 3, not zero$"):
        check_accounts_balance(ledger.state)


# Property: any sequence of points entries ----------------------------------------------------------------

# Weighted towards entries that may be accepted, so that both outcomes are exercised often.
SIGNERS_FOR = {
    "points.reverse": [
        "supervisor",
        "founder",
        "secretary",
        "supervisor",
        "chen",
        "grid1",
        "auditor",
        "stranger",
    ],
    "other": [
        "founder",
        "secretary",
        "grid1",
        "grid2",
        "grid1",
        "grid2",
        "chen",
        "supervisor",
        "auditor",
        "stranger",
    ],
}
COSIGNERS = [None] * 8 + ["founder", "secretary", "chen", "grid1"]
RULES_FOR = {
    "points.award": ["M-01", "M-01", "M-05", "C-01", "D-01", "X-99"],
    "points.deduct": ["D-01", "D-01", "D-01", "M-01"],
}
RULE_AMOUNT = {"M-01": 3, "M-05": 50, "D-01": 5, "C-01": 10, "X-99": 1}

operations = st.lists(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["points.award", "points.deduct", "points.redeem", "points.reverse"]),
            "by": st.integers(min_value=0, max_value=9),
            "cosigner": st.sampled_from(COSIGNERS),
            "household": st.sampled_from(["h1", "h2", "h2", "h3", "h3", "h9"]),
            "rule": st.integers(min_value=0, max_value=5),
            "amount": st.none() | st.sampled_from([1, 5, 10, 11, 50]),  # None: the rule's own amount
            "evidence": st.booleans(),
            "target": st.integers(min_value=0, max_value=100),
        }
    ),
    max_size=30,
)


def build(kit: Kit, ledger: MemoryLedger, op: dict[str, Any]) -> Entry:
    """The entry ``op`` describes. A reversal targets an earlier points entry, or else the last entry of the
    setup (a rule) or a missing id."""
    kind, household = op["kind"], op["household"]
    signers = SIGNERS_FOR.get(kind, SIGNERS_FOR["other"])
    by = signers[op["by"] % len(signers)]
    if kind == "points.reverse":
        points = [e.id for e in ledger.entries if e.kind.startswith("points.")]
        candidates = points + [ledger.entries[-1].id, MISSING_ID]
        body: dict[str, Any] = {"entry": candidates[op["target"] % len(candidates)], "reason": "复核"}
    elif kind == "points.redeem":
        body = {"household": household, "amount": op["amount"] or 4, "item": "香皂", "quantity": 1}
    else:
        rules = RULES_FOR[kind]
        rule = rules[op["rule"] % len(rules)]
        body = {
            "household": household,
            "rule": rule,
            "amount": op["amount"] or RULE_AMOUNT[rule],
            "reason": "随机",
        }
        if op["evidence"]:
            body["evidence"] = [EVIDENCE]
    cosigner = op["cosigner"] if op["cosigner"] != by else None
    return kit.sign(kind, body, by=by, cosigner=cosigner)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_any_points_sequence_keeps_the_books(standard: MemoryLedger, ops: list[dict[str, Any]]) -> None:
    kit = standard.kit.copy()
    ledger = standard.copy(kit)
    ledger.append(kit.award("h2", 10))  # something to redeem
    ledger.append(kit.award("h3", 10))
    accepted: list[Entry] = []
    for op in ops:
        entry = build(kit, ledger, op)
        before = snapshot(ledger.state)
        try:
            ledger.append(entry)  # anything but an EntryError fails the test
        except EntryError:
            assert snapshot(ledger.state) == before, "a refused entry changes nothing"
        else:
            accepted.append(entry)
            if entry.kind == "points.redeem":
                assert ledger.state.balance(f"household:{entry.body['household']}", "morality") >= 0, (
                    "no redemption takes a balance below zero"
                )
        check_accounts_balance(ledger.state)
        assert all(total == 0 for total in ledger_totals(ledger.state).values())
    fresh = MemoryLedger.replay(kit, ledger.entries)
    assert snapshot(fresh.state) == snapshot(ledger.state), (
        "replaying the accepted entries reaches the same state"
    )
    assert ledger.entries[len(ledger.entries) - len(accepted) :] == accepted, (
        "the log holds what was accepted"
    )


def test_a_complaint_step_like_every_entry_is_never_dated_before_the_log(complaints: MemoryLedger, kit: Kit) -> None:
    receipt = RECEIPTS["committee"]
    latest = complaints.state.latest_time
    earlier = kit.sign("complaint.step", {"receipt": receipt, "step": "accept"}, by="secretary", time="2025-12-31T23:59:59Z")
    refused(complaints.state, earlier, RuleViolation, rf"^rule 2 \(time\): entry time 2025-12-31T23:59:59Z is more than 5 "
            rf"minutes before the latest time in the log \({latest}\); times never go backwards along the log$")


# Rules 2: checks and balances -----------------------------------------------------------------------------
# What a committee member with a valid key tried (issue: "the committee can never supervise itself"), each
# refused by the ledger itself, so the verifier refuses a log in which a server accepted it.

APPOINTMENTS = r"^rule 2 \(appointments\): only the township may appoint, change or remove a member holding "


def test_the_township_co_founds_the_village(kit: Kit) -> None:
    state = State()
    apply(state, kit.genesis())
    assert state.rules_version == 2
    assert state.members["township"].roles == {"township"} and state.keys[kit.public("township")].member == "township"
    alone = kit.sign("village.genesis", kit.genesis().body)
    error = refused(State(), alone, NotAuthorised, r"^rule 2: the township named as the village's authority co-signs its genesis")
    assert error.field == "entry.cosigner"
    impostor = kit.sign("village.genesis", kit.genesis().body, cosigner="secretary")
    refused(State(), impostor, NotAuthorised, "co-signs its genesis")


@pytest.mark.parametrize(
    ("kind", "body", "held"),
    [
        pytest.param("member.role", {"member": "secretary", "roles": ["committee", "supervisor"]}, "supervisor",
                     id="makes herself supervisor"),
        pytest.param("member.role", {"member": "supervisor", "roles": []}, "supervisor", id="silences a supervisor"),
        pytest.param("member.role", {"member": "secretary", "roles": ["intake"]}, "intake", id="becomes the desk"),
        pytest.param("member.add", {"member": "mole", "name": "自己人", "roles": ["supervisor"], "key": "NEW"}, "supervisor",
                     id="adds her own supervisor"),
        pytest.param("member.add", {"member": "desk2", "name": "假受理台", "roles": ["intake"], "key": "NEW"}, "intake",
                     id="adds a desk of her own"),
        pytest.param("key.revoke", {"key": "INTAKE", "reason": "关闭投诉"}, "intake", id="switches the desk off"),
        pytest.param("key.add", {"member": "supervisor", "key": "NEW"}, "supervisor", id="adds a key to a supervisor"),
        pytest.param("key.revoke", {"key": "TOWNSHIP", "reason": "x"}, "township", id="revokes the township's key"),
    ],
)
def test_the_committee_never_appoints_or_silences_its_supervisors(
    refuse: Callable[..., EntryError], kit: Kit, kind: str, body: dict[str, Any], held: str
) -> None:
    keys_by_word = {"NEW": lambda: kit.new_key("new"), "INTAKE": lambda: kit.key_b64("intake"),
                    "TOWNSHIP": lambda: kit.key_b64("township")}
    body = {name: keys_by_word[value]() if isinstance(value, str) and value in keys_by_word else value
            for name, value in body.items()}
    error = refuse(kit.sign(kind, body, by="secretary"), NotAuthorised, APPOINTMENTS + held)
    assert error.field in ("entry.body.roles", "entry.body.key")


def test_the_township_appoints_the_oversight_side_and_never_the_committees(ledger: MemoryLedger, kit: Kit) -> None:
    ledger.post("member.add", {"member": "xu", "name": "徐德福", "roles": ["supervisor"], "key": kit.new_key("xu")},
                by="township")
    ledger.post("member.role", {"member": "supervisor", "roles": []}, by="township")  # an election replaced her
    assert ledger.state.members["xu"].appointed_by == "township"
    refused(ledger.state, kit.sign("member.role", {"member": "secretary", "roles": []}, by="township"), NotAuthorised,
            r"^rule 2 \(appointments\): only the committee may appoint, change or remove a member holding committee")
    refused(ledger.state, kit.sign("key.revoke", {"key": kit.key_b64("grid1"), "reason": "x"}, by="township"),
            NotAuthorised, r"only the committee may .* grid_worker")


@pytest.mark.parametrize(
    ("by", "body", "message"),
    [
        pytest.param("township", {"member": "x", "name": "两头", "roles": ["supervisor"], "household": "h1"},
                     r"member chen of the same household h1 holds committee; one household may not sit on both",
                     id="a supervisor in a committee member's household"),
        pytest.param("founder", {"member": "x", "name": "两头", "roles": ["committee"], "household": "h2"},
                     r"member sup-h2 of the same household h2 holds supervisor", id="a committee member in a supervisor's household"),
        pytest.param("township", {"member": "x", "name": "受理兼监督", "roles": ["intake", "supervisor"]},
                     r"the complaint desk \(intake\) holds no other role", id="the desk with another role"),
    ],
)
def test_incompatible_roles_are_refused(ledger: MemoryLedger, kit: Kit, by: str, body: dict[str, Any], message: str) -> None:
    ledger.post("member.add", {"member": "sup-h2", "name": "周兰兰", "roles": ["supervisor"], "household": "h2",
                               "key": kit.new_key("sup-h2")}, by="township")
    error = refused(ledger.state, kit.sign("member.add", {**body, "key": kit.new_key("x")}, by=by), RuleViolation,
                    r"^rule 2 \(incompatible roles\): " + message)
    assert error.field == "entry.body.roles"


def test_no_member_holds_both_sides(refuse: Callable[..., EntryError], kit: Kit) -> None:
    # Nobody may give such a member: each side appoints only its own roles...
    refuse(kit.sign("member.role", {"member": "supervisor", "roles": ["supervisor", "committee"]}, by="township"),
           NotAuthorised, r"only the committee may appoint")
    refuse(kit.sign("member.role", {"member": "secretary", "roles": ["committee", "supervisor"]}, by="founder"),
           NotAuthorised, r"only the township may appoint")


def test_a_cosigner_the_author_stands_behind_does_not_count(ledger: MemoryLedger, kit: Kit) -> None:
    """chen (household h1) adds a second 'committee member' for himself, then a key for another member:
    neither cosigns points for h1. A supervisor, or a committee member chen did not appoint, does."""
    ledger.post("member.add", {"member": "puppet", "name": "陈小二", "roles": ["committee"], "key": kit.new_key("puppet")},
                by="chen")
    ledger.post("key.add", {"member": "secretary", "key": kit.new_key("secretary-by-chen")}, by="chen")
    refused(ledger.state, kit.award("h1", by="chen", cosigner="puppet"), NotAuthorised,
            r"^rule 2 \(independent cosigner\): the cosigner puppet was appointed by the author chen$")
    refused(ledger.state, kit.award("h1", by="chen", cosigner="secretary-by-chen"), NotAuthorised,
            r"^rule 2 \(independent cosigner\): the cosigner secretary signs with a key the author chen added$")
    ledger.append(kit.award("h1", 2, by="chen", cosigner="secretary"))
    ledger.append(kit.award("h1", 2, by="chen", cosigner="supervisor"))
    assert balance(ledger, "household:h1") == 4


DEDUCTION_RULE = {"rule": "D-09", "title_zh": "乱扔垃圾", "title_en": "Littering", "ledger": "morality",
                  "direction": "deduct", "amount": 5, "evidence_required": False}


def test_a_deduction_rule_takes_effect_only_when_a_supervisor_approves_it(ledger: MemoryLedger, kit: Kit) -> None:
    error = refused(ledger.state, kit.sign("rule.publish", DEDUCTION_RULE), NotAuthorised,
                    r"^rule 2 \(approval\): a deduction rule takes effect only when a supervisor co-signs it$")
    assert error.field == "entry.cosigner"
    refused(ledger.state, kit.sign("rule.publish", DEDUCTION_RULE, cosigner="secretary"), NotAuthorised,
            r"^rule 2 \(approval\).*; the cosigner secretary holds committee$")
    ledger.post("rule.publish", DEDUCTION_RULE, cosigner="supervisor")
    ledger.post("rule.publish", {**DEDUCTION_RULE, "rule": "M-09", "direction": "award"})  # awards need no approval
    assert {"D-09", "M-09"} <= ledger.state.rules.keys()


@pytest.mark.parametrize("title", ["越级反映", "投 诉", "诬告村干部", "C0mplaining to township", "ｃｏｍｐｌａｉｎｔｓ"])
def test_the_word_filter_sees_through_spacing_and_look_alikes(ledger: MemoryLedger, kit: Kit, title: str) -> None:
    field = "title_en" if title.isascii() or title[0] == "ｃ" else "title_zh"
    entry = kit.sign("rule.publish", {**DEDUCTION_RULE, field: title}, cosigner="supervisor")
    refused(ledger.state, entry, RuleViolation, "^a deduction rule may not target speaking up")


def test_entry_times_never_go_backwards_along_the_log(ledger: MemoryLedger, kit: Kit) -> None:
    kit.clock.set(kit.clock())
    ledger.append(kit.award("h2", 1))
    kit.clock.advance(minutes=-5)
    ledger.append(kit.award("h2", 1))  # a clock a little behind: within the skew
    kit.clock.advance(seconds=-1)
    error = refused(ledger.state, kit.award("h2", 1), RuleViolation, r"^rule 2 \(time\): entry time .* is more than 5 "
                    r"minutes before the latest time in the log")
    assert error.field == "entry.time"


@pytest.mark.parametrize("role", ["township", "intake"])
def test_the_village_keeps_its_township_and_its_desk(ledger: MemoryLedger, kit: Kit, role: str) -> None:
    names = {"township": "township (its outside authority)", "intake": "complaint desk"}
    last = kit.sign("key.revoke", {"key": kit.key_b64(role), "reason": "x"}, by="township")
    refused(ledger.state, last, RuleViolation, f"^the village would be left with no active {re.escape(names[role])} key")
    ledger.post("key.add", {"member": role, "key": kit.new_key(f"{role}-new")}, by="township")
    ledger.append(last)  # replaced: the new key was registered first


def test_a_log_of_rules_1_keeps_the_rules_it_was_written_under(old: MemoryLedger) -> None:
    """Before the checks and balances the committee could appoint supervisors and date entries at will: a
    log written then stays verifiable as it was written."""
    old.post("member.role", {"member": "secretary", "roles": ["committee", "supervisor"]}, by="founder")
    old.post("rule.publish", DEDUCTION_RULE)
    old.post("grid.define", {"grid": "g9", "name": "九组"}, time="2020-01-01T00:00:00Z")
    assert old.state.rules_version == 1 and old.state.latest_time == ""


ID_CARD = "330182198001011231"  # 17 digits and a valid ISO 7064 MOD 11-2 check digit


@pytest.mark.parametrize(
    ("kind", "body", "field", "found"),
    [
        ("points.award", {"household": "h2", "rule": "M-01", "amount": 3, "reason": f"身份证{ID_CARD}"},
         "entry.body.reason", "an ID card number"),
        ("points.award", {"household": "h2", "rule": "M-01", "amount": 3, "reason": "电话 139-1234-5678 王大妈"},
         "entry.body.reason", "a mobile phone number"),
        ("household.update", {"household": "h2", "public": {"label": "王家 13912345678"}},
         "entry.body.public.label", "a mobile phone number"),
        ("affair.publish", {"affair": "f1", "category": "finance", "title": "补贴发放", "text": "打入卡号 6222 0212 3456 7890 128",
                            "date": "2026-01-05", "finance": {"direction": "expense", "amount_fen": 100}},
         "entry.body.text", "a bank card number"),
    ],
)
def test_no_personal_data_enters_the_log_in_free_text(
    ledger: MemoryLedger, kit: Kit, old: MemoryLedger, kind: str, body: dict[str, Any], field: str, found: str
) -> None:
    error = refused(ledger.state, kit.sign(kind, body), RuleViolation,
                    rf"^rule 2 \(personal data\): {re.escape(field)} holds {found}; personal data never goes on the public log")
    assert error.field == field
    old.append(old.kit.sign(kind, body))  # a log of rules 1 stays verifiable as it was written


def test_numbers_that_are_not_personal_data_pass(ledger: MemoryLedger, kit: Kit) -> None:
    for reason in ("订单 1234567890123456", f"编号 {ID_CARD[:-1]}0", "2026年12月8日 清理河道 3 小时", "电话 0571-12345678"):
        ledger.append(kit.award("h2", 1, reason=reason))


SMALL_ORDER_KEY = "xxdqcD1N2E+6PAt2DRBnDyogU/osOczGTsf9d5KsA/o="  # ed25519-speccheck case 0's public key


@pytest.mark.parametrize("kind", ["member.add", "key.add"])
def test_a_key_anyone_could_sign_for_is_never_registered(refuse: Callable[..., EntryError], kit: Kit, kind: str) -> None:
    body = ({"member": "mole", "name": "无钥匙", "roles": ["committee"], "key": SMALL_ORDER_KEY} if kind == "member.add"
            else {"member": "secretary", "key": SMALL_ORDER_KEY})
    error = refuse(kit.sign(kind, body), RuleViolation, r"^rule 2 \(keys\): Ed25519 public key is a point of small order")
    assert error.field == "entry.body.key"
