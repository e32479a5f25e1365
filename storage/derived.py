"""The derived tables: the village state (``ledger.state.State``) as rows, and back.

Each table is described once, by a ``DerivedTable``: its model, the state's mapping it mirrors, a row from
one of the mapping's items and the item from a row. ``derived_rows`` (state to rows: appending, restore,
rebuild) and ``load_state`` (rows to state) go through the same descriptions, so a new table of state is
one more description here and nothing else. The ``village_state`` table is the one exception: a single
row per village holding the state's scalars (its size, the village's own facts), which the state is made
from before the mappings are filled in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlmodel import Session, SQLModel

from ledger.state import Case, Changes, Grid, Household, KeyRecord, Member, Rule, State
from ledger.state import Village as VillageInfo

from . import models as m
from .errors import NotFound

K = TypeVar("K")
V = TypeVar("V")
Row = dict[str, Any]  # a derived row's columns, ``village_id`` included


@dataclass(frozen=True)
class DerivedTable(Generic[K, V]):
    """One derived table. Its rows mirror ``State.<attribute>`` (a mapping) item for item; an append names
    the keys it touched in ``Changes.<attribute>``. ``row(key, value)`` gives a row's columns but the
    village; ``item(row)`` gives the (key, value) the row stands for, so that ``item`` undoes ``row``."""

    model: type[SQLModel]
    attribute: str
    row: Callable[[K, V], Row]
    item: Callable[[Any], tuple[K, V]]

    def rows(self, village_id: int, state: State, changes: Changes | None) -> list[Row]:
        """Rows of the touched keys (all keys when ``changes`` is None), in key order."""
        mapping: dict[Any, V] = getattr(state, self.attribute)
        wanted = mapping.keys() if changes is None else getattr(changes, self.attribute) & mapping.keys()
        return [{"village_id": village_id, **self.row(key, mapping[key])} for key in sorted(wanted)]

    def load(self, session: Session, village_id: int, state: State) -> None:
        """Fill ``State.<attribute>`` from the village's rows."""
        mapping: dict[K, V] = getattr(state, self.attribute)
        for row in session.execute(select(self.model).filter_by(village_id=village_id)).scalars():
            key, value = self.item(row)
            mapping[key] = value


def _member_row(_: str, member: Member) -> Row:
    return {"member_id": member.id, "name": member.name, "roles": " ".join(sorted(member.roles)), "grid": member.grid,
            "household": member.household, "added_at": member.added_at, "appointed_by": member.appointed_by}


def _member(r: m.MemberRow) -> tuple[str, Member]:
    roles = frozenset(r.roles.split()) if r.roles else frozenset()
    return r.member_id, Member(r.member_id, r.name, roles, r.grid, r.household, r.added_at, r.appointed_by)


def _key_row(_: bytes, key: KeyRecord) -> Row:
    return {"public": key.public, "member_id": key.member, "added_at": key.added_at, "revoked_at": key.revoked_at,
            "added_by": key.added_by}


def _key(k: m.MemberKeyRow) -> tuple[bytes, KeyRecord]:
    return k.public, KeyRecord(k.public, k.member_id, k.added_at, k.revoked_at, k.added_by)


def _grid_row(_: str, g: Grid) -> Row:
    return {"grid_id": g.id, "name": g.name, "name_en": g.name_en, "defined_at": g.defined_at}


def _grid(g: m.GridRow) -> tuple[str, Grid]:
    return g.grid_id, Grid(g.grid_id, g.name, g.name_en, g.defined_at)


def _household_row(_: str, h: Household) -> Row:
    return {"household_id": h.id, "grid": h.grid, "number": h.number, "public": dict(h.public),
            "commitment": h.commitment, "registered_at": h.registered_at, "updated_at": h.updated_at}


def _household(h: m.HouseholdRow) -> tuple[str, Household]:
    return h.household_id, Household(h.household_id, h.grid, h.number, dict(h.public), h.commitment,
                                     h.registered_at, h.updated_at)


def _rule_row(_: str, r: Rule) -> Row:
    return {
        "code": r.code, "version": r.version, "title_zh": r.title_zh, "title_en": r.title_en, "ledger": r.ledger,
        "direction": r.direction, "amount": r.amount, "min": r.min, "max": r.max,
        "evidence_required": r.evidence_required, "description": r.description, "published_at": r.published_at,
        "retired_at": r.retired_at,
    }


def _rule(r: m.RuleRow) -> tuple[str, Rule]:
    return r.code, Rule(r.code, r.version, r.title_zh, r.title_en, r.ledger, r.direction, r.amount, r.min, r.max,
                        r.evidence_required, r.description, r.published_at, r.retired_at)


def _balance_row(account_ledger: tuple[str, str], amount: int) -> Row:
    account, ledger = account_ledger
    return {"account": account, "ledger": ledger, "amount": amount}


def _balance(b: m.BalanceRow) -> tuple[tuple[str, str], int]:
    return (b.account, b.ledger), b.amount


def _case_row(_: str, case: Case) -> Row:
    return dataclasses.asdict(case)  # the table's columns are the case's fields


def _case(c: m.CaseRow) -> tuple[str, Case]:
    return c.receipt, Case(**{f.name: getattr(c, f.name) for f in dataclasses.fields(Case)})


# Rows are written in this order (after ``village_state``).
TABLES: tuple[DerivedTable[Any, Any], ...] = (
    DerivedTable(m.MemberRow, "members", _member_row, _member),
    DerivedTable(m.MemberKeyRow, "keys", _key_row, _key),
    DerivedTable(m.GridRow, "grids", _grid_row, _grid),
    DerivedTable(m.HouseholdRow, "households", _household_row, _household),
    DerivedTable(m.RuleRow, "rules", _rule_row, _rule),
    DerivedTable(m.BalanceRow, "balances", _balance_row, _balance),
    DerivedTable(m.CaseRow, "cases", _case_row, _case),
)
MODELS: tuple[Any, ...] = (m.VillageState, *(table.model for table in TABLES))  # every derived table, in order
DERIVED_TABLES = tuple(model.__tablename__ for model in MODELS)


def _village_state_row(village_id: int, state: State) -> Row:
    village: VillageInfo | None = state.village
    return {
        "village_id": village_id,
        "size": state.size,
        "name": village.name if village else None,
        "name_en": village.name_en if village else None,
        "township": village.township if village else None,
        "county": village.county if village else None,
        "origin": village.origin if village else None,
        "green_card_threshold": village.green_card_threshold if village else None,
        "rules": state.rules_version,
        "latest_time": state.latest_time or None,
    }


def derived_rows(village_id: int, state: State, changes: Changes | None) -> dict[Any, list[Row]]:
    """Rows of every derived table (by model, in ``MODELS`` order) for the touched keys (all keys when
    ``changes`` is None); the ``village_state`` row always."""
    rows: dict[Any, list[Row]] = {m.VillageState: [_village_state_row(village_id, state)]}
    rows.update((table.model, table.rows(village_id, state, changes)) for table in TABLES)
    return rows


def insert_derived(session: Session, village_id: int, state: State) -> None:
    """Insert every derived row of ``state``: the village must have none yet."""
    for model, rows in derived_rows(village_id, state, None).items():
        if rows:
            session.execute(model.__table__.insert(), rows)


def load_state(session: Session, village_id: int) -> State:
    """The village state from the derived tables (no replay). Its ``index`` is the caller's to set."""
    row = session.get(m.VillageState, village_id)
    if row is None:
        raise NotFound(f"village {village_id} has no state")
    state = State(size=row.size, latest_time=row.latest_time or "")
    if row.name is not None:
        assert row.township and row.county and row.origin and row.green_card_threshold is not None
        state.village = VillageInfo(
            slug=session.get(m.Village, village_id).slug,  # type: ignore[union-attr]
            name=row.name, name_en=row.name_en, township=row.township, county=row.county,
            origin=row.origin, green_card_threshold=row.green_card_threshold, rules=row.rules,
        )
    for table in TABLES:
        table.load(session, village_id, state)
    return state
