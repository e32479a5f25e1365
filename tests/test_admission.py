"""Read admission (``api.admission``): a process runs at most ``READ_CONCURRENCY`` reads at once, lets them
in first come first served, and never holds back a write."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from werkzeug.test import Client

from api.admission import Places, ReadAdmission
from api.app import create_app

SETTLE = 0.1  # seconds in which a thread that could still get in would have


class Gate:
    """A WSGI app whose requests wait at a gate until released, counting how many are inside at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        self.open = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.open.wait(timeout=10)
        with self.lock:
            self.inside -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


@pytest.fixture
def gate() -> Gate:
    return Gate()


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_reads_beyond_the_limit_wait_until_a_place_is_free(gate: Gate) -> None:
    app = ReadAdmission(gate, 2)
    with ThreadPoolExecutor(6) as pool:
        answers = [pool.submit(lambda: Client(app).get("/").status) for _ in range(6)]
        eventually(lambda: len(app.places.waiting) == 4)
        time.sleep(SETTLE)
        assert gate.inside == 2
        gate.open.set()
        assert [answer.result(timeout=10) for answer in answers] == ["200 OK"] * 6
    assert gate.most_inside == 2


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_writes_are_never_held_back(gate: Gate, method: str) -> None:
    app = ReadAdmission(gate, 1)
    with ThreadPoolExecutor(5) as pool:
        answers = [pool.submit(lambda: Client(app).open("/", method=method).status) for _ in range(5)]
        eventually(lambda: gate.inside == 5)
        gate.open.set()
        assert [answer.result(timeout=10) for answer in answers] == ["200 OK"] * 5


def test_a_freed_place_goes_to_the_longest_waiting_thread_not_to_a_newcomer() -> None:
    places = Places(1)
    order: list[int] = []
    holder = places.taken()
    holder.__enter__()

    def wait_then_record(number: int) -> None:
        with places.taken():
            order.append(number)

    waiters = []
    for number in range(4):
        waiter = threading.Thread(target=wait_then_record, args=(number,))
        waiter.start()
        eventually(lambda queued=number + 1: len(places.waiting) == queued)  # each waits before the next arrives
        waiters.append(waiter)
    holder.__exit__(None, None, None)
    with places.taken():  # a newcomer arriving as the place is freed queues behind all of them
        order.append(99)
    for waiter in waiters:
        waiter.join(timeout=10)
    assert order == [0, 1, 2, 3, 99]


def test_a_place_is_given_back_when_the_read_fails() -> None:
    def failing(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise RuntimeError("the app failed")

    app = ReadAdmission(failing, 1)
    for _ in range(3):
        with pytest.raises(RuntimeError, match="the app failed"):
            app({"REQUEST_METHOD": "GET"}, lambda *args: None)
    assert app.places.free == 1


@pytest.mark.parametrize("limit", [0, -1, "two", 1.5])
def test_a_limit_that_is_not_a_whole_number_of_at_least_one_is_refused_when_the_app_is_made(limit: object) -> None:
    with pytest.raises(ValueError, match=f"READ_CONCURRENCY must be a whole number of at least 1, not {limit!r}"):
        create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "READ_CONCURRENCY": limit})
