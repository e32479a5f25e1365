"""Whether the tests run under CI, where a missing tool (PostgreSQL, Go, Chromium...) fails instead of skipping."""

from __future__ import annotations

import os


def running_under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
