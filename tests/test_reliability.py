"""Specification of what the service promises when things go wrong: the server killed at any moment, the
database going away or turning read-only, the disk failing one system call.

On every backend, through every fault:
- an entry whose 201 a client received is in the log, at the index it was told, for good;
- the log never skips or repeats an index, every checkpoint extends the one before, ``Store.check``
  passes and the derived tables are exactly what replaying the entries gives (``rebuild``);
- a batch is in the log whole, at consecutive indexes, or not at all;
- the server answers every request it accepts, in time: a 201, or a 503 problem with Retry-After when
  the database fails (never a 500, never a hang);
- a client that re-posts what it was not told about ends with each entry in the log exactly once
  (re-posting is idempotent), and once the fault clears the next append succeeds.

The servers are real: gunicorn (``api.app:create_app()``) on 127.0.0.1, configured by environment variables,
in a process group of its own so that SIGKILL takes the arbiter and every worker at the same instant.
The clients are ``cli.client.LedgerClient``s, which check every answer (the checkpoint's signature and
each entry's inclusion proof). Before a server starts, the test closes its own connections: as in
production, the server is the database's only user, so after a crash SQLite's write-ahead log is
recovered by the next process that opens the file. Random moments come from a ``random.Random`` seeded
with the test's id: a failing run replays the same choices (thread timing aside). Every loop is bounded
in count and time.
"""

from __future__ import annotations

import http.client
import itertools
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest
from ci import missing_tool
from kit import Kit, StoredVillage
from servers import BIN, Server, eventually
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from api.problems import PROBLEM_JSON, TYPE_PREFIX
from cli.client import ApiError, LedgerClient, Receipt
from ledger import merkle
from ledger.canonical import b64encode
from ledger.entries import Entry
from ledger.note import Checkpoint, open_checkpoint
from storage import models as m

pytestmark = pytest.mark.slow

ON_SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
ON_POSTGRESQL = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)

CLIENTS = 4
BATCHES_PER_CLIENT = 1_000  # far more than a client posts in any test here (a client that runs dry is a violation)
REQUEST_TIMEOUT = 20.0  # a request unanswered this long is a hung request
CLIENT_LIMIT = 90.0  # no client thread runs longer
RETRY_PAUSE = 0.05
CRASH_CYCLES = 5
KILL_AFTER_AT_MOST = 40  # acknowledged entries: a kill's moment counted in work done, whatever the machine's speed
FAULT_ROUNDS = 3
UNAVAILABLE = TYPE_PREFIX + "unavailable"


# --- servers -----------------------------------------------------------------------------------------


# --- clients -----------------------------------------------------------------------------------------


HOUSEHOLDS = ("h1", "h2", "h3")


def signed_batches(kit: Kit, rng: random.Random, count: int) -> list[list[Entry]]:
    """Single entries and small batches, valid in any order and any interleaving: awards (rule M-01, 1 to
    10 points) and deductions (D-01, 5 points) for households h1..h3, signed by the committee's founder."""

    def entry() -> Entry:
        household = rng.choice(HOUSEHOLDS)
        if rng.random() < 0.3:
            return kit.sign("points.deduct", {"household": household, "rule": "D-01", "amount": 5, "reason": "柴草乱堆"})
        return kit.award(household, rng.randint(1, 10))

    return [[entry() for _ in range(rng.choice((1, 1, 2, 3)))] for _ in range(count)]


class Told:
    """What the clients posted and were told: every batch sent at least once, in the order first sent,
    and for each entry acknowledged by a 201 the index it was given. Answers contradicting an earlier
    answer for the same entry are collected in ``contradictions``."""

    def __init__(self) -> None:
        self.posted: list[list[Entry]] = []
        self.acknowledged: dict[str, int] = {}
        self.contradictions: list[str] = []
        self._lock = threading.Lock()

    def sent(self, batch: list[Entry]) -> None:
        with self._lock:
            self.posted.append(batch)

    def answered(self, batch: Sequence[Entry], receipts: Sequence[Receipt]) -> None:
        with self._lock:
            for entry, receipt in zip(batch, receipts, strict=True):
                earlier = self.acknowledged.setdefault(entry.id, receipt.index)
                if earlier != receipt.index:
                    self.contradictions.append(f"entry {entry.id} acknowledged at {earlier}, then at {receipt.index}")

    def post(self, client: LedgerClient, slug: str, batch: list[Entry]) -> list[Receipt]:
        """Post ``batch`` (recorded by ``sent`` before its first post) and record the answer."""
        receipts = client.post(slug, batch)
        self.answered(batch, receipts)
        return receipts


def connection_lost(error: Exception) -> str | None:
    """A crash costs clients their connections: "refused" while the server is down, "cut short" when it
    dies with the request in hand. Anything else (an answer other than a 201, a timeout) is None."""
    cause = error.__cause__
    reason = cause.reason if isinstance(error, ApiError) and isinstance(cause, urllib.error.URLError) else error
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, TimeoutError):
        return None
    if isinstance(error, ApiError) and error.status == 0 or isinstance(error, (OSError, http.client.HTTPException)):
        return "cut short"
    return None


def unavailable(error: Exception) -> str | None:
    """When the database fails the server still answers, with a 503 problem and Retry-After; anything
    else (a 500, a lost connection, a timeout) is None."""
    if not isinstance(error, ApiError) or error.status != 503:
        return None
    headers = getattr(error.__cause__, "headers", None)
    if headers is None or headers.get_content_type() != PROBLEM_JSON or not headers.get("Retry-After"):
        return None
    return "503" if error.problem.get("type") == UNAVAILABLE and error.problem.get("status") == 503 else None


def describe(error: BaseException) -> str:
    cause = f" (from {type(error.__cause__).__name__}: {error.__cause__})" if error.__cause__ else ""
    return f"{type(error).__name__}: {error}{cause}"


class Clients:
    """``CLIENTS`` threads, each with its own LedgerClient, posting its share of pre-signed batches one
    after the other. ``expected(error)`` names a failure the fault under test may cause (None for any
    other, which is a violation and stops that client); a batch that failed so is posted again until it
    is acknowledged. ``finish()`` stops new batches, lets every client get its last one acknowledged
    and joins them."""

    def __init__(self, url: str, slug: str, log_keys: list[str], work: list[list[list[Entry]]],
                 expected: Callable[[Exception], str | None]) -> None:
        self.slug, self.expected = slug, expected
        self.told = Told()
        self.failures: Counter[str] = Counter()  # expected failures, by what `expected` named them
        self.violations: list[str] = []
        self._finishing, self._abort = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(ledger_client(url, log_keys), batches), name=f"client-{n}")
            for n, batches in enumerate(work)
        ]

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._abort.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)

    def _run(self, client: LedgerClient, batches: list[list[Entry]]) -> None:
        queue = iter(batches)
        pending: list[Entry] | None = None
        deadline = time.monotonic() + CLIENT_LIMIT
        while not self._abort.is_set():
            if pending is None:
                if self._finishing.is_set():
                    return
                pending = next(queue, None)
                if pending is None:
                    self._violated("ran out of batches (BATCHES_PER_CLIENT) before the test ended")
                    return
                self.told.sent(pending)
            if time.monotonic() > deadline:
                self._violated(f"a batch still unacknowledged after {CLIENT_LIMIT:.0f}s")
                return
            try:
                self.told.post(client, self.slug, pending)
            except Exception as error:  # noqa: BLE001  (every failure is judged: expected, or a violation)
                kind = self.expected(error)
                if kind is None:
                    self._violated(describe(error))
                    return
                with self._lock:
                    self.failures[kind] += 1
                time.sleep(RETRY_PAUSE)
                continue
            pending = None

    def _violated(self, what: str) -> None:
        """Record a violation by the calling client thread (which then stops)."""
        self.violations.append(f"{threading.current_thread().name}: {what}")

    @property
    def acknowledged(self) -> int:
        return len(self.told.acknowledged)

    def wait_for_acknowledgements(self, count: int) -> None:
        """Until ``count`` more entries than now are acknowledged (the clients are being served)."""
        target = self.acknowledged + count
        eventually(lambda: self.acknowledged >= target or bool(self.violations), f"{count} more acknowledged entries")

    def wait_for_failures(self, kind: str, count: int) -> None:
        """Until ``count`` more failures named ``kind`` than now (the fault is biting)."""
        target = self.failures[kind] + count
        eventually(lambda: self.failures[kind] >= target or bool(self.violations), f"{count} more failures '{kind}'")

    def finish(self) -> None:
        self._finishing.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_LIMIT)
        assert not any(thread.is_alive() for thread in self._threads), "a client did not finish"


def ledger_client(url: str, log_keys: list[str]) -> LedgerClient:
    return LedgerClient(url, log_keys=log_keys, timeout=REQUEST_TIMEOUT)


@pytest.fixture
def log_keys(village: StoredVillage) -> list[str]:
    """The village's log keys, which the clients trust (read before any server runs)."""
    return village.store.verifier_keys(village.slug)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Seeded with the test's id: a failing run makes the same random choices again."""
    return random.Random(request.node.nodeid)


@pytest.fixture
def work(village: StoredVillage, rng: random.Random) -> list[list[list[Entry]]]:
    """Each client's share of signed batches (signed up front: signing is not what is under test)."""
    return [signed_batches(village.kit, rng, BATCHES_PER_CLIENT) for _ in range(CLIENTS)]


# --- what must hold after any fault ------------------------------------------------------------------


def stored_log(village: StoredVillage) -> list[str]:
    """The entry ids of the log by index. Requires the stored indexes to be exactly 0..n-1."""
    village_id = village.store.village_id(village.slug)
    with village.store.engine.connect() as connection:
        rows = connection.execute(
            select(m.EntryRow.idx, m.EntryRow.entry_id)
            .where(m.EntryRow.village_id == village_id)
            .order_by(m.EntryRow.idx)
        ).all()
    indexes = [idx for idx, _ in rows]
    assert indexes == list(range(len(rows))), "stored indexes skip or repeat"
    return [entry_id for _, entry_id in rows]


def stored_checkpoints(village: StoredVillage) -> list[Checkpoint]:
    """Every checkpoint stored for the village, opened with its log keys, in order of size."""
    village_id = village.store.village_id(village.slug)
    with village.store.engine.connect() as connection:
        notes = connection.execute(
            select(m.CheckpointRow.note).where(m.CheckpointRow.village_id == village_id).order_by(m.CheckpointRow.size)
        ).scalars().all()
    return [open_checkpoint(note, village.trusted(), origin=village.kit.origin) for note in notes]


def assert_sound(village: StoredVillage, told: Told, *, start: int, settled: bool) -> None:
    """The promises of the module docstring, for a village that had ``start`` entries before ``told``'s
    batches were posted. ``settled``: every posted batch has since been acknowledged.

    (1) indexes are exactly 0..n-1, each entry at most once, n the latest checkpoint's size;
    (2) every acknowledged entry is at its acknowledged index, and no answer contradicted another;
    (3) each posted batch is in the log whole at consecutive indexes, or not at all, and the log holds
        nothing else; when settled, it holds every posted entry;
    (4) every stored checkpoint extends the one before (a consistency proof between them verifies);
    (5) ``Store.check`` passes, and (6) ``rebuild`` reproduces the derived tables exactly.
    """
    store, slug = village.store, village.slug
    # (1)
    log = stored_log(village)
    position = {entry_id: index for index, entry_id in enumerate(log)}
    assert len(position) == len(log), "an entry is in the log twice"
    checkpoints = stored_checkpoints(village)
    assert checkpoints[-1].size == len(log)
    # (2)
    assert not told.contradictions
    lost = {entry_id: (index, position.get(entry_id)) for entry_id, index in told.acknowledged.items()
            if position.get(entry_id) != index}
    assert not lost, f"acknowledged entries not at their index (told, stored): {lost}"
    # (3)
    for batch in told.posted:
        where = [position.get(entry.id) for entry in batch]
        whole = where[0] is not None and where == list(range(where[0], where[0] + len(batch)))
        assert whole or where == [None] * len(batch), f"a batch is in the log in part or out of order: at {where}"
    posted = {entry.id for batch in told.posted for entry in batch}
    assert set(log[start:]) <= posted and not posted & set(log[:start]), "the log holds entries nobody posted"
    if settled:
        assert set(log[start:]) == posted == set(told.acknowledged)
    # (4)
    sizes = [c.size for c in checkpoints]
    assert sizes == sorted(set(sizes)), "one checkpoint per size, in order"
    for older, newer in itertools.pairwise(checkpoints):
        proof = store.consistency_proof(slug, older.size, newer.size)
        merkle.verify_consistency(older.size, newer.size, proof, older.root_hash, newer.root_hash)
    # (5)
    assert store.check(slug).size == len(log)
    # (6)
    derived = store.derived_dump(slug)
    store.rebuild(slug)
    assert store.derived_dump(slug) == derived


# --- 1. crashes --------------------------------------------------------------------------------------


def test_acknowledged_entries_survive_the_server_being_killed_at_random_moments(
    village: StoredVillage, serve: Callable[..., Server], log_keys: list[str], work: list[list[list[Entry]]],
    rng: random.Random,
) -> None:
    """Clients post while the whole server (arbiter and both workers) is SIGKILLed, at a random moment
    once it has acknowledged something (after 1 to ``KILL_AFTER_AT_MOST`` entries, other requests in
    flight), and restarted, again and again; then they re-post whatever they were not told about."""
    start = village.size()
    server = serve(workers=2, options=["--preload"])  # the app is imported once, before the workers fork
    acknowledged_by_cycle = []
    with Clients(server.url, village.slug, log_keys, work, connection_lost) as clients:
        for _ in range(CRASH_CYCLES):
            server.start()
            before = clients.acknowledged
            clients.wait_for_acknowledgements(rng.randint(1, KILL_AFTER_AT_MOST))
            server.kill()
            acknowledged_by_cycle.append(clients.acknowledged - before)
        server.start()
        clients.finish()
    server.kill()
    assert not clients.violations, clients.violations[:3]
    assert all(acknowledged_by_cycle), f"every server was killed while serving: {acknowledged_by_cycle}"
    assert clients.failures["cut short"] > 0, "the kills cut requests short"
    assert_sound(village, clients.told, start=start, settled=True)


# --- 2. the database goes away -----------------------------------------------------------------------


def terminate_connections(admin: Engine, database: str) -> None:
    """What an operator (or a failover) does to every session of ``database``: end it, mid-statement."""
    with admin.connect() as connection:
        connection.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
        ), {"name": database})


@contextmanager
def connections_refused(admin: Engine, database: str) -> Iterator[None]:
    """``database`` refuses new connections and its sessions are ended, until the block exits."""
    with admin.connect() as connection:
        connection.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    try:
        terminate_connections(admin, database)
        yield
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


def append_now(told: Told, client: LedgerClient, village: StoredVillage) -> None:
    """One new entry, which must be acknowledged at the first attempt."""
    batch = [village.kit.award("h1", 1)]
    told.sent(batch)
    told.post(client, village.slug, batch)


@ON_POSTGRESQL
def test_postgresql_going_away_mid_request_costs_only_503s_with_retry_after(
    village: StoredVillage, serve: Callable[..., Server], log_keys: list[str], work: list[list[list[Entry]]],
    rng: random.Random, postgres_admin: Engine, database_url: str,
) -> None:
    """While clients post: the database's sessions are ended at random moments (requests die
    mid-statement), then it refuses connections for a while; after each round, the next append succeeds."""
    start = village.size()
    database = make_url(database_url).database
    assert database is not None
    server = serve(workers=2).start()
    with Clients(server.url, village.slug, log_keys, work, unavailable) as clients:
        for _ in range(FAULT_ROUNDS):
            clients.wait_for_acknowledgements(5)
            for _ in range(rng.randint(3, 6)):  # sessions ended at random moments, mid-request
                time.sleep(rng.uniform(0.01, 0.2))
                terminate_connections(postgres_admin, database)
            with connections_refused(postgres_admin, database):
                clients.wait_for_failures("503", CLIENTS)
                time.sleep(rng.uniform(0.1, 0.5))
            append_now(clients.told, ledger_client(server.url, log_keys), village)  # recovered at once
        clients.finish()
    server.kill()
    assert not clients.violations, clients.violations[:3]
    assert clients.failures["503"] >= CLIENTS * FAULT_ROUNDS
    ended_mid_request = "terminating connection due to administrator command"  # PostgreSQL's words, in the server log
    assert ended_mid_request in server.log.read_text()
    assert_sound(village, clients.told, start=start, settled=True)


def _without_root_privilege() -> list[str]:
    """A command prefix under which root is bound by file permissions like any other user: setpriv
    drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. (Not ``Popen(user="nobody")``: the interpreter may
    live where nobody may not read, e.g. under /root, and Python imports lazily, codecs included.)"""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        missing = "setpriv (util-linux) is needed to drop root's permission override"
        missing_tool("read-only database tests", missing)
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


@contextmanager
def read_only(database: Path) -> Iterator[None]:
    """No write permission on the SQLite database, its -wal and -shm files and their folder (chmod a-w)."""
    paths = [database.parent, *(p for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm")) if p.exists())]
    modes = {path: path.stat().st_mode & 0o7777 for path in paths}
    for path, mode in modes.items():
        path.chmod(mode & ~0o222)
    try:
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


@ON_SQLITE
def test_a_sqlite_database_turned_read_only_costs_503s_until_it_is_writable_again(
    village: StoredVillage, serve: Callable[..., Server], log_keys: list[str], work: list[list[list[Entry]]],
    database_url: str,
) -> None:
    """The server runs without root's permission override; while clients post, the database, its -wal and
    -shm files and their folder lose write permission, then get it back."""
    start = village.size()
    database = Path(make_url(database_url).database or "")
    server = serve(workers=2, wrapper=_without_root_privilege()).start()
    with Clients(server.url, village.slug, log_keys, work, unavailable) as clients:
        clients.wait_for_acknowledgements(5)
        with read_only(database):
            # The connections the workers hold keep writing (permissions are checked when a file is
            # opened); the fault bites in the workers of a reload, as on a deploy, which open new ones.
            server.reload()
            clients.wait_for_failures("503", 2 * CLIENTS)
        append_now(clients.told, ledger_client(server.url, log_keys), village)  # recovered, without a restart
        clients.wait_for_acknowledgements(5)
        clients.finish()
    server.kill()
    assert not clients.violations, clients.violations[:3]
    assert_sound(village, clients.told, start=start, settled=True)


def test_a_connection_opened_while_sqlite_was_read_only_does_not_outlive_its_request(tmp_path: Path) -> None:
    """Another process holds the database open (a server's other worker); a worker without root's
    permission override reads while the database and its folder cannot be written. Its very next write
    after they can be written again succeeds: a pooled connection of the read-only time would have kept the
    worker's shared-memory index of the file read-only, and every new connection of the worker with it."""
    database = tmp_path / "village.sqlite3"
    other_worker = sqlite3.connect(database)
    try:
        other_worker.execute("PRAGMA journal_mode=WAL")
        other_worker.execute("CREATE TABLE t (x INTEGER)")
        other_worker.commit()
        command = [*_without_root_privilege(), sys.executable, str(Path(__file__).with_name("sqlite_worker.py")),
                   str(database)]
        with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as worker:
            with read_only(database):
                assert _ask(worker, "read") == "read 0", _last_words(worker)
            assert _ask(worker, "write") == "wrote", _last_words(worker)
            _last_words(worker)
    finally:
        other_worker.close()


def _ask(process: subprocess.Popen[str], command: str) -> str:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(command + "\n")
    process.stdin.flush()
    return process.stdout.readline().strip()


def _last_words(process: subprocess.Popen[str]) -> str:
    """End ``process`` (its input closed, it leaves its loop) and return what it wrote to stderr."""
    assert process.stdin is not None and process.stderr is not None
    process.stdin.close()
    process.wait(timeout=30)
    return process.stderr.read()


# --- 3. one system call fails ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def strace() -> str:
    """strace, able to trace here (ptrace may be refused in a container). Skips without, unless under CI."""
    path = shutil.which("strace")
    problem = "strace is not installed (apt-get install strace)" if path is None else None
    if path is not None:
        probe = subprocess.run([path, "--follow-forks", "--output=/dev/null", "true"], capture_output=True, text=True,
                               timeout=60, check=False)
        if probe.returncode != 0:
            problem = f"strace cannot trace here (is ptrace refused?): {probe.stderr.strip()}"
    if problem is not None:
        missing_tool("fault injection tests", problem)
    assert path is not None
    return path


@dataclass(frozen=True)
class SyscallFault:
    """``syscalls`` on the database's ``file`` fail with ``errno`` from their ``when``'th call in a thread
    on (strace's syntax: "2+" every call from the second, "1+2" every other call from the first).

    SQLite's unix VFS (seen with ``strace -f`` on the server) commits a transaction in WAL mode by
    writing each page to the -wal file with pwrite64 (a 24-byte frame header, then the page) and
    syncing it with fdatasync; it opens files with openat. The other names in ``syscalls`` are what a
    build without pwrite or fdatasync would call instead."""

    syscalls: str
    errno: str
    file: str  # suffix of the database's path: "-wal", or "" for the database file itself
    when: str

    def server(self, serve: Callable[..., Server], strace: str, database: Path, output: Path) -> Server:
        """A server (not started) under this fault, strace's log in ``output``: one worker of one thread,
        without a node cache, so that the calls strace counts per thread are all of the server's. (A second
        thread would meet the fault again from its own first call: under load, gunicorn's thread pool
        starts one for a request that arrives before the first thread is back waiting, and a worker with a
        node cache reads the tree in its main thread before serving.) Only the traced calls stop the
        server (--seccomp-bpf), so it runs at nearly full speed."""
        command = ["env", "VILLAGELEDGER_NODE_CACHE_MB=0",
                   strace, "--follow-forks", "--seccomp-bpf", f"--output={output}", f"--trace={self.syscalls}",
                   f"--trace-path={database}{self.file}", f"--inject={self.syscalls}:error={self.errno}:when={self.when}"]
        return serve(workers=1, wrapper=command, options=("--threads", "1"))


SYSCALL_FAULTS = {
    # The disk fails to flush the write-ahead log (the first sync of a fresh log is its header's, the
    # second a commit's): the transaction's frames are written, its sync is not.
    "fdatasync-EIO": SyscallFault("fsync,fdatasync", "EIO", "-wal", "2+"),
    # The disk fills up in the middle of a commit: the first two writes to the log fit, no more.
    "pwrite64-ENOSPC": SyscallFault("pwrite64,write", "ENOSPC", "-wal", "3+"),
    # The file system is read-only: every read-write open of the database fails, and SQLite's silent
    # read-only retry (the next open) succeeds.
    "openat-EROFS": SyscallFault("openat", "EROFS", "", "1+2"),
}
APPENDS_UNTIL_FAULT = 3


def villageledger_check(environment: dict[str, str], slug: str, cwd: Path) -> str:
    """``villageledger check`` run as an operator runs it: the console script, in its own process."""
    result = subprocess.run([str(BIN / "villageledger"), "check", slug], env=environment, cwd=cwd,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@ON_SQLITE
@pytest.mark.parametrize("fault", SYSCALL_FAULTS.values(), ids=SYSCALL_FAULTS.keys())
def test_an_append_hit_by_a_failing_system_call_is_a_503_and_a_restart_without_the_fault_recovers(
    fault: SyscallFault, village: StoredVillage, serve: Callable[..., Server], log_keys: list[str], strace: str,
    database_url: str, server_environment: dict[str, str], tmp_path: Path,
) -> None:
    start = village.size()
    database = Path(make_url(database_url).database or "")
    trace = tmp_path / "strace.log"
    told = Told()
    # (1) One worker of one thread, no preload: the server's database calls all happen in that thread,
    # whose calls strace counts from the start; appends until one meets the fault.
    faulty = fault.server(serve, strace, database, trace).start()
    client = ledger_client(faulty.url, log_keys)
    unacknowledged = None
    for _ in range(APPENDS_UNTIL_FAULT):
        batch = [village.kit.award("h2", 3)]
        told.sent(batch)
        try:
            told.post(client, village.slug, batch)
        except ApiError as error:
            assert unavailable(error) == "503", describe(error)
            # Its entry may be in the log after all (a flush that fails after the write): the problem
            # must not say that nothing was written.
            assert "Retry later with the same signed entries" in error.problem["detail"]
            unacknowledged = batch
            break
    assert unacknowledged is not None, f"no append met the fault; strace's log:\n{trace.read_text()}"
    assert "(INJECTED)" in trace.read_text()
    # (2) The server dies with the fault; the database is consistent for the next process that opens it
    # (the unacknowledged entry is absent, or present whole if its commit reached the file after all).
    faulty.kill()
    assert_sound(village, told, start=start, settled=False)
    # (3) Restarted without the fault: the client re-posts what was not acknowledged, and appends anew.
    server = serve(workers=1).start()
    client = ledger_client(server.url, log_keys)
    told.post(client, village.slug, unacknowledged)
    append_now(told, client, village)
    server.kill()
    assert_sound(village, told, start=start, settled=True)
    # (4) The operator's self-check agrees with the latest checkpoint.
    latest = open_checkpoint(
        village.store.latest_checkpoint(village.slug), village.trusted(), origin=village.kit.origin
    )
    report = villageledger_check(server_environment, village.slug, tmp_path)
    assert f"{latest.size} entries verified, root {b64encode(latest.root_hash)}," in report


@ON_SQLITE
def test_one_failed_open_of_the_database_does_not_leave_the_server_read_only(
    village: StoredVillage, serve: Callable[..., Server], log_keys: list[str], strace: str, database_url: str,
    tmp_path: Path,
) -> None:
    """Regression: SQLite answers an open for writing that fails (here once, with EROFS) by opening the
    file read-only, silently; the server used to keep that connection and fail every append until it
    was restarted."""
    start = village.size()
    database = Path(make_url(database_url).database or "")
    once = SyscallFault("openat", "EROFS", "", "1")
    server = once.server(serve, strace, database, tmp_path / "strace.log").start()
    client = ledger_client(server.url, log_keys)
    told = Told()
    batch = [village.kit.award("h2", 3)]
    told.sent(batch)
    with pytest.raises(ApiError, match="HTTP 503: The database cannot be reached or is read-only"):
        told.post(client, village.slug, batch)  # on the connection the server's first read opened read-only
    told.post(client, village.slug, batch)
    append_now(told, client, village)
    server.kill()
    assert_sound(village, told, start=start, settled=True)
