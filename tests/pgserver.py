"""A throw-away PostgreSQL server for tests and benchmarks: ``with TemporaryPostgres() as url: ...``.

Plan of ``TemporaryPostgres``:
  (1) find the server binaries (``initdb``, ``postgres``): in ``VILLAGELEDGER_PG_BINDIR`` if it is set
      (and nowhere else), else the newest Debian ``/usr/lib/postgresql/<major>/bin``, else on ``PATH``;
  (2) ``initdb`` a cluster in a new temporary directory, with trust authentication for the superuser
      ``postgres``. The directory is on ``/dev/shm`` when that memory file system has room to spare
      (``CREATE DATABASE ... TEMPLATE`` then takes ~20 ms instead of ~100-300 ms on disk), else in the
      usual temporary folder. PostgreSQL refuses to run as root, so as root the directory is given to the system
      user ``postgres`` and both programs run as that user (``subprocess.Popen(user=...)``);
  (3) start ``postgres`` itself (not ``pg_ctl``, so the postmaster is our child and stops with us) on
      127.0.0.1 and a free port, with no Unix socket, and with durability off (``fsync``,
      ``synchronous_commit`` and ``full_page_writes``): a test server's data is thrown away anyway;
  (4) wait until ``postmaster.pid`` says ``ready`` (and the port accepts connections), then yield the
      SQLAlchemy URL ``postgresql://postgres@127.0.0.1:PORT/postgres``;
  (5) on exit, a fast shutdown (SIGINT), SIGKILL if that takes too long, then remove the directory.

No pytest in here: ``bench/`` uses it too. The server log is kept in the directory and quoted in the
error when the server does not start.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresUnavailable", "TemporaryPostgres", "find_bindir"]

SYSTEM_USER = "postgres"  # the Debian package's system user, which owns the cluster when we are root
SUPERUSER = "postgres"  # the database superuser initdb creates
DEBIAN_BINDIRS = Path("/usr/lib/postgresql")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
PORT_ATTEMPTS = 3  # a free port may be taken between our probe and the server's bind
MEMORY_FS = Path("/dev/shm")
MEMORY_FS_MINIMUM = 1 << 30  # Docker gives containers a 64 MiB /dev/shm: too small for a cluster


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, or None when PostgreSQL is not installed."""
    configured = os.environ.get("VILLAGELEDGER_PG_BINDIR")
    if configured:  # configured explicitly: that directory or nothing
        candidates = [Path(configured)]
    else:
        majors = [p for p in DEBIAN_BINDIRS.iterdir() if p.name.isdigit()] if DEBIAN_BINDIRS.is_dir() else []
        candidates = [p / "bin" for p in sorted(majors, key=lambda p: int(p.name), reverse=True)]
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    return None


def _temporary_parent() -> str | None:
    """/dev/shm if it is a writable memory file system with room to spare, else None (the default)."""
    try:
        if os.access(MEMORY_FS, os.W_OK) and shutil.disk_usage(MEMORY_FS).free >= MEMORY_FS_MINIMUM:
            return str(MEMORY_FS)
    except OSError:
        pass
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TemporaryPostgres:
    """Context manager: a new PostgreSQL cluster on 127.0.0.1, running for the duration of the ``with``.

    ``with TemporaryPostgres() as url`` gives ``postgresql://postgres@127.0.0.1:PORT/postgres``.
    Raises PostgresUnavailable without server binaries, RuntimeError (quoting the server log) when the
    server does not start.
    """

    def __init__(self, *, bindir: Path | None = None, settings: dict[str, str] | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            **(settings or {}),
        }
        self.directory: Path | None = None
        self.port: int | None = None
        self.url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = None

    # --- the context manager -----------------------------------------------------------------------

    def __enter__(self) -> str:
        if self.bindir is None:
            raise PostgresUnavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
        try:
            # (2)
            self._make_cluster()
            # (3), (4)
            for attempt in range(PORT_ATTEMPTS):
                if self._start(_free_port(), last_attempt=attempt == PORT_ATTEMPTS - 1):
                    break
        except BaseException:
            self.stop()
            raise
        self.url = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        return self.url

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- steps -------------------------------------------------------------------------------------

    def _run_as(self) -> dict[str, object]:
        """Popen arguments that drop root privileges to the ``postgres`` system user (nothing otherwise)."""
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _make_cluster(self) -> None:
        assert self.bindir is not None
        self.directory = Path(tempfile.mkdtemp(prefix="villageledger-pg-", dir=_temporary_parent()))
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam(SYSTEM_USER)
            except KeyError as exc:
                raise RuntimeError(f"running as root needs the system user {SYSTEM_USER!r} to run PostgreSQL") from exc
            os.chown(self.directory, self._user.pw_uid, self._user.pw_gid)
        data = self.directory / "data"
        result = subprocess.run(
            [
                str(self.bindir / "initdb"), "--pgdata", str(data), "--username", SUPERUSER, "--auth", "trust",
                "--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions",
            ],
            cwd=self.directory, env=self._environment(), capture_output=True, check=False, **self._run_as(),  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout.decode()}{result.stderr.decode()}")

    def _environment(self) -> dict[str, str]:
        home = self._user.pw_dir if self._user else os.environ.get("HOME", "/")
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LC_ALL": "C", "TZ": "UTC"}

    def _start(self, port: int, *, last_attempt: bool) -> bool:
        """Start the server on ``port``; False if it lost the port to someone else and may be retried."""
        assert self.bindir is not None and self.directory is not None
        log = self.directory / f"server-{port}.log"
        command = [str(self.bindir / "postgres"), "-D", str(self.directory / "data"), "-p", str(port),
                   "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]
        for name, value in self.settings.items():
            command += ["-c", f"{name}={value}"]
        with log.open("wb") as output:
            self._process = subprocess.Popen(
                command, cwd=self.directory, env=self._environment(), stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True, **self._run_as(),  # type: ignore[call-overload]
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                text = log.read_text(errors="replace")
                self._process = None
                if not last_attempt and re.search(r"could not (bind|create listen socket)|already in use", text):
                    return False
                raise RuntimeError(f"PostgreSQL exited while starting; its log:\n{text}")
            if self._ready(port):
                self.port = port
                return True
            time.sleep(0.02)
        raise RuntimeError(f"PostgreSQL did not become ready in {START_TIMEOUT:.0f}s; its log:\n{log.read_text(errors='replace')}")

    def _ready(self, port: int) -> bool:
        assert self.directory is not None
        try:
            lines = (self.directory / "data" / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        if len(lines) < 8 or lines[7].strip() != "ready":
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """(5) Stop the server if it runs and remove its directory. Safe to call more than once."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, no waiting for them
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def _serve_until_signalled() -> None:
    """``python tests/pgserver.py``: start a server by hand, print its URL, stop on SIGINT or SIGTERM."""

    def stop(_signal: int, _frame: object) -> None:
        raise SystemExit(0)

    for number in (signal.SIGINT, signal.SIGTERM):  # SIGINT is ignored in a non-interactive shell's `&` jobs
        signal.signal(number, stop)
    with TemporaryPostgres() as url:
        print(url, flush=True)
        while True:
            signal.pause()


if __name__ == "__main__":
    _serve_until_signalled()
