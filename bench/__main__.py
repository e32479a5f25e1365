"""``python -m bench [--quick] [--sizes 10000,100000,1000000] [--seed 2026] [--out bench/results]``

Plan:
  (1) the limits: raw SHA-256 and Ed25519 sign/verify rates;
  (2) the data set for (seed, largest size), from the cache or generated into it;
  (3) for SQLite, then PostgreSQL: build the village in 1,000-entry batches with growth points at every
      size; the raw verify + INSERT peers; appends after another process appended; proofs beside
      pymerkle (built once, on the first backend's leaves); door plates and the export (first backend); HTTP;
  (4) ``verify_bundle`` on the export, with every core and with none; the township's monitor catching up on
      it and its witness cosigning (``bench.township``); a phone opening a household page (``bench.phone``);
  (5) write ``<out>/<quick|full>.json`` and ``.md`` and print the Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from tests.pgserver import PostgresUnavailable, TemporaryPostgres

from . import ROOT
from .core import (
    Params,
    append_figures,
    build,
    growth_figures,
    measure_limits,
    measure_raw,
    proof_sample,
    state_reload,
    store_proofs,
)
from .dataset import BATCH, SLUG, Village, extra_entries, load_village
from .http import http_figures
from .peers import ProofPeers, proof_figures, proof_peers
from .phone import phone_figures
from .plates import plate_figures
from .report import Figure, Report, environment
from .township import township_figures
from .verifying import export, verify_figures

FULL_SIZES = [10_000, 100_000, 1_000_000]
QUICK_SIZES = [2_500, 5_000]


def params(quick: bool, sizes: list[int]) -> Params:
    if quick:
        return Params(
            sizes,
            single_appends=20,
            proof_samples=200,
            reload_appends=5,
            raw_singles=50,
            raw_batches=2,
            rate_seconds=0.5,
            http_seconds=4,
            pymerkle_seconds=30,
            household_rounds=1,
        )
    return Params(
        sizes,
        single_appends=200,
        proof_samples=2000,
        reload_appends=20,
        raw_singles=300,
        raw_batches=5,
        rate_seconds=3,
        http_seconds=20,
        pymerkle_seconds=300,
        household_rounds=3,
    )


class Progress:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.start:7.1f}s] {message}", flush=True)


@dataclass
class Run:
    """What one backend leaves for the next and for the verifier."""

    peers: ProofPeers | None = None
    bundle: Path | None = None
    trusted_keys: list[str] | None = None


@contextmanager
def sqlite_database(work: Path, size: int) -> Iterator[str]:
    path = work / f"village-n{size}.sqlite3"
    for leftover in work.glob(f"{path.name}*"):
        leftover.unlink()
    try:
        yield f"sqlite:///{path}"
    finally:
        for leftover in work.glob(f"{path.name}*"):
            leftover.unlink()


def run_backend(
    report: Report,
    backend: str,
    url: str,
    village: Village,
    settings: Params,
    work: Path,
    run: Run,
    progress: Progress,
) -> None:
    """Step (3) for one database."""
    built = build(backend, url, village, settings, progress)
    progress(f"{backend}: raw verify + INSERT peers, state reload")
    raw_entries = extra_entries(
        village.kit, village.seed, "raw", settings.raw_singles + settings.raw_batches * BATCH, after=built.mirror.size
    )
    raw = measure_raw(built.store.engine, raw_entries, settings.raw_singles)
    reload = state_reload(built, village, settings.reload_appends)
    growth_figures(report, built, raw)
    append_figures(report, built, raw, reload)
    if run.peers is None:
        progress(f"proof peers: pymerkle and MemoryTree on {built.mirror.size:,} leaves")
        size = built.mirror.size
        indexes, firsts = proof_sample(village.seed, size, settings.proof_samples)
        run.peers = proof_peers(
            built.mirror.leaves, built.mirror.hashes, indexes, firsts, budget=settings.pymerkle_seconds
        )
    indexes, firsts = proof_sample(village.seed, run.peers.size, settings.proof_samples)
    proof_figures(report, backend, run.peers, *store_proofs(built, run.peers.size, indexes, firsts))
    if run.bundle is None:
        progress(f"{backend}: door plates")
        attempt(report, "Plates", plate_figures, report, built, work)
        progress(f"{backend}: exporting the bundle")
        run.bundle, run.trusted_keys = work / "export.vlbundle", built.store.verifier_keys(SLUG)
        export(built.store, run.bundle)
    progress(f"{backend}: HTTP")
    batch_rate = BATCH / built.growth[-1].batch.median
    attempt(
        report,
        f"HTTP · {backend}",
        http_figures,
        report,
        built,
        village,
        settings.http_seconds,
        work,
        batch_rate,
    )
    built.store.engine.dispose()


def attempt(report: Report, section: str, function: Callable[..., None], *args: Any) -> None:
    """Run one section; a failure becomes a row of the report (with its cause) instead of ending a long run."""
    try:
        function(*args)
    except Exception as exc:  # noqa: BLE001 - reported, and the rest of the run goes on
        traceback.print_exc()
        report.add(Figure(section, "FAILED", measured=f"{type(exc).__name__}: {str(exc)[:300]}"))


def postgres(
    report: Report, village: Village, settings: Params, work: Path, run: Run, progress: Progress
) -> None:
    try:
        with TemporaryPostgres() as url:
            run_backend(report, "PostgreSQL", url, village, settings, work, run, progress)
    except PostgresUnavailable as exc:
        report.add(Figure("Core · PostgreSQL", "not measured", measured=str(exc)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"small sizes {QUICK_SIZES} and short loads (< 3 min)"
    )
    parser.add_argument("--sizes", help="growth sizes, comma-separated; the largest is the village size")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    sizes = (
        sorted(int(s) for s in args.sizes.split(","))
        if args.sizes
        else QUICK_SIZES
        if args.quick
        else FULL_SIZES
    )
    settings = params(args.quick, sizes)
    label = "quick" if args.quick else "full"
    work, progress = args.out / "work", Progress()
    work.mkdir(parents=True, exist_ok=True)
    report = Report(environment({"seed": args.seed, "sizes": sizes, "quick": args.quick}))
    # (1), (2)
    village = load_village(args.out / "cache", args.seed, sizes[-1], progress=progress)
    progress("limits")
    limits = measure_limits(report, list(islice(village.entries(), 2000)), settings.rate_seconds)
    # (3)
    run = Run()
    with sqlite_database(work, sizes[-1]) as url:
        run_backend(report, "SQLite", url, village, settings, work, run, progress)
    attempt(report, "Core · PostgreSQL", postgres, report, village, settings, work, run, progress)
    # (4)
    assert run.bundle is not None and run.trusted_keys is not None
    progress("verify_bundle")
    attempt(
        report,
        "Core · verify_bundle",
        verify_figures,
        report,
        run.bundle,
        run.trusted_keys,
        settings.rate_seconds,
    )
    progress("the township: monitor and witness")
    attempt(report, "Township", township_figures, report, run.bundle, run.trusted_keys, work, limits.sign,
            settings.rate_seconds)
    progress("the villager's phone")
    attempt(report, "Phone", phone_figures, report, work)
    run.bundle.unlink()
    # (5)
    json_path, md_path = report.write(args.out, label)
    progress(f"wrote {json_path} and {md_path}")
    print(report.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
