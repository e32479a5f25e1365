"""The auditor's verifier: proves a bundle correct while trusting nothing but the log keys it is given.

Plan of ``verify_bundle``:
  (1) read the header; the origin must match what the trusted log keys sign;
  (2) for every entry, in log order: canonical bytes and schema (``decode_leaf``), in this process; every
      signature (``check_signatures``), in worker processes, which are handed only the keys, signatures
      and signing messages and answer only with the first failure;
  (3) in log order: replay through ``state.apply`` (the same authorisation the server appends with) and
      fold the leaf hash into the Merkle compact range, without waiting for the signatures;
  (4) at every checkpoint: it is signed by a trusted log key for this origin, covers exactly the entries
      read so far, and its root equals the recomputed root. Every checkpoint is therefore a prefix of
      the next one (consistency) without needing a proof. Checkpoints the auditor kept from earlier
      (``known``) must match too;
  (5) at the end: the last checkpoint covers every entry, the footer's size is right, every ledger sums
      to zero and every balance the server claims equals the recomputed one.

The first failure raises VerificationError naming the entry (index, kind) or checkpoint (size). "First" is
in bundle order, and for one entry: its bytes and schema, then its signatures, then its replay. Signatures
are checked behind the replay, so before any error is raised every signature up to that point is settled,
and a bad one there is the error.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from keys import NoteVerifier

from . import merkle
from .bundle import FORMAT
from .canonical import b64encode, parse_json
from .entries import Entry, check_signatures, decode_leaf, format_time
from .errors import LedgerError, VerificationError
from .kinds import KINDS
from .note import Checkpoint, open_checkpoint
from .policy import Policy
from .signatures import SignatureJob, first_bad_signature
from .state import ORDER_SKEW, State, apply, check_accounts_balance

TASK = 256  # entries whose signatures one worker task checks
AHEAD = 4  # tasks in flight per worker before this process waits for the oldest
PROGRESS_EVERY = 2048  # entries between calls of ``progress``


@dataclass
class Report:
    village: str
    origin: str
    size: int
    root: bytes
    checkpoints: int
    balances: dict[str, dict[str, int]]
    attachments: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"village {self.village}: {self.size} entries verified, root {b64encode(self.root)}, "
            f"{self.checkpoints} checkpoints verified, accounts balance in every ledger"
        )


class _Auditor:
    """Steps (3)-(5); fed checked entries and other bundle lines strictly in bundle order."""

    def __init__(self, trusted: Sequence[NoteVerifier], known: Sequence[Checkpoint], policy: Policy | None = None) -> None:
        self.trusted = trusted
        self.known = {cp.size: cp for cp in known}
        self.policy = policy
        self.latest_time = ""  # the latest entry time so far: every later cosignature's time bounds it
        self.witnessed_size = 0  # the largest checkpoint the policy's quorum cosigned
        self.state = State()
        self.tree = merkle.CompactRange()
        self.village = ""
        self.origin = ""
        self.checkpoints = 0
        self.last_checkpoint_size = -1
        self.attachments: set[str] = set()
        self.claimed: dict[str, dict[str, int]] | None = None
        self.listed_attachments: list[str] | None = None
        self.ended = False

    def header(self, record: dict[str, Any]) -> None:
        # (1)
        if self.village:
            raise VerificationError("the bundle has a second header")
        if record.get("bundle") != FORMAT:
            raise VerificationError(f"not a {FORMAT} bundle (header says {record.get('bundle')!r})")
        self.village, self.origin = str(record.get("village")), str(record.get("origin"))

    def expect_entry(self) -> int:
        """The index of the entry on the next line, which may stand there. Raises VerificationError."""
        index = self.state.size
        if not self.village:
            raise VerificationError("the bundle does not start with its header")
        if self.claimed is not None or self.ended:
            raise VerificationError(f"entry {index} appears after the bundle footer", index=index)
        return index

    def entry(self, entry: Entry, leaf_hash: bytes) -> None:
        """Step (3) for the entry ``expect_entry`` announced, whose signatures are checked elsewhere."""
        index = self.state.size
        try:
            apply(self.state, entry)
        except LedgerError as exc:
            raise VerificationError(f"entry {index} ({entry.kind}) refused: {exc}", index=index, kind=entry.kind) from exc
        self.tree.add(leaf_hash)
        self.latest_time = max(self.latest_time, entry.time)
        self.attachments.update(KINDS[entry.kind].file_hashes(entry.body))
        genesis = self.state.village
        if index == 0 and genesis and (genesis.origin, genesis.slug) != (self.origin, self.village):
            raise VerificationError(
                f"entry 0 (village.genesis) is village {genesis.slug!r} with origin {genesis.origin!r}, "
                f"the bundle says {self.village!r} with origin {self.origin!r}",
                index=0,
                kind=entry.kind,
            )
        known = self.known.get(self.tree.size)
        if known is not None:
            self._compare(known, "a checkpoint you kept")

    def checkpoint(self, note: str) -> None:
        # (4)
        size = self.tree.size
        if self.claimed is not None or self.ended:
            raise VerificationError(f"a checkpoint appears after the bundle footer (at {size} entries)", index=size)
        try:
            checkpoint = open_checkpoint(note, self.trusted, origin=self.origin)
            if self.policy is not None:
                self._witnessed(note, size)
        except LedgerError as exc:
            raise VerificationError(f"checkpoint after {size} entries: {exc}", index=size) from exc
        if checkpoint.size != size:
            raise VerificationError(
                f"checkpoint of size {checkpoint.size} appears after {size} entries", index=size
            )
        self._compare(checkpoint, "signed checkpoint")
        self.checkpoints += 1
        self.last_checkpoint_size = size

    def _witnessed(self, note: str, size: int) -> None:
        """With a policy: the policy's witnesses' cosignatures on the checkpoint verify, each dated no earlier than
        every entry it covers (less the clock skew a server may have), and whether the quorum cosigned it."""
        assert self.policy is not None
        cosigned_at = self.policy.open_checkpoint(note, self.trusted, require_quorum=False)[1]
        for witness, time in sorted(cosigned_at.items()):
            if self.latest_time and format_time(datetime.fromtimestamp(time, UTC) + ORDER_SKEW) < self.latest_time:
                raise VerificationError(
                    f"an entry before it is dated {self.latest_time}, after {witness} cosigned it "
                    f"({format_time(datetime.fromtimestamp(time, UTC))}): an entry's date was chosen, not given",
                    index=size)
        if self.policy.quorum_met(frozenset(cosigned_at)):
            self.witnessed_size = size

    def _compare(self, checkpoint: Checkpoint, what: str) -> None:
        root = self.tree.root()
        if root != checkpoint.root_hash:
            raise VerificationError(
                f"{what} of size {checkpoint.size}: root mismatch: signed {b64encode(checkpoint.root_hash)}, "
                f"entries give {b64encode(root)} (an entry before index {checkpoint.size} was changed, "
                "removed or reordered)",
                index=checkpoint.size,
            )

    def footer(self, record: dict[str, Any]) -> None:
        if "balances" in record:
            self.claimed = record["balances"]
        elif "attachments" in record:
            self.listed_attachments = list(record["attachments"])
            missing = sorted(self.attachments - set(self.listed_attachments))
            if missing:
                raise VerificationError(f"attachment list omits {missing[0]}, referenced by an entry")
        elif "end" in record:
            self.ended = True
            if record["end"].get("size") != self.tree.size:
                raise VerificationError(
                    f"bundle says it holds {record['end'].get('size')} entries, it holds {self.tree.size}",
                    index=self.tree.size,
                )
        else:
            raise VerificationError(f"unknown bundle line with keys {sorted(record)}")

    def finish(self) -> Report:
        # (5)
        size = self.tree.size
        if not self.ended:
            raise VerificationError(f"bundle is truncated after {size} entries (no end line)", index=size)
        if self.claimed is None or self.listed_attachments is None:
            raise VerificationError("the bundle footer lacks its balances or attachments line")
        beyond = sorted(s for s in self.known if s > size)
        if beyond:
            raise VerificationError(
                f"the bundle ends at {size} entries, before the checkpoint of size {beyond[0]} you kept: "
                "the log was rolled back or this bundle is cut short",
                index=size,
            )
        if self.last_checkpoint_size != size:
            raise VerificationError(
                f"entries {max(self.last_checkpoint_size, 0)}..{size - 1} are not covered by a signed checkpoint",
                index=max(self.last_checkpoint_size, 0),
            )
        if self.policy is not None and self.witnessed_size != size:
            raise VerificationError(
                f"entries {self.witnessed_size}..{size - 1} are not covered by a checkpoint the policy's quorum "
                f"({self.policy.quorum}) cosigned", index=self.witnessed_size)
        try:
            check_accounts_balance(self.state)
        except LedgerError as exc:
            raise VerificationError(str(exc)) from exc
        balances = recomputed_balances(self.state)
        if self.claimed != balances:
            raise VerificationError(_first_balance_difference(self.claimed, balances))
        return Report(self.village, self.origin, size, self.tree.root(), self.checkpoints, balances, sorted(self.attachments))


def recomputed_balances(state: State) -> dict[str, dict[str, int]]:
    """Balances by ledger then account, omitting accounts that never moved."""
    out: dict[str, dict[str, int]] = {}
    for (account, ledger), amount in sorted(state.balances.items()):
        out.setdefault(ledger, {})[account] = amount
    return out


def _first_balance_difference(claimed: dict[str, dict[str, int]], actual: dict[str, dict[str, int]]) -> str:
    for ledger in sorted(set(claimed) | set(actual)):
        mine, theirs = actual.get(ledger, {}), claimed.get(ledger, {})
        for account in sorted(set(mine) | set(theirs)):
            if mine.get(account) != theirs.get(account):
                return (
                    f"balance of {account} in the {ledger} ledger: the server claims {theirs.get(account)}, "
                    f"the entries give {mine.get(account)}"
                )
    return "balances differ"


def _records(lines: Iterable[bytes]) -> Iterator[tuple[bytes, dict[str, Any] | None]]:
    """(line, parsed) with parsed None for entry lines, which workers parse themselves."""
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip(b"\n")
        if not line:
            continue
        if line.startswith(b'{"entry":'):
            yield line, None
            continue
        try:
            record = parse_json(line)
        except LedgerError as exc:
            raise VerificationError(f"bundle line {number}: {exc}") from exc
        if not isinstance(record, dict):
            raise VerificationError(f"bundle line {number}: not a JSON object")
        yield line, record


class _Signatures(Protocol):
    """Step (2)'s signature checks, in this process or in workers, settled in bundle order."""

    def add(self, index: int, entry: Entry) -> None:
        """Check the signatures of entry ``index`` (now or later). May raise the first bad signature."""

    def first_failure(self, upto: int) -> VerificationError | None:
        """The first bad signature among entries ``0..upto``, once every one of them is checked."""


def _bad_signature(index: int, reason: str) -> VerificationError:
    return VerificationError(f"entry {index}: {reason}", index=index)


class _InProcess:
    """``workers=0``: every signature is checked as its entry is read."""

    def add(self, index: int, entry: Entry) -> None:
        try:
            check_signatures(entry)
        except LedgerError as exc:
            raise _bad_signature(index, str(exc)) from exc

    def first_failure(self, upto: int) -> VerificationError | None:
        return None


class _InWorkers:
    """Signatures checked by a pool, ``TASK`` entries a task. Tasks are settled oldest first and each
    answers with its first failure, so the first failure settled is the first in bundle order; it is kept,
    and nothing after it is settled."""

    def __init__(self, pool: ProcessPoolExecutor, workers: int) -> None:
        self.pool = pool
        self.limit = AHEAD * workers
        self.jobs: list[SignatureJob] = []
        self.pending: deque[Future[tuple[int, str] | None]] = deque()
        self.failure: VerificationError | None = None

    def add(self, index: int, entry: Entry) -> None:
        self.jobs.append((index, entry.signers, entry.signatures, entry.message))
        if len(self.jobs) >= TASK:
            self._submit()
            while len(self.pending) > self.limit:  # the oldest tasks hold entries already replayed
                self._settle_oldest()
                if self.failure is not None:
                    raise self.failure

    def first_failure(self, upto: int) -> VerificationError | None:
        self._submit()
        while self.pending and self.failure is None:
            self._settle_oldest()
        failure = self.failure
        return failure if failure is not None and failure.index is not None and failure.index <= upto else None

    def _submit(self) -> None:
        if self.jobs:
            self.pending.append(self.pool.submit(first_bad_signature, self.jobs))
            self.jobs = []

    def _settle_oldest(self) -> None:
        found = self.pending.popleft().result()
        if found is not None and self.failure is None:
            self.failure = _bad_signature(*found)


def verify_bundle(
    lines: Iterable[bytes],
    trusted: Sequence[NoteVerifier],
    *,
    known: Sequence[Checkpoint] = (),
    policy: Policy | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Verify a whole bundle (an iterable of its lines). Returns a Report or raises VerificationError.

    ``trusted``: the log's note verifier keys, obtained out of band (any of them may sign a checkpoint,
    so checkpoints from before a log-key rotation stay verifiable), with the logs a ``policy`` lists. With a
    ``policy`` (C2SP tlog-policy) the last checkpoint must carry its quorum of witnesses' cosignatures, and no
    cosignature may be dated before an entry it covers. ``workers``: processes checking signatures (default:
    every core; 0 checks in this process).
    """
    trusted = [*trusted, *(policy.logs if policy else ())]
    if not trusted:
        raise VerificationError("no trusted log key given")
    workers = os.cpu_count() or 1 if workers is None else workers
    if workers == 0:
        return _verify(lines, _Auditor(trusted, known, policy), _InProcess(), progress)
    context = multiprocessing.get_context("forkserver")
    # The fork server imports the workers' module once, so each worker starts as a fork with it imported
    # (importing keys costs a worker ~85 ms of CPU, a tenth of checking 5,000 entries on two cores).
    # This sets the process-wide preload list, keeping the default ``__main__``, before the server starts.
    context.set_forkserver_preload(["__main__", "ledger.signatures"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        return _verify(lines, _Auditor(trusted, known, policy), _InWorkers(pool, workers), progress)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _verify(
    lines: Iterable[bytes], auditor: _Auditor, signatures: _Signatures, progress: Callable[[int], None] | None
) -> Report:
    """Steps (1)-(5) over the bundle's lines; an error is raised only once the signatures before it are
    settled, and a bad signature before it (or on the same entry, for a replay error) is raised instead."""
    index = -1
    try:
        for line, record in _records(lines):
            if record is None:
                index = auditor.expect_entry()
                _read_entry(auditor, signatures, index, line)
                if progress is not None and (index + 1) % PROGRESS_EVERY == 0:
                    progress(PROGRESS_EVERY)
            elif "bundle" in record:
                auditor.header(record)
            elif "checkpoint" in record:
                auditor.checkpoint(str(record["checkpoint"]))
            else:
                auditor.footer(record)
        index = auditor.state.size - 1
        failure = signatures.first_failure(index)
        if failure is not None:
            raise failure
    except VerificationError as error:
        earlier = signatures.first_failure(index)
        if earlier is not None and earlier is not error:
            raise earlier from None
        raise
    if progress is not None and auditor.state.size % PROGRESS_EVERY:
        progress(auditor.state.size % PROGRESS_EVERY)
    return auditor.finish()


def _read_entry(auditor: _Auditor, signatures: _Signatures, index: int, line: bytes) -> None:
    try:
        entry = decode_leaf(line)
    except LedgerError as exc:
        raise VerificationError(f"entry {index}: {exc}", index=index) from exc
    signatures.add(index, entry)
    auditor.entry(entry, merkle.hash_leaf(line))
