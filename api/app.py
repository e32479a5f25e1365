"""The app factory: the villageledger service is this one Flask app, with the JSON API (``api.views``) and
the pages (``web``) as its parts, and the helpers they share (the store, the clock, the limits) in
``api.extensions``. ``flask --app api.app run`` for development; in production ``gunicorn 'api.app:create_app()'``.

Configuration (``api.settings``), later sources winning: defaults; ``config.py`` in the instance folder; environment
variables prefixed ``VILLAGELEDGER_`` (``VILLAGELEDGER_DATABASE_URL``, ``VILLAGELEDGER_SECRET_KEY``,
``VILLAGELEDGER_LOG_KEY_PASSPHRASE``...); the ``config`` mapping given to ``create_app``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

import web
from storage.db import database_url, instance_secret
from storage.nodes import NODE_CACHE_BYTES
from storage.store import CLOCK_SKEW

from . import admission, extensions, guards, problems, views
from .settings import configured_app


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app factory: configuration, extensions, the two parts (JSON API and pages) and the guards and error
    handlers around both; nothing else (no migrations, no network)."""
    app = configured_app(__name__, {
        "API_TITLE": "villageledger",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": views.API_PREFIX,
        "OPENAPI_JSON_PATH": "openapi.json",
        "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
        "JSON_SORT_KEYS": False,
        "READ_CONCURRENCY": 2,  # reads running at once in a process: see api.admission
        "NODE_CACHE_MB": NODE_CACHE_BYTES >> 20,  # tree node hashes kept per process: see storage.nodes (0: none)
        "CLOCK_SKEW_SECONDS": int(CLOCK_SKEW.total_seconds()),  # how far an entry's time may be from the server's clock
        "RATELIMIT_STORAGE_URI": "memory://",
        "WITNESSES": "",  # the township's witnesses: pairs of submission URL and cosigner key (storage.cosigning)  # the limits' shared store: redis://127.0.0.1:6379 with several workers
        "API_SPEC_OPTIONS": {
            "info": {"description": "A signed, append-only, verifiable ledger of village points and public affairs."},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        },
    }, {
        "DATABASE_URL": database_url,
        "SECRET_KEY": lambda: instance_secret("secret-key"),
        "LOG_KEY_PASSPHRASE": lambda: instance_secret("log-key-passphrase"),
    }, config)

    extensions.init_store(app)
    extensions.init_witnesses(app)
    extensions.limiter.init_app(app)
    views.init_app(app)
    web.init_app(app)
    guards.init_app(app)
    problems.init_app(app)
    admission.init_app(app)
    return app
