"""RFC 9457 problem details: every error response of the API, in one format.

A problem names what went wrong and, where a field is to blame, which one (``errors[].field`` uses the
dotted path of the request body or the query parameter name). Batches add ``position``, the index of
the offending entry in the batch. Nothing a client sends can produce a 500: unexpected database
failures become 503 (retry later), and nothing is written partially. The document's schema, which the
OpenAPI document gives every error response, is ``api.schemas.common.ProblemSchema``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from ledger.errors import EncodingError, EntryError, LedgerError, ProofError
from storage import NotFound, StorageError, complaints, console

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "tag:villageledger.org,2026:problem/"

logger = logging.getLogger(__name__)

# EntryError.code -> (status, title)
ENTRY_STATUS: dict[str, tuple[int, str]] = {
    "malformed": (422, "The entry does not match its schema"),
    "signature": (403, "A signature does not verify"),
    "unauthorised": (403, "The signing key may not append this entry"),
    "rule": (422, "The entry breaks a points rule or an accounting rule"),
    "replay": (409, "The entry id is already in the log"),
    "refused": (422, "The entry was refused"),
}


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(self, status: int, code: str, title: str, detail: str | None = None, *,
                 errors: list[dict[str, str]] | None = None, position: int | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail or title)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.errors, self.position, self.headers = errors, position, dict(headers or {})

    def response(self) -> Response:
        body: dict[str, Any] = {
            "type": TYPE_PREFIX + self.code,
            "title": self.title,
            "status": self.status,
            "instance": request.path,
        }
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = self.errors
        if self.position is not None:
            body["position"] = self.position
        response = Response(json.dumps(body, ensure_ascii=False), status=self.status, mimetype=PROBLEM_JSON)
        response.headers.update(self.headers)
        return response


def _flatten(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    if isinstance(messages, Mapping):
        out: list[dict[str, str]] = []
        for key, value in messages.items():
            name = "" if key in ("_schema", "json", "query", "view_args", "headers", "form", "files") else str(key)
            out.extend(_flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name))
        return out
    if isinstance(messages, list) and all(isinstance(item, str) for item in messages):
        return [{"field": prefix or "body", "problem": item} for item in messages]
    if isinstance(messages, list):
        return [problem for item in messages for problem in _flatten(item, prefix)]
    return [{"field": prefix or "body", "problem": str(messages)}]


def from_http_exception(error: HTTPException) -> Problem:
    status = error.code or 500
    title = error.name
    messages = getattr(error, "data", {}).get("messages") if isinstance(getattr(error, "data", None), dict) else None
    if messages:
        errors = _flatten(messages)
        detail: str | None = "; ".join(f"{e['field']}: {e['problem']}" for e in errors)
        return Problem(status, "invalid-request", "The request is not valid", detail, errors=errors)
    code = title.lower().replace(" ", "-")
    detail = error.description if status != 404 or request.path.startswith("/api/") else None
    allow = error.get_response().headers.get("Allow") if status == 405 else None
    return Problem(status, code, title, detail, headers={"Allow": allow} if allow else None)


def from_ledger_error(error: LedgerError) -> Problem:
    if isinstance(error, EntryError):
        status, title = ENTRY_STATUS.get(error.code, ENTRY_STATUS["refused"])
        field = error.field or "entry"
        problems = getattr(error, "problems", None) or {field: [str(error)]}
        errors = [{"field": name, "problem": reason} for name, reasons in problems.items() for reason in reasons]
        return Problem(status, error.code, title, str(error), errors=errors, position=error.position)
    if isinstance(error, complaints.BadPlate):
        return Problem(422, "bad-plate", "Unknown door plate", str(error), errors=[{"field": "plate", "problem": str(error)}])
    if isinstance(error, (complaints.ComplaintError, console.ConsoleError)):
        return Problem(422, "refused", "The request was refused", str(error),
                       errors=[{"field": error.field, "problem": str(error)}])
    if isinstance(error, complaints.NotYours):
        return Problem(403, "forbidden", "Forbidden", str(error))
    if isinstance(error, complaints.DeskNotReady):
        return Problem(503, "desk-not-ready", "The complaint desk is not set up", str(error))
    if isinstance(error, NotFound):
        return Problem(404, "not-found", "Not Found", str(error))
    if isinstance(error, EncodingError):
        return Problem(400, "malformed-json", "The request body is not valid JSON", str(error))
    if isinstance(error, (StorageError, ProofError)):
        return Problem(400, "bad-range", "The requested range does not exist", str(error))
    return Problem(422, "refused", "The request was refused", str(error))


def _database_unavailable(error: Exception) -> Response:
    logger.warning("database unavailable: %s", error)
    # Not "nothing was written": a commit can reach the disk and still fail (a flush reporting EIO, a
    # connection lost before the answer). Re-posting the same signed entries is safe either way.
    detail = ("The database cannot be reached or is read-only. Retry later with the same signed entries: nothing "
              "is written in part, and an entry this request did write is answered with its first result.")
    return Problem(503, "unavailable", "The ledger is temporarily unavailable", detail,
                   headers={"Retry-After": "5"}).response()


def init_app(app: Flask) -> None:
    app.register_error_handler(Problem, lambda error: error.response())
    app.register_error_handler(HTTPException, lambda error: from_http_exception(error).response())
    app.register_error_handler(LedgerError, lambda error: from_ledger_error(error).response())
    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_error_handler(InterfaceError, _database_unavailable)
