"""``gunicorn.conf.py``, the settings the README deploys with (and the benchmarks and reliability tests
run under)."""

from __future__ import annotations

import gc
import logging
import runpy
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from kit import StoredVillage
from statements import recorded_statements, tree_node_reads

from api.app import create_app

SETTINGS = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"


@pytest.fixture
def settings() -> Iterator[dict[str, Any]]:
    """The settings module's names; objects it froze are handed back to the collector afterwards."""
    yield runpy.run_path(str(SETTINGS))
    gc.unfreeze()


def worker_of(app: Flask) -> SimpleNamespace:
    """What ``post_worker_init`` uses of a gunicorn worker: its app and its log."""
    return SimpleNamespace(wsgi=app, log=logging.getLogger("gunicorn.error"))


def test_a_worker_warms_its_node_cache_then_takes_what_lives_out_of_full_collections(
    settings: dict[str, Any], app: Flask, village: StoredVillage
) -> None:
    settings["post_worker_init"](worker_of(app))

    assert gc.get_freeze_count() > 10 * len(gc.get_objects())
    store = app.extensions["villageledger.store"]
    size = village.size()
    with recorded_statements(store.engine) as statements:
        store.inclusion_proofs(village.slug, range(size), size)
    assert not tree_node_reads(statements)


def test_a_worker_whose_database_is_down_at_boot_serves_anyway(
    settings: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'village.sqlite3'}",
                      "SECRET_KEY": "test-secret", "LOG_KEY_PASSPHRASE": "test-passphrase"})
    settings["post_worker_init"](worker_of(app))

    assert "the node cache was not warmed" in caplog.text
    assert gc.get_freeze_count() > 10 * len(gc.get_objects())


def test_a_worker_without_a_node_cache_reads_nothing_before_serving(
    settings: dict[str, Any], database_url: str, village: StoredVillage
) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret",
                      "LOG_KEY_PASSPHRASE": "test-passphrase", "NODE_CACHE_MB": 0})
    with recorded_statements(app.extensions["villageledger.store"].engine) as statements:
        settings["post_worker_init"](worker_of(app))
    assert statements == []


@pytest.mark.parametrize("megabytes", [-1, "64", 1.5, None])
def test_a_node_cache_size_that_is_not_a_whole_number_of_megabytes_is_refused_when_the_app_is_made(
    megabytes: object,
) -> None:
    with pytest.raises(ValueError, match=f"NODE_CACHE_MB must be a whole number of at least 0, not {megabytes!r}"):
        create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "NODE_CACHE_MB": megabytes})
