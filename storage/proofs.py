"""Reading the log as a verifier asks it: its signed size and checkpoints, its leaves, inclusion and
consistency proofs; and signing the checkpoints an append writes.

Proofs are rehashed from stored tree nodes. A committed node never changes, so nodes read in a session
that sees committed rows only (a read session) go into the process's node cache (``storage.nodes``); a
log only grows, so a size seen signed once needs no question to the database again.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text
from sqlmodel import Session

from ledger import merkle
from ledger.entries import utc_now
from ledger.note import Checkpoint, TlogProof, sign_checkpoint
from ledger.tiles import ENTRIES, Tile, entry_bundle

from . import models as m
from .db import read_session
from .errors import NotFound, StorageError
from .nodes import NodeCache
from .villages import Villages

# The hot reads (a checkpoint, a proof's nodes) are plain SQL on the session's connection: building an ORM
# select costs more than running it, and these run for every proof a villager's phone checks.
_LATEST_CHECKPOINT = text("SELECT size, note FROM checkpoints WHERE village_id = :village ORDER BY size DESC LIMIT 1")
_INSERT_CHECKPOINT = m.CheckpointRow.__table__.insert()  # type: ignore[attr-defined]
PROOF_NODES_PER_READ = 400  # tree nodes asked of the database in one statement


class Proofs:
    """The log's read side. Keeps, per process, the node cache and the largest signed size of each village
    read from the database (``_seen_sizes``)."""

    def __init__(self, engine: Engine, villages: Villages, nodes: NodeCache) -> None:
        self.engine, self.villages, self.nodes = engine, villages, nodes
        self._seen_sizes: dict[int, int] = {}

    # --- size and checkpoints ----------------------------------------------------------------------

    def size(self, slug: str) -> int:
        with read_session(self.engine) as session:
            return self.size_in(session, self.villages.row(session, slug))

    def size_in(self, session: Session, village: m.Village) -> int:
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
        """The latest checkpoint's signed note, with every witness's cosignature of it the server holds."""
        with read_session(self.engine) as session:
            village = self.villages.row(session, slug)
            assert village.id is not None
            size, note = _cosigned_note(session, village.id, _largest(m.CheckpointRow, village.id))
            self.saw_signed_size(village.id, size)
            return note

    def sign_checkpoint(self, session: Session, village_id: int, origin: str, tree: merkle.CompactRange) -> str:
        """Sign a checkpoint of ``tree`` with the village's active log key and insert it; returns its note."""
        name, key = self.villages.signer(session, village_id)
        checkpoint = Checkpoint(origin, tree.size, tree.root())
        note = sign_checkpoint(checkpoint, [(name, key)])
        session.connection().execute(_INSERT_CHECKPOINT, {
            "village_id": village_id, "size": tree.size, "root": checkpoint.root_hash, "note": note, "created": utc_now(),
        })
        return note

    # --- leaves and proofs -------------------------------------------------------------------------

    def leaf(self, slug: str, index: int) -> bytes:
        with read_session(self.engine) as session:
            village = self.villages.row(session, slug)
            leaf: bytes | None = session.execute(
                select(m.EntryRow.leaf).where(m.EntryRow.village_id == village.id, m.EntryRow.idx == index)  # type: ignore[call-overload]
            ).scalar_one_or_none()
            if leaf is None:
                raise NotFound(f"no entry at index {index} in village {slug!r}")
            return leaf

    def inclusion_proofs(self, slug: str, indexes: Sequence[int], size: int) -> list[list[bytes]]:
        """Proofs for many leaves of one tree size, reading the union of their plans' nodes once."""
        with read_session(self.engine) as session:
            village = self.villages.row(session, slug)
            self._require_size(session, village, size)
            return self.proofs_within(session, village, indexes, size, committed=True)

    def proofs_within(self, session: Session, village: m.Village, indexes: Sequence[int], size: int, *,
                      committed: bool) -> list[list[bytes]]:
        """``inclusion_proofs`` inside a session the caller holds (``committed``: a read session, see
        ``node_hashes``). Requires ``size`` <= the current size (a checkpoint's size read in ``session``)
        and 0 <= every index < ``size``."""
        for index in indexes:
            if not 0 <= index < size:
                raise StorageError(f"index {index} is outside a tree of size {size}")
        plans = [merkle.inclusion_plan(index, size) for index in indexes]
        wanted = sorted({node for plan in plans for node in plan.ids})
        found: dict[merkle.NodeID, bytes] = {}
        for start in range(0, len(wanted), PROOF_NODES_PER_READ):
            chunk = wanted[start : start + PROOF_NODES_PER_READ]
            found.update(zip(chunk, self.node_hashes(session, village.id or 0, chunk, committed=committed)))
        return [plan.rehash([found[node] for node in plan.ids]) for plan in plans]

    def consistency_proof(self, slug: str, first: int, second: int) -> list[bytes]:
        """Requires 0 < first <= second <= current size."""
        with read_session(self.engine) as session:
            village = self.villages.row(session, slug)
            self._require_size(session, village, second)
            if not 0 < first <= second:
                raise StorageError(f"need 0 < first <= second, got first={first} second={second}")
            plan = merkle.consistency_plan(first, second)
            return plan.rehash(self.node_hashes(session, village.id or 0, plan.ids, committed=True))

    def _require_size(self, session: Session, village: m.Village, size: int) -> None:
        """Requires 0 < ``size`` <= the current size. A log only grows, so a size this process has already
        seen signed needs no question to the database."""
        assert village.id is not None
        if 0 < size <= self._seen_sizes.get(village.id, 0):
            return
        current = self.size_in(session, village)
        if not 0 < size <= current:
            raise StorageError(f"tree size {size} is outside 1..{current}")

    def tlog_proof(self, slug: str, index: int) -> str:
        """A C2SP tlog-proof receipt for entry ``index``, checkable offline: against the latest checkpoint a
        witness has cosigned, with its cosignatures, if that holds the entry; else against the latest."""
        with read_session(self.engine) as session:
            village = self.villages.row(session, slug)
            assert village.id is not None
            size, note = self.latest(session, village)
            if not 0 <= index < size:
                raise NotFound(f"no entry at index {index} in village {slug!r}")
            cosigned = _cosigned_note(session, village.id, _largest(m.CosignatureRow, village.id))
            if cosigned[0] > index:
                size, note = cosigned
            plan = merkle.inclusion_plan(index, size)
            hashes = plan.rehash(self.node_hashes(session, village.id, plan.ids, committed=True))
            return TlogProof(index=index, hashes=tuple(hashes), checkpoint=note).text()

    # --- tiles (C2SP tlog-tiles) ----------------------------------------------------------------------

    def tile(self, slug: str, tile: Tile) -> bytes:
        """The bytes of ``tile``: its hashes concatenated, or its entry bundle. Raises NotFound unless the
        latest checkpoint's tree holds it whole (``tile.tree_size_needed``): from then on it never changes."""
        with read_session(self.engine) as session:
            village = self.villages.row(session, slug)
            assert village.id is not None
            size = self._seen_sizes.get(village.id, 0)
            if tile.tree_size_needed > size:
                size = self.size_in(session, village)
            if tile.tree_size_needed > size:
                raise NotFound(f"{tile.path} is not in the tree of {size} entries of village {slug!r}")
            if tile.level == ENTRIES:
                leaves = session.execute(select(m.EntryRow.leaf).where(  # type: ignore[call-overload]
                    m.EntryRow.village_id == village.id, m.EntryRow.idx >= tile.nodes.start,
                    m.EntryRow.idx < tile.nodes.stop).order_by(m.EntryRow.idx)).scalars().all()
                return entry_bundle(leaves)
            return _select_level(session.connection(), village.id, tile.tree_level, tile.nodes.start, tile.nodes.stop)

    # --- tree nodes --------------------------------------------------------------------------------

    def compact_range(self, session: Session, village_id: int, size: int) -> merkle.CompactRange:
        """The compact range of the village's first ``size`` leaves, from stored nodes."""
        ids = merkle.range_nodes(0, size)
        return merkle.CompactRange(size, self.node_hashes(session, village_id, ids))

    def node_hashes(self, session: Session, village_id: int, ids: Sequence[merkle.NodeID], *,
                    committed: bool = False) -> list[bytes]:
        """The stored hashes of ``ids``. ``committed``: the session only reads committed rows (a read
        session), so what it reads may go into the process's node cache (``storage.nodes``)."""
        if not ids:
            return []
        wanted: Sequence[tuple[int, int]] = ids  # a NodeID is a (level, index) tuple
        found = self.nodes.held(village_id, wanted)
        asked = [key for key in wanted if key not in found]
        if asked and committed:
            self._top_up_nodes(session, village_id, asked)
            found.update(self.nodes.held(village_id, asked))
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
        if not self.nodes.budget:
            return
        for village in self.villages.all():
            assert village.id is not None
            with read_session(self.engine) as session:
                size = self.size_in(session, village)
                last = [(level, (size >> level) - 1) for level in range(size.bit_length())]
                while self._top_up_nodes(session, village.id, last):
                    pass

    def _top_up_nodes(self, session: Session, village_id: int, nodes: Sequence[tuple[int, int]]) -> int:
        """``NodeCache.top_up`` from ``session``, which must read committed rows only. Returns the nodes read."""
        return self.nodes.top_up(village_id, nodes, functools.partial(_select_level, session.connection(), village_id))


_NODES_BY_ARRAYS = (  # PostgreSQL: one statement of fixed text, which psycopg prepares once per connection
    "SELECT t.level, t.idx, t.hash FROM tree_nodes t JOIN unnest(%s::int[], %s::bigint[]) AS w(level, idx) "
    "ON t.level = w.level AND t.idx = w.idx WHERE t.village_id = %s"
)


def cosignatures_at(village_id: Any, size: Any) -> Any:
    """The signature lines of every cosignature of the village's checkpoint of ``size``, concatenated (C2SP
    signed-note lines, to append to the log's own): a scalar subquery, so that the statement that reads a
    checkpoint reads its cosignatures too (one question, one snapshot)."""
    return select(func.aggregate_strings(m.CosignatureRow.line, "")).where(  # type: ignore[arg-type]
        m.CosignatureRow.village_id == village_id, m.CosignatureRow.size == size).scalar_subquery()


def _largest(table: Any, village_id: int) -> Any:
    """The largest size ``table`` (checkpoints or cosignatures) holds for the village, as a scalar subquery."""
    return select(func.max(table.size)).where(table.village_id == village_id).scalar_subquery()


def _cosigned_note(session: Session, village_id: int, size: Any) -> tuple[int, str]:
    """(size, signed note with the cosignatures of that size) of the village's checkpoint of ``size``; (0, "")
    if there is none."""
    row = session.execute(select(  # type: ignore[call-overload]
        m.CheckpointRow.size, m.CheckpointRow.note, cosignatures_at(m.CheckpointRow.village_id, m.CheckpointRow.size),
    ).where(m.CheckpointRow.village_id == village_id, m.CheckpointRow.size == size)).one_or_none()
    return (0, "") if row is None else (int(row[0]), str(row[1]) + (row[2] or ""))


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
