"""Read admission: at most ``READ_CONCURRENCY`` reads (GET and HEAD) of one process run at once; the others
wait their turn, idle, first come first served.

A read is CPU work under the GIL (queries of an indexed village take a fraction of it). Sixteen reads
interleaved in one process finish later than the same reads taken two at a time, and spend more CPU: each
database call hands the GIL to another thread, and every request's data is evicted from the CPU's caches
by fifteen others. Household pages of a 10^6-entry village, 100 villagers reading each ~1 s, 2 workers of
16 threads on 2 cores: 85 pages/s, median 91 ms, p99 558 ms with every read at once; 90 pages/s, median
70 ms, p99 245 ms with two at a time per process (the bench's gunicorn settings and load client, 20 s
each; the full `python -m bench` run: README). Writes are not held back: an append mostly
waits for its group's commit, and the more of them wait together, the more share one commit.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

READS = frozenset({"GET", "HEAD"})


class Places:
    """``limit`` places taken first come, first served: a place given back goes to the longest waiting
    thread, never to one that arrives meanwhile (``threading.Semaphore`` lets a newcomer take it, and a
    waiter can lose its turn again and again: seconds of tail latency under load).

    Invariant: ``free > 0`` only while nobody waits."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"need at least one place, not {limit}")
        self.free = limit
        self.lock = threading.Lock()
        self.waiting: deque[threading.Lock] = deque()

    @contextmanager
    def taken(self) -> Iterator[None]:
        """Hold a place for the block, waiting for one first if all are taken."""
        with self.lock:
            if self.free:
                self.free -= 1
                turn = None
            else:
                turn = threading.Lock()
                turn.acquire()
                self.waiting.append(turn)
        if turn is not None:
            turn.acquire()  # released by the thread that hands its place over
        try:
            yield
        finally:
            with self.lock:
                if self.waiting:
                    self.waiting.popleft().release()
                else:
                    self.free += 1


class ReadAdmission:
    """WSGI middleware around ``app``. A streamed response's body is produced after its read has left the
    limit (the export of a big village does not hold a place while the client downloads it)."""

    def __init__(self, app: WSGIApplication, concurrency: int) -> None:
        self.app = app
        self.places = Places(concurrency)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in READS:
            return self.app(environ, start_response)
        with self.places.taken():
            return self.app(environ, start_response)


def init_app(app: Flask) -> None:
    """Wrap the app in read admission. Raises ValueError naming the setting if it is not a whole number >= 1."""
    concurrency = app.config["READ_CONCURRENCY"]
    if type(concurrency) is not int or concurrency < 1:
        raise ValueError(f"READ_CONCURRENCY must be a whole number of at least 1, not {concurrency!r}")
    app.wsgi_app = ReadAdmission(app.wsgi_app, concurrency)  # type: ignore[method-assign]
