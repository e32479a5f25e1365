"""Real servers for the tests: gunicorn (``api.app:create_app()``) on 127.0.0.1 in a process group of its own,
restartable on the same port (``Server``; the ``serve`` fixture in conftest.py makes them for the test
village), and a Redis server for the limits the workers share (``TemporaryRedis``)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from tests.kit import StoredVillage

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0
WAIT_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def no_control_socket() -> list[str]:
    """gunicorn 27 opens a control socket in ~/.gunicorn unless told not to; older versions lack the option."""
    from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


def _living(group: int) -> list[int]:
    """The processes of a process group that have not exited. A zombie has (it holds no file, lock or
    socket any more) and is left for init to reap, which it may do seconds later."""
    living = []
    for process in Path("/proc").iterdir():
        try:
            state, _parent, process_group = (process / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):  # not a process, or one that just exited
            continue
        if int(process_group) == group and state not in ("Z", "X"):
            living.append(int(process.name))
    return living


class Server:
    """An API server's process tree, in a process group of its own, restartable on the same port."""

    def __init__(self, command: list[str], *, environment: dict[str, str], port: int, slug: str, log: Path,
                 before_start: Callable[[], None], ready_path: str | None = None) -> None:
        self.command, self.environment, self.port, self.slug, self.log = command, environment, port, slug, log
        self.before_start = before_start
        self.ready_path = ready_path or f"/api/v1/villages/{slug}"  # answers 200 once the server serves
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        """Start the server; return once it answers a read of the village."""
        assert self.process is None, "the server is already running"
        self.before_start()
        with self.log.open("ab") as log:
            # From the checkout, as the README runs it (the app imports its sibling packages from there).
            self.process = subprocess.Popen(
                self.command, cwd=PROJECT, env=self.environment, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.kill()
                pytest.fail(f"the server exited while starting; its log:\n{self.log_tail()}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"the server did not answer within {START_TIMEOUT:.0f}s; its log:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=5) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError as error:
            error.close()
            return False
        except (OSError, http.client.HTTPException):
            return False

    def kill(self) -> None:
        """SIGKILL to the process group: the arbiter and every worker die at once, mid-request."""
        if self.process is None:
            return
        process, self.process = self.process, None
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)
        eventually(lambda: not _living(process.pid), f"every process of group {process.pid} to die")

    def reload(self) -> None:
        """SIGHUP: gunicorn starts new workers and retires the old ones gracefully, as on a deploy."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.01)


REDIS_SERVER = shutil.which("redis-server") or shutil.which("valkey-server")


class TemporaryRedis:
    """``with TemporaryRedis() as url``: a Redis (or Valkey) server of Debian's package on a free loopback
    port, keeping nothing on disk (no snapshots, no append-only file), stopped at the end."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        assert REDIS_SERVER is not None, "no redis-server (apt-get install redis-server)"
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        eventually(self._answers, f"redis-server on port {self.port}")
        return f"redis://127.0.0.1:{self.port}"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=30)


def register_with_township(server: Server, village: StoredVillage, village_url: str | None = None) -> None:
    """What the township's operator does for a new village: ``villageledger township add-log``, with where
    the village serves its tiles if ``village_url`` is given (then the township mirrors and monitors it)."""
    mirror = ["--village", village.slug, "--tiles", f"{village_url}/api/v1/villages/{village.slug}/log/"]
    subprocess.run([str(BIN / "villageledger"), "township", "add-log", village.kit.origin,
                    *village.store.verifier_keys(village.slug), *(mirror if village_url else [])],
                   env=server.environment, capture_output=True, text=True, timeout=120, check=True)


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """``app`` served by threads of this process on a free loopback port, while the block runs; its base URL."""
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join()
