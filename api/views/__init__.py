"""The JSON API under ``/api/v1``: one blueprint per area, each declaring its schemas next to its views, all
documented in one OpenAPI document (``/api/v1/openapi.json``, browsable at ``/api/v1/docs``)."""

from __future__ import annotations

from flask import Flask
from flask_swagger_ui import get_swaggerui_blueprint

from ..extensions import api
from . import auth, check, complaints, console, entries, households, log, plates, public, registry

API_PREFIX = "/api/v1"
BLUEPRINTS = (log.blp, entries.blp, households.blp, public.blp, auth.blp, check.blp, plates.blp, complaints.blp,
              console.blp, registry.blp)


def init_app(app: Flask) -> None:
    """Registers the JSON API's blueprints with flask-smorest, and the browsable documentation."""
    api.init_app(app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(get_swaggerui_blueprint(f"{API_PREFIX}/docs", f"{API_PREFIX}/openapi.json"),
                           url_prefix=f"{API_PREFIX}/docs")
