"""The store: adapts the ledger library to the database. One ``Store`` per process (per app).

Append plan (``Store.append``):
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
import functools
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, bindparam, delete, select, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlmodel import Session, SQLModel

import keys
from ledger import bundle, merkle
from ledger.entries import (
    Entry,
    check_signatures,
    decode_leaf,
    format_time,
    household_commitment,
    leaf_body,
    utc_now,
)
from ledger.errors import EntryError, LedgerError, Replay, RuleViolation, VerificationError
from ledger.note import Checkpoint, TlogProof, open_checkpoint, sign_checkpoint
from ledger.state import (
    Case,
    Changes,
    Grid,
    Household,
    KeyRecord,
    Member,
    MemoryIndex,
    Movement,
    Rule,
    State,
    apply,
)
from ledger.state import (
    Village as VillageInfo,
)
from ledger.verify import Report, verify_bundle

from . import models as m
from . import protection
from .db import is_sqlite, read_session, write_session
from .nodes import NODE_CACHE_BYTES, NodeCache

T = TypeVar("T")

TAIL_REPLAY = 2500  # entries another process appended that are replayed rather than reloading the state
# (replaying one costs about 0.1 ms; loading the state of a 2,000-household village about 230 ms)

# The hot reads (a checkpoint, a proof's nodes) are plain SQL on the session's connection: building an ORM
# select costs more than running it, and these run for every proof a villager's phone checks.
_LATEST_CHECKPOINT = text("SELECT size, note FROM checkpoints WHERE village_id = :village ORDER BY size DESC LIMIT 1")
# ... and so are the fixed statements of every append.
_LOCK_VILLAGE = text("SELECT id FROM villages WHERE id = :village FOR UPDATE")
_STATE_SIZE = text("SELECT size FROM village_state WHERE village_id = :village")
_ACTIVE_LOG_KEY = text("SELECT id FROM log_keys WHERE village_id = :village AND retired IS NULL")
_STORED_ENTRIES = text(
    "SELECT entry_id, idx, leaf, leaf_hash FROM entries WHERE village_id = :village AND entry_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
_CHECKPOINT_COVERING = text(
    "SELECT size, note FROM checkpoints WHERE village_id = :village AND size > :index ORDER BY size LIMIT 1"
)
_INSERT_ENTRIES = m.EntryRow.__table__.insert()  # type: ignore[attr-defined]
_INSERT_NODES = m.TreeNode.__table__.insert()  # type: ignore[attr-defined]
_INSERT_CHECKPOINT = m.CheckpointRow.__table__.insert()  # type: ignore[attr-defined]


Clock = Callable[[], datetime]
CLOCK_SKEW = timedelta(minutes=5)


def system_clock() -> datetime:
    return datetime.now(UTC)


class StorageError(LedgerError):
    """A request the store cannot answer (unknown village, index out of range...)."""


class NotFound(StorageError):
    pass


@dataclass(frozen=True)
class Appended:
    """Where an entry landed: its index and leaf hash, and a signed checkpoint that includes it."""

    entry_id: str
    index: int
    leaf_hash: bytes
    checkpoint: str
    tree_size: int
    inclusion_proof: tuple[bytes, ...] | None = None  # in the tree of ``tree_size``, when asked for


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


def _upsert(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    if rows:
        session.connection().execute(_upsert_statement(session.get_bind().dialect.name, model), rows)


@functools.cache
def _upsert_statement(dialect: str, model: type[SQLModel]) -> Any:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE, built once per table (building it costs more than
    running it for one row)."""
    table = model.__table__  # type: ignore[attr-defined]
    keys_ = [c.name for c in table.primary_key.columns]
    statement = (sqlite_dialect.insert if dialect == "sqlite" else pg_dialect.insert)(table)
    return statement.on_conflict_do_update(
        index_elements=keys_, set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys_}
    )


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


class _Writer:
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


class Store:
    """All of a server's villages in one database."""

    def __init__(self, engine: Engine, *, log_key_passphrase: bytes, node_cache_bytes: int = NODE_CACHE_BYTES,
                 clock: Clock = system_clock, clock_skew: timedelta = CLOCK_SKEW) -> None:
        if not log_key_passphrase:
            raise ValueError("a passphrase for the log keys is required")
        self.engine = engine
        self.clock, self.clock_skew = clock, clock_skew
        self._passphrase = log_key_passphrase
        self._states: dict[int, State] = {}
        self._signers: dict[int, tuple[int, str, keys.SigningKey]] = {}
        self._villages: dict[str, m.Village] = {}
        self._facts: dict[tuple[int, str], tuple[int, Any]] = {}
        self._writers: dict[str, _Writer] = {}
        self._nodes = NodeCache(node_cache_bytes)
        self._seen_sizes: dict[int, int] = {}  # the largest signed size of each village this process has read
        self._lock = threading.Lock()

    @property
    def log_key_passphrase(self) -> bytes:
        """What the server's own keys (log keys, complaint desk keys) are encrypted under."""
        return self._passphrase

    # --- villages ----------------------------------------------------------------------------------

    def create_village(self, genesis: Entry, *, log_key: keys.SigningKey | None = None) -> Appended:
        """Create a village from its signed genesis entry, with a new (or the given) log key."""
        origin = genesis.body.get("origin") if genesis.kind == "village.genesis" else None
        if origin is None:
            raise EntryError("a village starts with a village.genesis entry", field="entry.kind")
        log_key = log_key or keys.SigningKey.generate()
        with write_session(self.engine) as session:
            if session.execute(select(m.Village).where(m.Village.slug == genesis.village)).first():  # type: ignore[arg-type]
                raise EntryError(f"village {genesis.village!r} already exists", field="entry.village")
            village = m.Village(slug=genesis.village, origin=origin, created=utc_now())
            session.add(village)
            session.flush()
            assert village.id is not None
            session.add(self._log_key_row(village.id, origin, log_key))
            session.add(m.VillageState(village_id=village.id, size=0))
            session.flush()
        return self.append(genesis.village, [genesis])[0]

    def _log_key_row(self, village_id: int, name: str, key: keys.SigningKey) -> m.LogKey:
        return m.LogKey(
            village_id=village_id,
            name=name,
            public=key.public_bytes,
            encrypted_pem=key.to_encrypted_pem(self._passphrase),
            created=utc_now(),
        )

    def rotate_log_key(self, slug: str, new_key: keys.SigningKey) -> str:
        """Sign future checkpoints with ``new_key``. Older checkpoints keep their signatures and stay
        verifiable with the old verifier key, which the bundle keeps listing. Returns the new verifier key."""
        with write_session(self.engine) as session:
            village = self.village_row(session, slug, lock=True)
            assert village.id is not None
            for row in session.execute(select(m.LogKey).where(m.LogKey.village_id == village.id)).scalars():  # type: ignore[arg-type]
                row.retired = row.retired or utc_now()
            session.add(self._log_key_row(village.id, village.origin, new_key))
        self._signers.pop(village.id, None)
        return keys.verifier_key(village.origin, new_key.public_bytes)

    def villages(self) -> list[m.Village]:
        with read_session(self.engine) as session:
            return list(session.execute(select(m.Village).order_by(m.Village.slug)).scalars())

    def village_row(self, session: Session, slug: str, *, lock: bool = False) -> m.Village:
        """The village's row; ``lock`` takes its write lock (PostgreSQL) for this transaction.
        A village is never renamed or deleted, so unlocked reads are answered from a per-process copy
        (a transient row, bound to no session, so no rollback can expire it)."""
        village = self._villages.get(slug)
        if village is None:
            found = session.execute(select(m.Village).where(m.Village.slug == slug)).scalar_one_or_none()  # type: ignore[arg-type]
            if found is None:
                raise NotFound(f"no village {slug!r}")
            village = m.Village(id=found.id, slug=found.slug, origin=found.origin, created=found.created)
            self._villages[slug] = village
        if lock and not is_sqlite(self.engine):  # SQLite's write transaction already holds the database's lock
            session.connection().execute(_LOCK_VILLAGE, {"village": village.id})
        return village

    def village_id(self, slug: str) -> int:
        with read_session(self.engine) as session:
            village = self.village_row(session, slug)
            assert village.id is not None
            return village.id

    def fact_at(self, village_id: int, size: int, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, a fact of the village's log prefix of ``size`` entries (its rules, who holds which
        key), kept per process until the log grows. Every such fact changes only by an append, and an
        append always writes a checkpoint of a new size."""
        cached = self._facts.get((village_id, name))
        if cached is not None and cached[0] == size:
            return cast(T, cached[1])
        value = compute()
        self._facts[(village_id, name)] = (size, value)
        return value

    def verifier_keys(self, slug: str) -> list[str]:
        """Every note verifier key the village's checkpoints were ever signed with, oldest first."""
        with read_session(self.engine) as session:
            village = self.village_row(session, slug)
            rows = session.execute(select(m.LogKey).where(m.LogKey.village_id == village.id).order_by(m.LogKey.id)).scalars()  # type: ignore[arg-type]
            return [keys.verifier_key(row.name, row.public) for row in rows]

    def _signer(self, session: Session, village_id: int) -> tuple[str, keys.SigningKey]:
        """The village's active log key (asked every time: another process may have rotated it),
        decrypted once per process."""
        active = session.connection().execute(_ACTIVE_LOG_KEY, {"village": village_id}).scalar_one()
        cached = self._signers.get(village_id)
        if cached is None or cached[0] != active:
            row = session.get_one(m.LogKey, active)
            assert row.encrypted_pem is not None, "the active log key always has its private half"
            cached = (active, row.name, keys.SigningKey.from_encrypted_pem(row.encrypted_pem, self._passphrase))
            self._signers[village_id] = cached
        return cached[1], cached[2]

    # --- appending ---------------------------------------------------------------------------------

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
        writer = self._writer(slug)
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

    def _writer(self, slug: str) -> _Writer:
        with self._lock:
            return self._writers.setdefault(slug, _Writer())

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
            village = self.village_row(session, slug, lock=True)
            assert village.id is not None
            # (3)
            ids = [entry.id for request in group for entry in request.entries]
            stored = {row.entry_id: row for row in session.connection().execute(
                _STORED_ENTRIES, {"village": village.id, "ids": ids})}
            state: State | None = None
            accepted: list[tuple[_Request, int]] = []  # (batch, its first index)
            in_group: dict[str, _Request] = {}
            changes = Changes()
            for request in group:
                try:
                    earlier = self._already_appended(session, village.id, request.entries, stored)
                    if earlier is not None:
                        outcomes.append(earlier)
                        continue
                    first = _same_batch_in_group(request, in_group)
                    if first is not None:
                        outcomes.append(first)
                        continue
                    # (4)
                    if state is None:
                        state = self._state(session, village.id)
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
            state.recent = MemoryIndex()
            with self._lock:
                self._states[village.id] = state
        return outcomes

    def _write(self, session: Session, village: m.Village, state: State, accepted: list[tuple[_Request, int]],
               changes: Changes) -> tuple[str, int, dict[int, bytes]]:
        """Steps (5)-(6): entries, tree nodes, derived rows, off-log rows and the signed checkpoint.
        Returns the checkpoint, its size and the leaf hash of every new index."""
        assert village.id is not None
        start = accepted[0][1]
        entries = [entry for request, _ in accepted for entry in request.entries]
        # (5)
        tree = self._compact_range(session, village.id, start)
        leaf_hashes = {start + i: merkle.hash_leaf(entry.leaf) for i, entry in enumerate(entries)}
        nodes: list[dict[str, Any]] = []
        for leaf_hash in leaf_hashes.values():
            nodes.extend(
                {"village_id": village.id, "level": node.level, "idx": node.index, "hash": digest}
                for node, digest in tree.append(leaf_hash)
            )
        connection = session.connection()
        connection.execute(_INSERT_ENTRIES, [
            _entry_row(village.id, start + i, entry, leaf_hashes[start + i], state) for i, entry in enumerate(entries)
        ])
        connection.execute(_INSERT_NODES, nodes)
        # (6)
        for model, rows in derived_rows(village.id, state, changes).items():
            _upsert(session, model, rows)
        for request, _ in accepted:
            if request.alongside is not None:
                request.alongside(session, village.id)
        return self._sign_checkpoint(session, village.id, village.origin, tree), tree.size, leaf_hashes

    def _proved(self, session: Session, village: m.Village, appended: list[Appended]) -> list[Appended]:
        """``appended`` with their inclusion proofs, all under the latest of their checkpoints."""
        latest = max(appended, key=lambda a: a.tree_size)
        proofs = self.proofs_within(session, village, [a.index for a in appended], latest.tree_size, committed=False)
        return [
            dataclasses.replace(a, checkpoint=latest.checkpoint, tree_size=latest.tree_size, inclusion_proof=tuple(proof))
            for a, proof in zip(appended, proofs)
        ]

    def _already_appended(self, session: Session, village_id: int, entries: Sequence[Entry],
                          stored: Mapping[str, Any]) -> list[Appended] | None:
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

    def _state(self, session: Session, village_id: int) -> State:
        """The village state at its current size, for this transaction (a private copy)."""
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

    def _compact_range(self, session: Session, village_id: int, size: int) -> merkle.CompactRange:
        ids = merkle.range_nodes(0, size)
        return merkle.CompactRange(size, self._node_hashes(session, village_id, ids))

    def _node_hashes(self, session: Session, village_id: int, ids: Sequence[merkle.NodeID], *,
                     committed: bool = False) -> list[bytes]:
        """The stored hashes of ``ids``. ``committed``: the session only reads committed rows (a read
        session), so what it reads may go into the process's node cache (``storage.nodes``)."""
        if not ids:
            return []
        wanted: Sequence[tuple[int, int]] = ids  # a NodeID is a (level, index) tuple
        found = self._nodes.held(village_id, wanted)
        asked = [key for key in wanted if key not in found]
        if asked and committed:
            self._top_up_nodes(session, village_id, asked)
            found.update(self._nodes.held(village_id, asked))
            asked = [key for key in asked if key not in found]
        if asked:
            for level, idx, digest in _select_nodes(session.connection(), village_id, asked):
                found[(level, idx)] = digest
        missing = [key for key in wanted if key not in found]
        if missing:
            raise StorageError(f"tree node level {missing[0][0]} index {missing[0][1]} is missing")
        return [found[key] for key in wanted]

    def warm_node_cache(self) -> None:
        """Read every village's tree nodes into the node cache, as far as its budget goes (villages in
        order, highest levels first): a server's workers do it before serving, so that no villager's proof
        pays for filling it (at 10⁶ entries, 2 million nodes: a few seconds). Without a cache, reads nothing."""
        if not self._nodes.budget:
            return
        for village in self.villages():
            assert village.id is not None
            with read_session(self.engine) as session:
                size = self._size(session, village)
                last = [(level, (size >> level) - 1) for level in range(size.bit_length())]
                while self._top_up_nodes(session, village.id, last):
                    pass

    def _top_up_nodes(self, session: Session, village_id: int, nodes: Sequence[tuple[int, int]]) -> int:
        """``NodeCache.top_up`` from ``session``, which must read committed rows only. Returns the nodes read."""
        return self._nodes.top_up(village_id, nodes, functools.partial(_select_level, session.connection(), village_id))

    def _sign_checkpoint(self, session: Session, village_id: int, origin: str, tree: merkle.CompactRange) -> str:
        name, key = self._signer(session, village_id)
        checkpoint = Checkpoint(origin, tree.size, tree.root())
        note = sign_checkpoint(checkpoint, [(name, key)])
        session.connection().execute(_INSERT_CHECKPOINT, {
            "village_id": village_id, "size": tree.size, "root": checkpoint.root_hash, "note": note, "created": utc_now(),
        })
        return note

    # --- reading the log ---------------------------------------------------------------------------

    def size(self, slug: str) -> int:
        with read_session(self.engine) as session:
            return self._size(session, self.village_row(session, slug))

    def _size(self, session: Session, village: m.Village) -> int:
        return self.latest(session, village)[0]

    def latest(self, session: Session, village: m.Village) -> tuple[int, str]:
        """(size, signed note) of the village's latest checkpoint."""
        assert village.id is not None
        size, note = session.connection().execute(_LATEST_CHECKPOINT, {"village": village.id}).one()
        self.saw_signed_size(village.id, size)
        return int(size), str(note)

    def saw_signed_size(self, village_id: int, size: int) -> None:
        """Remember that the village's log has a checkpoint of ``size`` entries (read from the database)."""
        self._seen_sizes[village_id] = max(self._seen_sizes.get(village_id, 0), size)

    def latest_checkpoint(self, slug: str) -> str:
        with read_session(self.engine) as session:
            return self.latest(session, self.village_row(session, slug))[1]

    def leaf(self, slug: str, index: int) -> bytes:
        with read_session(self.engine) as session:
            village = self.village_row(session, slug)
            leaf: bytes | None = session.execute(
                select(m.EntryRow.leaf).where(m.EntryRow.village_id == village.id, m.EntryRow.idx == index)  # type: ignore[call-overload]
            ).scalar_one_or_none()
            if leaf is None:
                raise NotFound(f"no entry at index {index} in village {slug!r}")
            return leaf

    def inclusion_proof(self, slug: str, index: int, size: int) -> list[bytes]:
        """Requires 0 <= index < size <= current size. Reads only the O(log size) nodes of the plan."""
        return self.inclusion_proofs(slug, [index], size)[0]

    def inclusion_proofs(self, slug: str, indexes: Sequence[int], size: int) -> list[list[bytes]]:
        """Proofs for many leaves of one tree size, reading the union of their plans' nodes once."""
        with read_session(self.engine) as session:
            village = self.village_row(session, slug)
            self._require_size(session, village, size)
            return self.proofs_within(session, village, indexes, size, committed=True)

    def proofs_within(self, session: Session, village: m.Village, indexes: Sequence[int], size: int, *,
                      committed: bool) -> list[list[bytes]]:
        """``inclusion_proofs`` inside a session the caller holds (``committed``: a read session, see
        ``_node_hashes``). Requires ``size`` <= the current size (a checkpoint's size read in ``session``)
        and 0 <= every index < ``size``."""
        for index in indexes:
            if not 0 <= index < size:
                raise StorageError(f"index {index} is outside a tree of size {size}")
        plans = [merkle.inclusion_plan(index, size) for index in indexes]
        wanted = sorted({node for plan in plans for node in plan.ids})
        found: dict[merkle.NodeID, bytes] = {}
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            found.update(zip(chunk, self._node_hashes(session, village.id or 0, chunk, committed=committed)))
        return [plan.rehash([found[node] for node in plan.ids]) for plan in plans]

    def consistency_proof(self, slug: str, first: int, second: int) -> list[bytes]:
        """Requires 0 < first <= second <= current size."""
        with read_session(self.engine) as session:
            village = self.village_row(session, slug)
            self._require_size(session, village, second)
            if not 0 < first <= second:
                raise StorageError(f"need 0 < first <= second, got first={first} second={second}")
            plan = merkle.consistency_plan(first, second)
            return plan.rehash(self._node_hashes(session, village.id or 0, plan.ids, committed=True))

    def _require_size(self, session: Session, village: m.Village, size: int) -> None:
        """Requires 0 < ``size`` <= the current size. A log only grows, so a size this process has already
        seen signed needs no question to the database."""
        assert village.id is not None
        if 0 < size <= self._seen_sizes.get(village.id, 0):
            return
        current = self._size(session, village)
        if not 0 < size <= current:
            raise StorageError(f"tree size {size} is outside 1..{current}")

    def tlog_proof(self, slug: str, index: int) -> str:
        """A C2SP tlog-proof receipt for entry ``index`` against the latest checkpoint: checkable offline."""
        with read_session(self.engine) as session:
            village = self.village_row(session, slug)
            size, note = self.latest(session, village)
            if not 0 <= index < size:
                raise NotFound(f"no entry at index {index} in village {slug!r}")
            plan = merkle.inclusion_plan(index, size)
            hashes = plan.rehash(self._node_hashes(session, village.id or 0, plan.ids, committed=True))
            return TlogProof(index=index, hashes=tuple(hashes), checkpoint=note).text()

    def state(self, slug: str) -> State:
        """A snapshot of the village state, for reads: the state this process keeps from its own appends,
        brought forward by replaying what other processes appended since, else loaded from the derived
        tables. Its ``index`` is not usable after the call."""
        with read_session(self.engine) as session:
            village = self.village_row(session, slug)
            assert village.id is not None
            return self._state(session, village.id)

    # --- auditing ----------------------------------------------------------------------------------

    def export(self, slug: str) -> Iterator[bytes]:
        """The village's bundle as lines, streamed from the database (see ``ledger.bundle``)."""
        with read_session(self.engine, streamed=True) as session:
            village = self.village_row(session, slug)
            yield bundle.header_line(
                village=slug, origin=village.origin, log_keys=self.verifier_keys(slug), created=utc_now()
            )
            checkpoints = session.execute(
                select(m.CheckpointRow.size, m.CheckpointRow.note).where(m.CheckpointRow.village_id == village.id).order_by(m.CheckpointRow.size)  # type: ignore[call-overload]
            ).all()
            pending = iter(checkpoints)
            upcoming = next(pending, None)
            attachments: set[str] = set()
            size = 0
            query = select(m.EntryRow.kind, m.EntryRow.leaf).where(m.EntryRow.village_id == village.id).order_by(m.EntryRow.idx)  # type: ignore[call-overload]
            with _streamed(session, query) as rows:
                for kind, leaf in rows:
                    yield bundle.entry_line(leaf)
                    size += 1
                    if kind in ("affair.publish", "points.award", "points.deduct"):
                        attachments.update(bundle.attachment_hashes(leaf_body(leaf)))
                    while upcoming is not None and upcoming[0] <= size:
                        yield bundle.checkpoint_line(upcoming[1])
                        upcoming = next(pending, None)
            balances = session.execute(
                select(m.BalanceRow.ledger, m.BalanceRow.account, m.BalanceRow.amount)  # type: ignore[call-overload]
                .where(m.BalanceRow.village_id == village.id)
                .order_by(m.BalanceRow.ledger, m.BalanceRow.account)
            ).all()
            claimed: dict[str, dict[str, int]] = {}
            for ledger_name, account, amount in balances:
                claimed.setdefault(ledger_name, {})[account] = amount
            yield from bundle.footer_lines(balances=claimed, attachments=attachments, size=size)

    def check(self, slug: str, *, workers: int | None = 0) -> Report:
        """Self-check: re-derive the tree and state from the stored entries, compare every stored leaf
        hash and tree node, then audit the export against this village's own log keys. Raises
        VerificationError naming the first bad entry."""
        self._check_rows(slug)
        trusted = [keys.parse_verifier_key(v) for v in self.verifier_keys(slug)]
        return verify_bundle(self.export(slug), trusted, workers=workers)

    def _check_rows(self, slug: str) -> None:
        with read_session(self.engine, streamed=True) as session:
            village = self.village_row(session, slug)
            query = (
                select(m.EntryRow.idx, m.EntryRow.kind, m.EntryRow.leaf, m.EntryRow.leaf_hash, m.TreeNode.hash)  # type: ignore[call-overload]
                .join(m.TreeNode, (m.TreeNode.village_id == m.EntryRow.village_id) & (m.TreeNode.level == 0)
                      & (m.TreeNode.idx == m.EntryRow.idx), isouter=True)
                .where(m.EntryRow.village_id == village.id)
                .order_by(m.EntryRow.idx)
            )
            with _streamed(session, query) as rows:
                for expected, (idx, kind, leaf, leaf_hash, node_hash) in enumerate(rows):
                    if idx != expected:
                        raise VerificationError(f"entry {expected} is missing (the next stored entry is {idx})", index=expected)
                    recomputed = merkle.hash_leaf(leaf)
                    if recomputed != leaf_hash or recomputed != node_hash:
                        raise VerificationError(
                            f"entry {idx} ({kind}): stored bytes do not match the leaf hash recorded in the tree",
                            index=idx, kind=kind,
                        )

    def restore(self, bundle_path: Path, trusted: Sequence[keys.NoteVerifier], *, log_key: keys.SigningKey | None = None,
                workers: int | None = None) -> Report:
        """Load an exported bundle as a new village: the same entries, tree and signed checkpoints, so the
        same roots and balances, on any backend.

        (1) verify the whole bundle against ``trusted`` (nothing unverified is ever loaded);
        (2) in one transaction: the village, its old log keys (public halves, retired) and a signing key
            for future checkpoints (``log_key``, e.g. from a backup, else a new one: a rotation);
        (3) replay the entries into rows, tree nodes and derived tables; keep every checkpoint verbatim.
        """
        # (1)
        with bundle_path.open("rb") as lines:
            report = verify_bundle(lines, trusted, workers=workers)
        # (2)
        with write_session(self.engine) as session:
            if session.execute(select(m.Village).where(m.Village.slug == report.village)).first():  # type: ignore[arg-type]
                raise EntryError(f"village {report.village!r} already exists", field="entry.village")
            village = m.Village(slug=report.village, origin=report.origin, created=utc_now())
            session.add(village)
            session.flush()
            assert village.id is not None
            for verifier in trusted:
                session.add(m.LogKey(village_id=village.id, name=verifier.name, public=verifier.public,
                                     encrypted_pem=None, created=utc_now(), retired=utc_now()))
            session.add(self._log_key_row(village.id, report.origin, log_key or keys.SigningKey.generate()))
            # (3)
            state, tree = State(), merkle.CompactRange()
            with bundle_path.open("rb") as lines:
                for chunk in _batched(lines, 2000):
                    self._restore_chunk(session, village.id, chunk, state, tree, trusted)
            for model, rows in derived_rows(village.id, state, None).items():
                if rows:
                    session.execute(model.__table__.insert(), rows)
        return report

    def _restore_chunk(self, session: Session, village_id: int, lines: Sequence[bytes], state: State,
                       tree: merkle.CompactRange, trusted: Sequence[keys.NoteVerifier]) -> None:
        entries: list[dict[str, Any]] = []
        nodes: list[dict[str, Any]] = []
        checkpoints: list[dict[str, Any]] = []
        for raw in lines:
            line = raw.rstrip(b"\n")
            if line.startswith(b'{"entry":'):
                entry = decode_leaf(line)
                index = state.size
                apply(state, entry)
                leaf_hash = merkle.hash_leaf(line)
                nodes.extend({"village_id": village_id, "level": node.level, "idx": node.index, "hash": digest}
                             for node, digest in tree.append(leaf_hash))
                entries.append(_entry_row(village_id, index, entry, leaf_hash, state))
            elif line.startswith(b'{"checkpoint":'):
                note = json.loads(line)["checkpoint"]
                checkpoint = open_checkpoint(note, trusted)
                checkpoints.append({"village_id": village_id, "size": checkpoint.size, "root": checkpoint.root_hash,
                                    "note": note, "created": utc_now()})
        for model, rows in ((m.EntryRow, entries), (m.TreeNode, nodes), (m.CheckpointRow, checkpoints)):
            if rows:
                session.execute(model.__table__.insert(), rows)  # type: ignore[union-attr]  # SQLModel declares no __table__

    def rebuild(self, slug: str) -> None:
        """Recompute every derived table of the village from its entries (replacing what is there)."""
        with write_session(self.engine) as session:
            village = self.village_row(session, slug, lock=True)
            assert village.id is not None
            state = State()
            query = select(m.EntryRow.leaf).where(m.EntryRow.village_id == village.id).order_by(m.EntryRow.idx)  # type: ignore[call-overload]
            with _streamed(session, query) as leaves:
                for (leaf,) in leaves:
                    apply(state, decode_leaf(leaf))
            for name in reversed(m.DERIVED_TABLES):
                model = _DERIVED_MODELS[name]
                session.execute(delete(model).where(model.village_id == village.id))
            for model, rows in derived_rows(village.id, state, None).items():
                if rows:
                    session.execute(model.__table__.insert(), rows)
        with self._lock:
            self._states.pop(village.id, None)

    def derived_dump(self, slug: str) -> dict[str, list[tuple[Any, ...]]]:
        """Every derived row of the village, in key order: what ``rebuild`` must reproduce exactly."""
        with read_session(self.engine) as session:
            village = self.village_row(session, slug)
            dump = {}
            for name in m.DERIVED_TABLES:
                model = _DERIVED_MODELS[name]
                table = model.__table__
                order = [c for c in table.primary_key.columns]
                rows = session.execute(select(table).where(table.c.village_id == village.id).order_by(*order)).all()
                dump[name] = [tuple(row) for row in rows]
            return dump

    # --- personal data (PIPL) ----------------------------------------------------------------------

    def put_private(self, slug: str, household: str, data: Mapping[str, Any]) -> str:
        """Store a household's personal data with a fresh salt; returns the commitment to put on the log."""
        salt = secrets.token_bytes(16)
        commitment = household_commitment(salt, data)
        with write_session(self.engine) as session:
            village = self.village_row(session, slug)
            _upsert(session, m.HouseholdPrivate, [{"village_id": village.id, "household_id": household, "salt": salt, "data": dict(data)}])
        return commitment

    def private(self, slug: str, household: str) -> tuple[bytes, dict[str, Any]] | None:
        with read_session(self.engine) as session:
            village = self.village_row(session, slug)
            row = session.get(m.HouseholdPrivate, (village.id, household))
            return (row.salt, dict(row.data)) if row else None

    def erase_private(self, slug: str, household: str) -> bool:
        """Erase a household's personal data. The log keeps only the (now unopenable) commitment."""
        with write_session(self.engine) as session:
            village = self.village_row(session, slug)
            result = session.execute(
                delete(m.HouseholdPrivate).where(
                    m.HouseholdPrivate.village_id == village.id, m.HouseholdPrivate.household_id == household  # type: ignore[arg-type]
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


_DERIVED_MODELS: dict[str, Any] = {
    "village_state": m.VillageState,
    "members": m.MemberRow,
    "member_keys": m.MemberKeyRow,
    "grids": m.GridRow,
    "households": m.HouseholdRow,
    "rules": m.RuleRow,
    "balances": m.BalanceRow,
    "complaint_cases": m.CaseRow,
}


_NODES_BY_ARRAYS = (  # PostgreSQL: one statement of fixed text, which psycopg prepares once per connection
    "SELECT t.level, t.idx, t.hash FROM tree_nodes t JOIN unnest(%s::int[], %s::bigint[]) AS w(level, idx) "
    "ON t.level = w.level AND t.idx = w.idx WHERE t.village_id = %s"
)


def _select_nodes(connection: Connection, village_id: int, wanted: Sequence[tuple[int, int]]) -> list[tuple[int, int, bytes]]:
    """(level, idx, hash) of the stored nodes among ``wanted``, each found by a primary-key seek. Driver SQL:
    it runs for every proof, and an ORM statement of twenty levels costs milliseconds to build."""
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(
            _NODES_BY_ARRAYS, ([level for level, _ in wanted], [index for _, index in wanted], village_id)
        ).all()
    else:
        # One "village, level, idx IN (...)" select per level joined by UNION ALL (a tuple IN, or an OR of
        # the terms, makes SQLite scan every node of the village).
        by_level: dict[int, list[int]] = {}
        for level, index in wanted:
            by_level.setdefault(level, []).append(index)
        selects, parameters = [], []
        for level, indexes in by_level.items():
            selects.append(f"SELECT level, idx, hash FROM tree_nodes WHERE village_id = ? AND level = ? "
                           f"AND idx IN ({', '.join('?' * len(indexes))})")
            parameters.extend([village_id, level, *indexes])
        rows = connection.exec_driver_sql(" UNION ALL ".join(selects), tuple(parameters)).all()
    return [(level, idx, bytes(digest)) for level, idx, digest in rows]


_LEVEL_RANGE = text("SELECT hash FROM tree_nodes WHERE village_id = :village AND level = :level "
                    "AND idx >= :begin AND idx < :end ORDER BY idx")


def _select_level(connection: Connection, village_id: int, level: int, begin: int, end: int) -> bytes:
    """The hashes of nodes ``begin .. end - 1`` of ``level``, concatenated. Raises StorageError if one is
    not stored."""
    rows = connection.execute(_LEVEL_RANGE, {"village": village_id, "level": level, "begin": begin, "end": end})
    hashes = [bytes(digest) for (digest,) in rows]
    if len(hashes) != end - begin or any(len(digest) != merkle.HASH_SIZE for digest in hashes):
        raise StorageError(f"tree nodes of level {level} from {begin} to {end} are missing or malformed")
    return b"".join(hashes)


@contextmanager
def _streamed(session: Session, query: Any) -> Iterator[Any]:
    """Rows of ``query`` fetched in batches (a server-side cursor on PostgreSQL), closed when the block
    ends, however it ends."""
    result = session.execute(query.execution_options(yield_per=2000))
    try:
        yield result
    finally:
        result.close()


def _batched(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _positioned(error: EntryError, position: int) -> EntryError:
    error.position = position
    return error


def _at(position: int, function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except EntryError as exc:
        raise _positioned(exc, position)


def _entry_row(village_id: int, index: int, entry: Entry, leaf_hash: bytes, state: State) -> dict[str, Any]:
    movement = state.recent.movements.get(entry.id)
    body = entry.body
    ref = body["entry"] if entry.kind == "points.reverse" else body["receipt"] if entry.kind == "complaint.receipt" else None
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
        "ref": ref,
    }


def derived_rows(village_id: int, state: State, changes: Changes | None) -> dict[Any, list[dict[str, Any]]]:
    """Rows of every derived table for the touched keys (all keys when ``changes`` is None)."""

    def pick(table: str, source: Mapping[Any, Any]) -> list[Any]:
        wanted = source.keys() if changes is None else getattr(changes, table) & source.keys()
        return [source[key] for key in sorted(wanted)]

    village: VillageInfo | None = state.village
    rows: dict[Any, list[dict[str, Any]]] = {
        m.VillageState: [{
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
        }],
        m.MemberRow: [_member_row(village_id, member) for member in pick("members", state.members)],
        m.MemberKeyRow: [_key_row(village_id, key) for key in pick("keys", state.keys)],
        m.GridRow: [
            {"village_id": village_id, "grid_id": g.id, "name": g.name, "name_en": g.name_en, "defined_at": g.defined_at}
            for g in pick("grids", state.grids)
        ],
        m.HouseholdRow: [_household_row(village_id, h) for h in pick("households", state.households)],
        m.RuleRow: [_rule_row(village_id, r) for r in pick("rules", state.rules)],
        m.BalanceRow: [
            {"village_id": village_id, "account": account, "ledger": ledger, "amount": state.balances[(account, ledger)]}
            for account, ledger in (sorted(state.balances) if changes is None else sorted(changes.balances & state.balances.keys()))
        ],
        m.CaseRow: [_case_row(village_id, case) for case in pick("cases", state.cases)],
    }
    return rows


def _member_row(village_id: int, member: Member) -> dict[str, Any]:
    return {
        "village_id": village_id, "member_id": member.id, "name": member.name, "roles": " ".join(sorted(member.roles)),
        "grid": member.grid, "household": member.household, "added_at": member.added_at,
        "appointed_by": member.appointed_by,
    }


def _key_row(village_id: int, key: KeyRecord) -> dict[str, Any]:
    return {"village_id": village_id, "public": key.public, "member_id": key.member, "added_at": key.added_at,
            "revoked_at": key.revoked_at, "added_by": key.added_by}


def _household_row(village_id: int, h: Household) -> dict[str, Any]:
    return {
        "village_id": village_id, "household_id": h.id, "grid": h.grid, "number": h.number, "public": dict(h.public),
        "commitment": h.commitment, "registered_at": h.registered_at, "updated_at": h.updated_at,
    }


def _case_row(village_id: int, case: Case) -> dict[str, Any]:
    return {"village_id": village_id, **dataclasses.asdict(case)}


def _rule_row(village_id: int, r: Rule) -> dict[str, Any]:
    return {
        "village_id": village_id, "code": r.code, "version": r.version, "title_zh": r.title_zh, "title_en": r.title_en,
        "ledger": r.ledger, "direction": r.direction, "amount": r.amount, "min": r.min, "max": r.max,
        "evidence_required": r.evidence_required, "description": r.description, "published_at": r.published_at,
        "retired_at": r.retired_at,
    }


def load_state(session: Session, village_id: int) -> State:
    """The village state from the derived tables (no replay)."""
    row = session.get(m.VillageState, village_id)
    if row is None:
        raise NotFound(f"village {village_id} has no state")
    state = State(size=row.size, latest_time=row.latest_time or "")
    state.index = DbIndex(session, village_id, state)
    if row.name is not None:
        assert row.township and row.county and row.origin and row.green_card_threshold is not None
        state.village = VillageInfo(
            slug=session.get(m.Village, village_id).slug,  # type: ignore[union-attr]
            name=row.name, name_en=row.name_en, township=row.township, county=row.county,
            origin=row.origin, green_card_threshold=row.green_card_threshold, rules=row.rules,
        )
    where = {"village_id": village_id}
    for r in session.execute(select(m.MemberRow).filter_by(**where)).scalars():
        roles = frozenset(r.roles.split()) if r.roles else frozenset()
        state.members[r.member_id] = Member(r.member_id, r.name, roles, r.grid, r.household, r.added_at, r.appointed_by)
    for k in session.execute(select(m.MemberKeyRow).filter_by(**where)).scalars():
        state.keys[k.public] = KeyRecord(k.public, k.member_id, k.added_at, k.revoked_at, k.added_by)
    for g in session.execute(select(m.GridRow).filter_by(**where)).scalars():
        state.grids[g.grid_id] = Grid(g.grid_id, g.name, g.name_en, g.defined_at)
    for h in session.execute(select(m.HouseholdRow).filter_by(**where)).scalars():
        state.households[h.household_id] = Household(
            h.household_id, h.grid, h.number, dict(h.public), h.commitment, h.registered_at, h.updated_at
        )
    for r in session.execute(select(m.RuleRow).filter_by(**where)).scalars():
        state.rules[r.code] = Rule(
            r.code, r.version, r.title_zh, r.title_en, r.ledger, r.direction, r.amount, r.min, r.max,
            r.evidence_required, r.description, r.published_at, r.retired_at,
        )
    for b in session.execute(select(m.BalanceRow).filter_by(**where)).scalars():
        state.balances[(b.account, b.ledger)] = b.amount
    for c in session.execute(select(m.CaseRow).filter_by(**where)).scalars():
        state.cases[c.receipt] = Case(**{f.name: getattr(c, f.name) for f in dataclasses.fields(Case)})
    return state


