"""Guards around every request.

Before any view runs, refuse what no valid request contains: control characters (NUL above all) in the
path or the query string. No identifier, filter or cursor of this API may hold one, and PostgreSQL cannot
even compare text containing NUL.

After every view, the browser's protections (``secure_headers``): a strict Content-Security-Policy on our
pages (scripts, styles, fonts and connections only from this origin; photos also from blob: URLs; never
framed), ``Referrer-Policy: no-referrer`` everywhere (a door plate's token is in its page's URL),
``nosniff``, and ``Cache-Control: no-store`` on every page and on the API routes that answer complaint
contents, personal data or login tokens. The interactive API docs (Swagger UI, which needs inline script)
keep their own policy-free page."""

from __future__ import annotations

import re

from flask import Flask, Response, request

from .problems import Problem

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def refuse_control_characters() -> None:
    if CONTROL.search(request.path):
        raise Problem(404, "not-found", "Not Found", "the path contains a control character")
    for name, value in request.args.items(multi=True):
        if CONTROL.search(name) or CONTROL.search(value):
            raise Problem(400, "invalid-request", "The request is not valid", f"{name}: contains a control character",
                          errors=[{"field": name, "problem": "contains a control character"}])


CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' blob: data:", "font-src 'self'",
    "connect-src 'self'", "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'",
])
PRIVATE_API = re.compile(r"^/api/v1/villages/[^/]+/(complaints|auth/|households/[^/]+/private|imports)")
DOCS = "/api/v1/docs"


def secure_headers(response: Response) -> Response:
    headers = response.headers
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    if request.path.startswith(DOCS):
        return response
    headers["X-Frame-Options"] = "DENY"
    page = response.mimetype == "text/html"
    if page:
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    if page or PRIVATE_API.match(request.path):
        headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.before_request(refuse_control_characters)
    app.after_request(secure_headers)
