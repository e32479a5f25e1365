"""A test village: one key per role and helpers to sign its entries, shared by every test layer.

The village is written under rules 2 (``Kit(rules=1)``: a log of the old rules, for the tests that show
those logs stay verifiable). The standard setup (``Kit.setup_entries``) gives:
- grids ``g1`` and ``g2``;
- members: ``founder`` (committee) and ``township`` (the village's outside authority), both from the
  genesis; ``secretary`` (committee), ``chen`` (committee, belongs to household ``h1``: a conflict of
  interest for points on h1), ``grid1``/``grid2`` (grid workers of g1/g2), all added by the founder;
  ``supervisor``, ``auditor``, ``intake`` (the complaint desk), added by the township;
- households ``h1``, ``h2`` (grid g1) and ``h3`` (grid g2);
- rules ``M-01`` (morality award 1..10), ``M-05`` (morality award exactly 50, evidence required),
  ``D-01`` (morality deduction exactly 5, approved by the supervisor), ``C-01`` (credit award exactly 10).

Entries are dated by ``Kit.clock``: the real time unless a test pins it (``clock.set``, ``clock.advance``);
the tests' stores and apps read the same clock, as a server reads its own.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import keys
from ledger.canonical import b64encode
from ledger.entries import Entry, check_signatures, format_time, make_unsigned, new_entry_id, sign_entry
from ledger.state import State, apply

if TYPE_CHECKING:  # the kit itself needs no database: MemoryLedger and the entry builders run without one
    from storage import Appended, Store

MEMBERS: dict[str, dict[str, Any]] = {  # the committee's side, added by the founder
    "secretary": {"name": "李秀英", "roles": ["committee"]},
    "grid1": {"name": "吴海燕", "roles": ["grid_worker"], "grid": "g1"},
    "grid2": {"name": "孙明华", "roles": ["grid_worker"], "grid": "g2"},
}
OVERSIGHT: dict[str, dict[str, Any]] = {  # the oversight side, added by the township
    "supervisor": {"name": "周兰", "roles": ["supervisor"]},
    "auditor": {"name": "乡镇审计", "roles": ["auditor"]},
    "intake": {"name": "投诉受理", "roles": ["intake"]},
}
AUTHORITY = {"member": "township", "name": "乡镇联村干部"}
CONFLICTED = {"chen": {"name": "陈志强", "roles": ["committee"], "household": "h1"}}
HOUSEHOLDS = {"h1": "g1", "h2": "g1", "h3": "g2"}
RULES: dict[str, dict[str, Any]] = {
    "M-01": {"title_zh": "垃圾分类", "title_en": "Garbage sorting", "ledger": "morality", "direction": "award",
             "min": 1, "max": 10, "evidence_required": False},
    "M-05": {"title_zh": "见义勇为", "title_en": "Act of bravery", "ledger": "morality", "direction": "award",
             "amount": 50, "evidence_required": True},
    "D-01": {"title_zh": "乱堆乱放", "title_en": "Rubbish piled in public", "ledger": "morality", "direction": "deduct",
             "amount": 5, "evidence_required": False},
    "C-01": {"title_zh": "按时还贷", "title_en": "Loan repaid on time", "ledger": "credit", "direction": "award",
             "amount": 10, "evidence_required": False},
}
EVIDENCE = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
LOG_KEY_PASSPHRASE = b"test-passphrase"  # what the tests' Stores encrypt log keys with


class Clock:
    """A server's clock in the tests: the real time, until a test pins it (``set``) or moves it on
    (``advance``, which pins it first). Always whole seconds, as entries write time."""

    def __init__(self) -> None:
        self.moment: datetime | None = None

    def __call__(self) -> datetime:
        return self.moment or datetime.now(UTC).replace(microsecond=0)

    def set(self, moment: datetime) -> None:
        self.moment = moment.replace(microsecond=0)

    def advance(self, **delta: float) -> None:
        self.moment = self() + timedelta(**delta)

    def next_month(self) -> None:
        """Move on to 08:00 UTC on the first day of the next month."""
        now = self()
        self.moment = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, 8, tzinfo=UTC)

    def month(self) -> str:
        """The month it is, as the pages and the API name months (YYYY-MM, UTC)."""
        return self().strftime("%Y-%m")


class Kit:
    """Keys and entry builders for one test village. Entry times increase by one second per entry."""

    def __init__(self, slug: str = "testvillage", origin: str | None = None, *, rules: int = 2,
                 clock: Clock | None = None) -> None:
        self.slug = slug
        self.origin = origin or f"villageledger.test/{slug}"
        self.rules = rules
        self.clock = clock or Clock()
        names = ["founder", "township", *MEMBERS, *OVERSIGHT, *CONFLICTED, "stranger"]
        self.keys: dict[str, keys.SigningKey] = {name: keys.SigningKey.generate() for name in names}

    def public(self, name: str) -> bytes:
        return self.keys[name].public_bytes

    def key_b64(self, name: str) -> str:
        return b64encode(self.public(name))

    def new_key(self, name: str) -> str:
        """A fresh key under ``name`` (a member's second phone, a new member), usable as ``by=`` or
        ``cosigner=``; returns its base64 public key for a ``key.add`` or ``member.add`` body."""
        if name in self.keys:
            raise ValueError(f"the kit already has a key named {name!r}")
        self.keys[name] = keys.SigningKey.generate()
        return self.key_b64(name)

    def copy(self) -> Kit:
        """A kit with the same keys and time whose ``new_key`` names and clock stay its own: tests can share
        one signed village (signing is most of the cost of a setup) and still add keys and move time
        independently."""
        twin = copy.copy(self)
        twin.keys = dict(self.keys)
        twin.clock = copy.copy(self.clock)
        return twin

    def _time(self) -> str:
        return format_time(self.clock())

    def unsigned(self, kind: str, body: Mapping[str, Any], *, by: str = "founder", cosigner: str | None = None,
                 **overrides: Any) -> dict[str, Any]:
        unsigned = make_unsigned(
            kind=kind, village=self.slug, body=body, author=self.public(by),
            cosigner=self.public(cosigner) if cosigner else None, time=self._time(),
        )
        unsigned.update(overrides)
        return unsigned

    def sign(self, kind: str, body: Mapping[str, Any], *, by: str = "founder", cosigner: str | None = None,
             **overrides: Any) -> Entry:
        """A signed entry of ``kind`` by the member ``by`` (and ``cosigner``)."""
        unsigned = self.unsigned(kind, body, by=by, cosigner=cosigner, **overrides)
        return sign_entry(unsigned, self.keys[by], self.keys[cosigner] if cosigner else None)

    def genesis(self) -> Entry:
        body = {
            "name": "测试村", "name_en": "Test Village", "township": "新安江街道", "county": "建德市",
            "origin": self.origin, "green_card_threshold": 100, "founder": "founder", "founder_name": "王建国",
        }
        if self.rules == 1:
            return self.sign("village.genesis", body)
        authority = {**AUTHORITY, "key": self.key_b64("township")}
        return self.sign("village.genesis", {**body, "rules": 2, "authority": authority}, cosigner="township")

    def member_body(self, name: str) -> dict[str, Any]:
        spec = {**MEMBERS, **OVERSIGHT, **CONFLICTED, "township": {"name": AUTHORITY["name"], "roles": ["township"]}}[name]
        return {"member": name, "key": self.key_b64(name), **spec}

    @property
    def appointer(self) -> str:
        """Who appoints the oversight side: the township under rules 2, the committee under rules 1."""
        return "township" if self.rules >= 2 else "founder"

    def publish_rule(self, code: str, spec: Mapping[str, Any], *, by: str = "founder") -> Entry:
        """``rule.publish``; a deduction rule approved (co-signed) by the supervisor under rules 2."""
        approver = "supervisor" if spec["direction"] == "deduct" and self.rules >= 2 else None
        return self.sign("rule.publish", {"rule": code, **spec}, by=by, cosigner=approver)

    def setup_entries(self) -> list[Entry]:
        """Everything after genesis that the standard test village has (see the module docstring)."""
        entries = [self.sign("grid.define", {"grid": g, "name": f"{g} 组"}) for g in ("g1", "g2")]
        entries += [self.sign("member.add", self.member_body(name)) for name in MEMBERS]
        oversight = [*OVERSIGHT] if self.rules >= 2 else ["supervisor", "township", "auditor", "intake"]
        entries += [self.sign("member.add", self.member_body(name), by=self.appointer) for name in oversight]
        entries += [
            self.sign("household.register", self.household_body(h, grid)) for h, grid in HOUSEHOLDS.items()
        ]
        entries += [self.sign("member.add", self.member_body(name)) for name in CONFLICTED]
        entries += [self.publish_rule(code, spec) for code, spec in RULES.items()]
        return entries

    @staticmethod
    def household_body(household: str, grid: str) -> dict[str, Any]:
        return {
            "household": household, "grid": grid, "number": f"{grid}-{household}",
            "public": {"label": f"{household}家"}, "commitment": "ab" * 32,
        }

    def award(self, household: str = "h2", amount: int = 5, *, rule: str = "M-01", by: str = "founder",
              cosigner: str | None = None, **extra: Any) -> Entry:
        body = {"household": household, "rule": rule, "amount": amount, "reason": "垃圾分类到位", **extra}
        return self.sign("points.award", body, by=by, cosigner=cosigner)

    def activity(self, rounds: int = 1) -> list[Entry]:
        """A realistic mix of valid entries to append after ``setup_entries`` (about ten a round).

        Every derived table changes: awards, deductions, credit points, redemptions, reversals (every
        third round also an appeal: its receipt, its handling, and the deduction it reverses), and in the first round also a household update and a new
        household, a key added and revoked, a member's roles changed, a rule's new version, a rule
        retired and a published affair.
        """
        entries: list[Entry] = []
        if rounds > 0:
            spare = keys.SigningKey.generate()
            entries += [
                self.award("h2", 50, rule="M-05", evidence=[EVIDENCE]),
                self.sign("household.update", {"household": "h3", "public": {"label": "h3家", "lead_household": True}}),
                self.sign("household.register", self.household_body("h4", "g2"), by="grid2"),
                self.sign("key.add", {"member": "supervisor", "key": b64encode(spare.public_bytes)}, by=self.appointer),
                self.sign("key.revoke", {"key": b64encode(spare.public_bytes), "reason": "设备丢失"}, by=self.appointer),
                self.sign("member.role", {"member": "auditor", "roles": ["auditor", "supervisor"]}, by=self.appointer),
                self.publish_rule("M-01", {**RULES["M-01"], "max": 12}),
                self.sign("rule.retire", {"rule": "M-05", "reason": "并入新版积分细则"}),
                self.sign("affair.publish", {
                    "affair": "meeting-1", "category": "decision", "title": "村民代表大会决议", "text": "通过道路硬化方案",
                    "date": "2026-01-05", "decision": {"meeting": "第一次村民代表大会", "outcome": "通过",
                                                       "votes_for": 31, "votes_against": 2},
                }),
            ]
        for round_ in range(rounds):
            award = self.award("h2", 1 + round_ % 10)
            deduction = self.sign("points.deduct", {"household": "h2", "rule": "D-01", "amount": 5, "reason": "柴草乱堆"})
            entries += [
                award,
                self.award("h1", 3, by="grid1"),
                self.sign("points.award", {"household": "h3", "rule": "C-01", "amount": 10, "reason": "按时还贷"},
                          by="grid2"),
                deduction,
                self.award("h1", 2, by="chen", cosigner="founder"),
                self.sign("points.redeem", {"household": "h1", "amount": 2, "item": "香皂", "quantity": 1}, by="grid1"),
                self.sign("points.reverse", {"entry": award.id, "reason": "登记有误"}, by="supervisor"),
            ]
            if round_ % 3 == 2:
                entries += self.upheld_appeal(deduction)
        return entries

    def upheld_appeal(self, deduction: Entry) -> list[Entry]:
        """An appeal of ``deduction``: filed at the desk, accepted by the supervisors, upheld (the deduction
        reversed, linked to the case) and answered."""
        receipt = new_entry_id()
        return [
            self.sign("complaint.receipt", {"receipt": receipt, "commitment": "cd" * 32, "route": "jury"}, by="intake"),
            self.sign("complaint.step", {"receipt": receipt, "step": "accept"}, by="supervisor"),
            self.sign("points.reverse", {"entry": deduction.id, "reason": "申诉成立，撤销", "case": receipt},
                      by="supervisor"),
            self.sign("complaint.step", {"receipt": receipt, "step": "reply", "commitment": "ef" * 32}, by="supervisor"),
        ]


@dataclass
class StoredVillage:
    """The kit's village kept in a ``storage.Store`` (what the ``village`` fixture gives)."""

    store: Store
    kit: Kit

    @classmethod
    def create(cls, store: Store, kit: Kit, *, setup: bool = True) -> StoredVillage:
        """Append the kit's genesis, and unless ``setup`` is False its ``setup_entries()``, to ``store``."""
        store.create_village(kit.genesis())
        if setup:
            store.append(kit.slug, kit.setup_entries())
        return cls(store, kit)

    @property
    def slug(self) -> str:
        return self.kit.slug

    def append(self, *entries: Entry) -> list[Appended]:
        """Append ``entries`` as one batch."""
        return self.store.append(self.slug, list(entries))

    def size(self) -> int:
        return self.store.size(self.slug)

    def grow(self, size: int, *, batch: int = 100) -> None:
        """Append awards (in batches of ``batch``) until the log holds ``size`` entries."""
        while (missing := size - self.size()) > 0:
            self.append(*[self.kit.award("h1", 1) for _ in range(min(missing, batch))])

    def trusted(self) -> list[keys.NoteVerifier]:
        """The village's note verifiers, as an auditor would hold them."""
        return [keys.parse_verifier_key(v) for v in self.store.verifier_keys(self.slug)]


class MemoryLedger:
    """A village replayed in memory through ``ledger.state.apply``: the verifier's view, no database."""

    def __init__(self, kit: Kit, *, setup: bool = True) -> None:
        self.kit = kit
        self.state = State()
        self.entries: list[Entry] = []
        self.append(kit.genesis())
        if setup:
            for entry in kit.setup_entries():
                self.append(entry)

    @classmethod
    def replay(cls, kit: Kit, entries: Iterable[Entry]) -> MemoryLedger:
        """A fresh ledger holding exactly ``entries`` (genesis first), each checked and applied in order."""
        ledger = cls.__new__(cls)
        ledger.kit, ledger.state, ledger.entries = kit, State(), []
        for entry in entries:
            ledger.append(entry)
        return ledger

    def copy(self, kit: Kit | None = None) -> MemoryLedger:
        """An independent ledger with the same entries and a copy of the state, signing with ``kit`` (by
        default this ledger's). ``State.copy`` shares only records that ``apply`` never changes."""
        twin = copy.copy(self)
        twin.kit, twin.state, twin.entries = kit or self.kit, self.state.copy(), list(self.entries)
        return twin

    def append(self, entry: Entry) -> Entry:
        check_signatures(entry)
        apply(self.state, entry)
        self.entries.append(entry)
        return entry

    def post(self, kind: str, body: Mapping[str, Any], **options: Any) -> Entry:
        return self.append(self.kit.sign(kind, body, **options))
