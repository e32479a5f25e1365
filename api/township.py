"""The township node: the township's witness of its villages' logs (C2SP tlog-witness), its own process over its
own database. ``gunicorn 'api.township:create_app()'``; set up with ``villageledger township init`` and
``villageledger township add-log``.

Configuration (``api.settings``): ``DATABASE_URL`` (its own database, SQLite or PostgreSQL, migrated by
``villageledger db upgrade``), ``WITNESS_NAME`` (the cosigner's key name, e.g. ``witness.qingfeng-town.gov.cn``),
``WITNESS_KEY_PASSPHRASE`` (the passphrase of ``witness.key`` in the instance folder).

Paths (the witness's submission and monitoring prefix is ``/witness``):
- ``POST /witness/add-checkpoint``: a log asks for a cosignature; 200 with the cosignature line, or the spec's
  400/403/404/409/422 (409 answers the size last cosigned, ``text/x.tlog.size``; the others an RFC 9457
  problem), 503 if the witness's clock went back;
- ``GET /witness/<sha256 of origin, hex>/checkpoint``: the latest checkpoint it cosigned of that log;
- ``GET /witness/logs``: every village log it witnesses, the size and time it cosigned last, and why it last
  refused one (the monitor's finding, naming the entry), in JSON;
- ``GET /witness/healthz``: ``ok``;
- ``GET /``: the township's page (``web.township``);
- ``GET /mirror/<village>/log/checkpoint`` and ``/mirror/<village>/log/tile/…``: the township's mirror of a
  village log it monitors, in the C2SP tlog-tiles layout, as the village serves it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, current_app, json, request

import web.township
from keys import load_private_key
from ledger.witness import WitnessRefusal
from storage import NotFound
from storage.db import database_url, make_engine
from storage.mirroring import Mirroring
from storage.witness import Witness, witness_key_passphrase, witness_key_path

from . import guards, problems
from .problems import Problem
from .settings import configured_app
from .views.log import checkpoint_response, tile_response

bp = Blueprint("witness", __name__, url_prefix="/witness")
mirror = Blueprint("mirror", __name__, url_prefix="/mirror")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The township node's app factory: configuration, the witness, its paths and the error handlers."""
    app = configured_app(__name__, {
        "MAX_CONTENT_LENGTH": 64 * 1024,  # a checkpoint note and 63 proof lines
    }, {
        "DATABASE_URL": database_url,
        "WITNESS_KEY_PASSPHRASE": witness_key_passphrase,
    }, config)
    if not app.config.get("WITNESS_NAME"):
        raise ValueError("WITNESS_NAME is not set: the name of the witness's key (villageledger township init)")
    key = load_private_key(witness_key_path(), app.config["WITNESS_KEY_PASSPHRASE"].encode())
    app.extensions["villageledger.witness"] = Witness(make_engine(app.config["DATABASE_URL"]),
                                                      name=app.config["WITNESS_NAME"], key=key)
    app.register_blueprint(bp)
    app.register_blueprint(mirror)
    web.township.init_app(app)
    guards.init_app(app)
    problems.init_app(app)
    app.register_error_handler(WitnessRefusal, _refused)
    return app


def witness() -> Witness:
    return current_app.extensions["villageledger.witness"]  # type: ignore[no-any-return]


@bp.post("/add-checkpoint")
def add_checkpoint() -> Response:
    """C2SP tlog-witness add-checkpoint: the cosignature line of the submitted checkpoint."""
    return Response(witness().add_checkpoint(request.get_data()), mimetype="text/plain")


@bp.get("/<string(length=64):hashed_origin>/checkpoint")
def latest_checkpoint(hashed_origin: str) -> Response:
    """The latest checkpoint this witness cosigned of the log, with the log's signatures and the cosignature."""
    response = Response(witness().checkpoint(hashed_origin), mimetype="text/plain")
    response.headers["Cache-Control"] = "public, max-age=5"
    return response


@mirror.get("/<village>/log/checkpoint")
def mirrored_checkpoint(village: str) -> Response:
    """The latest checkpoint of the township's mirror of the village (the village's own signed note)."""
    return checkpoint_response(_mirroring().proofs.latest_checkpoint(village))


@mirror.get("/<village>/log/tile/<path:path>")
def mirrored_tile(village: str, path: str) -> Response:
    """The mirror in the C2SP tlog-tiles layout, as the village serves it: the log outlives its server."""
    return tile_response(functools.partial(_mirroring().proofs.tile, village), path)


def _mirroring() -> Mirroring:
    mirroring = witness().mirroring
    if mirroring is None:
        raise NotFound("this township node keeps no mirrors")
    return mirroring


@bp.get("/logs")
def logs() -> Response:
    """Every village log the township witnesses, for its staff and the public: its size and time cosigned last
    (POSIX seconds, 0 if never), whether it is mirrored, and why the witness last refused it (``problem``, naming
    the entry; null while it keeps the rules)."""
    listed = [{"origin": row.origin, "village": row.village, "size": row.size, "cosigned_at": row.cosigned_at,
               "mirrored": bool(row.tiles_url), "problem": row.problem} for row in witness().logs()]
    return Response(json.dumps({"witness": witness().vkey, "logs": listed}), mimetype="application/json")


@bp.get("/healthz")
def healthz() -> Response:
    """``ok`` while the witness serves."""
    return Response("ok\n", mimetype="text/plain")


def _refused(refusal: WitnessRefusal) -> Response:
    if refusal.status == 409:
        return Response(f"{refusal.cosigned_size}\n", status=409, content_type="text/x.tlog.size")
    titles = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 422: "Unprocessable Content",
              503: "Service Unavailable"}
    return Problem(refusal.status, "witness-refused", titles[refusal.status], str(refusal)).response()
