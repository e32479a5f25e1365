"""C2SP tlog-witness (c2sp.org/tlog-witness): the ``add-checkpoint`` request and the witness's judgement of it.

Pure: the witness's memory of each log (``Witnessed``: its trusted keys and the latest checkpoint it cosigned)
is the caller's, who must read it, judge, and persist the new one atomically (``storage.township``).

Request body::

    old <size>\\n
    <base64 consistency proof hash>\\n      (0 to 63 lines)
    \\n
    <signed checkpoint note>

The checks, in the spec's order, each refusal with the status the spec gives it:
  1. the body has that shape (400);
  2. the checkpoint's origin is a log the witness knows (404);
  3. the note carries a valid signature by one of the log's keys, and no failing one (403);
  4. the note's text is a checkpoint, and old size <= its size (400);
  5. old size is the size the witness last cosigned, 0 if none (409, answered with that size);
  6. a checkpoint of size 0 has the empty tree's root; old size 0 comes without proof; at old size equal to
     the size the roots are equal; otherwise the proof is an RFC 9162 consistency proof from the cosigned
     root to the new one (422).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from keys import NoteVerifier

from . import merkle
from .canonical import b64decode, b64encode
from .errors import CheckpointError, EncodingError, LedgerError, ProofError
from .note import MAX_TREE_SIZE, Checkpoint, open_note, parse_checkpoint

MAX_PROOF_LINES = 63

_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})\Z")


class WitnessRefusal(LedgerError):
    """The witness does not cosign. ``status`` is the HTTP status the spec gives the reason; for 409,
    ``cosigned_size`` is the size the witness last cosigned (the response body)."""

    def __init__(self, status: int, message: str, *, cosigned_size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.cosigned_size = cosigned_size


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed ``add-checkpoint`` request: the size the client believes the witness cosigned last, the
    consistency proof from it, and the signed checkpoint note as sent."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str

    def encode(self) -> bytes:
        """The request body; ``parse_add_checkpoint(request.encode()) == request``."""
        lines = [f"old {self.old_size}", *(b64encode(h) for h in self.proof)]
        return ("".join(line + "\n" for line in lines) + "\n" + self.note).encode()

    @property
    def origin(self) -> str:
        """The checkpoint's first line (not yet verified: it selects the keys to verify with)."""
        return self.note.partition("\n")[0]


@dataclass(frozen=True)
class Witnessed:
    """What the witness knows of one log: the keys it trusts for it and the latest checkpoint it cosigned
    (size 0 and no root if it never cosigned one)."""

    origin: str
    log_keys: tuple[NoteVerifier, ...]
    size: int = 0
    root: bytes | None = None


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """The request in ``body``; raises WitnessRefusal(400) naming what is malformed (check 1)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WitnessRefusal(400, "the body is not UTF-8") from exc
    head, blank, note = text.partition("\n\n")
    lines = head.split("\n")
    if not blank or not note:
        raise WitnessRefusal(400, "the body has no empty line before the checkpoint")
    old = _OLD.match(lines[0])
    if old is None or int(old[1]) > MAX_TREE_SIZE:
        raise WitnessRefusal(400, f"the first line {lines[0][:40]!r} is not 'old <size>' in decimal without leading zeros")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRefusal(400, f"{len(lines) - 1} consistency proof lines, at most {MAX_PROOF_LINES}")
    try:
        proof = tuple(b64decode(line, length=merkle.HASH_SIZE, what=f"proof line {n}")
                      for n, line in enumerate(lines[1:], start=1))
    except EncodingError as exc:
        raise WitnessRefusal(400, str(exc)) from exc
    return AddCheckpoint(int(old[1]), proof, note)


def judge(request: AddCheckpoint, log: Witnessed | None) -> Checkpoint:
    """The checkpoint the witness may cosign: checks 2-6 against ``log``, the witness's record of the origin
    (None if it knows no such log). Raises WitnessRefusal otherwise."""
    # (2)
    if log is None:
        raise WitnessRefusal(404, f"this witness knows no log {request.origin!r}")
    # (3)
    try:
        text = open_note(request.note, log.log_keys).text
    except CheckpointError as exc:
        raise WitnessRefusal(403, f"the checkpoint is not signed by the log's key: {exc}") from exc
    # (4)
    try:
        checkpoint = parse_checkpoint(text)
    except CheckpointError as exc:
        raise WitnessRefusal(400, str(exc)) from exc
    if request.old_size > checkpoint.size:
        raise WitnessRefusal(400, f"old size {request.old_size} is larger than the checkpoint's {checkpoint.size}")
    # (5)
    if request.old_size != log.size:
        raise WitnessRefusal(409, f"this witness last cosigned size {log.size}, not {request.old_size}",
                             cosigned_size=log.size)
    # (6)
    _require_consistent(request.proof, log, checkpoint)
    return checkpoint


def _require_consistent(proof: Sequence[bytes], log: Witnessed, checkpoint: Checkpoint) -> None:
    if checkpoint.size == 0 and checkpoint.root_hash != merkle.EMPTY_ROOT:
        raise WitnessRefusal(422, "a checkpoint of size 0 must have the empty tree's root")
    if log.size == 0:
        if proof:
            raise WitnessRefusal(422, "a consistency proof from size 0 must be empty")
        return
    assert log.root is not None, "a witnessed log of size > 0 has a root"
    if log.size == checkpoint.size:
        if checkpoint.root_hash != log.root:
            raise WitnessRefusal(422, f"a checkpoint of size {log.size} with another root than the one cosigned")
        return
    try:
        merkle.verify_consistency(log.size, checkpoint.size, proof, log.root, checkpoint.root_hash)
    except ProofError as exc:
        raise WitnessRefusal(422, f"not consistent with the cosigned size {log.size}: {exc}") from exc
