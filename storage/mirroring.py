"""The township's mirror of a village log: the log's entries pulled from the village's tiles (C2SP tlog-tiles)
and kept in the township's own database as a village of its own, each replayed with the ledger's rules first.

Invariants:
- the mirror holds a prefix of the log exactly as the village served it: the same leaves, tree and signed
  checkpoints (so it serves the same tiles, exports the same bundle, and a lost village server is restored
  from it with ``villageledger restore``);
- nothing enters the mirror unchecked: every entry's signatures, the ledger's rules (``ledger.state.apply``,
  the checks and balances, the accounts summing to zero), its time within the bounds the witness gives, and
  the tree they make having the root of the checkpoint that follows them. An extension that fails writes
  nothing and names the first entry to blame.

What the mirror cannot check: rules that depend on what is off the log (the protection of complainants
needs the names of filers, which never enter the log).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence

from sqlalchemy import Engine, select
from sqlmodel import Session

from keys import NoteVerifier
from ledger import merkle
from ledger.entries import check_signatures, decode_leaf, utc_now
from ledger.errors import LedgerError, VerificationError
from ledger.note import Checkpoint, open_checkpoint
from ledger.state import Changes, State, apply, check_accounts_balance
from ledger.tiles import ENTRIES, TILE_WIDTH, Tile, read_entry_bundle

from . import models as m
from .appending import STORED_ENTRIES, entry_row, node_rows
from .db import upsert
from .derived import derived_rows, insert_derived
from .errors import StorageError
from .nodes import NodeCache
from .proofs import Proofs
from .states import DbIndex, States
from .villages import Villages

TIMEOUT_SECONDS = 30


class MirrorUnreachable(StorageError):
    """The village's tiles could not be read (unreachable, or not what the checkpoint says)."""


def fetch_leaves(tiles_url: str, begin: int, end: int, size: int) -> list[bytes]:
    """Leaves ``begin .. end - 1`` of a log of ``size`` entries, read from its entry bundles under ``tiles_url``
    (the prefix that ends in ``/``). Requires ``0 <= begin <= end <= size``. Raises MirrorUnreachable."""
    leaves: list[bytes] = []
    for index in range(begin // TILE_WIDTH, -(-end // TILE_WIDTH)):
        tile = Tile(ENTRIES, index, min(TILE_WIDTH, size - index * TILE_WIDTH))
        try:
            with urllib.request.urlopen(tiles_url + tile.path, timeout=TIMEOUT_SECONDS) as response:
                bundle = read_entry_bundle(response.read())
        except (urllib.error.URLError, OSError, LedgerError) as exc:
            raise MirrorUnreachable(f"cannot read {tiles_url}{tile.path}: {exc}") from exc
        if len(bundle) != tile.width:
            raise MirrorUnreachable(f"{tiles_url}{tile.path} holds {len(bundle)} entries, not {tile.width}")
        first = index * TILE_WIDTH
        leaves.extend(bundle[max(begin - first, 0) : end - first])
    return leaves


class Mirroring:
    """The mirrors kept in one database (the township's)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.villages = Villages(engine, b"")  # a mirror holds the log keys' public halves only: it never signs
        self.states = States()
        self.proofs = Proofs(engine, self.villages, NodeCache(0))

    def size(self, session: Session, slug: str) -> int:
        """How many entries the mirror of ``slug`` holds (0 if there is none yet)."""
        village = session.execute(select(m.Village).where(m.Village.slug == slug)).scalar_one_or_none()  # type: ignore[arg-type]
        return 0 if village is None else self.proofs.size_in(session, village)

    def require_root(self, session: Session, slug: str, checkpoint: Checkpoint) -> None:
        """The mirror, which holds more, has ``checkpoint``'s root at its size: raises VerificationError if not."""
        village = self.villages.row(session, slug)
        if self.proofs.compact_range(session, village.id or 0, checkpoint.size).root() != checkpoint.root_hash:
            raise VerificationError(f"the checkpoint of {checkpoint.size} is not the mirror's tree at that size")

    def extend(self, session: Session, slug: str, origin: str, log_keys: Sequence[NoteVerifier],
               leaves: Sequence[bytes], note: str, *, not_before: str, not_after: str) -> None:
        """Append the log's next ``leaves`` and the checkpoint ``note`` that follows them to the mirror of
        ``slug``, in ``session`` (the caller commits). Raises VerificationError naming the first entry that
        fails (its signatures, the ledger's rules, a time outside ``not_before .. not_after``) or the
        checkpoint, and then writes nothing.

        Plan:
          1. the checkpoint opens with ``log_keys`` and is of the mirror's size plus the leaves;
          2. the mirror's village (created with the log keys on the first extension) and its state;
          3. each entry: decoded, signatures checked, dated within the bounds, applied; its rows;
          4. the tree's root is the checkpoint's, and every ledger's accounts sum to zero;
          5. the rows: entries, tree nodes, derived tables, the checkpoint as the village signed it.
        """
        # (1)
        start = self.size(session, slug)
        checkpoint = open_checkpoint(note, log_keys, origin)
        if checkpoint.size != start + len(leaves):
            raise VerificationError(f"the checkpoint is of {checkpoint.size} entries, not {start} + {len(leaves)}")
        # (2)
        village_id, state, tree = self._open(session, slug, origin, log_keys, start)
        # (3)
        decoded = []
        for index, leaf in enumerate(leaves, start=start):
            try:
                decoded.append(decode_leaf(leaf))
            except LedgerError as exc:
                raise VerificationError(f"entry {index}: {exc}", index=index) from exc
        if isinstance(state.index, DbIndex):  # one question for the replay check of every entry, not one each
            ids = [entry.id for entry in decoded]
            stored = {row.entry_id for row in session.connection().execute(
                STORED_ENTRIES, {"village": village_id, "ids": ids})}
            state.index.absent = frozenset(ids) - stored
        entries, nodes, changes = [], [], Changes()
        for index, (leaf, entry) in enumerate(zip(leaves, decoded, strict=True), start=start):
            try:
                check_signatures(entry)
                if not not_before <= entry.time <= not_after:
                    raise VerificationError(f"it is dated {entry.time}, outside {not_before} .. {not_after}")
                changes.update(apply(state, entry))
            except LedgerError as exc:
                raise VerificationError(f"entry {index} ({entry.kind}): {exc}", index=index, kind=entry.kind) from exc
            leaf_hash = merkle.hash_leaf(leaf)
            nodes.extend(node_rows(village_id, tree, leaf_hash))
            entries.append(entry_row(village_id, index, entry, leaf_hash, state))
        # (4)
        if tree.size and tree.root() != checkpoint.root_hash:
            raise VerificationError(f"the entries served make a tree of another root than the checkpoint of {tree.size}")
        check_accounts_balance(state)
        # (5)
        connection = session.connection()
        for model, rows in ((m.EntryRow, entries), (m.TreeNode, nodes)):
            if rows:
                connection.execute(model.__table__.insert(), rows)  # type: ignore[union-attr]
        if start == 0:
            insert_derived(session, village_id, state)
        else:
            for model, rows in derived_rows(village_id, state, changes).items():
                upsert(session, model, rows)
        connection.execute(m.CheckpointRow.__table__.insert(), {  # type: ignore[attr-defined]
            "village_id": village_id, "size": checkpoint.size, "root": checkpoint.root_hash, "note": note,
            "created": utc_now()})
        self.states.forget(village_id)

    def _open(self, session: Session, slug: str, origin: str, log_keys: Sequence[NoteVerifier],
              start: int) -> tuple[int, State, merkle.CompactRange]:
        """The mirror's village id, state and tree at ``start`` entries (a new village when ``start`` is 0), with
        every one of ``log_keys`` on record (their public halves, retired: the mirror never signs)."""
        if start:
            village = self.villages.row(session, slug, lock=True)
            state = self.states.current(session, village.id or 0)
            tree = self.proofs.compact_range(session, village.id or 0, start)
        else:
            village = self.villages.add(session, slug, origin)
            state, tree = State(), merkle.CompactRange()
        assert village.id is not None
        known = set(session.execute(select(m.LogKey.public).where(m.LogKey.village_id == village.id)).scalars())  # type: ignore[call-overload]
        for verifier in log_keys:
            if verifier.public not in known:
                session.add(m.LogKey(village_id=village.id, name=verifier.name, public=verifier.public,
                                     encrypted_pem=None, created=utc_now(), retired=utc_now()))
        return village.id, state, tree
