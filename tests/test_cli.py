"""Specification of the ``villageledger`` command line: the operator's commands on a real database (both
backends), and the auditor's ``verify``, which must need nothing but the base install.

Commands run in-process through click's CliRunner, except where isolation is the point: whether
``verify`` imports the database layer is checked in a fresh interpreter.
"""

from __future__ import annotations

import gc
import json
import re
import stat
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

import keys
import storage
from cli import main
from ledger.canonical import b64encode

DEMO = ["demo", "--households", "30", "--events", "200"]
SERVER_ONLY = ("sqlalchemy", "sqlmodel", "alembic", "flask", "psycopg", "storage")


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args), catch_exceptions=False)


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}"
    return result.stdout


@dataclass(frozen=True)
class Demo:
    """The demo village as the CLI made it: its size and current log verifier key."""

    size: int
    log_key: str


def make_demo(runner: CliRunner) -> Demo:
    out = ok(run(runner, *DEMO))
    match = re.search(r"demo village created: (\d+) entries", out)
    assert match, out
    (log_key,) = ok(run(runner, "log-key", "demo")).split()
    assert f"log key: {log_key}" in out
    return Demo(int(match.group(1)), log_key)


def point_at(monkeypatch: pytest.MonkeyPatch, database_url: str, instance: Path) -> None:
    """The environment a deployed server's commands read their configuration from."""
    monkeypatch.setenv("VILLAGELEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("VILLAGELEDGER_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("VILLAGELEDGER_LOG_KEY_PASSPHRASE", raising=False)


def keep_engines(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Record the engines the commands make, and return a function that disposes them. The commands
    never dispose their engines (test_commands_close_their_database_connections); without this their
    connections would be collected, and warn, in whichever later test the garbage collector runs."""
    made: list[Engine] = []
    original = storage.make_engine

    def make_engine(*args: object, **kwargs: object) -> Engine:
        made.append(original(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(storage, "make_engine", make_engine)

    def dispose() -> None:
        for engine in made:
            engine.dispose()

    return dispose


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def instance(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI's configuration: a fresh database of ``backend`` and an instance folder of this test."""
    folder = tmp_path / "instance"
    point_at(monkeypatch, database_url, folder)
    dispose = keep_engines(monkeypatch)
    yield folder
    dispose()


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Demo]]:
    """An exported demo village bundle and its log key, made once: verifying touches no database, so
    the auditor's tests share it (read only). Made on a new, empty SQLite file, which ``demo`` migrates."""
    folder = tmp_path_factory.mktemp("demo")
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as monkeypatch:
        point_at(monkeypatch, f"sqlite:///{folder / 'empty.sqlite3'}", folder / "instance")
        dispose = keep_engines(monkeypatch)
        demo = make_demo(runner)
        bundle = folder / "demo.bundle"
        ok(run(runner, "export", "demo", "-o", str(bundle)))
        dispose()
    bundle.chmod(0o444)
    yield bundle, demo


def entry_lines(bundle: bytes) -> list[int]:
    """Line numbers (0-based) of the bundle's entry lines, in log order."""
    return [n for n, line in enumerate(bundle.split(b"\n")) if line.startswith(b'{"entry":')]


# --- operating a server ------------------------------------------------------------------------------


def test_demo_creates_the_demo_village_once(runner: CliRunner, instance: Path) -> None:
    demo = make_demo(runner)
    assert demo.size > 230  # genesis, members, 30 households, rules, affairs and 200 points entries
    assert demo.log_key.startswith("villageledger.local/demo+")
    again = ok(run(runner, *DEMO))
    assert f"demo village already exists: {demo.size} entries" in again
    assert f"log key: {demo.log_key}" in again
    assert ok(run(runner, "check", "demo")).startswith(f"ok: village demo: {demo.size} entries verified")
    key_files = list((instance / "demo-keys").glob("*.key"))
    assert key_files and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in key_files)


def test_an_export_verifies_with_the_village_log_key(runner: CliRunner, instance: Path, tmp_path: Path) -> None:
    demo = make_demo(runner)
    bundle = tmp_path / "demo.bundle"
    assert ok(run(runner, "export", "demo", "-o", str(bundle))).startswith(f"wrote {bundle}")
    out = ok(run(runner, "verify", str(bundle), "--log-key", demo.log_key, "--quiet", "--workers", "0"))
    assert out.startswith(f"ok: village demo: {demo.size} entries verified, root ")


@pytest.mark.parametrize("command", [["log-key"], ["check"], ["rebuild"], ["erase", "--", "h1"]], ids=lambda c: c[0])
def test_commands_on_an_unknown_village_fail_naming_it(runner: CliRunner, instance: Path, command: list[str]) -> None:
    name, *rest = command
    result = run(runner, name, "nowhere", *rest)
    assert result.exit_code == 1
    assert result.stderr == "error: no village 'nowhere'\n"


def test_export_of_an_unknown_village_fails_naming_it_and_writes_no_file(
    runner: CliRunner, instance: Path, tmp_path: Path
) -> None:
    output = tmp_path / "nowhere.bundle"
    result = runner.invoke(main, ["export", "nowhere", "-o", str(output)])
    assert (result.exit_code, result.stderr) == (1, "error: no village 'nowhere'\n")
    assert not output.exists()


def test_commands_close_their_database_connections(
    runner: CliRunner, database_url: str, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    point_at(monkeypatch, database_url, tmp_path / "instance")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok(run(runner, "db", "upgrade"))
        result = run(runner, "log-key", "nowhere")
        del result
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# --- auditing ----------------------------------------------------------------------------------------


def test_verify_uses_every_core_by_default(demo_bundle: tuple[Path, Demo], runner: CliRunner) -> None:
    bundle, demo = demo_bundle
    out = ok(run(runner, "verify", str(bundle), "--log-key", demo.log_key, "--quiet"))
    assert out.startswith(f"ok: village demo: {demo.size} entries verified")


def test_verify_with_another_log_key_fails_at_the_first_checkpoint(
    demo_bundle: tuple[Path, Demo], runner: CliRunner
) -> None:
    bundle, _ = demo_bundle
    impostor = keys.verifier_key("villageledger.local/demo", keys.SigningKey.generate().public_bytes)
    result = run(runner, "verify", str(bundle), "--log-key", impostor, "--quiet", "--workers", "0")
    assert result.exit_code == 1
    assert "checkpoint after 1 entries: no signature by a trusted key" in result.stderr
    assert result.stdout == ""


def test_verify_refuses_a_malformed_log_key(demo_bundle: tuple[Path, Demo], runner: CliRunner) -> None:
    bundle, _ = demo_bundle
    result = run(runner, "verify", str(bundle), "--log-key", "not-a-key", "--quiet")
    assert result.exit_code == 1 and result.stderr.startswith("error: ")


@pytest.mark.parametrize("position", [0.1, 0.5, 0.9])
def test_verify_names_the_entry_whose_byte_was_changed(
    demo_bundle: tuple[Path, Demo], runner: CliRunner, tmp_path: Path, position: float
) -> None:
    bundle, demo = demo_bundle
    data = bundle.read_bytes()
    lines = data.split(b"\n")
    index = int(demo.size * position)
    number = entry_lines(data)[index]
    line = lines[number]
    at = line.index(b'"id":"') + len(b'"id":"')
    lines[number] = line[:at] + (b"0" if line[at:at + 1] != b"0" else b"1") + line[at + 1:]
    tampered = tmp_path / "tampered.bundle"
    tampered.write_bytes(b"\n".join(lines))
    assert len(tampered.read_bytes()) == len(data)  # one byte changed, nothing else
    result = run(runner, "verify", str(tampered), "--log-key", demo.log_key, "--quiet", "--workers", "0")
    assert result.exit_code == 1
    assert re.match(rf"error: entry {index}\b.*signature by the author key .* does not verify", result.stderr), result.stderr


def test_verify_imports_nothing_of_the_database_layer_or_flask(demo_bundle: tuple[Path, Demo], tmp_path: Path) -> None:
    """An auditor's base install has no server extras: ``verify`` must not import them, even lazily."""
    bundle, demo = demo_bundle
    wrapper = (
        "import sys\n"
        "from cli import main\n"
        "try:\n"
        "    main(sys.argv[1:], prog_name='villageledger')\n"
        "except SystemExit as exit_:\n"
        "    code = exit_.code\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_ONLY!r})\n"
        "print('LOADED ' + ' '.join(loaded), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper, "verify", str(bundle), "--log-key", demo.log_key, "--quiet"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: village demo: {demo.size} entries verified")
    assert result.stderr.strip().splitlines()[-1] == "LOADED", result.stderr


def test_keygen_writes_an_encrypted_key_file_readable_only_by_its_owner(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "member.key"
    public = ok(run(runner, "keygen", str(path), "--passphrase", "correct horse battery")).strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert b64encode(keys.load_private_key(path, b"correct horse battery").public_bytes) == public
    again = run(runner, "keygen", str(path), "--passphrase", "x")
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert b64encode(keys.load_private_key(path, b"correct horse battery").public_bytes) == public


def test_the_bundle_is_json_lines_with_a_header_and_an_end(demo_bundle: tuple[Path, Demo]) -> None:
    bundle, demo = demo_bundle
    records = [json.loads(line) for line in bundle.read_bytes().splitlines()]
    assert records[0]["bundle"] == "villageledger-bundle/v1" and records[0]["log_keys"] == [demo.log_key]
    assert records[-1] == {"end": {"size": demo.size}}


def test_desk_key_replace_makes_a_new_key_while_the_old_one_keeps_the_desk_open(runner: CliRunner, instance: Path) -> None:
    make_demo(runner)
    current = ok(run(runner, "desk-key", "demo")).strip()
    replacement = ok(run(runner, "desk-key", "demo", "--replace")).strip()
    assert replacement != current and len(current) == len(replacement) == 44
    assert ok(run(runner, "desk-key", "demo")).strip() == replacement, "the key the township is to register"
