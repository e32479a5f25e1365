"""The township's witness (C2SP tlog-witness) over its own database: for each village log it knows, the keys
it trusts and the latest checkpoint it cosigned.

Invariants:
- the witness cosigns a checkpoint of a log only if it is consistent with every checkpoint it cosigned of
  that log before (``ledger.witness.judge`` against the stored latest one), and the check and the new latest
  checkpoint are one transaction under the log's row lock: two requests never both pass against one state;
- a cosignature's time is the witness's clock, never earlier than its previous cosignature of the log (a
  clock that went back is refused with 503, not signed);
- a request refused as inconsistent (422) is kept, as received, in ``witness_evidence``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session

from keys import (
    ALG_COSIGNATURE_V1,
    NoteVerifier,
    SigningKey,
    parse_verifier_key,
    save_private_key,
    verifier_key,
)
from ledger.entries import format_time, utc_now
from ledger.errors import LedgerError
from ledger.note import Checkpoint, cosign_note
from ledger.state import OPEN
from ledger.witness import Witnessed, WitnessRefusal, judge, parse_add_checkpoint

from . import models as m
from .db import instance_path, instance_secret, read_session, write_session
from .errors import NotFound
from .mirroring import Mirroring, MirrorUnreachable, fetch_leaves
from .store import CLOCK_SKEW


def origin_hash(origin: str) -> str:
    """The monitoring path's name for a log: SHA-256 of its origin, lowercase hex."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


WITNESS_KEY_FILE = "witness.key"


def witness_key_path() -> Path:
    """Where ``villageledger township init`` keeps the witness's key, encrypted: the instance folder."""
    return instance_path() / WITNESS_KEY_FILE


def witness_key_passphrase() -> str:
    return instance_secret("witness-key-passphrase")


def make_witness_key(passphrase: bytes) -> SigningKey:
    """A new witness key, saved encrypted at ``witness_key_path`` (which must not exist: a witness's key is its
    identity, never replaced in place). Raises KeyFileError if it exists."""
    path = witness_key_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate()
    save_private_key(key, path, passphrase)
    return key


def add_log(engine: Engine, origin: str, log_keys: Sequence[str], *, village: str | None = None,
            tiles_url: str | None = None) -> None:
    """Witness the log ``origin`` signed by any of ``log_keys`` (verifier keys); with ``village`` (its slug) and
    ``tiles_url`` (the prefix of its tiles, ending in ``/``), also mirror and monitor it. For a log already
    known, replaces its keys (a log key rotation) and keeps the checkpoint cosigned. Raises EncodingError for a
    key that does not parse, ValueError for no key or a key named other than ``origin``."""
    verifiers = [parse_verifier_key(text) for text in log_keys]
    if not verifiers or any(v.name != origin or v.is_cosigner for v in verifiers):
        raise ValueError(f"a log's keys are note keys named after its origin {origin!r}")
    with write_session(engine) as session:
        row = session.get(m.WitnessedLog, origin) or m.WitnessedLog(origin=origin, origin_hash=origin_hash(origin),
                                                                     log_keys="")
        row.log_keys = "\n".join(log_keys)
        if village and tiles_url:
            row.village, row.tiles_url = village, tiles_url if tiles_url.endswith("/") else tiles_url + "/"
        session.add(row)
        session.commit()


class Witness:
    """The witness named ``name`` cosigning with ``key``; ``clock`` gives POSIX seconds."""

    def __init__(self, engine: Engine, *, name: str, key: SigningKey, clock: Callable[[], float] = time.time,
                 monitor: bool = True) -> None:
        self.engine, self.name, self.key, self.clock = engine, name, key, clock
        self.vkey = verifier_key(name, key.public_bytes, ALG_COSIGNATURE_V1)  # what logs and phones trust
        self.mirroring = Mirroring(engine) if monitor else None

    def add_checkpoint(self, body: bytes) -> str:
        """The ``add-checkpoint`` call: the cosignature line for the checkpoint in ``body``, after checking it
        and persisting it as the log's latest, atomically. Raises WitnessRefusal with the spec's status."""
        request = parse_add_checkpoint(body)
        with write_session(self.engine) as session:
            row = session.get(m.WitnessedLog, request.origin, with_for_update=True)
            try:
                log = _witnessed(row)
                checkpoint = judge(request, log)
            except WitnessRefusal as refusal:
                if refusal.status == 422:
                    self._keep_evidence(session, request.origin, body.decode("utf-8"), refusal)
                raise
            assert row is not None and log is not None, "judge refuses an unknown log"
            now = int(self.clock())
            if now < row.cosigned_at:
                raise WitnessRefusal(503, f"the witness's clock reads {now}, before its last cosignature "
                                          f"({row.cosigned_at}) of this log")
            if self.mirroring is not None and row.village and row.tiles_url:
                self._monitor(session, row, log.log_keys, checkpoint, request.note, body.decode("utf-8"), now)
            line = cosign_note(checkpoint.text(), self.name, self.key, now)
            row.size, row.root, row.cosigned_at, row.problem = checkpoint.size, checkpoint.root_hash, now, None
            row.note = request.note + line
            session.add(row)
            session.commit()
            return line

    def _monitor(self, session: Session, row: m.WitnessedLog, log_keys: Sequence[NoteVerifier], checkpoint: Checkpoint,
                 note: str, request: str, now: int) -> None:
        """Before cosigning: bring the mirror of the log up to ``checkpoint``, replaying every new entry with the
        ledger's rules, each dated after the last cosignature (less the skew a server's clock may have) and not
        after now (plus it). Raises WitnessRefusal: 503 if the log cannot be read, 422 if it breaks a rule (then
        the refusal is the log's public ``problem`` and the request is kept as evidence)."""
        assert self.mirroring is not None and row.village and row.tiles_url
        start = self.mirroring.size(session, row.village)
        try:
            if start > checkpoint.size:
                self.mirroring.require_root(session, row.village, checkpoint)
            elif start < checkpoint.size:
                leaves = fetch_leaves(row.tiles_url, start, checkpoint.size, checkpoint.size)
                not_before = format_time(datetime.fromtimestamp(row.cosigned_at, UTC) - CLOCK_SKEW) if row.cosigned_at else ""
                not_after = format_time(datetime.fromtimestamp(now, UTC) + CLOCK_SKEW)
                self.mirroring.extend(session, row.village, row.origin, log_keys, leaves, note,
                                      not_before=not_before, not_after=not_after)
        except MirrorUnreachable as exc:
            raise WitnessRefusal(503, f"the log cannot be mirrored to be checked: {exc}") from exc
        except LedgerError as exc:
            refusal = WitnessRefusal(422, f"the log breaks the ledger's rules: {exc}")
            session.rollback()  # nothing of the mirror's extension; then the problem and the evidence
            refused = session.get(m.WitnessedLog, row.origin, with_for_update=True)
            assert refused is not None
            refused.problem = str(exc)
            session.add(refused)
            self._keep_evidence(session, row.origin, request, refusal)
            raise refusal from exc

    @staticmethod
    def _keep_evidence(session: Session, origin: str, request: str, refusal: WitnessRefusal) -> None:
        """Commit the refused request as received (the caller's transaction ends with it: nothing else was
        written in it)."""
        session.add(m.WitnessEvidence(origin=origin, received=utc_now(), status=refusal.status, reason=str(refusal),
                                      request=request))
        session.commit()

    def evidence(self, origin: str) -> list[m.WitnessEvidence]:
        """The refused requests kept for ``origin``, oldest first."""
        with read_session(self.engine) as session:
            query = select(m.WitnessEvidence).where(m.WitnessEvidence.origin == origin)  # type: ignore[arg-type]
            return list(session.execute(query.order_by(m.WitnessEvidence.id)).scalars())  # type: ignore[arg-type]

    def checkpoint(self, hashed_origin: str) -> str:
        """The latest checkpoint cosigned for the log whose origin hashes to ``hashed_origin``, with the log's
        signatures and the cosignature. Raises NotFound if it knows no such log or never cosigned one."""
        with read_session(self.engine) as session:
            note = session.execute(select(m.WitnessedLog.note).where(  # type: ignore[call-overload]
                m.WitnessedLog.origin_hash == hashed_origin)).scalar_one_or_none()
        if note is None:
            raise NotFound(f"this witness has cosigned no checkpoint of a log whose origin hashes to {hashed_origin}")
        return str(note)

    def logs(self) -> list[m.WitnessedLog]:
        """Every log the witness knows, by origin."""
        with read_session(self.engine) as session:
            return list(session.execute(select(m.WitnessedLog).order_by(m.WitnessedLog.origin)).scalars())


def _witnessed(row: m.WitnessedLog | None) -> Witnessed | None:
    if row is None:
        return None
    keys = tuple(parse_verifier_key(text) for text in row.log_keys.split("\n"))
    return Witnessed(row.origin, keys, row.size, row.root)


@dataclass(frozen=True)
class LogOverview:
    """One witnessed village log as the township's page shows it: what the witness holds, and from its mirror
    the village's name and its complaint cases (counts only: their contents never reach the township node)."""

    origin: str
    village: str | None
    name: str | None
    size: int
    cosigned_at: int
    problem: str | None
    cases: int
    open_cases: int
    escalated: int


def overview(witness: Witness) -> list[LogOverview]:
    """Every log the witness knows, with its mirror's figures where it keeps one."""
    found = []
    with read_session(witness.engine) as session:
        for row in witness.logs():
            village = session.execute(select(m.Village.id).where(m.Village.slug == row.village)).scalar() if row.village else None  # type: ignore[call-overload]
            state = session.get(m.VillageState, village) if village else None
            cases = session.execute(select(m.CaseRow.status, m.CaseRow.escalated).where(  # type: ignore[call-overload]
                m.CaseRow.village_id == village)).all() if village else []
            found.append(LogOverview(row.origin, row.village, state.name if state else None, row.size, row.cosigned_at,
                                     row.problem, len(cases), sum(status in OPEN for status, _ in cases),
                                     sum(bool(escalated) for _, escalated in cases)))
    return found
