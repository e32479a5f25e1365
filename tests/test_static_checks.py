"""The tree stays clean under its static checks: ``mypy`` (configured in pyproject.toml: strict, every package
but tests/) and ``ruff check .``. CI runs the whole suite, so CI runs both."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from ci import missing_tool

ROOT = Path(__file__).resolve().parent.parent


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m <module> <args>`` from the project root, with this interpreter (the test extra's tools)."""
    if importlib.util.find_spec(module) is None:
        missing_tool("static checks", f"{module} is not installed (pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.mark.slow  # about a minute without mypy's cache (seconds with it)
def test_mypy_is_clean() -> None:
    result = run_tool("mypy")
    assert result.returncode == 0, f"mypy exited {result.returncode}:\n{result.stdout}{result.stderr}"


def test_ruff_is_clean() -> None:
    result = run_tool("ruff", "check", ".")
    assert result.returncode == 0, f"ruff check . exited {result.returncode}:\n{result.stdout}{result.stderr}"


# Imports run one way: keys < ledger < storage < api.extensions < (api.views | web) < api.app. A module
# loaded in a fresh interpreter brings in none of the packages above it.
LAYERS = [
    ("keys", ("ledger", "storage", "api", "web", "flask", "sqlalchemy")),
    ("ledger", ("storage", "api", "web", "flask", "sqlalchemy")),
    ("storage", ("api", "web", "flask")),
    ("api.extensions", ("api.views", "api.app", "web")),
    ("api.views", ("web", "api.app")),
    ("web.views", ("api.views", "api.app")),
    ("web.complaints", ("api.views", "api.app")),
    ("web.console", ("api.views", "api.app")),
]


@pytest.mark.parametrize(("module", "above"), LAYERS, ids=[module for module, _ in LAYERS])
def test_a_layer_imports_nothing_above_it(module: str, above: tuple[str, ...]) -> None:
    probe = (f"import sys, {module}\n"
             f"print(' '.join(name for name in sys.modules if any(name == a or name.startswith(a + '.') for a in {above!r})))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=True)
    assert result.stdout.split() == [], f"importing {module} loads modules above it: {result.stdout.split()}"
