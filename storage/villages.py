"""The villages of a store: their rows, their log keys, and facts of their logs kept per process.

A village is never renamed or deleted, so its row is read once per process; its active log key is asked
every time (another process may have rotated it) but decrypted once per key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, select, text
from sqlmodel import Session

import keys
from ledger.entries import Entry, utc_now
from ledger.errors import EntryError

from . import models as m
from .db import is_sqlite, read_session, write_session
from .errors import NotFound

T = TypeVar("T")

_LOCK_VILLAGE = text("SELECT id FROM villages WHERE id = :village FOR UPDATE")
_ACTIVE_LOG_KEY = text("SELECT id FROM log_keys WHERE village_id = :village AND retired IS NULL")


class Villages:
    """Villages' rows and log keys. Its caches (village rows, decrypted log keys, facts) are per process."""

    def __init__(self, engine: Engine, passphrase: bytes) -> None:
        self.engine = engine
        self.passphrase = passphrase  # what the log keys are encrypted under
        self._rows: dict[str, m.Village] = {}
        self._signers: dict[int, tuple[int, str, keys.SigningKey]] = {}
        self._facts: dict[tuple[int, str], tuple[int, Any]] = {}

    def create(self, genesis: Entry, *, log_key: keys.SigningKey | None = None) -> None:
        """The rows of a new village from its signed genesis entry (which the caller then appends), with a
        new (or the given) log key."""
        origin = genesis.body.get("origin") if genesis.kind == "village.genesis" else None
        if origin is None:
            raise EntryError("a village starts with a village.genesis entry", field="entry.kind")
        log_key = log_key or keys.SigningKey.generate()
        with write_session(self.engine) as session:
            village = self.add(session, genesis.village, origin)
            assert village.id is not None
            session.add(self.log_key_row(village.id, origin, log_key))
            session.add(m.VillageState(village_id=village.id, size=0))
            session.flush()

    def add(self, session: Session, slug: str, origin: str) -> m.Village:
        """Insert the village's row (its id assigned). Raises EntryError if ``slug`` is taken."""
        if session.execute(select(m.Village).where(m.Village.slug == slug)).first():  # type: ignore[arg-type]
            raise EntryError(f"village {slug!r} already exists", field="entry.village")
        village = m.Village(slug=slug, origin=origin, created=utc_now())
        session.add(village)
        session.flush()
        assert village.id is not None
        return village

    def log_key_row(self, village_id: int, name: str, key: keys.SigningKey) -> m.LogKey:
        return m.LogKey(
            village_id=village_id,
            name=name,
            public=key.public_bytes,
            encrypted_pem=key.to_encrypted_pem(self.passphrase),
            created=utc_now(),
        )

    def rotate_log_key(self, slug: str, new_key: keys.SigningKey) -> str:
        """Sign future checkpoints with ``new_key``. Older checkpoints keep their signatures and stay
        verifiable with the old verifier key, which the bundle keeps listing. Returns the new verifier key."""
        with write_session(self.engine) as session:
            village = self.row(session, slug, lock=True)
            assert village.id is not None
            for row in session.execute(select(m.LogKey).where(m.LogKey.village_id == village.id)).scalars():  # type: ignore[arg-type]
                row.retired = row.retired or utc_now()
            session.add(self.log_key_row(village.id, village.origin, new_key))
        self._signers.pop(village.id, None)
        return keys.verifier_key(village.origin, new_key.public_bytes)

    def all(self) -> list[m.Village]:
        with read_session(self.engine) as session:
            return list(session.execute(select(m.Village).order_by(m.Village.slug)).scalars())

    def row(self, session: Session, slug: str, *, lock: bool = False) -> m.Village:
        """The village's row; ``lock`` takes its write lock (PostgreSQL) for this transaction.
        A village is never renamed or deleted, so unlocked reads are answered from a per-process copy
        (a transient row, bound to no session, so no rollback can expire it)."""
        village = self._rows.get(slug)
        if village is None:
            found = session.execute(select(m.Village).where(m.Village.slug == slug)).scalar_one_or_none()  # type: ignore[arg-type]
            if found is None:
                raise NotFound(f"no village {slug!r}")
            village = m.Village(id=found.id, slug=found.slug, origin=found.origin, created=found.created)
            self._rows[slug] = village
        if lock and not is_sqlite(self.engine):  # SQLite's write transaction already holds the database's lock
            session.connection().execute(_LOCK_VILLAGE, {"village": village.id})
        return village

    def id(self, slug: str) -> int:
        with read_session(self.engine) as session:
            village = self.row(session, slug)
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
            village = self.row(session, slug)
            rows = session.execute(select(m.LogKey).where(m.LogKey.village_id == village.id).order_by(m.LogKey.id)).scalars()  # type: ignore[arg-type]
            return [keys.verifier_key(row.name, row.public) for row in rows]

    def signer(self, session: Session, village_id: int) -> tuple[str, keys.SigningKey]:
        """The village's active log key (asked every time: another process may have rotated it),
        decrypted once per process."""
        active = session.connection().execute(_ACTIVE_LOG_KEY, {"village": village_id}).scalar_one()
        cached = self._signers.get(village_id)
        if cached is None or cached[0] != active:
            row = session.get_one(m.LogKey, active)
            assert row.encrypted_pem is not None, "the active log key always has its private half"
            cached = (active, row.name, keys.SigningKey.from_encrypted_pem(row.encrypted_pem, self.passphrase))
            self._signers[village_id] = cached
        return cached[1], cached[2]
