"""Village states for transactions: the state this process last committed, brought forward by replaying what
other processes appended since, else loaded from the derived tables.

Invariant: a cached state is exactly the state of its village's first ``size`` entries, as committed (it
is cached only after its transaction commits), with an empty ``recent`` index.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select, text
from sqlmodel import Session

from ledger.entries import decode_leaf
from ledger.state import MemoryIndex, Movement, State, apply

from . import models as m
from .derived import load_state

TAIL_REPLAY = 2500  # entries another process appended that are replayed rather than reloading the state
# (replaying one costs about 0.1 ms; loading the state of a 2,000-household village about 230 ms)

_STATE_SIZE = text("SELECT size FROM village_state WHERE village_id = :village")


class DbIndex:
    """``ledger.state.EntryIndex`` over the entries table, seeing only the entries before ``state.size``
    (so a state can be brought forward by replaying rows that are already stored)."""

    def __init__(self, session: Session, village_id: int, state: State) -> None:
        self.session, self.village_id, self.state = session, village_id, state
        self.absent: frozenset[str] = frozenset()  # ids one query already showed are not stored

    def _where(self, *conditions: Any) -> Any:
        return select(m.EntryRow).where(m.EntryRow.village_id == self.village_id, m.EntryRow.idx < self.state.size, *conditions)  # type: ignore[arg-type]

    def contains(self, entry_id: str) -> bool:
        if entry_id in self.absent:
            return False
        query = select(m.EntryRow.idx).where(  # type: ignore[call-overload]
            m.EntryRow.village_id == self.village_id, m.EntryRow.idx < self.state.size, m.EntryRow.entry_id == entry_id
        )
        return self.session.execute(query).first() is not None

    def movement(self, entry_id: str) -> Movement | None:
        row = self.session.execute(
            self._where(m.EntryRow.entry_id == entry_id, m.EntryRow.debit.is_not(None))  # type: ignore[union-attr]
        ).scalar_one_or_none()
        if row is None:
            return None
        return Movement(row.entry_id, row.idx, row.kind, row.ledger, row.household, row.debit, row.credit, row.amount)

    def _ref(self, kind: str, ref: str) -> m.EntryRow | None:
        return self.session.execute(self._where(m.EntryRow.kind == kind, m.EntryRow.ref == ref)).scalar_one_or_none()

    def reversed_by(self, entry_id: str) -> str | None:
        row = self._ref("points.reverse", entry_id)
        return row.entry_id if row else None


class States:
    """Each village's state as this process last committed it. Thread-safe."""

    def __init__(self) -> None:
        self._states: dict[int, State] = {}
        self._lock = threading.Lock()

    def current(self, session: Session, village_id: int) -> State:
        """The village state at its current size, for this transaction (a private copy), its ``index`` a
        ``DbIndex`` on ``session``."""
        size = session.connection().execute(_STATE_SIZE, {"village": village_id}).scalar_one()
        with self._lock:
            cached = self._states.get(village_id)
        if cached is None or not 0 <= size - cached.size <= TAIL_REPLAY:
            state = load_state(session, village_id)
        else:
            state = cached.copy()
        state.index = DbIndex(session, village_id, state)
        if state.size < size:  # another process appended since: replay its entries (stored, so trusted)
            query = select(m.EntryRow.entry_id, m.EntryRow.leaf).where(  # type: ignore[call-overload]
                m.EntryRow.village_id == village_id, m.EntryRow.idx >= state.size
            )
            rows = session.execute(query.order_by(m.EntryRow.idx)).all()
            state.index.absent = frozenset(entry_id for entry_id, _ in rows)  # ids are unique in a village's log
            for _, leaf in rows:
                apply(state, decode_leaf(leaf))
            state.recent = MemoryIndex()
        return state

    def committed(self, village_id: int, state: State) -> None:
        """Keep ``state``, whose transaction has committed, for the village's next transaction."""
        state.recent = MemoryIndex()
        with self._lock:
            self._states[village_id] = state

    def forget(self, village_id: int) -> None:
        """Drop the village's state (its derived tables were rewritten): the next transaction loads them."""
        with self._lock:
            self._states.pop(village_id, None)
