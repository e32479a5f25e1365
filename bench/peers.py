"""Proof peers on the same leaves: pymerkle's in-memory tree (installed by the bench itself: it is GPL
and must never be a project dependency) and the library's own ``ledger.merkle.MemoryTree`` (the same
proof plans as the store, without a database)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from ledger import merkle

from .measure import Latency, latencies
from .report import Figure, Peer, Report


def pymerkle() -> ModuleType:
    """``import pymerkle``, installing it into the running interpreter first if needed."""
    try:
        return importlib.import_module("pymerkle")
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pymerkle"], check=True)
        importlib.invalidate_caches()
        return importlib.import_module("pymerkle")


@dataclass(frozen=True)
class ProofPeers:
    """Proof latencies at tree size ``size`` for the given sample, on both in-memory trees."""

    size: int
    build_seconds: float
    complete: bool  # False when pymerkle could not take every leaf within its time budget
    pymerkle_inclusion: Latency
    pymerkle_consistency: Latency
    memory_inclusion: Latency
    memory_consistency: Latency


def proof_peers(
    leaves: Sequence[bytes],
    hashes: Sequence[bytes],
    indexes: Sequence[int],
    firsts: Sequence[int],
    *,
    budget: float,
) -> ProofPeers:
    """Build both trees from ``leaves`` (pymerkle for at most ``budget`` seconds, then at the size it
    reached), require pymerkle's root to equal ours, and time the same proofs on both."""
    tree = pymerkle().InmemoryTree(algorithm="sha256")  # RFC 9162 prefixes 0x00/0x01 by default
    start = time.perf_counter()
    deadline = start + budget
    for count, leaf in enumerate(leaves, start=1):
        tree.append_entry(leaf)
        if count % 10_000 == 0 and time.perf_counter() > deadline:
            break
    build_seconds = time.perf_counter() - start
    size = tree.get_size()
    ours = merkle.MemoryTree()
    for leaf_hash in hashes[:size]:
        ours.append(leaf_hash)
    if tree.get_root(size) != ours.root(size):
        raise AssertionError(
            f"pymerkle's root at size {size} differs from ledger.merkle's: not the same tree"
        )
    indexes = [i for i in indexes if i < size]
    firsts = [f for f in firsts if f < size]
    return ProofPeers(
        size,
        build_seconds,
        size == len(leaves),
        latencies(lambda i: tree.prove_inclusion(i + 1, size), indexes),  # pymerkle counts from one
        latencies(lambda f: tree.prove_consistency(f, size), firsts),
        latencies(lambda i: ours.inclusion_proof(i, size), indexes),
        latencies(lambda f: ours.consistency_proof(f, size), firsts),
    )


def proof_figures(
    report: Report, backend: str, peers: ProofPeers, inclusion: Latency, consistency: Latency
) -> None:
    """Store proofs at ``peers.size`` beside pymerkle and ``MemoryTree`` on the same leaves and indexes."""
    section = f"Core · {backend}"
    label = "" if peers.complete else f"; pymerkle took only {peers.size:,} leaves in its time budget"
    at = f"at {peers.size:,}, random indexes"
    for name, ours, theirs, memory in (
        ("inclusion", inclusion, peers.pymerkle_inclusion, peers.memory_inclusion),
        ("consistency", consistency, peers.pymerkle_consistency, peers.memory_consistency),
    ):
        report.add(
            Figure(
                section,
                f"Store.{name}_proof {at}",
                latency=ours,
                peer=Peer("pymerkle InmemoryTree, same leaves" + label, latency=theirs),
                target="median < 1 ms",
                met=ours.median < 0.001,
            )
        )
        report.add(
            Figure(
                section,
                f"ledger.merkle.MemoryTree {name} proof (no database) {at}",
                latency=memory,
                peer=Peer("pymerkle InmemoryTree, same leaves" + label, latency=theirs),
            )
        )
