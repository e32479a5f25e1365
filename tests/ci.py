"""Whether the tests run under CI, where a missing tool (PostgreSQL, Go, Chromium...) fails instead of skipping."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def running_under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_tool(what: str, reason: str) -> NoReturn:
    """Skip a test that needs a tool this machine lacks; under CI, fail: CI must run ``what``."""
    if running_under_ci():
        pytest.fail(f"CI must run the {what}: {reason}")
    pytest.skip(reason)
