"""How every villageledger service reads its configuration, later sources winning: the service's defaults;
``config.py`` in the instance folder; environment variables prefixed ``VILLAGELEDGER_``; the ``config``
mapping given to its factory; then, for a setting still empty, a value computed when needed (the database
URL, a secret kept in the instance folder)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask

from storage.db import instance_path


def configured_app(import_name: str, defaults: Mapping[str, Any], computed: Mapping[str, Callable[[], Any]],
                   config: Mapping[str, Any] | None) -> Flask:
    """A Flask app named ``import_name`` with its configuration loaded, and nothing else."""
    app = Flask(import_name, instance_path=str(instance_path()), instance_relative_config=True)
    app.config.from_mapping(defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("VILLAGELEDGER")
    if config:
        app.config.update(config)
    for name, default in computed.items():
        if not app.config.get(name):
            app.config[name] = default()
    return app
