"""The auditor's verifier (issue 2): ``verify_bundle`` on the exported village, with every core and with
``workers=0``, beside raw single-core Ed25519 verification measured just before, and the CPU time of
every process it ran (to show it used every core). Two rows break step (2) down per entry."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

import keys
from ledger.entries import Entry, check_signatures, decode_leaf
from ledger.verify import verify_bundle
from storage import Store

from .core import verify_rate
from .dataset import SLUG, entry_from_leaf
from .measure import ProcessTreeCpu, rate
from .report import Figure, Peer, Report

PER_CORE_TARGET = 0.8


def export(store: Store, path: Path) -> None:
    """Write the village's bundle, streamed by ``Store.export``, to ``path``."""
    with path.open("wb") as out:
        for line in store.export(SLUG):
            out.write(line)


def _entry_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as lines:
        for line in lines:
            if line.startswith(b'{"entry":'):
                yield line.rstrip(b"\n")


def _per_entry_rate(operation: object, items: Sequence[object], seconds: float) -> float:
    def all_items() -> int:
        for item in items:
            operation(item)  # type: ignore[operator]
        return len(items)

    return rate(all_items, seconds=seconds, rounds=3)


def verify_figures(report: Report, bundle: Path, trusted_keys: list[str], seconds: float) -> None:
    section = "Core · verify_bundle"
    trusted = [keys.parse_verifier_key(k) for k in trusted_keys]
    leaves = list(islice(_entry_lines(bundle), 2000))
    sample: list[Entry] = [entry_from_leaf(leaf) for leaf in leaves]
    raw = verify_rate(sample, seconds)
    raw_peer = Peer("raw Ed25519 verify, one core (measured just before)", raw)
    cores = os.cpu_count() or 1
    for workers in (cores, 0):
        with bundle.open("rb") as lines, ProcessTreeCpu() as cpu:
            result = verify_bundle(lines, trusted, workers=workers)
        per_second = result.size / cpu.wall
        used = (
            f"{cpu.cores_used:.2f} cores busy: main {cpu.own:,.0f} s + workers {cpu.children:,.0f} s CPU "
            f"in {cpu.wall:,.0f} s"
        )
        name = f"verify_bundle of {result.size:,} entries, workers={workers}"
        report.add(
            Figure(
                section,
                name,
                per_second,
                peer=raw_peer,
                note=used,
                extra={"cpu": {"wall": cpu.wall, "own": cpu.own, "children": cpu.children}},
            )
        )
        if workers:
            per_core = per_second / cores
            report.add(
                Figure(
                    section,
                    f"verify_bundle per core (workers={workers})",
                    per_core,
                    peer=raw_peer,
                    target=f"≥ {PER_CORE_TARGET} of raw verify per core",
                    met=per_core / raw >= PER_CORE_TARGET,
                )
            )
            report.add(
                Figure(
                    section,
                    f"CPU use of verify_bundle (workers={workers})",
                    measured=f"{cpu.cores_used:.2f} of {cores} cores",
                    target="uses every core",
                    given_ratio=cpu.cores_used / cores,
                    met=cpu.cores_used >= 0.9 * cores,
                    note=f"workers {cpu.children / cpu.wall:.2f} cores, main process {cpu.own / cpu.wall:.2f}",
                )
            )
    report.add(
        Figure(
            section,
            "step (2) per entry: decode_leaf (JSON, schema, canonical check)",
            _per_entry_rate(decode_leaf, leaves, seconds),
            peer=raw_peer,
        )
    )
    report.add(
        Figure(
            section,
            "step (2) per entry: check_signatures",
            _per_entry_rate(check_signatures, sample, seconds),
            peer=raw_peer,
        )
    )
