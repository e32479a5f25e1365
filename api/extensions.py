"""The app's extensions: the OpenAPI-documenting API object and the ledger store, set up by ``init_app``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import flask_smorest
from apispec import BasePlugin
from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import CombinedMultiDict

from ledger.canonical import parse_json
from storage import Store, make_engine
from storage.cosigning import WitnessEndpoint, parse_witnesses

from .problems import PROBLEM_JSON
from .schemas.common import Base64Bytes, ProblemSchema


class StrictJsonParser(FlaskParser):
    """Request bodies are parsed like entries are: UTF-8, no duplicate members, no floats, no NaN.
    A body that fails raises ``ledger.errors.EncodingError`` (answered as a 400 problem)."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        return parse_json(data) if data else core.missing


class StrictParser(StrictJsonParser):
    """Also reads a multipart form's text fields along with its files, so that one schema (location
    ``files``) both loads and documents the whole form: flask-smorest documents a single request body."""

    def load_files(self, req: Any, schema: Any) -> Any:
        fields = CombinedMultiDict([req.form, req.files])
        return MultiDictProxy(fields, schema, known_multi_fields=tuple(self.KNOWN_MULTI_FIELDS))


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


class ProblemResponses(BasePlugin):
    """An apispec plugin (passed through flask-smorest's ``spec_kwargs``): the API's reusable responses, which
    are its error responses, are documented as ``application/problem+json``, which is what is sent."""

    def response_helper(self, response: dict[str, Any], **kwargs: Any) -> dict[str, Any] | None:
        content = response.get("content")  # one media type, flask-smorest's default, or none (a 204)
        return {"content": {PROBLEM_JSON: next(iter(content.values()))}} if content else None


class Api(flask_smorest.Api):
    """flask-smorest, documenting every error as an RFC 9457 problem. The errors are answered by
    ``problems.init_app``, whose handler for HTTPException, registered after flask-smorest's, replaces it."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = "DEFAULT_ERROR"


api = Api(spec_kwargs={"extra_plugins": [ProblemResponses()]})
api.register_field(Base64Bytes, "string", "byte")  # documented once init_app builds the spec
# Per-client limits on filing and tracking complaints, in the store RATELIMIT_STORAGE_URI names: memory://
# (one process: the development server) or a Redis/Valkey every worker shares (redis://...: the deploy).
# Client addresses live only there, never in the database: anonymous complaints store no address.
limiter = Limiter(key_func=get_remote_address, strategy="fixed-window")
# One limit per client for each, across every worker (the store above) and across the API and the pages.
filing_limit = limiter.shared_limit("5 per minute;30 per day", scope="complaint-filing")
tracking_limit = limiter.shared_limit("30 per minute", scope="complaint-tracking")


def init_store(app: Flask) -> None:
    """The app's Store. Raises ValueError naming the setting if NODE_CACHE_MB or CLOCK_SKEW_SECONDS is not a
    whole number >= 0 (>= 1 for the skew)."""
    for name, least in (("NODE_CACHE_MB", 0), ("CLOCK_SKEW_SECONDS", 1)):
        value = app.config[name]
        if type(value) is not int or value < least:
            raise ValueError(f"{name} must be a whole number of at least {least}, not {value!r}")
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["villageledger.store"] = Store(
        engine, log_key_passphrase=app.config["LOG_KEY_PASSPHRASE"].encode(),
        node_cache_bytes=app.config["NODE_CACHE_MB"] << 20,
        clock=lambda: app.config["CLOCK"]() if app.config.get("CLOCK") else datetime.now(UTC),
        clock_skew=timedelta(seconds=app.config["CLOCK_SKEW_SECONDS"]),
    )


def init_witnesses(app: Flask) -> None:
    """The township witnesses of ``WITNESSES``. Raises ValueError naming the pair that is not one."""
    app.extensions["villageledger.witnesses"] = parse_witnesses(app.config["WITNESSES"])


def witnesses() -> list[WitnessEndpoint]:
    """The township witnesses this server asks to cosign, whose keys its door plates pin."""
    return current_app.extensions["villageledger.witnesses"]  # type: ignore[no-any-return]


def now() -> datetime:
    """The server's clock: ``CLOCK`` in the config (a callable; tests control time with it) or UTC now.
    The store reads the same clock to refuse entries not dated now."""
    return store().clock()


def store() -> Store:
    return current_app.extensions["villageledger.store"]  # type: ignore[no-any-return]
