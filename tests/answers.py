"""What the tests expect of the API's answers."""

from __future__ import annotations

from typing import Any


def problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` (naming ``field`` among its errors, if given); its body."""
    assert response.status_code == status, response.data
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json
    assert body["status"] == status and body["type"].startswith("tag:villageledger.org,2026:problem/")
    if field is not None:
        assert field in {e["field"] for e in body.get("errors", [])}, body
    return body
