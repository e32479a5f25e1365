"""Restore: an exported village loads into an empty database of the other backend with the same entries,
checkpoints, root and balances, and keeps working (new appends are signed by the new log key)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kit import LOG_KEY_PASSPHRASE, StoredVillage
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

import keys
from ledger.errors import EntryError, VerificationError
from ledger.note import open_checkpoint
from storage import Store, make_engine

OTHER = {"sqlite": "postgresql", "postgresql": "sqlite"}


@pytest.fixture
def other_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A Store on a fresh, migrated, empty database of the OTHER backend than the test's."""
    if OTHER[backend] == "sqlite":
        path = tmp_path / "restored.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
        yield Store(engine, log_key_passphrase=LOG_KEY_PASSPHRASE)
        engine.dispose()
        return
    admin: Engine = request.getfixturevalue("postgres_admin")
    template: str = request.getfixturevalue("postgres_template")
    name = f"r_{uuid.uuid4().hex}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = make_url(request.getfixturevalue("postgres_url")).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    yield Store(engine, log_key_passphrase=LOG_KEY_PASSPHRASE)
    engine.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def exported(village: StoredVillage, tmp_path: Path) -> Callable[[], Path]:
    def write() -> Path:
        path = tmp_path / "village.vlbundle"
        path.write_bytes(b"".join(village.store.export(village.slug)))
        return path

    return write


def test_a_village_restored_into_the_other_backend_has_the_same_root_checkpoints_and_balances(
    village: StoredVillage, other_store: Store, exported: Callable[[], Path]
) -> None:
    village.append(*village.kit.activity(2))
    bundle = exported()
    report = other_store.restore(bundle, village.trusted(), workers=0)
    assert report.size == village.size()
    assert other_store.latest_checkpoint(village.slug) == village.store.latest_checkpoint(village.slug)
    assert other_store.check(village.slug).root == village.store.check(village.slug).root
    assert other_store.derived_dump(village.slug)["balances"] == village.store.derived_dump(village.slug)["balances"]
    restored = b"".join(other_store.export(village.slug))
    original = bundle.read_bytes()
    assert _without_header(restored) == _without_header(original)


def _without_header(bundle: bytes) -> list[bytes]:
    return bundle.splitlines()[1:]


def test_a_restored_village_appends_under_a_new_log_key_and_old_checkpoints_still_verify(
    village: StoredVillage, other_store: Store, exported: Callable[[], Path]
) -> None:
    other_store.restore(exported(), village.trusted(), workers=0)
    (appended,) = other_store.append(village.slug, [village.kit.award("h2", 3)])
    listed = other_store.verifier_keys(village.slug)
    assert listed[0] == village.store.verifier_keys(village.slug)[0] and len(listed) == 2
    new_key = [keys.parse_verifier_key(listed[-1])]
    assert open_checkpoint(appended.checkpoint, new_key).size == village.size() + 1
    assert other_store.check(village.slug).size == village.size() + 1


def test_restore_with_the_backed_up_log_key_keeps_signing_with_it(
    village: StoredVillage, other_store: Store, exported: Callable[[], Path]
) -> None:
    log_key = keys.SigningKey.generate()
    other_store.restore(exported(), village.trusted(), log_key=log_key, workers=0)
    (appended,) = other_store.append(village.slug, [village.kit.award("h2", 3)])
    open_checkpoint(appended.checkpoint, [keys.NoteVerifier.from_public_key(village.kit.origin, log_key.public_bytes)])


def test_restore_loads_nothing_from_a_bundle_that_does_not_verify(
    village: StoredVillage, other_store: Store, exported: Callable[[], Path]
) -> None:
    bundle = exported()
    impostor = keys.NoteVerifier.from_public_key(village.kit.origin, keys.SigningKey.generate().public_bytes)
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        other_store.restore(bundle, [impostor], workers=0)
    assert other_store.villages() == []


def test_restore_refuses_a_village_that_already_exists(village: StoredVillage, exported: Callable[[], Path]) -> None:
    with pytest.raises(EntryError, match="village 'testvillage' already exists"):
        village.store.restore(exported(), village.trusted(), workers=0)


def test_the_restore_command_loads_a_bundle_into_the_configured_database(
    village: StoredVillage, other_store: Store, exported: Callable[[], Path], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from cli import main

    monkeypatch.setenv("VILLAGELEDGER_DATABASE_URL", other_store.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("VILLAGELEDGER_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("VILLAGELEDGER_LOG_KEY_PASSPHRASE", LOG_KEY_PASSPHRASE.decode())
    log_key = village.store.verifier_keys(village.slug)[0]
    result = CliRunner().invoke(main, ["restore", str(exported()), "--log-key", log_key])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"restored: village testvillage: {village.size()} entries verified")
    assert other_store.size(village.slug) == village.size()
