"""Appending to a village's log: the one way entries get in.

Append plan (``Appending.append``):
  (1) check every signature, and that every entry is dated now (within ``clock_skew`` of the server's
      clock: its author cannot choose its date), before taking any lock (the expensive part runs in
      parallel across workers);
  (2) take the village's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: the village row FOR UPDATE);
  (3) an entry already in the log with identical bytes is answered with its first result; a different
      entry reusing an id is a replay;
  (4) replay the batch onto the village state with ``ledger.state.apply`` (the verifier's code path);
  (5) fold the leaf hashes into the Merkle tree, insert entries and newly completed tree nodes;
  (6) update the derived tables for exactly what changed, sign and insert a checkpoint of the new size;
  (7) commit; only then is the new state cached for the next append in this process.
Any error rolls the whole batch back: nothing partial is ever written. Batches that a process's threads post
at the same time go through (2)-(7) together (group commit: one transaction, one fsync, one checkpoint),
each replayed in (4) on its own copy of the state, so a refused batch fails alone.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, text
from sqlmodel import Session

from ledger import merkle
from ledger.entries import Entry, check_signatures, format_time
from ledger.errors import EntryError, LedgerError, Replay, RuleViolation
from ledger.kinds import KINDS
from ledger.state import Changes, State, apply

from . import models as m
from . import protection
from .db import upsert, write_session
from .derived import derived_rows
from .proofs import Proofs
from .states import DbIndex, States
from .villages import Villages

Clock = Callable[[], datetime]

# The fixed statements of every append: plain SQL, built once (building an ORM statement costs more than
# running it).
STORED_ENTRIES = text(
    "SELECT entry_id, idx, leaf, leaf_hash FROM entries WHERE village_id = :village AND entry_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
_CHECKPOINT_COVERING = text(
    "SELECT size, note FROM checkpoints WHERE village_id = :village AND size > :index ORDER BY size LIMIT 1"
)
_INSERT_ENTRIES = m.EntryRow.__table__.insert()  # type: ignore[attr-defined]
_INSERT_NODES = m.TreeNode.__table__.insert()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Appended:
    """Where an entry landed: its index and leaf hash, and a signed checkpoint that includes it."""

    entry_id: str
    index: int
    leaf_hash: bytes
    checkpoint: str
    tree_size: int
    inclusion_proof: tuple[bytes, ...] | None = None  # in the tree of ``tree_size``, when asked for


@dataclass(eq=False)
class _Request:
    """A batch waiting for its group's commit."""

    entries: list[Entry]
    alongside: Callable[[Session, int], None] | None
    prove: bool
    result: list[Appended] | None = None
    error: BaseException | None = None
    done: bool = False

    def finish(self, *, result: list[Appended] | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True


class Writer:
    """One village's writers in this process: batches queue here, and whichever thread holds ``lock``
    commits the queue's head as one group (a batch with off-log rows goes alone: its rows must not make
    another batch fail)."""

    GROUP_ENTRIES = 2000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._queue: list[_Request] = []
        self._queue_lock = threading.Lock()

    def enqueue(self, request: _Request) -> None:
        with self._queue_lock:
            self._queue.append(request)

    def take(self) -> list[_Request]:
        """Requires ``lock`` held and the queue not empty."""
        with self._queue_lock:
            group = [self._queue.pop(0)]
            if group[0].alongside is None:
                size = len(group[0].entries)
                while self._queue and self._queue[0].alongside is None and size + len(self._queue[0].entries) <= self.GROUP_ENTRIES:
                    size += len(self._queue[0].entries)
                    group.append(self._queue.pop(0))
            return group


class Appending:
    """Appends to every village of a store. Keeps, per process, each village's ``Writer`` and the clock
    entries must be dated by."""

    def __init__(self, engine: Engine, villages: Villages, states: States, proofs: Proofs, *, clock: Clock,
                 clock_skew: timedelta) -> None:
        self.engine, self.villages, self.states, self.proofs = engine, villages, states, proofs
        self.clock, self.clock_skew = clock, clock_skew
        self._writers: dict[str, Writer] = {}
        self._lock = threading.Lock()

    def append(self, slug: str, entries: Sequence[Entry], *,
               alongside: Callable[[Session, int], None] | None = None, prove: bool = False) -> list[Appended]:
        """Append a batch atomically (all or nothing). Raises an EntryError with ``position`` set to the
        offending entry's place in the batch. ``alongside(session, village_id)`` writes off-log rows that
        belong with the entries (a complaint's content) in the same transaction; a re-posted batch that
        is already in the log returns the first result and does not call it. ``prove``: each result
        carries its inclusion proof (read in the same transaction).

        Batches posted at the same time by threads of this process are committed together (group commit):
        each is replayed on its own copy of the state, so a refused batch leaves the others untouched, and
        every batch of the group lands under the group's one checkpoint."""
        if not entries:
            raise EntryError("a batch needs at least one entry", field="entries")
        # (1)
        seen: set[str] = set()
        self.check_dated_now(entries)
        for position, entry in enumerate(entries):
            _at(position, check_signatures, entry)
            if entry.id in seen:
                raise _positioned(Replay(f"entry {entry.id} appears twice in the batch", field="entry.id"), position)
            seen.add(entry.id)
        request = _Request(list(entries), alongside, prove)
        writer = self.writer(slug)
        writer.enqueue(request)
        with writer.lock:
            while not request.done:
                self._append_group(slug, writer.take())
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def check_dated_now(self, entries: Sequence[Entry], now: datetime | None = None) -> None:
        """Every entry is dated when it is signed: within ``clock_skew`` of the server's clock (``now``, by
        default read from it once). Raises RuleViolation naming ``entry.time`` and the entry's position."""
        now = now or self.clock()
        # Entry times are one fixed-width format, so text order is time order: no parse per entry.
        earliest, latest = format_time(now - self.clock_skew), format_time(now + self.clock_skew)
        for position, entry in enumerate(entries):
            if not earliest <= entry.time <= latest:
                raise _positioned(RuleViolation(
                    f"rule 2 (time): entry time {entry.time} is more than {self.clock_skew.total_seconds() / 60:g} "
                    f"minutes from the server's clock ({format_time(now)}); an entry is dated when it is signed (an "
                    "older event's date goes in the body, e.g. occurred_on)", field="entry.time"), position)

    @contextmanager
    def clocked(self, clock: Clock) -> Iterator[None]:
        """Run with ``clock`` as the server's clock (the demo replays a simulated year through it)."""
        saved, self.clock = self.clock, clock
        try:
            yield
        finally:
            self.clock = saved

    def writer(self, slug: str) -> Writer:
        """The village's writer in this process (made on first use)."""
        with self._lock:
            return self._writers.setdefault(slug, Writer())

    def _append_group(self, slug: str, group: list[_Request]) -> None:
        """Steps (2)-(7) for the batches of ``group``; each ends with a result or its own error."""
        try:
            outcomes = self._commit_group(slug, group)
        except BaseException as exc:  # noqa: BLE001  nothing was written: every batch of the group fails alike,
            # each in its own thread (the leader re-raises it as its own batch's error)
            for request in group:
                request.finish(error=exc)
            return
        for request, outcome in zip(group, outcomes):
            if isinstance(outcome, _Request):  # the same batch twice in the group: the first's result
                request.finish(result=outcome.result, error=outcome.error)
            elif isinstance(outcome, LedgerError):
                request.finish(error=outcome)
            else:
                request.finish(result=outcome)

    def _commit_group(self, slug: str, group: list[_Request]) -> list[list[Appended] | LedgerError | _Request]:
        outcomes: list[list[Appended] | LedgerError | _Request] = []
        with write_session(self.engine) as session:
            # (2)
            village = self.villages.row(session, slug, lock=True)
            assert village.id is not None
            # (3)
            ids = [entry.id for request in group for entry in request.entries]
            stored = {row.entry_id: row for row in session.connection().execute(
                STORED_ENTRIES, {"village": village.id, "ids": ids})}
            state: State | None = None
            accepted: list[tuple[_Request, int]] = []  # (batch, its first index)
            in_group: dict[str, _Request] = {}
            changes = Changes()
            for request in group:
                try:
                    earlier = _already_appended(session, village.id, request.entries, stored)
                    if earlier is not None:
                        outcomes.append(earlier)
                        continue
                    first = _same_batch_in_group(request, in_group)
                    if first is not None:
                        outcomes.append(first)
                        continue
                    # (4)
                    if state is None:
                        state = self.states.current(session, village.id)
                        assert isinstance(state.index, DbIndex)
                        state.index.absent = frozenset(ids) - stored.keys()  # (3) showed these are not stored
                    trial = state.copy()
                    changed = Changes()
                    deductions = []  # those the protection of complainants concerns
                    for position, entry in enumerate(request.entries):
                        changed.update(_at(position, apply, trial, entry))
                        if protection.exposed(trial, entry):
                            deductions.append((position, entry))
                    protection.require_supervisor_for_filers(session, village.id, deductions)
                except LedgerError as exc:
                    outcomes.append(exc)
                    continue
                accepted.append((request, state.size))
                in_group.update((entry.id, request) for entry in request.entries)
                state = trial
                changes.update(changed)
                outcomes.append([])  # filled in below, once the batch's indexes are known
            if state is not None and accepted:
                note, tree_size, leaf_hashes = self._write(session, village, state, accepted, changes)
                for request, start in accepted:
                    outcomes[group.index(request)] = [
                        Appended(entry.id, start + i, leaf_hashes[start + i], note, tree_size)
                        for i, entry in enumerate(request.entries)
                    ]
            for position, request in enumerate(group):
                outcome = outcomes[position]
                if request.prove and isinstance(outcome, list):
                    outcomes[position] = self._proved(session, village, outcome)
        # (7)
        if state is not None and accepted:
            self.states.committed(village.id, state)
        return outcomes

    def _write(self, session: Session, village: m.Village, state: State, accepted: list[tuple[_Request, int]],
               changes: Changes) -> tuple[str, int, dict[int, bytes]]:
        """Steps (5)-(6): entries, tree nodes, derived rows, off-log rows and the signed checkpoint.
        Returns the checkpoint, its size and the leaf hash of every new index."""
        assert village.id is not None
        start = accepted[0][1]
        entries = [entry for request, _ in accepted for entry in request.entries]
        # (5)
        tree = self.proofs.compact_range(session, village.id, start)
        leaf_hashes = {start + i: merkle.hash_leaf(entry.leaf) for i, entry in enumerate(entries)}
        nodes: list[dict[str, Any]] = []
        for leaf_hash in leaf_hashes.values():
            nodes.extend(node_rows(village.id, tree, leaf_hash))
        connection = session.connection()
        connection.execute(_INSERT_ENTRIES, [
            entry_row(village.id, start + i, entry, leaf_hashes[start + i], state) for i, entry in enumerate(entries)
        ])
        connection.execute(_INSERT_NODES, nodes)
        # (6)
        for model, rows in derived_rows(village.id, state, changes).items():
            upsert(session, model, rows)
        for request, _ in accepted:
            if request.alongside is not None:
                request.alongside(session, village.id)
        return self.proofs.sign_checkpoint(session, village.id, village.origin, tree), tree.size, leaf_hashes

    def _proved(self, session: Session, village: m.Village, appended: list[Appended]) -> list[Appended]:
        """``appended`` with their inclusion proofs, all under the latest of their checkpoints."""
        latest = max(appended, key=lambda a: a.tree_size)
        proofs = self.proofs.proofs_within(session, village, [a.index for a in appended], latest.tree_size,
                                           committed=False)
        return [
            dataclasses.replace(a, checkpoint=latest.checkpoint, tree_size=latest.tree_size, inclusion_proof=tuple(proof))
            for a, proof in zip(appended, proofs)
        ]


def _already_appended(session: Session, village_id: int, entries: Sequence[Entry],
                      stored: Mapping[str, Any]) -> list[Appended] | None:
    """Step (3) for one batch: its first results if every entry of it is ``stored`` with the same bytes,
    None if none is. Raises Replay if some but not all are, or one reuses the id of a different entry."""
    rows = {entry.id: stored[entry.id] for entry in entries if entry.id in stored}
    if not rows:
        return None
    for position, entry in enumerate(entries):
        row = rows.get(entry.id)
        if row is not None and row.leaf != entry.leaf:
            raise _positioned(Replay(f"entry {entry.id} reuses the id of a different entry already in the log",
                                     field="entry.id"), position)
    if len(rows) != len(entries):
        position, entry = next((p, e) for p, e in enumerate(entries) if e.id in rows)
        raise _positioned(Replay(f"entry {entry.id} is already in the log; a batch is re-posted whole or not at all",
                                 field="entry.id"), position)
    results = []
    for entry in entries:
        row = rows[entry.id]
        size, note = session.connection().execute(
            _CHECKPOINT_COVERING, {"village": village_id, "index": row.idx}
        ).one()
        results.append(Appended(entry.id, row.idx, bytes(row.leaf_hash), note, size))
    return results


def _same_batch_in_group(request: _Request, in_group: Mapping[str, _Request]) -> _Request | None:
    """The earlier batch of the group that ``request`` repeats byte for byte, if any. Raises Replay
    where it reuses ids of the group's batches otherwise (as for batches already in the log)."""
    for position, entry in enumerate(request.entries):
        first = in_group.get(entry.id)
        if first is None:
            continue
        if [e.leaf for e in first.entries] == [e.leaf for e in request.entries]:
            return first
        raise _positioned(Replay(f"entry {entry.id} is already in the log; a batch is re-posted whole or not at all",
                                 field="entry.id"), position)
    return None


def _positioned(error: EntryError, position: int) -> EntryError:
    error.position = position
    return error


def _at(position: int, function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except EntryError as exc:
        raise _positioned(exc, position)


# --- the log's rows (appending and restore write them alike) ------------------------------------------


def entry_row(village_id: int, index: int, entry: Entry, leaf_hash: bytes, state: State) -> dict[str, Any]:
    """The entries table's row for ``entry`` at ``index``; ``state`` has just applied it."""
    movement = state.recent.movements.get(entry.id)
    body = entry.body
    refers_to = KINDS[entry.kind].refers_to
    return {
        "village_id": village_id,
        "idx": index,
        "entry_id": entry.id,
        "kind": entry.kind,
        "time": entry.time,
        "author": entry.author,
        "leaf": entry.leaf,
        "leaf_hash": leaf_hash,
        "household": movement.household if movement else body.get("household"),
        "ledger": movement.ledger if movement else None,
        "amount": movement.amount if movement else None,
        "debit": movement.debit if movement else None,
        "credit": movement.credit if movement else None,
        "ref": body[refers_to] if refers_to else None,
    }


def node_rows(village_id: int, tree: merkle.CompactRange, leaf_hash: bytes) -> list[dict[str, Any]]:
    """Append ``leaf_hash`` to ``tree``; the tree_nodes rows of the nodes it completes."""
    return [{"village_id": village_id, "level": node.level, "idx": node.index, "hash": digest}
            for node, digest in tree.append(leaf_hash)]
