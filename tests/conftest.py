"""Fixtures shared by every test. They compose, each building on the one before:

``backend``          "sqlite" or "postgresql": every test that asks for a database runs once on each
                     (the PostgreSQL run is marked ``postgres``; deselect it with ``-m "not postgres"``).
``database_url``     the URL of a FRESH database, already migrated, that belongs to this test alone:
                     SQLite copies a template file migrated once per session into ``tmp_path``;
                     PostgreSQL runs ``CREATE DATABASE t_<uuid> TEMPLATE <template migrated once>``
                     and drops it after the test.
``open_engine``      factory: ``open_engine()`` is a new Engine on that database (a thread or a simulated
                     second server gets its own); every engine is disposed after the test.
``engine``           ``open_engine()``: the test's engine.
``make_store``       factory: ``make_store(engine=None)`` is a new ``storage.Store`` with the test log-key
                     passphrase ``kit.LOG_KEY_PASSPHRASE`` (on ``engine``, or the test's engine).
``store``            ``make_store()``.
``kit``              ``Kit()``: keys and entry builders for the test village (see ``kit.py``).
``village``          a ``kit.StoredVillage``: ``store`` holding the kit's genesis and standard setup
                     entries, with ``.store``, ``.kit``, ``.slug`` and helpers (``append``, ``trusted``).
``runner``           a click ``CliRunner``.
``chromium``         (session) Debian's headless Chromium driven by Playwright; ``live_server``: the
                     ``app`` served over HTTP on a free loopback port (its base URL).
``app``              the Flask app (``api.create_app``) on the ``village`` database; ``client`` its test client.

PostgreSQL comes from ``postgres_url`` (session): ``VILLAGELEDGER_TEST_POSTGRES_URL`` if set (a
superuser, or a role that may create databases), else a server started by ``pgserver.TemporaryPostgres``
for this session. Without either the PostgreSQL tests skip, except under CI (``CI`` set and not
0/false/no), where they fail: CI must run both backends.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, PHONE
from ci import missing_tool
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from kit import LOG_KEY_PASSPHRASE, Kit, StoredVillage
from pgserver import TemporaryPostgres, find_bindir
from servers import BIN, REDIS_SERVER, Server, TemporaryRedis, free_port, no_control_socket, served
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from api.app import create_app
from ledger.canonical import b64encode
from storage import Store, complaints, make_engine
from storage.migrate import upgrade

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


# --- servers and templates (once per session) ------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server's URL (of a database to connect to for CREATE DATABASE)."""
    given = os.environ.get("VILLAGELEDGER_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    if find_bindir() is None:
        reason = "no PostgreSQL: set VILLAGELEDGER_TEST_POSTGRES_URL or apt-get install postgresql"
        missing_tool("PostgreSQL tests", reason)
    with TemporaryPostgres() as url:
        yield url


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_admin(postgres_url: str) -> Iterator[Engine]:
    """An autocommit engine on the server's maintenance database, for CREATE and DROP DATABASE."""
    admin = make_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield admin
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_template(postgres_admin: Engine, postgres_url: str) -> Iterator[str]:
    """The name of a database migrated to the latest schema, to copy for each test. Named per session so
    that sessions sharing a server (VILLAGELEDGER_TEST_POSTGRES_URL) do not meet."""
    name = f"template_{uuid.uuid4().hex}"
    with postgres_admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    migrating = make_engine(_with_database(postgres_url, name), poolclass=NullPool)
    try:
        upgrade(migrating)
    finally:
        migrating.dispose()  # CREATE DATABASE ... TEMPLATE needs the template to have no connections
    yield name
    with postgres_admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the latest schema, to copy for each test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    migrating = make_engine(f"sqlite:///{path}")
    upgrade(migrating)
    migrating.dispose()
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")  # fold the WAL into the file: one file to copy
    return path


# --- one fresh database per test -------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``make_database(name)``: the URL of a fresh, migrated database of ``backend`` that only this test uses
    (a service's own: the village server's, a township node's)."""
    dropped: list[str] = []

    def make(name: str) -> str:
        if backend == "sqlite":
            path = tmp_path / f"{name}.sqlite3"
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            return f"sqlite:///{path}"
        admin: Engine = request.getfixturevalue("postgres_admin")
        template: str = request.getfixturevalue("postgres_template")
        database = f"t_{uuid.uuid4().hex}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
        dropped.append(database)
        return _with_database(request.getfixturevalue("postgres_url"), database)

    yield make
    for database in dropped:
        with request.getfixturevalue("postgres_admin").connect() as connection:
            # FORCE: also ends connections a test leaked (a CLI command's engine, a killed worker...).
            connection.exec_driver_sql(f'DROP DATABASE "{database}" WITH (FORCE)')


@pytest.fixture
def database_url(make_database: Callable[[str], str]) -> str:
    """A fresh, migrated database of ``backend`` that only this test uses."""
    return make_database("villageledger")


@pytest.fixture
def open_engine(database_url: str) -> Iterator[Callable[[], Engine]]:
    """``open_engine()``: a new Engine on the test's database; all are disposed after the test."""
    engines: list[Engine] = []

    def open_() -> Engine:
        engines.append(make_engine(database_url))
        return engines[-1]

    yield open_
    for engine in engines:
        engine.dispose()


@pytest.fixture
def engine(open_engine: Callable[[], Engine]) -> Engine:
    return open_engine()


@pytest.fixture
def make_store(engine: Engine, kit: Kit) -> Callable[..., Store]:
    """``make_store(engine=None, **options)``: a new Store (its own caches), on ``engine`` or the test's
    engine, with ``Store``'s keyword ``options``; its clock is the kit's (the real time unless pinned)."""

    def make(on: Engine | None = None, **options: Any) -> Store:
        return Store(on or engine, log_key_passphrase=LOG_KEY_PASSPHRASE, **{"clock": kit.clock, **options})

    return make


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()


@pytest.fixture
def kit() -> Kit:
    return Kit()


@pytest.fixture
def village(store: Store, kit: Kit) -> StoredVillage:
    """The standard test village (genesis and ``kit.setup_entries()``) in ``store``."""
    return StoredVillage.create(store, kit)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def app_config(database_url: str, village: StoredVillage) -> dict[str, Any]:
    """The app's configuration in the tests (a test module may override this fixture to add to it)."""
    return {"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret",
            "LOG_KEY_PASSPHRASE": "test-passphrase", "CLOCK": village.kit.clock}


@pytest.fixture
def app(app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The API on the test village's database (its own engine, disposed after the test)."""
    monkeypatch.setenv("VILLAGELEDGER_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(app_config)
    yield app
    app.extensions["villageledger.store"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def login(client: FlaskClient, village: StoredVillage) -> Callable[[str], dict[str, str]]:
    """``login(member)``: Authorization headers for that kit member, by signing a challenge."""

    def as_member(name: str) -> dict[str, str]:
        base = f"/api/v1/villages/{village.slug}"
        issued = client.post(f"{base}/auth/challenge").json
        signature = village.kit.keys[name].sign(issued["message"].encode())
        response = client.post(f"{base}/auth/token", json={
            "key": village.kit.key_b64(name), "challenge": issued["challenge"], "signature": b64encode(signature),
        })
        assert response.status_code == 200, response.data
        return {"Authorization": f"Bearer {response.json['token']}"}

    return as_member


@pytest.fixture
def desk(village: StoredVillage) -> str:
    """The village's complaint desk: its server-held key, registered by the township as member ``desk``
    (role intake). Its base64 public key."""
    public = b64encode(complaints.desk_public_key(village.store, village.slug))
    kit = village.kit
    village.append(kit.sign("member.add", {"member": "desk", "name": "投诉受理台", "roles": ["intake"], "key": public},
                            by=kit.appointer))
    return public


# --- real servers: gunicorn for the test village, Redis for the shared limits ----------------------------


@pytest.fixture
def server_environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    """What a deployment configures: the database, the secret key and the log keys' passphrase."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "VILLAGELEDGER_DATABASE_URL": database_url,
        "VILLAGELEDGER_SECRET_KEY": "test-secret",
        "VILLAGELEDGER_LOG_KEY_PASSPHRASE": LOG_KEY_PASSPHRASE.decode(),
        "VILLAGELEDGER_INSTANCE_PATH": str(tmp_path / "instance"),
    }


@pytest.fixture
def serve(
    village: StoredVillage, server_environment: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Server]]:
    """``serve(workers=2, *, wrapper=(), options=())``: a gunicorn server of the test village, not started
    yet (``.start()``), ``wrapper`` the command it runs under (strace, setpriv). Each start first closes
    the test's own database connections. Every server still running is killed after the test."""
    servers: list[Server] = []

    def make(workers: int = 2, *, wrapper: Sequence[str] = (), options: Sequence[str] = ()) -> Server:
        port = free_port()
        command = [*wrapper, str(BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
                   *no_control_socket(), *options, "api.app:create_app()"]
        servers.append(Server(command, environment=server_environment, port=port, slug=village.slug,
                              log=tmp_path / f"server-{len(servers)}.log", before_start=village.store.engine.dispose))
        return servers[-1]

    yield make
    for server in servers:
        server.kill()


TOWNSHIP_WITNESS = "witness.qingfeng-town.example"  # the township node's witness name in the tests


@pytest.fixture
def township(make_database: Callable[[str], str], tmp_path: Path) -> Iterator[Callable[[], tuple[Server, str]]]:
    """``township()``: a township node (gunicorn 'api.township:create_app()') on its own database, set up with
    ``villageledger township init``, started; returns the server and its cosigner key."""
    servers: list[Server] = []

    def start() -> tuple[Server, str]:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "VILLAGELEDGER_DATABASE_URL": make_database("township"),
            "VILLAGELEDGER_INSTANCE_PATH": str(tmp_path / "township-instance"),
            "VILLAGELEDGER_WITNESS_NAME": TOWNSHIP_WITNESS,
            "VILLAGELEDGER_WITNESS_KEY_PASSPHRASE": "township test passphrase",
        }
        made = subprocess.run([str(BIN / "villageledger"), "township", "init", "--name", TOWNSHIP_WITNESS],
                              env=environment, capture_output=True, text=True, timeout=120, check=True)
        port = free_port()
        command = [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}", *no_control_socket(),
                   "api.township:create_app()"]
        servers.append(Server(command, environment=environment, port=port, slug="", log=tmp_path / "township.log",
                              before_start=lambda: None, ready_path="/witness/healthz").start())
        return servers[-1], made.stdout.strip()

    yield start
    for server in servers:
        server.kill()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server of this session (Debian's redis-server); without one the tests that need it skip,
    except under CI, where they fail."""
    if REDIS_SERVER is None:
        missing_tool("shared-limit tests", "no redis-server: apt-get install redis-server")
    with TemporaryRedis() as url:
        yield url


def _missing_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Python Playwright is not installed (pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium for the session. Skips without one, except under CI, where it fails."""
    missing = _missing_browser()
    if missing is not None:
        missing_tool("browser tests", missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
# Playwright's wait_for_function evaluates its predicate in the page, which our Content-Security-Policy
# forbids (no eval): the scripted tests' pages bypass it; test_csp_browser.py runs the pages under it.
SCRIPTED = {"bypass_csp": True}


@pytest.fixture
def phone(chromium: Any) -> Iterator[Any]:
    """A fresh phone-sized browser page (its own context: no cookies or storage from other tests)."""
    context = chromium.new_context(**PHONE, **SCRIPTED)
    yield context.new_page()
    context.close()


def assert_wcag_2_1_aa(page: Any) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the page as it stands."""
    from axe_playwright_python.sync_playwright import Axe

    tags = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
    results = Axe().run(page, options=tags)
    assert results.violations_count == 0, results.generate_report()


def screenshot(page: Any, name: str, request: pytest.FixtureRequest) -> None:
    """Keep a full-page screenshot in artifacts/screenshots/ (CI keeps that folder)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    suffix = f"-{request.node.callspec.id}" if hasattr(request.node, "callspec") else ""
    page.screenshot(path=SCREENSHOTS / f"{name}{suffix}.png", full_page=True)


@pytest.fixture
def desktop(chromium: Any) -> Iterator[Any]:
    """A fresh desktop-sized browser page (an office PC)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, **SCRIPTED)
    yield context.new_page()
    context.close()


KEY_PASSPHRASE = "村两委-2026"


@pytest.fixture
def key_file(village: StoredVillage, tmp_path: Path) -> Callable[[str], Path]:
    """``key_file(member)``: the kit member's encrypted key file, as the committee hands it out."""

    def write(member: str) -> Path:
        path = tmp_path / f"{member}.key"
        path.write_bytes(village.kit.keys[member].to_encrypted_pem(KEY_PASSPHRASE.encode()))
        return path

    return write


def sign_in_at(page: Any, url: str, key: Path, ready: str) -> None:
    """Open a members' page, load the key file into the browser, and wait for ``ready``."""
    page.goto(url)
    page.wait_for_selector("#key-form:not([hidden])")
    page.set_input_files("#key-file", str(key))
    page.fill("#passphrase", KEY_PASSPHRASE)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector(ready)


CONSOLE_SIZES = {"phone": PHONE, "desktop": {"viewport": {"width": 1280, "height": 900}}}


@pytest.fixture(params=list(CONSOLE_SIZES))
def screen(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page at phone size, then (a second run of the test) at desktop size."""
    context = chromium.new_context(**CONSOLE_SIZES[request.param], **SCRIPTED)
    yield context.new_page()
    context.close()


@pytest.fixture
def console(screen: Any, live_server: str, village: StoredVillage, key_file: Callable[[str], Path]) -> Callable[[str], Any]:
    """``console(member)``: the committee console page, signed in as that kit member, every section mounted."""

    def open_as(member: str) -> Any:
        sign_in_at(screen, f"{live_server}/v/{village.slug}/console", key_file(member), "body[data-ready]")
        return screen

    return open_as


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app served over HTTP on a free loopback port for the length of the test; its base URL."""
    with served(app) as url:
        yield url
