"""The store: adapts the ledger library to the database. One ``Store`` per process (per app).

``Store`` is a facade: it holds the engine, the configuration and the per-process caches (each kept by the
room that uses it) and hands every call to one room:

- ``storage.villages``: villages' rows, log keys and facts of their logs (``Villages``);
- ``storage.appending``: the append plan and group commit (``Appending``);
- ``storage.states``: the village state each transaction starts from (``States``);
- ``storage.proofs``: the log's size, checkpoints, leaves and proofs, and the node cache (``Proofs``);
- ``storage.audit``: export, self-check, restore and rebuild (``Audit``);
- ``storage.personal``: households' personal data (``PersonalData``);
- ``storage.derived``: the derived tables, each described once (state to rows and back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

import keys
from ledger.entries import Entry
from ledger.state import State
from ledger.tiles import Tile
from ledger.verify import Report

from . import models as m
from .appending import Appended, Appending, Clock, Writer
from .audit import Audit
from .db import read_session
from .nodes import NODE_CACHE_BYTES, NodeCache
from .personal import PersonalData
from .proofs import Proofs
from .states import States
from .villages import Villages

T = TypeVar("T")

CLOCK_SKEW = timedelta(minutes=5)  # how far an entry's time may be from the server's clock


def system_clock() -> datetime:
    return datetime.now(UTC)


class Store:
    """All of a server's villages in one database."""

    def __init__(self, engine: Engine, *, log_key_passphrase: bytes, node_cache_bytes: int = NODE_CACHE_BYTES,
                 clock: Clock = system_clock, clock_skew: timedelta = CLOCK_SKEW) -> None:
        if not log_key_passphrase:
            raise ValueError("a passphrase for the log keys is required")
        self.engine = engine
        self._villages = Villages(engine, log_key_passphrase)
        self._states = States()
        self._proofs = Proofs(engine, self._villages, NodeCache(node_cache_bytes))
        self._appending = Appending(engine, self._villages, self._states, self._proofs, clock=clock, clock_skew=clock_skew)
        self._audit = Audit(engine, self._villages, self._states)
        self._personal = PersonalData(engine, self._villages)

    @property
    def log_key_passphrase(self) -> bytes:
        """What the server's own keys (log keys, complaint desk keys) are encrypted under."""
        return self._villages.passphrase

    @property
    def clock(self) -> Clock:
        """The server's clock, which entries must be dated by (see ``clocked``)."""
        return self._appending.clock

    # --- villages ----------------------------------------------------------------------------------

    def create_village(self, genesis: Entry, *, log_key: keys.SigningKey | None = None) -> Appended:
        """Create a village from its signed genesis entry, with a new (or the given) log key."""
        self._villages.create(genesis, log_key=log_key)
        return self.append(genesis.village, [genesis])[0]

    def rotate_log_key(self, slug: str, new_key: keys.SigningKey) -> str:
        return self._villages.rotate_log_key(slug, new_key)

    def villages(self) -> list[m.Village]:
        return self._villages.all()

    def village_row(self, session: Session, slug: str, *, lock: bool = False) -> m.Village:
        return self._villages.row(session, slug, lock=lock)

    def village_id(self, slug: str) -> int:
        return self._villages.id(slug)

    def fact_at(self, village_id: int, size: int, name: str, compute: Callable[[], T]) -> T:
        return self._villages.fact_at(village_id, size, name, compute)

    def verifier_keys(self, slug: str) -> list[str]:
        return self._villages.verifier_keys(slug)

    # --- appending ---------------------------------------------------------------------------------

    def append(self, slug: str, entries: Sequence[Entry], *,
               alongside: Callable[[Session, int], None] | None = None, prove: bool = False) -> list[Appended]:
        return self._appending.append(slug, entries, alongside=alongside, prove=prove)

    def check_dated_now(self, entries: Sequence[Entry], now: datetime | None = None) -> None:
        self._appending.check_dated_now(entries, now)

    def clocked(self, clock: Clock) -> AbstractContextManager[None]:
        return self._appending.clocked(clock)

    def _writer(self, slug: str) -> Writer:
        """The village's writer queue (a test holds its lock to make batches queue behind it)."""
        return self._appending.writer(slug)

    # --- reading the log ---------------------------------------------------------------------------

    def size(self, slug: str) -> int:
        return self._proofs.size(slug)

    def latest(self, session: Session, village: m.Village) -> tuple[int, str]:
        return self._proofs.latest(session, village)

    def saw_signed_size(self, village_id: int, size: int) -> None:
        self._proofs.saw_signed_size(village_id, size)

    def latest_checkpoint(self, slug: str) -> str:
        return self._proofs.latest_checkpoint(slug)

    def leaf(self, slug: str, index: int) -> bytes:
        return self._proofs.leaf(slug, index)

    def inclusion_proof(self, slug: str, index: int, size: int) -> list[bytes]:
        """Requires 0 <= index < size <= current size. Reads only the O(log size) nodes of the plan."""
        return self._proofs.inclusion_proofs(slug, [index], size)[0]

    def inclusion_proofs(self, slug: str, indexes: Sequence[int], size: int) -> list[list[bytes]]:
        return self._proofs.inclusion_proofs(slug, indexes, size)

    def proofs_within(self, session: Session, village: m.Village, indexes: Sequence[int], size: int, *,
                      committed: bool) -> list[list[bytes]]:
        return self._proofs.proofs_within(session, village, indexes, size, committed=committed)

    def consistency_proof(self, slug: str, first: int, second: int) -> list[bytes]:
        return self._proofs.consistency_proof(slug, first, second)

    def tlog_proof(self, slug: str, index: int) -> str:
        return self._proofs.tlog_proof(slug, index)

    def tile(self, slug: str, tile: Tile) -> bytes:
        return self._proofs.tile(slug, tile)

    def warm_node_cache(self) -> None:
        self._proofs.warm_node_cache()

    def state(self, slug: str) -> State:
        """A snapshot of the village state, for reads: the state this process keeps from its own appends,
        brought forward by replaying what other processes appended since, else loaded from the derived
        tables. Its ``index`` is not usable after the call."""
        with read_session(self.engine) as session:
            village = self.village_row(session, slug)
            assert village.id is not None
            return self._states.current(session, village.id)

    # --- auditing ----------------------------------------------------------------------------------

    def export(self, slug: str) -> Iterator[bytes]:
        return self._audit.export(slug)

    def check(self, slug: str, *, workers: int | None = 0) -> Report:
        return self._audit.check(slug, workers=workers)

    def restore(self, bundle_path: Path, trusted: Sequence[keys.NoteVerifier], *, log_key: keys.SigningKey | None = None,
                workers: int | None = None) -> Report:
        return self._audit.restore(bundle_path, trusted, log_key=log_key, workers=workers)

    def rebuild(self, slug: str) -> None:
        self._audit.rebuild(slug)

    def derived_dump(self, slug: str) -> dict[str, list[tuple[Any, ...]]]:
        return self._audit.derived_dump(slug)

    # --- personal data (PIPL) ----------------------------------------------------------------------

    def put_private(self, slug: str, household: str, data: Mapping[str, Any]) -> str:
        return self._personal.put(slug, household, data)

    def private(self, slug: str, household: str) -> tuple[bytes, dict[str, Any]] | None:
        return self._personal.get(slug, household)

    def erase_private(self, slug: str, household: str) -> bool:
        return self._personal.erase(slug, household)
