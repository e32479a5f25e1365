"""``gunicorn.conf.py``, the settings the README deploys with (and the benchmarks and reliability tests
run under)."""

from __future__ import annotations

import gc
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SETTINGS = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"


@pytest.fixture
def settings() -> Iterator[dict[str, Any]]:
    """The settings module's names; objects it froze are handed back to the collector afterwards."""
    yield runpy.run_path(str(SETTINGS))
    gc.unfreeze()


def test_a_worker_takes_what_lives_after_loading_the_app_out_of_full_collections(settings: dict[str, Any]) -> None:
    settings["post_worker_init"](None)

    assert gc.get_freeze_count() > 10 * len(gc.get_objects())
