"""Ledger core (issue 2) and growth (issue 4), measured on one database at a time.

Plan of ``build``:
  (1) migrate a fresh database and create the village from the data set's genesis;
  (2) append the data set in 1,000-entry batches with ``Store.append``, timing each batch;
  (3) each time the log reaches one of the growth sizes: time single-entry appends, inclusion and
      consistency proofs at random indexes, and reading the household list page by page;
  (4) beside those, the raw limits on the same database: Ed25519 verify + one bare INSERT (committed
      alone, and 1,000 to a transaction) into a trivial table.
Every proof timed is then verified against the signed checkpoint, so no figure comes from a wrong answer.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, Column, Engine, LargeBinary, MetaData, Table

import keys
from ledger import merkle
from ledger.entries import Entry, signing_message
from ledger.note import open_checkpoint
from storage import Store, make_engine, reads
from storage.migrate import upgrade

from .dataset import BATCH, BENCH_CLOCK_SKEW, SLUG, Village, extra_entries
from .measure import Latency, latencies, rate
from .report import Figure, Peer, Report

LOG_KEY_PASSPHRASE = "bench-log-key-passphrase"  # letters only: Flask's from_prefixed_env parses JSON
BATCH_WINDOW = 20  # batches whose median gives the batch append rate at a growth point


@dataclass(frozen=True)
class Params:
    """How much to measure: counts bound every loop, seconds bound every timed phase."""

    sizes: list[int]
    single_appends: int
    proof_samples: int
    reload_appends: int
    raw_singles: int
    raw_batches: int
    rate_seconds: float
    http_seconds: float
    pymerkle_seconds: float
    household_rounds: int = 3


@dataclass
class LogMirror:
    """What the bench appended, in log order: leaf bytes and leaf hashes, to check answers against."""

    leaves: list[bytes] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)

    def add(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            self.leaves.append(entry.leaf)
            self.hashes.append(merkle.hash_leaf(entry.leaf))

    @property
    def size(self) -> int:
        return len(self.leaves)


@dataclass(frozen=True)
class Growth:
    size: int
    batch: Latency
    single: Latency
    inclusion: Latency
    consistency: Latency
    household_page: Latency


@dataclass
class Built:
    """A village built on one backend, and what was measured while building it."""

    backend: str
    url: str
    store: Store
    mirror: LogMirror
    growth: list[Growth] = field(default_factory=list)
    last_batch_checkpoint: str = ""

    def append_batch(self, batch: Sequence[Entry]) -> None:
        self.last_batch_checkpoint = self.store.append(SLUG, batch)[-1].checkpoint
        self.mirror.add(batch)

    def trusted(self) -> list[keys.NoteVerifier]:
        return [keys.parse_verifier_key(v) for v in self.store.verifier_keys(SLUG)]

    def root(self, size: int) -> bytes:
        """The root at ``size``, from the signed checkpoint and a stored inclusion proof (not from us)."""
        checkpoint = open_checkpoint(self.store.latest_checkpoint(SLUG), self.trusted())
        if size == checkpoint.size:
            return checkpoint.root_hash
        proof = self.store.inclusion_proof(SLUG, size - 1, size)
        return merkle.root_from_inclusion_proof(size - 1, size, self.mirror.hashes[size - 1], proof)


# --- the limits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    sha256_leaf: float
    sha256_node: float
    sign: float
    verify: float


def _sha256_loop(data: bytes) -> Callable[[], int]:
    def hash_1000() -> int:
        for _ in range(1000):
            hashlib.sha256(data).digest()
        return 1000

    return hash_1000


def verify_rate(entries: Sequence[Entry], seconds: float) -> float:
    """Ed25519 verifications per second on one core (``keys.verify_signature``, pyca/OpenSSL) of real
    entries' signing messages, precomputed."""
    checks = [(e.author, e.signatures[0], signing_message(e.unsigned)) for e in entries]

    def verify_all() -> int:
        for public, signature, message in checks:
            keys.verify_signature(public, signature, message)
        return len(checks)

    return rate(verify_all, seconds=seconds)


def measure_limits(report: Report, sample: Sequence[Entry], seconds: float) -> Limits:
    """Raw SHA-256 over a typical leaf and over an interior node's input; Ed25519 sign and verify."""
    leaf = b"\x00" + sample[-1].leaf
    key = keys.SigningKey.generate()
    message = signing_message(sample[-1].unsigned)

    def sign_100() -> int:
        for _ in range(100):
            key.sign(message)
        return 100

    limits = Limits(
        sha256_leaf=rate(_sha256_loop(leaf), seconds=seconds),
        sha256_node=rate(_sha256_loop(b"\x01" + bytes(64)), seconds=seconds),
        sign=rate(sign_100, seconds=seconds),
        verify=verify_rate(sample[:200], seconds),
    )
    section = "Limits"
    report.add(
        Figure(
            section,
            f"SHA-256 of a {len(leaf)}-byte leaf (hash_leaf input)",
            limits.sha256_leaf,
            note=f"{limits.sha256_leaf * len(leaf) / 1e6:.0f} MB/s",
        )
    )
    report.add(Figure(section, "SHA-256 of a 65-byte interior node", limits.sha256_node))
    report.add(Figure(section, "Ed25519 sign (one core)", limits.sign))
    report.add(
        Figure(section, "Ed25519 verify (one core)", limits.verify, peer=Peer("Ed25519 sign", limits.sign))
    )
    return limits


# --- raw peers on the same database ----------------------------------------------------------------


_RAW = Table(
    "bench_raw_insert",
    MetaData(),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf", LargeBinary, nullable=False),
)


@dataclass(frozen=True)
class RawPeers:
    single: Latency  # one verify + one INSERT, committed alone
    batch: Latency  # 1,000 verifies + 1,000 INSERTs in one transaction

    @property
    def single_rate(self) -> float:
        return self.single.count / sum(self.single.samples)

    @property
    def batch_rate(self) -> float:
        return BATCH * self.batch.count / sum(self.batch.samples)


def measure_raw(engine: Engine, entries: Sequence[Entry], singles: int) -> RawPeers:
    """Ed25519 verify + a bare INSERT into a two-column table: the floor under a signed append."""
    _RAW.metadata.create_all(engine)
    rows = [(e.author, e.signatures[0], signing_message(e.unsigned), e.leaf) for e in entries]
    ids = iter(range(10**12))

    def one(row: tuple[bytes, bytes, bytes, bytes]) -> None:
        keys.verify_signature(row[0], row[1], row[2])
        with engine.begin() as connection:
            connection.execute(_RAW.insert(), {"id": next(ids), "leaf": row[3]})

    def many(batch: Sequence[tuple[bytes, bytes, bytes, bytes]]) -> None:
        for public, signature, message, _ in batch:
            keys.verify_signature(public, signature, message)
        with engine.begin() as connection:
            connection.execute(_RAW.insert(), [{"id": next(ids), "leaf": leaf} for *_, leaf in batch])

    single = latencies(one, rows[:singles])
    batches = [rows[i : i + BATCH] for i in range(singles, len(rows) - BATCH + 1, BATCH)]
    return RawPeers(single, latencies(many, batches))


# --- building, with growth points ------------------------------------------------------------------


def _appends(store: Store, mirror: LogMirror, entries: Sequence[Entry]) -> Latency:
    def append(entry: Entry) -> None:
        store.append(SLUG, [entry])
        mirror.add([entry])

    return latencies(append, entries)


def proof_sample(seed: int, size: int, count: int) -> tuple[list[int], list[int]]:
    """Random leaf indexes in [0, size) and first sizes in [1, size) for consistency proofs."""
    rng = random.Random(f"{seed}/proofs/{size}")
    return [rng.randrange(size) for _ in range(count)], [rng.randrange(1, size) for _ in range(count)]


def store_proofs(
    built: Built, size: int, indexes: Sequence[int], firsts: Sequence[int]
) -> tuple[Latency, Latency]:
    """Time ``Store.inclusion_proof`` and ``Store.consistency_proof`` at ``size``, then verify every
    inclusion proof and a sample of consistency proofs against the signed roots."""
    store = built.store
    inclusion: list[list[bytes]] = []
    consistency: list[list[bytes]] = []
    timed_inclusion = latencies(lambda i: inclusion.append(store.inclusion_proof(SLUG, i, size)), indexes)
    timed_consistency = latencies(
        lambda f: consistency.append(store.consistency_proof(SLUG, f, size)), firsts
    )
    root = built.root(size)
    for index, proof in zip(indexes, inclusion):
        merkle.verify_inclusion(index, size, built.mirror.hashes[index], proof, root)
    for first, proof in list(zip(firsts, consistency))[:20]:
        merkle.verify_consistency(first, size, proof, built.root(first), root)
    return timed_inclusion, timed_consistency


def _household_pages(store: Store, rounds: int) -> Latency:
    """Read every household (public fields and balances) in pages of 100, ``rounds`` times."""
    samples: list[float] = []
    for _ in range(rounds):
        after: str | None = None
        while True:
            start = time.perf_counter()
            views = reads.households(store, SLUG, after=after, limit=100)
            samples.append(time.perf_counter() - start)
            if len(views) < 100:
                break
            after = views[-1].row.household_id
    return Latency(tuple(samples))


def _growth_point(built: Built, village: Village, batch_times: list[float], params: Params) -> Growth:
    size = built.mirror.size
    singles = extra_entries(village.kit, village.seed, f"single-{size}", params.single_appends, after=size)
    single = _appends(built.store, built.mirror, singles)
    size = built.mirror.size
    indexes, firsts = proof_sample(village.seed, size, params.proof_samples)
    inclusion, consistency = store_proofs(built, size, indexes, firsts)
    pages = _household_pages(built.store, params.household_rounds)
    return Growth(size, Latency(tuple(batch_times[-BATCH_WINDOW:])), single, inclusion, consistency, pages)


def build(backend: str, url: str, village: Village, params: Params, progress: Callable[[str], None]) -> Built:
    """Steps (1)-(3) of the module plan."""
    # (1)
    engine = make_engine(url)
    upgrade(engine)
    store = Store(engine, log_key_passphrase=LOG_KEY_PASSPHRASE.encode(), clock_skew=BENCH_CLOCK_SKEW)
    built = Built(backend, url, store, LogMirror())
    pending = sorted(params.sizes)
    batch_times: list[float] = []
    for number, batch in enumerate(village.batches()):
        if number == 0:
            store.create_village(batch[0])
            built.mirror.add(batch[:1])
            batch = batch[1:]
        # (2)
        timed = latencies(built.append_batch, [batch])
        if len(batch) == BATCH:
            batch_times.extend(timed.samples)
        if number % 50 == 49:
            progress(f"{backend}: {built.mirror.size:,} entries, last batch {timed.median:.2f} s")
        # (3)
        while pending and built.mirror.size >= pending[0]:
            pending.pop(0)
            progress(f"{backend}: growth point at {built.mirror.size:,} entries")
            built.growth.append(_growth_point(built, village, batch_times, params))
    return built


def state_reload(built: Built, village: Village, count: int) -> tuple[Latency, Latency]:
    """Single appends through this store when another store (another gunicorn worker) appended just
    before, so the cached village state is stale, beside back-to-back appends through one store."""
    other = Store(make_engine(built.url), log_key_passphrase=LOG_KEY_PASSPHRASE.encode(), clock_skew=BENCH_CLOCK_SKEW)
    entries = extra_entries(village.kit, village.seed, "reload", 3 * count, after=built.mirror.size)
    stale: list[float] = []
    for mine, theirs in zip(entries[:count], entries[count : 2 * count]):
        other.append(SLUG, [theirs])
        built.mirror.add([theirs])
        stale.extend(_appends(built.store, built.mirror, [mine]).samples)
    other.engine.dispose()
    return Latency(tuple(stale)), _appends(built.store, built.mirror, entries[2 * count :])


# --- figures ---------------------------------------------------------------------------------------


def growth_figures(report: Report, built: Built, raw: RawPeers) -> None:
    """One row per growth size and metric, beside the same metric at the smallest size (appends at the
    smallest size are set beside the raw verify + INSERT limits instead)."""
    section = f"Growth · {built.backend}"
    first = built.growth[0]
    for point in built.growth:
        at = f"at {point.size:,} entries"
        base = f"same at {first.size:,}"
        is_first = point is first
        report.add(
            Figure(
                section,
                f"1,000-entry batch append {at}",
                BATCH / point.batch.median,
                point.batch,
                Peer("raw verify+INSERT, 1,000/transaction", raw.batch_rate)
                if is_first
                else Peer(base, BATCH / first.batch.median),
            )
        )
        report.add(
            Figure(
                section,
                f"single-entry append {at}",
                _rate_of(point.single),
                point.single,
                Peer("raw verify+INSERT+commit", raw.single_rate)
                if is_first
                else Peer(base, _rate_of(first.single)),
            )
        )
        for name, latency, peer in (
            ("inclusion proof", point.inclusion, first.inclusion),
            ("consistency proof", point.consistency, first.consistency),
            ("household list page (100 with balances)", point.household_page, first.household_page),
        ):
            report.add(
                Figure(
                    section,
                    f"{name} {at}",
                    latency=latency,
                    peer=None if is_first else Peer(base, latency=peer),
                    note="baseline" if is_first else "",
                )
            )


def _rate_of(latency: Latency) -> float:
    return latency.count / sum(latency.samples)


def append_figures(report: Report, built: Built, raw: RawPeers, reload: tuple[Latency, Latency]) -> None:
    section = f"Core · {built.backend}"
    last = built.growth[-1]
    report.add(
        Figure(
            section,
            f"signed single-entry appends/s at {last.size:,}",
            _rate_of(last.single),
            last.single,
            Peer("Ed25519 verify + bare INSERT + commit", raw.single_rate, raw.single),
        )
    )
    report.add(
        Figure(
            section,
            f"signed appends/s in 1,000-entry batches at {last.size:,}",
            BATCH / last.batch.median,
            last.batch,
            Peer("1,000 × (Ed25519 verify + bare INSERT), one commit", raw.batch_rate, raw.batch),
        )
    )
    stale, warm = reload
    report.add(
        Figure(
            section,
            "single append after another process appended (state reload)",
            _rate_of(stale),
            stale,
            Peer("back-to-back in one process", _rate_of(warm), warm),
        )
    )
