"""Read queries over the log and the derived tables, for the API and the pages.

Every function returns plain rows or dicts; nothing here writes. Lists are ordered and paged by a
cursor (the last log index or key seen), never by OFFSET, so a page is stable while the log grows.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlmodel import Session

import keys
from ledger.entries import leaf_body
from ledger.errors import LedgerError
from ledger.kinds import LEDGERS
from ledger.note import open_checkpoint
from ledger.state import household_account

from . import models as m
from . import plates
from .db import read_session
from .errors import NotFound, StorageError
from .proofs import cosignatures_at
from .store import Store


@dataclass(frozen=True)
class EntryFilter:
    household: str | None = None
    kind: str | None = None
    kinds: tuple[str, ...] | None = None
    ledger: str | None = None
    since: str | None = None  # inclusive, RFC 3339 UTC as in entries
    until: str | None = None  # exclusive
    after: int | None = None  # cursor: return entries with a greater index
    before: int | None = None  # cursor for newest-first pages: entries with a smaller index
    newest_first: bool = False
    limit: int = 100


# An entry's columns as a plain row (attribute access like m.EntryRow): lists of entries skip the ORM's
# identity map and instance building, which cost more than the query on an indexed village.
EntryRecord = Row[Any]


def entries(store: Store, slug: str, query: EntryFilter) -> list[EntryRecord]:
    with read_session(store.engine) as session:
        return _entries(session, store.village_row(session, slug), query)


# Each filter is one bound condition; statements are built once per set of filters used (building a
# SQLAlchemy expression costs more than running a page's query on an indexed village).
Condition = Callable[[BindParameter[Any]], ColumnElement[bool]]
_LIST_FILTERS = frozenset({"kinds", "ids"})  # bound as expanding IN lists


def _bound_where(village_column: Any, conditions: dict[str, Condition], filters: tuple[str, ...]) -> list[Any]:
    """The village's condition, then ``conditions[name]`` bound to the parameter ``name`` for each filter."""
    return [village_column == bindparam("village_id"),
            *(conditions[name](bindparam(name, expanding=name in _LIST_FILTERS)) for name in filters)]


# (SQLModel types a column by its field's type, so `column == value` is a bool to mypy: hence the ignores.)
_ENTRY_CONDITIONS: dict[str, Condition] = {
    "household": lambda value: m.EntryRow.household == value,  # type: ignore[dict-item, return-value]
    "kind": lambda value: m.EntryRow.kind == value,  # type: ignore[dict-item, return-value]
    "ledger": lambda value: m.EntryRow.ledger == value,  # type: ignore[dict-item, return-value]
    "since": lambda value: m.EntryRow.time >= value,
    "until": lambda value: m.EntryRow.time < value,
    "kinds": lambda value: m.EntryRow.kind.in_(value),  # type: ignore[attr-defined]
    "after": lambda value: m.EntryRow.idx > value,
    "before": lambda value: m.EntryRow.idx < value,
}


@functools.cache
def _entries_statement(filters: tuple[str, ...], newest_first: bool) -> Select[Any]:
    order = m.EntryRow.idx.desc() if newest_first else m.EntryRow.idx  # type: ignore[attr-defined]
    columns = m.EntryRow.__table__.columns  # type: ignore[attr-defined]
    return (select(*columns).where(*_bound_where(m.EntryRow.village_id, _ENTRY_CONDITIONS, filters))
            .order_by(order).limit(bindparam("limit")))  # type: ignore[arg-type]


def _entries(session: Session, village: m.Village, query: EntryFilter) -> list[EntryRecord]:
    values = {name: getattr(query, name) for name in _ENTRY_CONDITIONS if getattr(query, name) is not None}
    statement = _entries_statement(tuple(values), query.newest_first)
    return list(session.connection().execute(statement, {"village_id": village.id, "limit": query.limit, **values}))


_MONTH = func.substr(m.EntryRow.time, literal_column("1"), literal_column("7"))  # inline: GROUP BY repeats it
_MONTHLY_MOVEMENTS = (
    select(_MONTH, m.EntryRow.ledger, func.sum(case((m.EntryRow.credit == bindparam("account"), m.EntryRow.amount),  # type: ignore[arg-type, call-overload]
                                                    else_=-m.EntryRow.amount)))  # type: ignore[operator]
    .where(m.EntryRow.village_id == bindparam("village_id"), m.EntryRow.household == bindparam("household"),
           m.EntryRow.idx <= bindparam("through"), m.EntryRow.ledger.is_not(None))  # type: ignore[union-attr]
    .group_by(_MONTH, m.EntryRow.ledger)
    .order_by(_MONTH)
)


def _monthly_movements(session: Session, village: m.Village, household: str, *,
                       through: int) -> list[tuple[str, str, int]]:
    """(YYYY-MM, ledger, net points for the household) of every month in which its points moved in the
    entries up to index ``through``, by month (the entries' own dates): enough for its chart, summed by the
    database from the household index alone (a household of a big village has hundreds of movements)."""
    rows = session.connection().execute(_MONTHLY_MOVEMENTS, {
        "village_id": village.id, "household": household, "account": household_account(household),
        "through": through}).all()
    return [(str(month), str(ledger), int(points)) for month, ledger, points in rows]


def _member_roles(session: Session, village: m.Village) -> dict[bytes, frozenset[str]]:
    """Roles of the member behind every key that ever signed (public facts: cadres show their post)."""
    rows = session.execute(
        select(m.MemberKeyRow.public, m.MemberRow.roles)  # type: ignore[call-overload]
        .join(m.MemberRow, and_(m.MemberRow.village_id == m.MemberKeyRow.village_id,  # type: ignore[arg-type]
                                m.MemberRow.member_id == m.MemberKeyRow.member_id))  # type: ignore[arg-type]
        .where(m.MemberKeyRow.village_id == village.id)
    ).all()
    return {public: frozenset(roles.split()) for public, roles in rows}


def entry_by_id(store: Store, slug: str, entry_id: str) -> m.EntryRow:
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        row: m.EntryRow | None = session.execute(
            select(m.EntryRow).where(m.EntryRow.village_id == village.id, m.EntryRow.entry_id == entry_id)  # type: ignore[arg-type]
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no entry {entry_id} in village {slug!r}")
        return row


@dataclass(frozen=True)
class HouseholdView:
    row: m.HouseholdRow
    balances: dict[str, int]
    green_card: bool


def households(store: Store, slug: str, *, grid: str | None = None, after: str | None = None, limit: int = 100,
               ids: list[str] | None = None) -> list[HouseholdView]:
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        return _households(session, village, session.get(m.VillageState, village.id), grid=grid, after=after,
                           limit=limit, ids=ids)


_HOUSEHOLD_CONDITIONS: dict[str, Condition] = {
    "grid": lambda value: m.HouseholdRow.grid == value,  # type: ignore[dict-item, return-value]
    "after": lambda value: m.HouseholdRow.household_id > value,
    "ids": lambda value: m.HouseholdRow.household_id.in_(value),  # type: ignore[attr-defined]
}
_BALANCES = select(m.BalanceRow.account, m.BalanceRow.ledger, m.BalanceRow.amount).where(  # type: ignore[call-overload]
    m.BalanceRow.village_id == bindparam("village_id"),
    m.BalanceRow.account.in_(bindparam("accounts", expanding=True)),  # type: ignore[attr-defined]
)


@functools.cache
def _households_statement(filters: tuple[str, ...]) -> Select[m.HouseholdRow]:
    return (select(m.HouseholdRow).where(*_bound_where(m.HouseholdRow.village_id, _HOUSEHOLD_CONDITIONS, filters))
            .order_by(m.HouseholdRow.household_id).limit(bindparam("limit")))


def _households(session: Session, village: m.Village, state: m.VillageState | None, *, grid: str | None = None,
                after: str | None = None, limit: int = 100, ids: list[str] | None = None) -> list[HouseholdView]:
    values = {name: value for name, value in (("grid", grid), ("after", after), ("ids", ids)) if value is not None}
    rows = list(session.execute(_households_statement(tuple(values)),
                                {"village_id": village.id, "limit": limit, **values}).scalars())
    accounts = [household_account(r.household_id) for r in rows]
    balances: dict[str, dict[str, int]] = {a: dict.fromkeys(LEDGERS, 0) for a in accounts}
    for account, ledger, amount in session.execute(_BALANCES, {"village_id": village.id, "accounts": accounts}):
        balances[account][ledger] = amount
    return [_household_view(r, balances[household_account(r.household_id)], state) for r in rows]


def _household_view(row: m.HouseholdRow, balances: dict[str, int], state: m.VillageState | None) -> HouseholdView:
    threshold = state.green_card_threshold if state and state.green_card_threshold is not None else 0
    return HouseholdView(row, balances, balances["morality"] >= threshold > 0)


def household(store: Store, slug: str, household_id: str) -> HouseholdView:
    return _one(households(store, slug, ids=[household_id], limit=1), slug, household_id)


def _one(found: list[HouseholdView], slug: str, household_id: str) -> HouseholdView:
    if not found:
        raise _unknown_household(slug, household_id)
    return found[0]


def _unknown_household(slug: str, household_id: str) -> NotFound:
    return NotFound(f"no household {household_id!r} in village {slug!r}")


@dataclass(frozen=True)
class HouseholdPage:
    """Everything a household's page shows, read in one session: ``rows`` (newest first) are all inside the
    checkpoint ``note`` of ``size`` entries, and ``proofs[i]`` proves ``rows[i]`` in it under ``log_key``."""

    village: m.Village
    state: m.VillageState
    household: HouseholdView
    rows: list[EntryRecord]
    note: str
    size: int
    proofs: list[list[bytes]]
    log_key: str
    rules: dict[str, m.RuleRow]
    roles: dict[bytes, frozenset[str]]
    movements: list[tuple[str, str, int]]  # (YYYY-MM, ledger, net points that month), by month


def _balance_at_door(ledger: str) -> Any:
    return select(m.BalanceRow.amount).where(  # type: ignore[call-overload]
        m.BalanceRow.village_id == m.DoorToken.village_id,
        m.BalanceRow.account == literal(household_account("")) + m.DoorToken.household_id,
        m.BalanceRow.ledger == ledger,
    ).scalar_subquery().label(f"balance_{ledger}")


_DOOR_CHECKPOINT = and_(
    m.CheckpointRow.village_id == m.DoorToken.village_id,  # type: ignore[arg-type]
    m.CheckpointRow.size == select(func.max(m.CheckpointRow.size)).where(
        m.CheckpointRow.village_id == m.DoorToken.village_id).correlate(m.DoorToken).scalar_subquery(),  # type: ignore[arg-type]
)
_NEWEST_AT_DOOR = select(func.max(m.EntryRow.idx)).where(
    m.EntryRow.village_id == m.DoorToken.village_id, m.EntryRow.household == m.DoorToken.household_id,  # type: ignore[arg-type]
    m.EntryRow.idx < m.CheckpointRow.size,  # type: ignore[arg-type]
).scalar_subquery().label("newest")
_COSIGNED_AT_DOOR = cosignatures_at(m.DoorToken.village_id, m.CheckpointRow.size).label("cosignatures")
# One statement, so one snapshot on either database: the plate, the village's latest checkpoint and the
# witnesses' cosignatures of it, the household's row and balances as of that checkpoint, and its newest entry
# inside it.
_DOOR = (
    select(m.Village.slug, m.DoorToken.household_id, m.DoorToken.revoked, m.CheckpointRow.size,  # type: ignore[call-overload]
           m.CheckpointRow.note, _COSIGNED_AT_DOOR, m.HouseholdRow, _NEWEST_AT_DOOR, *map(_balance_at_door, LEDGERS))
    .select_from(m.DoorToken)
    .join(m.Village, m.Village.id == m.DoorToken.village_id)
    .join(m.CheckpointRow, _DOOR_CHECKPOINT)
    .outerjoin(m.HouseholdRow, and_(m.HouseholdRow.village_id == m.DoorToken.village_id,  # type: ignore[arg-type]
                                    m.HouseholdRow.household_id == m.DoorToken.household_id))  # type: ignore[arg-type]
    .where(m.DoorToken.token == bindparam("token"))
)


def household_page(store: Store, plate: str, query: EntryFilter) -> HouseholdPage:
    """The page behind the door plate ``plate`` (a token): its household's entries matching ``query`` and
    the facts to show and prove them, all as of the village's latest checkpoint (entries appended since
    are left for the next visit). Raises UnknownPlate or PlateReplaced as ``plates.resolve`` does."""
    with read_session(store.engine) as session:
        door = session.execute(_DOOR, {"token": plate}).one_or_none() if plates.well_formed(plate) else None
        slug, household_id = plates.active(None if door is None else (door.slug, door.household_id, door.revoked))
        village = store.village_row(session, slug)
        assert village.id is not None and door is not None
        size, newest = int(door.size), door.newest
        note = str(door.note) + (door.cosignatures or "")
        store.saw_signed_size(village.id, size)
        if door.HouseholdRow is None:
            raise _unknown_household(slug, household_id)
        state = store.fact_at(village.id, size, "village_state", lambda: session.get(m.VillageState, village.id))
        assert state is not None
        before = size if query.before is None else min(query.before, size)
        rows = _entries(session, village, dataclasses.replace(query, household=household_id, before=before))
        return HouseholdPage(
            village=village, state=state, rows=rows, note=note, size=size,
            household=_household_view(door.HouseholdRow, {
                ledger: door._mapping[f"balance_{ledger}"] or 0 for ledger in LEDGERS}, state),
            proofs=store.proofs_within(session, village, [row.idx for row in rows], size, committed=True) if rows else [],
            log_key=store.fact_at(village.id, size, "log_key", lambda: _signing_key(session, village, note)),
            rules=store.fact_at(village.id, size, "rules", lambda: {
                rule.code: rule for rule in _rules(session, village, include_retired=True)}),
            roles=store.fact_at(village.id, size, "roles", lambda: _member_roles(session, village)),
            movements=_monthly_movements(session, village, household_id, through=newest) if newest is not None else [],
        )


def _signing_key(session: Session, village: m.Village, note: str) -> str:
    """The verifier key of the log key that signed ``note`` (after a rotation, the next checkpoint is
    still signed by the old key)."""
    rows = session.execute(select(m.LogKey.name, m.LogKey.public).where(m.LogKey.village_id == village.id)  # type: ignore[call-overload]
                           .order_by(m.LogKey.id.desc())).all()  # type: ignore[union-attr]
    candidates = [keys.verifier_key(name, public) for name, public in rows]
    for candidate in candidates:
        try:
            open_checkpoint(note, [keys.parse_verifier_key(candidate)])
        except LedgerError:
            continue
        return candidate
    raise StorageError(f"no log key of village {village.slug!r} signed its latest checkpoint")


def rules(store: Store, slug: str, *, include_retired: bool = False) -> list[m.RuleRow]:
    with read_session(store.engine) as session:
        return _rules(session, store.village_row(session, slug), include_retired=include_retired)


def _rules(session: Session, village: m.Village, *, include_retired: bool = False) -> list[m.RuleRow]:
    conditions = [m.RuleRow.village_id == village.id]
    if not include_retired:
        conditions.append(m.RuleRow.retired_at.is_(None))  # type: ignore[union-attr]
    return list(session.execute(select(m.RuleRow).where(*conditions).order_by(m.RuleRow.code)).scalars())  # type: ignore[arg-type]


def village_state(store: Store, slug: str) -> tuple[m.Village, m.VillageState]:
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        state = session.get(m.VillageState, village.id)
        assert state is not None
        return village, state


def affairs(store: Store, slug: str, *, month: str | None = None, category: str | None = None) -> list[dict[str, Any]]:
    """Every published affair record (all versions, newest first), with its log index and time.
    ``month`` (YYYY-MM) filters on the record's own date."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        rows = session.execute(
            select(m.EntryRow.idx, m.EntryRow.time, m.EntryRow.leaf)  # type: ignore[call-overload]
            .where(m.EntryRow.village_id == village.id, m.EntryRow.kind == "affair.publish")
            .order_by(m.EntryRow.idx.desc())  # type: ignore[attr-defined]
        ).all()
    records = []
    for idx, time, leaf in rows:
        body = leaf_body(leaf)
        if month is not None and not body["date"].startswith(month):
            continue
        if category is not None and body["category"] != category:
            continue
        records.append({"index": idx, "time": time, **body})
    return records


def ranking(store: Store, slug: str, *, month: str, ledger: str = "morality", limit: int = 20) -> list[dict[str, Any]]:
    """Net points each household gained in ``month`` (YYYY-MM) on ``ledger``, highest first: the red list."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        account = literal("household:") + m.EntryRow.household
        signed = case((m.EntryRow.credit == account, m.EntryRow.amount), else_=-m.EntryRow.amount)  # type: ignore[arg-type, operator]
        points = func.sum(signed).label("points")
        rows = session.execute(
            select(m.EntryRow.household, points)  # type: ignore[call-overload]
            .where(
                m.EntryRow.village_id == village.id,
                m.EntryRow.ledger == ledger,
                m.EntryRow.time >= f"{month}-01",
                m.EntryRow.time < _next_month(month),
                or_(m.EntryRow.credit == account, m.EntryRow.debit == account),  # type: ignore[arg-type]
            )
            .group_by(m.EntryRow.household)
            .order_by(points.desc(), m.EntryRow.household)
            .limit(limit)
        ).all()
        labels: dict[str, dict[str, object]] = dict(session.execute(
            select(m.HouseholdRow.household_id, m.HouseholdRow.public).where(  # type: ignore[call-overload]
                and_(m.HouseholdRow.village_id == village.id, m.HouseholdRow.household_id.in_([r[0] for r in rows]))  # type: ignore[arg-type, attr-defined]
            )
        ).all())
        return [{"household": h, "label": (labels.get(h) or {}).get("label"), "points": int(p)} for h, p in rows]


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}-01"


def active_member(store: Store, slug: str, public: bytes) -> tuple[str, frozenset[str], str | None, str | None] | None:
    """(member, roles, grid, household) of an unrevoked key whose member still has a role, else None."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        row = session.execute(
            select(m.MemberRow)
            .join(m.MemberKeyRow, and_(m.MemberKeyRow.village_id == m.MemberRow.village_id,  # type: ignore[arg-type]
                                       m.MemberKeyRow.member_id == m.MemberRow.member_id))  # type: ignore[arg-type]
            .where(m.MemberRow.village_id == village.id, m.MemberKeyRow.public == public,  # type: ignore[arg-type]
                   m.MemberKeyRow.revoked_at.is_(None))  # type: ignore[union-attr]
        ).scalar_one_or_none()
        if row is None or not row.roles:
            return None
        return row.member_id, frozenset(row.roles.split()), row.grid, row.household


def points_totals(store: Store, slug: str) -> dict[str, dict[str, int]]:
    """Points moved per ledger and kind over the whole log (awards given, deductions, redemptions...)."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        rows = session.execute(
            select(m.EntryRow.ledger, m.EntryRow.kind, func.sum(m.EntryRow.amount))  # type: ignore[call-overload]
            .where(m.EntryRow.village_id == village.id, m.EntryRow.ledger.is_not(None))  # type: ignore[union-attr]
            .group_by(m.EntryRow.ledger, m.EntryRow.kind)
        ).all()
    totals: dict[str, dict[str, int]] = {}
    for ledger, kind, amount in rows:
        totals.setdefault(ledger, {})[kind] = int(amount)
    return totals
