"""Refuse, before any view runs, what no valid request contains: control characters (NUL above all) in
the path or the query string. No identifier, filter or cursor of this API may hold one, and PostgreSQL
cannot even compare text containing NUL."""

from __future__ import annotations

import re

from flask import Flask, request

from .problems import Problem

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def refuse_control_characters() -> None:
    if CONTROL.search(request.path):
        raise Problem(404, "not-found", "Not Found", "the path contains a control character")
    for name, value in request.args.items(multi=True):
        if CONTROL.search(name) or CONTROL.search(value):
            raise Problem(400, "invalid-request", "The request is not valid", f"{name}: contains a control character",
                          errors=[{"field": name, "problem": "contains a control character"}])


def init_app(app: Flask) -> None:
    app.before_request(refuse_control_characters)
