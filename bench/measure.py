"""Timing primitives: latency samples (median, p99), rates as the median of timed rounds, and the CPU
time of this process and every process it started (the ``verify_bundle`` workers)."""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Latency:
    """Latencies in seconds of ``count`` operations."""

    samples: tuple[float, ...]

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    def as_json(self) -> dict[str, float]:
        return {"count": self.count, "median_ms": self.median * 1e3, "p99_ms": self.p99 * 1e3}


def latencies(operation: Callable[[T], Any], arguments: Iterable[T], *, budget: float = 60.0) -> Latency:
    """Time ``operation(argument)`` for each argument, one at a time, stopping after ``budget`` seconds."""
    samples: list[float] = []
    deadline = time.perf_counter() + budget
    for argument in arguments:
        start = time.perf_counter()
        operation(argument)
        end = time.perf_counter()
        samples.append(end - start)
        if end > deadline:
            break
    return Latency(tuple(samples))


def rate(operation: Callable[[], int], *, seconds: float, rounds: int = 5) -> float:
    """Operations per second: the median over ``rounds`` rounds of calling ``operation`` (which returns
    how many operations it did) for ``seconds / rounds`` seconds each."""
    per_round: list[float] = []
    for _ in range(rounds):
        done, start = 0, time.perf_counter()
        end = start + seconds / rounds
        while (now := time.perf_counter()) < end or done == 0:
            done += operation()
        per_round.append(done / (now - start))
    return statistics.median(per_round)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (from /proc), or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                parent = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


class ProcessTreeCpu:
    """CPU seconds used by this process and by its descendants (sampled from /proc every 0.25 s, since
    pool workers forked by a forkserver are never reaped by us) while the ``with`` block runs."""

    def __init__(self) -> None:
        self._baseline: dict[int, float] = {}
        self._latest: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self.wall = self.own = self.children = 0.0

    def __enter__(self) -> Self:
        self._sample(into=self._baseline)
        self._own_start = resource.getrusage(resource.RUSAGE_SELF)
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._start
        own = resource.getrusage(resource.RUSAGE_SELF)
        self.own = own.ru_utime + own.ru_stime - self._own_start.ru_utime - self._own_start.ru_stime
        self._stop.set()
        self._thread.join()
        self.children = sum(cpu - self._baseline.get(pid, 0.0) for pid, cpu in self._latest.items())

    def _sample(self, into: dict[int, float]) -> None:
        for pid in _descendants(os.getpid()):
            cpu = _cpu_seconds(pid)
            if cpu is not None:
                into[pid] = cpu

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(0.25):
            self._sample(into=self._latest)

    @property
    def cores_used(self) -> float:
        return (self.own + self.children) / self.wall if self.wall else 0.0


class LateWakeups:
    """While the ``with`` block runs, a thread of this process sleeps ``tick`` seconds again and again and
    counts the wake-ups more than ``threshold`` late: stalls that no request's code caused (the machine not
    running this process, or every core busy), to read beside a latency measured meanwhile."""

    def __init__(self, *, tick: float = 0.001, threshold: float = 0.020) -> None:
        self.tick, self.threshold = tick, threshold
        self.count, self.worst = 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sleep_until_stopped, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sleep_until_stopped(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            time.sleep(self.tick)
            late = time.perf_counter() - start - self.tick
            if late > self.threshold:
                self.count += 1
                self.worst = max(self.worst, late)
