"""The township node (issue 22): how fast its monitor catches up on a village log, and how many checkpoints its
witness cosigns a second, on its own SQLite database, beside raw single-core Ed25519 verification (the
monitor's limit: it checks every entry's signatures) and signing (the witness's: it signs once a checkpoint).

The monitor replays the exported village as the township would pull it, one checkpoint (1,000 entries) at a
time: every entry decoded, its signatures checked, replayed with the ledger's rules, and written to the
mirror with its tree nodes and derived rows. The witness is measured without the monitor: a checkpoint one
entry larger than the last, with its consistency proof, each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from sqlalchemy import Engine

import keys
from ledger import merkle
from ledger.note import Checkpoint, sign_checkpoint
from ledger.witness import AddCheckpoint
from storage import make_engine
from storage.db import write_session
from storage.migrate import upgrade
from storage.mirroring import Mirroring
from storage.witness import Witness, add_log

from .core import verify_rate
from .dataset import SLUG, entry_from_leaf
from .report import Figure, Peer, Report

PER_CORE_TARGET = 0.8
ORIGIN = "bench.example/witnessed"


def _chunks(bundle: Path) -> Iterator[tuple[list[bytes], str]]:
    """The bundle's entries between its checkpoints, each run with the checkpoint that follows it."""
    leaves: list[bytes] = []
    with bundle.open("rb") as lines:
        for line in lines:
            if line.startswith(b'{"entry":'):
                leaves.append(line.rstrip(b"\n"))
            elif line.startswith(b'{"checkpoint":'):
                yield leaves, json.loads(line)["checkpoint"]
                leaves = []


def township_figures(report: Report, bundle: Path, trusted_keys: list[str], work: Path, sign_rate: float,
                     seconds: float) -> None:
    """``sign_rate``: raw single-core Ed25519 signing, measured with the limits at the start of the run."""
    section = "Township"
    sample = [entry_from_leaf(leaf) for leaf in islice(_leaves(bundle), 2000)]
    raw_verify = Peer("raw Ed25519 verify, one core (measured just before)", verify_rate(sample, seconds))
    engine = make_engine(f"sqlite:///{work / 'township.sqlite3'}")
    try:
        upgrade(engine)
        mirroring = Mirroring(engine)
        log_keys = [keys.parse_verifier_key(text) for text in trusted_keys]
        origin = log_keys[0].name
        started, size = time.perf_counter(), 0
        for leaves, note in _chunks(bundle):
            with write_session(engine) as session:
                mirroring.extend(session, SLUG, origin, log_keys, leaves, note, not_before="", not_after="~")
                session.commit()
            size += len(leaves)
        elapsed = time.perf_counter() - started
        rate = size / elapsed
        met = rate / raw_verify.per_second >= PER_CORE_TARGET if raw_verify.per_second else None
        report.add(Figure(section, f"monitor catching up on {size:,} entries (one core, SQLite mirror)", rate,
                          peer=raw_verify, target=f">= {PER_CORE_TARGET}x raw verify per core", met=met,
                          note=f"{elapsed:,.1f} s"))
        report.add(Figure(section, "witness cosignatures (one checkpoint a request, SQLite)",
                          _cosignatures_per_second(engine, seconds),
                          peer=Peer("raw Ed25519 sign, one core (the run's limits)", sign_rate)))
    finally:
        engine.dispose()


def _leaves(bundle: Path) -> Iterator[bytes]:
    for leaves, _ in _chunks(bundle):
        yield from leaves


def _cosignatures_per_second(engine: Engine, seconds: float) -> float:
    """Checkpoints of a log growing one entry at a time, each with its consistency proof from the last."""
    log_key = keys.SigningKey.generate()
    add_log(engine, ORIGIN, [keys.verifier_key(ORIGIN, log_key.public_bytes)])
    witness = Witness(engine, name="witness.bench.example", key=keys.SigningKey.generate(), monitor=False)
    tree = merkle.MemoryTree()
    bodies = []
    for size in range(1, 2001):
        tree.append(merkle.hash_leaf(b"entry %d" % size))
        proof = tree.consistency_proof(size - 1, size) if size > 1 else []
        note = sign_checkpoint(Checkpoint(ORIGIN, size, tree.root()), [(ORIGIN, log_key)])
        bodies.append(AddCheckpoint(size - 1, tuple(proof), note).encode())
    started, done = time.perf_counter(), 0
    for body in bodies:
        witness.add_checkpoint(body)
        done += 1
        if time.perf_counter() - started > seconds * 4:
            break
    return done / (time.perf_counter() - started)
