"""Auditing a village's stored log: its export (the bundle), the self-check, restoring a bundle as a new
village, and rebuilding the derived tables from the entries (with the dump that shows a rebuild changed
nothing). The log is read streamed: a village's whole log is never held in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlmodel import Session

import keys
from ledger import bundle, merkle
from ledger.entries import decode_leaf, leaf_body, utc_now
from ledger.errors import VerificationError
from ledger.kinds import KINDS
from ledger.note import open_checkpoint
from ledger.state import State, apply
from ledger.verify import Report, verify_bundle

from . import models as m
from .appending import entry_row, node_rows
from .db import read_session, write_session
from .derived import MODELS, insert_derived
from .states import States
from .villages import Villages

RESTORE_LINES = 2000  # bundle lines restored per batch of inserts


class Audit:
    """Export, check, restore and rebuild for every village of a store."""

    def __init__(self, engine: Engine, villages: Villages, states: States) -> None:
        self.engine, self.villages, self.states = engine, villages, states

    def export(self, slug: str) -> Iterator[bytes]:
        """The village's bundle as lines, streamed from the database (see ``ledger.bundle``)."""
        with read_session(self.engine, streamed=True) as session:
            village = self.villages.row(session, slug)
            yield bundle.header_line(
                village=slug, origin=village.origin, log_keys=self.villages.verifier_keys(slug), created=utc_now()
            )
            checkpoints = session.execute(
                select(m.CheckpointRow.size, m.CheckpointRow.note).where(m.CheckpointRow.village_id == village.id).order_by(m.CheckpointRow.size)  # type: ignore[call-overload]
            ).all()
            cosignatures: dict[int, str] = {}
            for size, line in session.execute(select(m.CosignatureRow.size, m.CosignatureRow.line).where(  # type: ignore[call-overload]
                    m.CosignatureRow.village_id == village.id).order_by(m.CosignatureRow.witness)):
                cosignatures[size] = cosignatures.get(size, "") + line
            pending = iter([(size, note + cosignatures.get(size, "")) for size, note in checkpoints])
            upcoming = next(pending, None)
            attachments: set[str] = set()
            size = 0
            query = select(m.EntryRow.kind, m.EntryRow.leaf).where(m.EntryRow.village_id == village.id).order_by(m.EntryRow.idx)  # type: ignore[call-overload]
            with _streamed(session, query) as rows:
                for kind, leaf in rows:
                    yield bundle.entry_line(leaf)
                    size += 1
                    if KINDS[kind].files:
                        attachments.update(KINDS[kind].file_hashes(leaf_body(leaf)))
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
        trusted = [keys.parse_verifier_key(v) for v in self.villages.verifier_keys(slug)]
        return verify_bundle(self.export(slug), trusted, workers=workers)

    def _check_rows(self, slug: str) -> None:
        with read_session(self.engine, streamed=True) as session:
            village = self.villages.row(session, slug)
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
            village = self.villages.add(session, report.village, report.origin)
            assert village.id is not None
            for verifier in trusted:
                session.add(m.LogKey(village_id=village.id, name=verifier.name, public=verifier.public,
                                     encrypted_pem=None, created=utc_now(), retired=utc_now()))
            session.add(self.villages.log_key_row(village.id, report.origin, log_key or keys.SigningKey.generate()))
            # (3)
            state, tree = State(), merkle.CompactRange()
            with bundle_path.open("rb") as lines:
                for chunk in _batched(lines, RESTORE_LINES):
                    _restore_chunk(session, village.id, chunk, state, tree, trusted)
            insert_derived(session, village.id, state)
        return report

    def rebuild(self, slug: str) -> None:
        """Recompute every derived table of the village from its entries (replacing what is there)."""
        with write_session(self.engine) as session:
            village = self.villages.row(session, slug, lock=True)
            assert village.id is not None
            state = State()
            query = select(m.EntryRow.leaf).where(m.EntryRow.village_id == village.id).order_by(m.EntryRow.idx)  # type: ignore[call-overload]
            with _streamed(session, query) as leaves:
                for (leaf,) in leaves:
                    apply(state, decode_leaf(leaf))
            for model in reversed(MODELS):
                session.execute(delete(model).where(model.village_id == village.id))
            insert_derived(session, village.id, state)
        self.states.forget(village.id)

    def derived_dump(self, slug: str) -> dict[str, list[tuple[Any, ...]]]:
        """Every derived row of the village, in key order: what ``rebuild`` must reproduce exactly."""
        with read_session(self.engine) as session:
            village = self.villages.row(session, slug)
            dump = {}
            for model in MODELS:
                table = model.__table__
                order = [c for c in table.primary_key.columns]
                rows = session.execute(select(table).where(table.c.village_id == village.id).order_by(*order)).all()
                dump[table.name] = [tuple(row) for row in rows]
            return dump


def _restore_chunk(session: Session, village_id: int, lines: Sequence[bytes], state: State,
                   tree: merkle.CompactRange, trusted: Sequence[keys.NoteVerifier]) -> None:
    """Insert the rows of a run of bundle lines: entries (applied to ``state``, folded into ``tree``), the
    tree nodes they complete and the checkpoints, each opened with ``trusted``."""
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
            nodes.extend(node_rows(village_id, tree, leaf_hash))
            entries.append(entry_row(village_id, index, entry, leaf_hash, state))
        elif line.startswith(b'{"checkpoint":'):
            note = json.loads(line)["checkpoint"]
            checkpoint = open_checkpoint(note, trusted)
            checkpoints.append({"village_id": village_id, "size": checkpoint.size, "root": checkpoint.root_hash,
                                "note": note, "created": utc_now()})
    for model, rows in ((m.EntryRow, entries), (m.TreeNode, nodes), (m.CheckpointRow, checkpoints)):
        if rows:
            session.execute(model.__table__.insert(), rows)  # type: ignore[union-attr]  # SQLModel declares no __table__


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
