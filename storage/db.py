"""Engines, configuration, the write transaction that serialises appends to a village, and an upsert.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk before it is acknowledged) and
takes its write lock up front (``BEGIN IMMEDIATE``), so concurrent writers in other processes queue
instead of failing half way. PostgreSQL appends lock the village's row (``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import fcntl
import functools
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Dialect, ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, SQLModel

ENV_PREFIX = "VILLAGELEDGER_"
_WRITE = "villageledger_write"


def instance_path() -> Path:
    """Where local state lives (the SQLite file, uploads): ``VILLAGELEDGER_INSTANCE_PATH`` or ./instance."""
    return Path(os.environ.get(f"{ENV_PREFIX}INSTANCE_PATH", Path.cwd() / "instance")).resolve()


def database_url() -> str:
    """``VILLAGELEDGER_DATABASE_URL`` (any SQLAlchemy URL), else a SQLite file in the instance folder."""
    url = os.environ.get(f"{ENV_PREFIX}DATABASE_URL")
    if url:
        return url
    folder = instance_path()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'villageledger.sqlite3'}"


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    url = url or database_url()
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "handle_error", _sqlite_replace_read_only_connection)
        database = sqlite_file(engine)
        if database is not None:
            event.listen(engine, "connect", functools.partial(_note_read_only_era, database))
            event.listen(engine, "checkin", _close_if_read_only_era)
        return engine
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    event.listen(engine, "checkin", _note_checkin)
    return engine


# A pooled PostgreSQL connection idle for this long is pinged before use (a server restart, or a firewall
# dropping idle connections, leaves the pool holding dead ones). One back in use sooner is not: a ping is a
# round trip per request (half the time of a proof read), and a connection that died while in steady use is
# found by its next statement, which then fails alone (a 503 with Retry-After) and has the pool replace
# every connection older than it.
PING_AFTER_IDLE_SECONDS = 5.0
_CHECKED_IN = "villageledger_checked_in"


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _ping_if_idle(dialect: Dialect, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.get(_CHECKED_IN)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return  # new, or back in use within moments
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as exc:  # any failure of the ping: the pool opens a new connection instead
        raise DisconnectionError(f"pooled connection idle {time.monotonic() - idle_since:.0f} s is dead") from exc


# Reads of a big village (a page's entries and proof nodes) land all over the file; mapped, they are served
# from the OS page cache without a read() copy per page. SQLite caps this at its build's limit (2 GB by
# default); a larger file is mapped in part. Writes still go through the WAL.
SQLITE_MMAP_BYTES = 1 << 31


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module so BEGIN is ours (IMMEDIATE for writes).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=60000",
                   f"mmap_size={SQLITE_MMAP_BYTES}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    mode = "IMMEDIATE" if connection.get_execution_options().get(_WRITE) else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


def _sqlite_replace_read_only_connection(context: ExceptionContext) -> None:
    # SQLite opens a file it may not write (read-only file system, no write permission) read-only without
    # saying so, and the connection stays read-only after the file is writable again. Treated as a
    # disconnect, it is dropped from the pool instead of failing every later write until a restart. Its
    # cursor is closed too: a statement left open keeps the closed connection alive, and with it the
    # read-only handles that the process's next connections to the file would share.
    code = getattr(context.original_exception, "sqlite_errorcode", None)
    if code is not None and code & 0xFF == sqlite3.SQLITE_READONLY:
        context.is_disconnect = True
        cursor = getattr(context.execution_context, "cursor", None)
        if cursor is not None:
            with suppress(sqlite3.Error):  # an error here would replace the one being handled
                cursor.close()


# A connection SQLite opened while the file could not be written is read-only for good, and while it lives
# the process's other connections to the file share its read-only shared-memory index (SQLite keeps one
# per file per process), so even a connection opened after the file is writable again cannot write. Such a
# connection goes back to no pool: it is closed when its request ends, so once the requests of the
# read-only time have ended, the next one opens a connection that can write.
_READ_ONLY_ERA = "villageledger_read_only_era"


def _note_read_only_era(database: Path, _dbapi_connection: Any, record: Any) -> None:
    record.info[_READ_ONLY_ERA] = not (os.access(database, os.W_OK) and os.access(database.parent, os.W_OK))


def _close_if_read_only_era(_dbapi_connection: Any, record: Any) -> None:
    if record.info.get(_READ_ONLY_ERA):
        record.invalidate()  # the record stays in the pool and connects afresh at its next checkout


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_file(engine: Engine) -> Path | None:
    """The file of a SQLite database named by path; None for another database, ``:memory:`` or a ``file:`` URI."""
    database = engine.url.database if is_sqlite(engine) else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction holds the database's write lock from its first statement (SQLite);
    on PostgreSQL the caller locks the village row. Commits on success, rolls back on any error."""
    with _sqlite_writers_queue(engine), engine.connect() as connection:
        connection = connection.execution_options(**{_WRITE: True})
        with Session(bind=connection, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


@contextmanager
def _sqlite_writers_queue(engine: Engine) -> Iterator[None]:
    """SQLite writers of every process wait for each other on an flock of a file beside the database
    before BEGIN IMMEDIATE: the kernel wakes the next one the moment the lock is free, where SQLite's own
    busy handler polls with sleeps of up to 100 ms (seconds of tail latency under concurrent appends)."""
    database = sqlite_file(engine)
    if database is None:
        yield
        return
    try:
        descriptor = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # a read-only folder: SQLite's own lock still serialises, and its error tells the client
        yield
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases its lock


@contextmanager
def read_session(engine: Engine, *, streamed: bool = False) -> Iterator[Session]:
    """A session for reads only. On PostgreSQL its statements run in autocommit: under READ COMMITTED each
    statement sees its own snapshot anyway, and no BEGIN/ROLLBACK round trips are spent on a read; a
    ``streamed`` read (a server-side cursor) keeps a transaction, which such a cursor needs. SQLite
    keeps one deferred transaction, so a read of several statements sees one snapshot."""
    with Session(engine, expire_on_commit=False) as session:
        if not streamed and not is_sqlite(engine):
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


def upsert(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``model``'s table, each replacing the row of the same primary key if any."""
    if rows:
        session.connection().execute(_upsert_statement(session.get_bind().dialect.name, model), rows)


@functools.cache
def _upsert_statement(dialect: str, model: type[SQLModel]) -> Any:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE, built once per table (building it costs more than
    running it for one row)."""
    table = model.__table__  # type: ignore[attr-defined]
    keys_ = [c.name for c in table.primary_key.columns]
    statement = (sqlite_dialect.insert if dialect == "sqlite" else pg_dialect.insert)(table)
    return statement.on_conflict_do_update(
        index_elements=keys_, set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys_}
    )


def instance_secret(name: str) -> str:
    """``VILLAGELEDGER_<NAME>`` if set; for development, a random value kept (mode 0600) in the instance
    folder, so every process of one installation agrees on it."""
    value = os.environ.get(f"{ENV_PREFIX}{name.upper().replace('-', '_')}")
    if value:
        return value
    path = instance_path() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def log_key_passphrase() -> bytes:
    """The passphrase that encrypts the villages' log keys (``VILLAGELEDGER_LOG_KEY_PASSPHRASE``)."""
    return instance_secret("log-key-passphrase").encode()
