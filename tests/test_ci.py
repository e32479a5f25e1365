"""A missing tool skips a test on a developer's machine, and fails it under CI, so green CI means it ran."""

from __future__ import annotations

import pytest
from ci import missing_tool


def test_a_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no chromium"):
        missing_tool("browser tests", "no chromium")


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests: no chromium"):
        missing_tool("browser tests", "no chromium")
