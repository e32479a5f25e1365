"""The auditor's verifier: proves a bundle correct while trusting nothing but the log keys it is given.

Plan of ``verify_bundle``:
  (1) read the header; the origin must match what the trusted log keys sign;
  (2) for every entry, in parallel: canonical bytes, schema, every signature (``check_leaf``);
  (3) in log order: replay through ``state.apply`` (the same authorisation the server appends with) and
      fold the leaf hash into the Merkle compact range;
  (4) at every checkpoint: it is signed by a trusted log key for this origin, covers exactly the entries
      read so far, and its root equals the recomputed root. Every checkpoint is therefore a prefix of
      the next one (consistency) without needing a proof. Checkpoints the auditor kept from earlier
      (``known``) must match too;
  (5) at the end: the last checkpoint covers every entry, the footer's size is right, every ledger sums
      to zero and every balance the server claims equals the recomputed one.

The first failure raises VerificationError naming the entry (index, kind) or checkpoint (size).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from keys import NoteVerifier

from . import merkle
from .bundle import FORMAT, attachment_hashes
from .canonical import b64encode, parse_json
from .entries import Entry, check_signatures, decode_leaf
from .errors import LedgerError, VerificationError
from .note import Checkpoint, open_checkpoint
from .state import State, apply, check_accounts_balance

CHUNK = 2048  # entries handed to the worker pool at a time


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


@dataclass(frozen=True)
class Checked:
    """The outcome of step (2) for one leaf: the entry and its leaf hash, or why it failed."""

    entry: Entry | None
    leaf_hash: bytes
    error: str | None = None


def check_leaf(leaf: bytes) -> Checked:
    """Step (2) for one leaf; runs in a worker process, so it returns errors instead of raising."""
    try:
        entry = decode_leaf(leaf)
        check_signatures(entry)
    except LedgerError as exc:
        return Checked(None, b"", str(exc))
    return Checked(entry, merkle.hash_leaf(leaf))


def _check_chunk(leaves: list[bytes]) -> list[Checked]:
    return [check_leaf(leaf) for leaf in leaves]


class _Auditor:
    """Steps (3)-(5); fed checked entries and other bundle lines strictly in bundle order."""

    def __init__(self, trusted: Sequence[NoteVerifier], known: Sequence[Checkpoint]) -> None:
        self.trusted = trusted
        self.known = {cp.size: cp for cp in known}
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

    def entry(self, checked: Checked) -> None:
        index = self.state.size
        if not self.village:
            raise VerificationError("the bundle does not start with its header")
        if self.claimed is not None or self.ended:
            raise VerificationError(f"entry {index} appears after the bundle footer", index=index)
        if checked.entry is None:
            raise VerificationError(f"entry {index}: {checked.error}", index=index)
        entry = checked.entry
        # (3)
        try:
            apply(self.state, entry)
        except LedgerError as exc:
            raise VerificationError(f"entry {index} ({entry.kind}) refused: {exc}", index=index, kind=entry.kind) from exc
        self.tree.append(checked.leaf_hash)
        self.attachments.update(attachment_hashes(entry.body))
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
        except LedgerError as exc:
            raise VerificationError(f"checkpoint after {size} entries: {exc}", index=size) from exc
        if checkpoint.size != size:
            raise VerificationError(
                f"checkpoint of size {checkpoint.size} appears after {size} entries", index=size
            )
        self._compare(checkpoint, "signed checkpoint")
        self.checkpoints += 1
        self.last_checkpoint_size = size

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


def _chunks(records: Iterator[tuple[bytes, dict[str, Any] | None]]) -> Iterator[list[tuple[bytes, dict[str, Any] | None]]]:
    chunk: list[tuple[bytes, dict[str, Any] | None]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def verify_bundle(
    lines: Iterable[bytes],
    trusted: Sequence[NoteVerifier],
    *,
    known: Sequence[Checkpoint] = (),
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Verify a whole bundle (an iterable of its lines). Returns a Report or raises VerificationError.

    ``trusted``: the log's note verifier keys, obtained out of band (any of them may sign a checkpoint,
    so checkpoints from before a log-key rotation stay verifiable). ``workers``: processes checking
    signatures (default: every core; 0 checks in this process).
    """
    if not trusted:
        raise VerificationError("no trusted log key given")
    auditor = _Auditor(trusted, known)
    workers = os.cpu_count() or 1 if workers is None else workers
    chunks = _chunks(_records(lines))
    if workers == 0:
        for chunk in chunks:
            _feed(auditor, chunk, _check_chunk([line for line, record in chunk if record is None]), progress)
        return auditor.finish()
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: list[tuple[list[tuple[bytes, dict[str, Any] | None]], list[Future[list[Checked]]]]] = []
        for chunk in chunks:
            leaves = [line for line, record in chunk if record is None]
            step = max(1, len(leaves) // workers + 1)
            futures = [pool.submit(_check_chunk, leaves[i : i + step]) for i in range(0, len(leaves), step)]
            pending.append((chunk, futures))
            if len(pending) > 2:  # keep the workers busy while this process replays the previous chunk
                _drain(auditor, pending.pop(0), progress)
        for item in pending:
            _drain(auditor, item, progress)
    return auditor.finish()


def _drain(
    auditor: _Auditor,
    item: tuple[list[tuple[bytes, dict[str, Any] | None]], list[Future[list[Checked]]]],
    progress: Callable[[int], None] | None,
) -> None:
    chunk, futures = item
    checked = [c for future in futures for c in future.result()]
    _feed(auditor, chunk, checked, progress)


def _feed(
    auditor: _Auditor,
    chunk: list[tuple[bytes, dict[str, Any] | None]],
    checked: list[Checked],
    progress: Callable[[int], None] | None,
) -> None:
    results = iter(checked)
    entries = 0
    for _, record in chunk:
        if record is None:
            auditor.entry(next(results))
            entries += 1
        elif "bundle" in record:
            auditor.header(record)
        elif "checkpoint" in record:
            auditor.checkpoint(str(record["checkpoint"]))
        else:
            auditor.footer(record)
    if progress is not None:
        progress(entries)
