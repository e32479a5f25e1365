"""The state of one village's ledger, and ``apply``: the one code path that decides whether an entry may
be appended at a point of the log and what it changes.

The append path (storage) and the offline verifier both call ``apply``; nothing else decides.

Plan of ``apply(state, entry)``:
  (1) the entry belongs to this village and is at the right place (genesis first and only first);
  (2) its id is new (no replay); under rules 2 its time is not more than ``ORDER_SKEW`` before the
      latest time already in the log (times never go backwards along the log);
  (3) every signing key is registered, active, and belongs to a member who still has a role;
  (4) the author's role allows this kind, for this target (grid workers: only their grid); under rules 2
      only the township appoints, changes or removes oversight members (supervisor, township, intake,
      auditor) and their keys, and only the committee its own side (committee, grid workers);
  (5) cosigners: points touching the author's own household need an independent cosigner; under rules 2
      a deduction rule needs a supervisor's, and no cosigner the author stands behind counts;
  (6) the kind's own rules (rule bounds, evidence, balances, reversal targets, incompatible roles...);
  (7) only then is the state changed, so a refused entry changes nothing.

The rules of a log are named by its genesis (``Village.rules``): 1 for logs written before the checks and
balances, which stay verifiable under the rules they were written under; 2 for every new village.

Accounts: every ledger (``morality``, ``credit``) has the village's issuing account ``village``, the points
supermarket ``supermarket`` and one account per household ``household:<id>``. Every movement debits one
account and credits another by the same amount, so the balances of a ledger always sum to zero.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

import keys

from .canonical import b64decode, b64encode
from .entries import Entry, entry_time, parse_time
from .errors import NotAuthorised, Replay, RuleViolation, SignatureError
from .kinds import KINDS, SIGNING_ROLES, free_texts
from .personal import find_personal_data

ISSUER = "village"
SUPERMARKET = "supermarket"
# Rules 2: the two sides of a village. The committee's side runs the village; the oversight side watches it
# and is appointed by the township alone. No member, and no two members of one household, sit on both.
COMMITTEE_SIDE = frozenset({"committee", "grid_worker"})
OVERSIGHT_SIDE = frozenset({"supervisor", "township", "intake", "auditor"})
APPOINTS = {"committee": COMMITTEE_SIDE, "township": OVERSIGHT_SIDE}
ORDER_SKEW = timedelta(minutes=5)  # how far an entry's time may lie before the latest time in the log

# Words that make a deduction rule a penalty for speaking up (complaining, reporting, appealing, petitioning).
# A first filter only: under rules 2 no deduction rule takes effect without a supervisor's cosignature.
SPEAKING_UP = ("投诉", "举报", "申诉", "信访", "上访", "告状", "反映问题", "越级", "诬告", "检举", "揭发",
               "complain", "appeal", "petition", "whistleblow")
# Look-alike characters folded before matching ("C0mplaining", "投 诉"): digits read as letters.
_LOOKALIKES = str.maketrans("013457@$", "oieastas")
_ENTRY_ID_IN_TEXT = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def household_account(household: str) -> str:
    return f"household:{household}"


@dataclass(frozen=True)
class Village:
    slug: str
    name: str
    name_en: str | None
    township: str
    county: str
    origin: str
    green_card_threshold: int
    rules: int = 1


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    roles: frozenset[str]
    grid: str | None
    household: str | None
    added_at: int
    appointed_by: str | None = None  # who added the member or last set its roles (None: the genesis)


@dataclass(frozen=True)
class KeyRecord:
    public: bytes
    member: str
    added_at: int
    revoked_at: int | None = None
    added_by: str | None = None  # the member who signed its key.add or member.add (None: the genesis)


@dataclass(frozen=True)
class Grid:
    id: str
    name: str
    name_en: str | None
    defined_at: int


@dataclass(frozen=True)
class Household:
    id: str
    grid: str
    number: str
    public: Mapping[str, Any]
    commitment: str
    registered_at: int
    updated_at: int


@dataclass(frozen=True)
class Rule:
    code: str
    version: int
    title_zh: str
    title_en: str
    ledger: str
    direction: str
    amount: int | None
    min: int | None
    max: int | None
    evidence_required: bool
    description: str | None
    published_at: int
    retired_at: int | None = None

    def bounds(self) -> tuple[int, int]:
        if self.amount is not None:
            return self.amount, self.amount
        assert self.min is not None and self.max is not None
        return self.min, self.max


class Movement(NamedTuple):
    """A points entry as the ledger remembers it: ``amount`` moved from ``debit`` to ``credit``. (A tuple:
    most entries make one, and a frozen dataclass takes ten times as long to build.)"""

    entry_id: str
    index: int  # type: ignore[assignment]  # the field shadows tuple.index, which nothing here calls
    kind: str
    ledger: str
    household: str
    debit: str
    credit: str
    amount: int


OPEN = frozenset({"received", "accepted", "assigned", "in_progress", "replied", "reopened"})


@dataclass(frozen=True)
class Case:
    """A complaint as the log knows it: where it was routed and how far its handling has gone. Its content
    is off the log; only the commitments in its entries bind it. Times are the entries' UTC times."""

    receipt: str
    route: str
    grid: str | None
    status: str
    filed_at: int
    filed: str
    accepted: str | None = None
    replied: str | None = None
    closed: str | None = None
    rating: str | None = None
    resolved: bool | None = None
    reopened: bool = False
    escalated: bool = False
    updated_at: int = 0


class EntryIndex(Protocol):
    """Lookups over all earlier entries, which may be too many to hold in memory (a database table)."""

    def contains(self, entry_id: str) -> bool: ...

    def movement(self, entry_id: str) -> Movement | None: ...

    def reversed_by(self, entry_id: str) -> str | None: ...


class MemoryIndex:
    """An EntryIndex held in memory: the verifier's, and a store's overlay for a batch."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.movements: dict[str, Movement] = {}
        self.reversals: dict[str, str] = {}

    def contains(self, entry_id: str) -> bool:
        return entry_id in self.ids

    def movement(self, entry_id: str) -> Movement | None:
        return self.movements.get(entry_id)

    def reversed_by(self, entry_id: str) -> str | None:
        return self.reversals.get(entry_id)


class _Layered:
    """Recent entries (not yet persisted) over a backing index."""

    def __init__(self, recent: MemoryIndex, backing: EntryIndex) -> None:
        self.recent, self.backing = recent, backing

    def contains(self, entry_id: str) -> bool:
        return self.recent.contains(entry_id) or self.backing.contains(entry_id)

    def movement(self, entry_id: str) -> Movement | None:
        return self.recent.movement(entry_id) or self.backing.movement(entry_id)

    def reversed_by(self, entry_id: str) -> str | None:
        return self.recent.reversed_by(entry_id) or self.backing.reversed_by(entry_id)


@dataclass
class Changes:
    """What ``apply`` changed, so a store can persist exactly those derived rows."""

    members: set[str] = field(default_factory=set)
    keys: set[bytes] = field(default_factory=set)
    grids: set[str] = field(default_factory=set)
    households: set[str] = field(default_factory=set)
    rules: set[str] = field(default_factory=set)
    balances: set[tuple[str, str]] = field(default_factory=set)
    cases: set[str] = field(default_factory=set)

    def update(self, other: Changes) -> None:
        for name in ("members", "keys", "grids", "households", "rules", "balances", "cases"):
            getattr(self, name).update(getattr(other, name))


@dataclass
class State:
    """The village as replayed from its first ``size`` entries.

    Small parts (members, keys, grids, households, rules, balances) are held here; per-entry facts are
    looked up through ``index`` (entries applied since ``recent`` was last cleared are in ``recent``).
    """

    index: EntryIndex = field(default_factory=MemoryIndex)
    size: int = 0
    village: Village | None = None
    members: dict[str, Member] = field(default_factory=dict)
    keys: dict[bytes, KeyRecord] = field(default_factory=dict)
    grids: dict[str, Grid] = field(default_factory=dict)
    households: dict[str, Household] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)
    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)
    latest_time: str = ""  # the latest entry time in the log ("" before the genesis)
    recent: MemoryIndex = field(default_factory=MemoryIndex)

    def copy(self) -> State:
        """An independent copy sharing the (immutable) records and the backing index."""
        recent = MemoryIndex()
        recent.ids = set(self.recent.ids)
        recent.movements = dict(self.recent.movements)
        recent.reversals = dict(self.recent.reversals)
        return replace(
            self,
            members=dict(self.members),
            keys=dict(self.keys),
            grids=dict(self.grids),
            households=dict(self.households),
            rules=dict(self.rules),
            balances=dict(self.balances),
            cases=dict(self.cases),
            recent=recent,
        )

    @property
    def lookups(self) -> EntryIndex:
        return _Layered(self.recent, self.index)

    @property
    def rules_version(self) -> int:
        return self.village.rules if self.village else 1

    def balance(self, account: str, ledger: str) -> int:
        return self.balances.get((account, ledger), 0)

    def active_keys_of(self, role: str) -> list[bytes]:
        return [k.public for k in self.keys.values() if k.revoked_at is None and role in self.members[k.member].roles]


# --- (1)-(5): who may append what ------------------------------------------------------------------


def _active_member(state: State, public: bytes, role_name: str) -> Member:
    record = state.keys.get(public)
    if record is None:
        raise NotAuthorised(f"the {role_name} key {b64encode(public)} is not registered in this village", field=f"entry.{role_name}")
    if record.revoked_at is not None:
        raise NotAuthorised(
            f"the {role_name} key {b64encode(public)} was revoked at index {record.revoked_at}", field=f"entry.{role_name}"
        )
    member = state.members[record.member]
    if not member.roles & SIGNING_ROLES:
        held = ", ".join(sorted(member.roles)) or "no role"
        raise NotAuthorised(f"member {member.id} ({held}) may not sign entries", field=f"entry.{role_name}")
    return member


def _target_household(state: State, entry: Entry) -> str | None:
    """The household a points entry touches (for a reversal: the reversed entry's household)."""
    if entry.kind == "points.reverse":
        target = state.lookups.movement(entry.body["entry"])
        return target.household if target else None
    household = entry.body.get("household")
    return household if isinstance(household, str) else None


def _grids_touched(state: State, entry: Entry) -> set[str]:
    """Grids an entry acts in, for the grid-worker limit."""
    grids: set[str] = set()
    household_id = _target_household(state, entry)
    if household_id in state.households:
        grids.add(state.households[household_id].grid)
    if entry.kind == "household.register":
        grids.add(entry.body["grid"])
    if entry.kind == "household.update" and "grid" in entry.body:
        grids.add(entry.body["grid"])
    return grids


_GRID_WORKER_ONLY = frozenset({"grid_worker"})


def authorise(state: State, entry: Entry) -> Member:
    """Steps (1)-(5): raise unless the signing keys may append ``entry`` at ``state.size``. Returns the author."""
    # (1)
    if entry.kind == "village.genesis" or state.village is None:
        _check_genesis_place(state, entry)
        return Member(entry.body["founder"], entry.body["founder_name"], frozenset({"committee"}), None, None, 0)
    if entry.village != state.village.slug:
        raise NotAuthorised(f"entry is for village {entry.village!r}, this log is {state.village.slug!r}", field="entry.village")
    # (2)
    if state.lookups.contains(entry.id):
        raise Replay(f"entry {entry.id} is already in the log", field="entry.id")
    checks_and_balances = state.village.rules >= 2
    if checks_and_balances:
        _check_time_order(state, entry)
    # (3)
    author = _active_member(state, entry.author, "author")
    # (4)
    acting_as = author.roles & KINDS[entry.kind].may_sign(state.village.rules)
    if not acting_as:
        held = ", ".join(sorted(author.roles))
        raise NotAuthorised(f"a member with role {held} may not sign {entry.kind}", field="entry.kind")
    if checks_and_balances:
        _check_appointer(state, entry, author)
    elif entry.kind == "key.revoke" and "committee" not in author.roles:
        _check_own_key(state, entry, author)
    if acting_as == _GRID_WORKER_ONLY:
        _check_own_grid(state, entry, author)
    # (5)
    if checks_and_balances:
        _check_cosigner(state, entry, author)
    else:
        _check_cosigner_v1(state, entry, author)
    return author


def _check_genesis_place(state: State, entry: Entry) -> None:
    if state.size != 0 or state.village is not None:
        raise NotAuthorised("village.genesis may only be the first entry of a log", field="entry.kind")
    if entry.kind != "village.genesis":
        raise NotAuthorised(f"the first entry must be village.genesis, not {entry.kind}", field="entry.kind")
    authority = entry.body.get("authority")
    if authority is None and entry.cosigner is not None:
        raise NotAuthorised("village.genesis is signed by the founder alone under rules 1", field="entry.cosigner")
    if authority is not None and entry.cosigner != b64decode(authority["key"], length=32, what="body.authority.key"):
        raise NotAuthorised("rule 2: the township named as the village's authority co-signs its genesis "
                            "(the cosigner must be body.authority.key)", field="entry.cosigner")


def _check_time_order(state: State, entry: Entry) -> None:
    """Rules 2: an entry's time lies at most ORDER_SKEW before the latest time in the log. (The server
    also refuses a time more than its clock skew from its own clock; this part the verifier replays.)"""
    if entry.time >= state.latest_time:  # the usual case, decided on the text (same fixed format)
        return
    if entry_time(entry) < parse_time(state.latest_time) - ORDER_SKEW:
        raise RuleViolation(
            f"rule 2 (time): entry time {entry.time} is more than {ORDER_SKEW.seconds // 60} minutes before "
            f"the latest time in the log ({state.latest_time}); times never go backwards along the log",
            field="entry.time",
        )


def _check_own_key(state: State, entry: Entry, author: Member) -> None:
    """Rules 1: a member who is not on the committee may revoke their own keys (a lost phone), nobody
    else's. Adding keys is the committee's alone: a stolen key must not be able to mint one that outlives it."""
    owner = _key_owner(state, entry, author)
    if owner != author.id:
        raise NotAuthorised(f"only the committee may revoke another member's keys ({owner})", field="entry.body.key")


def _key_owner(state: State, entry: Entry, author: Member) -> str:
    record = state.keys.get(b64decode(entry.body["key"], length=32, what="body.key"))
    return record.member if record else author.id


def _roles_at_stake(state: State, entry: Entry, author: Member) -> frozenset[str] | None:
    """The roles an appointment entry gives, takes or touches the keys of (None: not an appointment, or
    a member revoking their own key)."""
    body = entry.body
    if entry.kind == "member.add":
        return frozenset(body["roles"])
    if entry.kind == "member.role":
        member = state.members.get(body["member"])
        return frozenset(body["roles"]) | (member.roles if member else frozenset())
    if entry.kind == "key.add":
        member = state.members.get(body["member"])
        return member.roles if member else frozenset()
    if entry.kind == "key.revoke":
        owner = _key_owner(state, entry, author)
        return None if owner == author.id else state.members[owner].roles
    return None


def _check_appointer(state: State, entry: Entry, author: Member) -> None:
    """Rules 2: the committee appoints its own side, the township the oversight side; nobody the other's.
    A member may always revoke their own key (a lost phone)."""
    at_stake = _roles_at_stake(state, entry, author)
    if at_stake is None:
        return
    may = frozenset().union(*(APPOINTS[role] for role in author.roles if role in APPOINTS))
    beyond = at_stake - may
    if beyond:
        who = "the township" if beyond & OVERSIGHT_SIDE else "the committee"
        raise NotAuthorised(
            f"rule 2 (appointments): only {who} may appoint, change or remove a member holding "
            f"{', '.join(sorted(beyond))}, or add or revoke their keys; {author.id} may not",
            field="entry.body.roles" if entry.kind.startswith("member.") else "entry.body.key",
        )


def _check_own_grid(state: State, entry: Entry, author: Member) -> None:
    outside = sorted(g for g in _grids_touched(state, entry) if g != author.grid)
    if outside:
        raise NotAuthorised(
            f"grid worker {author.id} may act only in grid {author.grid}, not {', '.join(outside)}",
            field="entry.body.household",
        )


def _check_cosigner_v1(state: State, entry: Entry, author: Member) -> None:
    target = _target_household(state, entry) if KINDS[entry.kind].moves_points else None
    conflicted = target is not None and author.household == target
    if entry.cosigner is None:
        if conflicted:
            raise NotAuthorised(
                f"member {author.id} belongs to household {target}: points for it need a cosignature "
                "from another committee member",
                field="entry.cosigner",
            )
        return
    cosigner = _active_member(state, entry.cosigner, "cosigner")
    if cosigner.id == author.id:
        raise NotAuthorised("the cosigner must be a different member from the author", field="entry.cosigner")
    if "committee" not in cosigner.roles:
        raise NotAuthorised(f"the cosigner {cosigner.id} is not a committee member", field="entry.cosigner")
    if target is not None and cosigner.household == target:
        raise NotAuthorised(f"the cosigner {cosigner.id} also belongs to household {target}", field="entry.cosigner")


def cosigner_needed(state: State, entry: Entry, author: Member) -> tuple[frozenset[str], str] | None:
    """Rules 2: the roles a cosigner of ``entry`` must hold one of, and why; None if it needs none."""
    if entry.kind == "rule.publish" and entry.body["direction"] == "deduct":
        return frozenset({"supervisor"}), "rule 2 (approval): a deduction rule takes effect only when a supervisor co-signs it"
    target = _target_household(state, entry) if KINDS[entry.kind].moves_points else None
    if target is not None and author.household == target:
        return frozenset({"committee", "supervisor"}), (
            f"rule 2 (conflict of interest): member {author.id} belongs to household {target}: points for it "
            "need the cosignature of an independent committee member or a supervisor"
        )
    return None


def _check_cosigner(state: State, entry: Entry, author: Member) -> None:
    """Rules 2: a required cosigner is there, holds a role that may approve, and is independent of the author."""
    needed = cosigner_needed(state, entry, author)
    if entry.cosigner is None:
        if needed:
            raise NotAuthorised(needed[1], field="entry.cosigner")
        return
    cosigner = _active_member(state, entry.cosigner, "cosigner")
    roles, why = needed or (frozenset({"committee", "supervisor"}), "a cosigner is a committee member or a supervisor")
    if not cosigner.roles & roles:
        raise NotAuthorised(f"{why}; the cosigner {cosigner.id} holds {', '.join(sorted(cosigner.roles))}",
                            field="entry.cosigner")
    _check_independent(state, entry, author, cosigner)


def _check_independent(state: State, entry: Entry, author: Member, cosigner: Member) -> None:
    """A cosigner is another person than the author: not the author under another id, not of the author's
    household (nor of the household the entry is about), not appointed by the author, not holding a key the
    author added (so members the author creates in the same breath cannot cosign for the author)."""
    target = _target_household(state, entry) if KINDS[entry.kind].moves_points else None
    reason = None
    if cosigner.id == author.id:
        reason = "is the author"
    elif author.household is not None and cosigner.household == author.household:
        reason = f"belongs to the author's household {author.household}"
    elif target is not None and cosigner.household == target:
        reason = f"belongs to household {target}, which the entry is about"
    elif cosigner.appointed_by == author.id:
        reason = f"was appointed by the author {author.id}"
    elif state.keys[entry.cosigner].added_by == author.id:  # type: ignore[index]
        reason = f"signs with a key the author {author.id} added"
    if reason:
        raise NotAuthorised(f"rule 2 (independent cosigner): the cosigner {cosigner.id} {reason}", field="entry.cosigner")


# --- (6)-(7): what each kind requires and changes -------------------------------------------------


def apply(state: State, entry: Entry) -> Changes:
    """Append ``entry`` at index ``state.size``: authorise it, check its kind's rules, then change the state.

    Raises an EntryError (and changes nothing) if the entry may not be appended here. Signatures are
    not checked here (see ``entries.check_signatures``): callers verify them first, possibly in parallel.
    """
    author = authorise(state, entry)
    if state.rules_version >= 2:
        _check_no_personal_data(entry)
    changes = Changes()
    _APPLY[entry.kind](state, entry, author, changes)
    state.recent.ids.add(entry.id)
    state.size += 1
    if entry.time > state.latest_time and state.rules_version >= 2:
        state.latest_time = entry.time
    return changes


def _check_no_personal_data(entry: Entry) -> None:
    """Rules 2: no free-text field holds an ID card, mobile phone or bank card number (the log cannot be
    erased; personal data lives in the erasable register, committed to by a salted hash)."""
    for where, text in free_texts(entry.kind, entry.body):
        found = find_personal_data(text)
        if found:
            raise RuleViolation(f"rule 2 (personal data): {where} holds {found}; personal data never goes on the "
                                "public log (PIPL): keep it in the household's register", field=where)


def _genesis(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    body = entry.body
    founded = [(body["founder"], body["founder_name"], "committee", entry.author, "entry.author")]
    if "authority" in body:
        authority = body["authority"]
        founded.append((authority["member"], authority["name"], "township", b64decode(authority["key"], length=32),
                        "entry.body.authority.key"))
    if body.get("rules", 1) >= 2:
        for *_named, public, where in founded:
            _require_member_key(public, where)
    state.village = Village(
        slug=entry.village,
        name=body["name"],
        name_en=body.get("name_en"),
        township=body["township"],
        county=body["county"],
        origin=body["origin"],
        green_card_threshold=body["green_card_threshold"],
        rules=body.get("rules", 1),
    )
    for member_id, name, role, public, _where in founded:
        state.members[member_id] = Member(member_id, name, frozenset({role}), None, None, state.size)
        state.keys[public] = KeyRecord(public, member_id, state.size)
        changes.members.add(member_id)
        changes.keys.add(public)


def _require_grid(state: State, grid: str | None, name: str = "grid") -> None:
    if grid is not None and grid not in state.grids:
        raise RuleViolation(f"grid {grid!r} is not defined", field=f"entry.body.{name}")


def _require_household(state: State, household: str) -> Household:
    if household not in state.households:
        raise RuleViolation(f"household {household!r} is not registered", field="entry.body.household")
    return state.households[household]


def _require_member(state: State, member: str) -> Member:
    if member not in state.members:
        raise RuleViolation(f"member {member!r} does not exist", field="entry.body.member")
    return state.members[member]


def _require_new_key(state: State, public: bytes, field: str = "entry.body.key") -> None:
    if public in state.keys:
        raise RuleViolation(f"key {b64encode(public)} is already registered", field=field)
    if state.rules_version >= 2:
        _require_member_key(public, field)


def _require_member_key(public: bytes, field: str) -> None:
    """Rules 2: a key registered for a member is a point of the prime-order subgroup (keys.require_member_key)."""
    try:
        keys.require_member_key(public)
    except SignatureError as exc:
        raise RuleViolation(f"rule 2 (keys): {exc}: no signature under it would prove anything", field=field) from exc


# Roles a village must never be left without an active key of: under rules 1 the committee; under rules 2
# also its outside authority (the township) and, once it has one, its complaint desk.
KEPT_ROLES = {1: ("committee",), 2: ("committee", "township", "intake")}
_KEPT_NAMES = {"committee": "committee", "township": "township (its outside authority)", "intake": "complaint desk"}


def _keep_roles(state: State, *, member: Member, without_roles: frozenset[str] = frozenset(),
                without_key: bytes | None = None) -> None:
    """Refuse a change that takes the last active key of a kept role from the village: the member loses
    ``without_roles``, or the key ``without_key`` is revoked. (A desk is replaced by adding its new key first.)"""
    for role in KEPT_ROLES[state.rules_version]:
        if role not in member.roles or (without_key is None and role not in without_roles):
            continue
        remaining = [k for k in state.active_keys_of(role)
                     if k != without_key and (without_key is not None or state.keys[k].member != member.id)]
        if not remaining:
            raise RuleViolation(f"the village would be left with no active {_KEPT_NAMES[role]} key; add the new "
                                "key or member first", field="entry.body")


def _check_compatible(state: State, member: Member) -> None:
    """Rules 2: committee and grid workers on one side, supervisors, township, desk and auditors on the
    other: no member holds both, nor do two members of one household (the Organic Law of Villagers'
    Committees keeps committee members and their close relatives off the supervision committee); the desk
    holds no other role."""
    roles = member.roles
    if "intake" in roles and len(roles) > 1:
        raise RuleViolation("rule 2 (incompatible roles): the complaint desk (intake) holds no other role",
                            field="entry.body.roles")
    if roles & COMMITTEE_SIDE and roles & OVERSIGHT_SIDE:
        raise RuleViolation(
            f"rule 2 (incompatible roles): {', '.join(sorted(roles & COMMITTEE_SIDE))} and "
            f"{', '.join(sorted(roles & OVERSIGHT_SIDE))} may not be held together", field="entry.body.roles")
    if member.household is None:
        return
    for other in state.members.values():
        if other.id != member.id and other.household == member.household and (
            (roles & COMMITTEE_SIDE and other.roles & OVERSIGHT_SIDE) or (roles & OVERSIGHT_SIDE and other.roles & COMMITTEE_SIDE)
        ):
            raise RuleViolation(
                f"rule 2 (incompatible roles): member {other.id} of the same household {member.household} holds "
                f"{', '.join(sorted(other.roles))}; one household may not sit on both the committee's side and "
                "the supervision side", field="entry.body.roles")


def _recorded(state: State, author: Member) -> str | None:
    """Who appointed a member or added a key, as rules 2 remember it (rules 1 logs never read it)."""
    return author.id if state.rules_version >= 2 else None


def _member_add(state: State, entry: Entry, author: Member, changes: Changes) -> None:
    body = entry.body
    if body["member"] in state.members:
        raise RuleViolation(f"member {body['member']!r} already exists", field="entry.body.member")
    _require_grid(state, body.get("grid"))
    if body.get("household") is not None:
        _require_household(state, body["household"])
    public = b64decode(body["key"], length=32, what="body.key")
    _require_new_key(state, public)
    member = Member(body["member"], body["name"], frozenset(body["roles"]), body.get("grid"), body.get("household"),
                    state.size, appointed_by=_recorded(state, author))
    if state.rules_version >= 2:
        _check_compatible(state, member)
    state.members[member.id] = member
    state.keys[public] = KeyRecord(public, member.id, state.size, added_by=_recorded(state, author))
    changes.members.add(member.id)
    changes.keys.add(public)


def _member_role(state: State, entry: Entry, author: Member, changes: Changes) -> None:
    body = entry.body
    member = _require_member(state, body["member"])
    _require_grid(state, body.get("grid"))
    roles = frozenset(body["roles"])
    _keep_roles(state, member=member, without_roles=member.roles - roles)
    changed = replace(member, roles=roles, grid=body.get("grid"), appointed_by=_recorded(state, author))
    if state.rules_version >= 2:
        _check_compatible(state, changed)
    state.members[member.id] = changed
    changes.members.add(member.id)


def _key_add(state: State, entry: Entry, author: Member, changes: Changes) -> None:
    _require_member(state, entry.body["member"])
    public = b64decode(entry.body["key"], length=32, what="body.key")
    _require_new_key(state, public)
    state.keys[public] = KeyRecord(public, entry.body["member"], state.size, added_by=_recorded(state, author))
    changes.keys.add(public)


def _key_revoke(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    public = b64decode(entry.body["key"], length=32, what="body.key")
    record = state.keys.get(public)
    if record is None:
        raise RuleViolation(f"key {entry.body['key']} is not registered", field="entry.body.key")
    if record.revoked_at is not None:
        raise RuleViolation(f"key {entry.body['key']} was already revoked at index {record.revoked_at}", field="entry.body.key")
    _keep_roles(state, member=state.members[record.member], without_key=public)
    state.keys[public] = replace(record, revoked_at=state.size)
    changes.keys.add(public)


def _grid_define(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    body = entry.body
    if body["grid"] in state.grids:
        raise RuleViolation(f"grid {body['grid']!r} is already defined", field="entry.body.grid")
    state.grids[body["grid"]] = Grid(body["grid"], body["name"], body.get("name_en"), state.size)
    changes.grids.add(body["grid"])


def _household_register(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    body = entry.body
    if body["household"] in state.households:
        raise RuleViolation(f"household {body['household']!r} is already registered", field="entry.body.household")
    _require_grid(state, body["grid"])
    state.households[body["household"]] = Household(
        body["household"], body["grid"], body["number"], dict(body["public"]), body["commitment"], state.size, state.size
    )
    changes.households.add(body["household"])


def _household_update(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    body = entry.body
    household = _require_household(state, body["household"])
    _require_grid(state, body.get("grid"))
    state.households[household.id] = replace(
        household,
        grid=body.get("grid", household.grid),
        number=body.get("number", household.number),
        public=dict(body.get("public", household.public)),
        commitment=body.get("commitment", household.commitment),
        updated_at=state.size,
    )
    changes.households.add(household.id)


def _rule_publish(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    body = entry.body
    if body["direction"] == "deduct":
        _check_rule_spares_speaking_up(body)
    previous = state.rules.get(body["rule"])
    if previous is not None and (previous.ledger, previous.direction) != (body["ledger"], body["direction"]):
        raise RuleViolation(
            f"a new version of rule {body['rule']} must keep ledger {previous.ledger} and direction {previous.direction}",
            field="entry.body.ledger",
        )
    state.rules[body["rule"]] = Rule(
        code=body["rule"],
        version=previous.version + 1 if previous else 1,
        title_zh=body["title_zh"],
        title_en=body["title_en"],
        ledger=body["ledger"],
        direction=body["direction"],
        amount=body.get("amount"),
        min=body.get("min"),
        max=body.get("max"),
        evidence_required=body["evidence_required"],
        description=body.get("description"),
        published_at=state.size,
    )
    changes.rules.add(body["rule"])


def _check_rule_spares_speaking_up(body: Mapping[str, Any]) -> None:
    """No deduction rule may target complaining, reporting, appealing or petitioning (a first filter: the
    text is folded to compatible forms, look-alike digits, without spaces or punctuation, before matching)."""
    for name in ("title_zh", "title_en", "description"):
        folded = unicodedata.normalize("NFKC", str(body.get(name, ""))).lower().translate(_LOOKALIKES)
        text = "".join(ch for ch in folded if ch.isalnum())
        for word in SPEAKING_UP:
            if word in text:
                raise RuleViolation(f"a deduction rule may not target speaking up ({word!r})", field=f"entry.body.{name}")


def _rule_retire(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    rule = state.rules.get(entry.body["rule"])
    if rule is None:
        raise RuleViolation(f"rule {entry.body['rule']} does not exist", field="entry.body.rule")
    if rule.retired_at is not None:
        raise RuleViolation(f"rule {rule.code} was already retired at index {rule.retired_at}", field="entry.body.rule")
    state.rules[rule.code] = replace(rule, retired_at=state.size)
    changes.rules.add(rule.code)


def _move(state: State, entry: Entry, changes: Changes, *, ledger: str, household: str, debit: str, credit: str, amount: int) -> None:
    """Move ``amount`` from ``debit`` to ``credit`` and remember the movement for later reversal."""
    balances = state.balances
    for account, delta in ((debit, -amount), (credit, amount)):
        key = (account, ledger)
        balances[key] = balances.get(key, 0) + delta
        changes.balances.add(key)
    state.recent.movements[entry.id] = Movement(entry.id, state.size, entry.kind, ledger, household, debit, credit, amount)


def _points_by_rule(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    body = entry.body
    direction = entry.kind.removeprefix("points.")
    _require_household(state, body["household"])
    rule = state.rules.get(body["rule"])
    if rule is None:
        raise RuleViolation(f"rule {body['rule']} does not exist", field="entry.body.rule")
    if rule.retired_at is not None:
        raise RuleViolation(f"rule {rule.code} was retired at index {rule.retired_at}", field="entry.body.rule")
    if rule.direction != direction:
        raise RuleViolation(f"rule {rule.code} is for points.{rule.direction}, not {entry.kind}", field="entry.body.rule")
    low, high = rule.bounds()
    if not low <= body["amount"] <= high:
        expected = f"exactly {low}" if low == high else f"between {low} and {high}"
        raise RuleViolation(f"amount {body['amount']} is outside rule {rule.code}: {expected}", field="entry.body.amount")
    if rule.evidence_required and not body.get("evidence"):
        raise RuleViolation(f"rule {rule.code} requires evidence (a photo or document hash)", field="entry.body.evidence")
    if direction == "deduct":
        _check_not_against_speaking_up(state, entry)
    account = household_account(body["household"])
    debit, credit = (ISSUER, account) if direction == "award" else (account, ISSUER)
    _move(state, entry, changes, ledger=rule.ledger, household=body["household"], debit=debit, credit=credit, amount=body["amount"])


def _points_redeem(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    body = entry.body
    _require_household(state, body["household"])
    account = household_account(body["household"])
    balance = state.balance(account, "morality")
    if body["amount"] > balance:
        raise RuleViolation(
            f"household {body['household']} has {balance} morality points, cannot redeem {body['amount']}",
            field="entry.body.amount",
        )
    _move(state, entry, changes, ledger="morality", household=body["household"], debit=account, credit=SUPERMARKET, amount=body["amount"])


def _points_reverse(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    target_id = entry.body["entry"]
    lookups = state.lookups
    target = lookups.movement(target_id)
    if target is None:
        what = "is not a points award, deduction or redemption" if lookups.contains(target_id) else "is not in the log"
        raise RuleViolation(f"entry {target_id} {what}", field="entry.body.entry")
    if target.kind == "points.reverse":
        raise RuleViolation(f"entry {target_id} is itself a reversal and cannot be reversed", field="entry.body.entry")
    earlier = lookups.reversed_by(target_id)
    if earlier is not None:
        raise RuleViolation(f"entry {target_id} was already reversed by {earlier}", field="entry.body.entry")
    if "case" in entry.body:
        _check_reversal_for_case(state, entry.body["case"], target)
    _move(
        state, entry, changes,
        ledger=target.ledger, household=target.household, debit=target.credit, credit=target.debit, amount=target.amount,
    )
    state.recent.reversals[target_id] = entry.id


def _affair_publish(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    """Affairs change no balance; every version stays in the log, the latest is the current one."""


def _complaint_receipt(state: State, entry: Entry, _: Member, changes: Changes) -> None:
    body = entry.body
    if body["receipt"] in state.cases:
        raise RuleViolation(f"complaint receipt {body['receipt']} is already in the log", field="entry.body.receipt")
    _require_grid(state, body.get("grid"))
    state.cases[body["receipt"]] = Case(
        body["receipt"], body["route"], body.get("grid"), "received", state.size, entry.time, updated_at=state.size
    )
    changes.cases.add(body["receipt"])


# step: (statuses it may follow, status it leads to; None keeps the status)
STEPS: dict[str, tuple[frozenset[str], str | None]] = {
    "accept": (frozenset({"received", "reopened"}), "accepted"),
    "assign": (frozenset({"accepted", "assigned", "in_progress"}), "assigned"),
    "start": (frozenset({"accepted", "assigned"}), "in_progress"),
    "reply": (frozenset({"accepted", "assigned", "in_progress", "replied"}), "replied"),
    "close": (frozenset({"replied"}), "closed"),
    "answer": (OPEN, None),
    "rate": (frozenset({"closed"}), None),
    "escalate": (OPEN, None),
}
DESK_STEPS = frozenset({"answer", "rate", "escalate"})  # the complaint desk speaks for the villager and the clock


def may_handle(member: Member, case: Case) -> bool:
    """Whether ``member`` may act on (and read) ``case``: never the body the complaint may be about.

    Finances and cadre conduct go to the supervision committee (and the township), appeals of points to
    the morality jury (supervisors); the village committee acts only on cases routed to it or to a grid, a
    grid worker only on cases routed to their own grid; the township also on every escalated case.
    """
    roles = member.roles
    if "township" in roles and (case.route == "supervision" or case.escalated):
        return True
    if case.route in ("supervision", "jury"):
        return "supervisor" in roles
    if case.route == "committee":
        return "committee" in roles
    return "committee" in roles or ("grid_worker" in roles and member.grid == case.grid)


def _complaint_step(state: State, entry: Entry, author: Member, changes: Changes) -> None:
    body = entry.body
    case = state.cases.get(body["receipt"])
    if case is None:
        raise RuleViolation(f"complaint receipt {body['receipt']} is not in the log", field="entry.body.receipt")
    step = body["step"]
    if step in DESK_STEPS and "intake" not in author.roles:
        raise NotAuthorised(f"only the complaint desk may record the {step} step", field="entry.kind")
    if step not in DESK_STEPS and not may_handle(author, case):
        raise NotAuthorised(
            f"member {author.id} may not handle a complaint routed to {case.route}", field="entry.author"
        )
    latest = max(t for t in (case.filed, case.accepted, case.replied, case.closed) if t)
    if state.rules_version < 2 and entry.time < latest:  # rules 2 orders every entry's time (step 2)
        raise RuleViolation(f"a step of complaint {case.receipt} may not be dated before its last step ({latest})",
                            field="entry.time")
    follows, leads_to = STEPS[step]
    if case.status not in follows:
        raise RuleViolation(f"complaint {case.receipt} is {case.status}; it cannot take the {step} step", field="entry.body.step")
    updated = _case_after(state, entry, case, leads_to or case.status)
    state.cases[case.receipt] = replace(updated, updated_at=state.size)
    changes.cases.add(case.receipt)


def _case_after(state: State, entry: Entry, case: Case, status: str) -> Case:
    body, step = entry.body, entry.body["step"]
    if step == "assign":
        assignee = state.members.get(body["assignee"])
        if assignee is None or not may_handle(assignee, case):
            raise RuleViolation(f"member {body['assignee']!r} may not handle a complaint routed to {case.route}",
                                field="entry.body.assignee")
    if step == "accept":
        return replace(case, status=status, accepted=case.accepted or entry.time)
    if step == "reply":
        return replace(case, status=status, replied=case.replied or entry.time)
    if step == "close":
        return replace(case, status=status, closed=entry.time, rating=None, resolved=None)
    if step == "escalate":
        if case.escalated:
            raise RuleViolation(f"complaint {case.receipt} is already escalated", field="entry.body.step")
        return replace(case, escalated=True)
    if step == "rate":
        return _rated(case, body["rating"], body["resolved"])
    return replace(case, status=status)


def _rated(case: Case, rating: str, resolved: bool) -> Case:
    """A villager's verdict on a closed case: unsatisfied or unresolved reopens it once and escalates it."""
    if case.rating is not None:
        raise RuleViolation(f"complaint {case.receipt} was already rated since it was closed", field="entry.body.step")
    if (rating == "unsatisfied" or not resolved) and not case.reopened:
        return replace(case, status="reopened", rating=rating, resolved=resolved, reopened=True, escalated=True)
    return replace(case, rating=rating, resolved=resolved)


def _check_reversal_for_case(state: State, receipt: str, target: Movement) -> None:
    """An upheld complaint may undo a deduction, never take points: a reversal linked to a case undoes a deduction."""
    if receipt not in state.cases:
        raise RuleViolation(f"complaint receipt {receipt} is not in the log", field="entry.body.case")
    if target.kind != "points.deduct":
        raise RuleViolation(
            f"a reversal linked to a complaint may only undo a deduction, not a {target.kind}", field="entry.body.case"
        )


def _check_not_against_speaking_up(state: State, entry: Entry) -> None:
    """Filing a complaint, report or appeal never costs points: no deduction names a complaint."""
    for receipt in _ENTRY_ID_IN_TEXT.findall(entry.body["reason"]):
        if receipt in state.cases:
            raise RuleViolation(f"a deduction may not refer to complaint {receipt}", field="entry.body.reason")


_APPLY = {
    "village.genesis": _genesis,
    "member.add": _member_add,
    "member.role": _member_role,
    "key.add": _key_add,
    "key.revoke": _key_revoke,
    "grid.define": _grid_define,
    "household.register": _household_register,
    "household.update": _household_update,
    "rule.publish": _rule_publish,
    "rule.retire": _rule_retire,
    "points.award": _points_by_rule,
    "points.deduct": _points_by_rule,
    "points.redeem": _points_redeem,
    "points.reverse": _points_reverse,
    "affair.publish": _affair_publish,
    "complaint.receipt": _complaint_receipt,
    "complaint.step": _complaint_step,
}
if _APPLY.keys() != KINDS.keys():  # every kind of the registry changes the state in its own way
    raise RuntimeError(f"kinds without an applier: {sorted(KINDS.keys() - _APPLY.keys())}; "
                       f"appliers without a kind: {sorted(_APPLY.keys() - KINDS.keys())}")


def check_accounts_balance(state: State) -> None:
    """Every ledger's accounts sum to zero. Raises RuleViolation naming the ledger otherwise."""
    totals: dict[str, int] = {}
    for (_, ledger), amount in state.balances.items():
        totals[ledger] = totals.get(ledger, 0) + amount
    for ledger, total in sorted(totals.items()):
        if total != 0:
            raise RuleViolation(f"the {ledger} accounts sum to {total}, not zero")
