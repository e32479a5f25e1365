"""Figures and the report: every figure carries the limit or peer it was measured beside, in this run.

A rate's ratio is ``value / peer`` (the share of the limit reached); a latency's ratio is
``median / peer median`` (how many times slower than the peer).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from . import ROOT
from .measure import Latency


@dataclass(frozen=True)
class Peer:
    """What a figure is measured beside: a rate (per second) or a latency."""

    name: str
    per_second: float | None = None
    latency: Latency | None = None


@dataclass(frozen=True)
class Figure:
    section: str
    name: str
    per_second: float | None = None
    latency: Latency | None = None
    peer: Peer | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    measured: str = ""  # overrides the formatted rate/latency (a figure that is neither)
    given_ratio: float | None = None  # overrides the computed ratio
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        peer = self.peer
        if self.given_ratio is not None:
            return self.given_ratio
        if peer is None:
            return None
        if self.per_second is not None and peer.per_second:
            return self.per_second / peer.per_second
        if self.latency is not None and peer.latency is not None and peer.latency.median:
            return self.latency.median / peer.latency.median
        return None

    def as_json(self) -> dict[str, Any]:
        peer = self.peer
        return {
            "section": self.section,
            "name": self.name,
            "per_second": self.per_second,
            "latency": self.latency.as_json() if self.latency else None,
            "peer": None
            if peer is None
            else {
                "name": peer.name,
                "per_second": peer.per_second,
                "latency": peer.latency.as_json() if peer.latency else None,
            },
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            "measured": self.measured,
            **self.extra,
        }


def _rate(value: float) -> str:
    return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:,.0f}"


def _latency(latency: Latency) -> str:
    return f"median {_ms(latency.median)} ms, p99 {_ms(latency.p99)} ms (n={latency.count:,})"


def _measured(per_second: float | None, latency: Latency | None) -> str:
    parts = []
    if per_second is not None:
        parts.append(_rate(per_second))
    if latency is not None:
        parts.append(_latency(latency))
    return "; ".join(parts)


def _row(figure: Figure) -> str:
    peer = figure.peer
    beside = "" if peer is None else f"{peer.name}: {_measured(peer.per_second, peer.latency)}"
    ratio = "" if figure.ratio is None else f"{figure.ratio:.3g}×"
    target = figure.target + ("" if figure.met is None else " — met" if figure.met else " — **missed**")
    name = figure.name + (f" ({figure.note})" if figure.note else "")
    measured = figure.measured or _measured(figure.per_second, figure.latency)
    return f"| {figure.section} | {name} | {measured} | {beside} | {ratio} | {target} |"


def environment(arguments: dict[str, Any]) -> dict[str, Any]:
    """Machine, versions and the run's options, so that a figure can be read later."""
    versions: dict[str, str | None] = {}
    for package in ("cryptography", "SQLAlchemy", "psycopg", "Flask", "gunicorn", "marshmallow", "pymerkle"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "versions": versions,
        "commit": commit.stdout.strip(),
        "options": arguments,
    }


class Report:
    def __init__(self, env: dict[str, Any]) -> None:
        self.env = env
        self.figures: list[Figure] = []

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(f"  {_row(figure)}", flush=True)
        return figure

    def markdown(self) -> str:
        env = self.env
        head = (
            f"villageledger benchmarks, {env['date']}: {env['cpu']}, {env['cores']} cores, {env['memory_gib']} GiB, "
            f"Python {env['python']}, commit {env['commit']}; load average at start "
            f"{', '.join(f'{x:.2f}' for x in env['load_average_at_start'])}, at end "
            f"{', '.join(f'{x:.2f}' for x in env.get('load_average_at_end', ()))}; seed {env['options']['seed']}."
        )
        lines = [
            head,
            "",
            "| Section | Figure | Measured | Beside (same run) | Ratio | Target |",
            "|---|---|---|---|---|---|",
        ]
        lines += [_row(figure) for figure in self.figures]
        return "\n".join(lines) + "\n"

    def write(self, out: Path, label: str) -> tuple[Path, Path]:
        out.mkdir(parents=True, exist_ok=True)
        self.env["load_average_at_end"] = os.getloadavg()
        data = {"environment": self.env, "figures": [figure.as_json() for figure in self.figures]}
        json_path, md_path = out / f"{label}.json", out / f"{label}.md"
        json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
        md_path.write_text(self.markdown())
        return json_path, md_path
