"""Villages and their logs: checkpoints, verifier keys, leaves and proofs, with the exact paths an
independent client relies on. Anything fixed by a tree size is immutable and cached for a year."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Response, json, request

from ledger.canonical import b64encode
from ledger.errors import EncodingError
from ledger.tiles import Tile, parse_tile_path
from storage import NotFound, reads

from ..extensions import Blueprint, store
from ..schemas.common import BINARY
from ..schemas.log import ConsistencyQuery, InclusionQuery, ProofSchema, VillageList, VillageSchema

blp = Blueprint("log", __name__, url_prefix="/api/v1/villages", description="Villages, checkpoints, leaves and proofs")

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_LIVED = "public, max-age=5"
TEXT = "text/plain; charset=utf-8"


def cached(response: Response, cache_control: str) -> Response:
    """Strong ETag from the body, so a client revalidating gets 304 Not Modified."""
    response.headers["Cache-Control"] = cache_control
    response.add_etag()
    return response.make_conditional(request)  # type: ignore[return-value]  # werkzeug types it as its own Response; it returns self


def _village(slug: str) -> dict[str, Any]:
    village, state = reads.village_state(store(), slug)
    return {
        "slug": village.slug, "name": state.name, "name_en": state.name_en, "township": state.township,
        "county": state.county, "origin": village.origin, "size": state.size,
        "log_keys": store().verifier_keys(slug), "green_card_threshold": state.green_card_threshold,
    }


@blp.route("")
@blp.response(200, VillageList)
def list_villages() -> dict[str, Any]:
    """The villages this server hosts."""
    return {"villages": [_village(v.slug) for v in store().villages()]}


@blp.route("/<village>")
@blp.response(200, VillageSchema)
def get_village(village: str) -> dict[str, Any]:
    """One village: its names, log origin, size and verifier keys."""
    return _village(village)


@blp.route("/<village>/log/checkpoint")
@blp.response(200, {"type": "string"}, content_type=TEXT, description="The latest C2SP signed checkpoint")
def checkpoint(village: str) -> Response:
    """The latest checkpoint (C2SP tlog-checkpoint, signed as a C2SP signed-note)."""
    return checkpoint_response(store().latest_checkpoint(village))


def checkpoint_response(note: str) -> Response:
    """A log's latest checkpoint: it changes with every append, so it is cached for seconds only."""
    return cached(Response(note, mimetype="text/plain"), SHORT_LIVED)


@blp.route("/<village>/log/key")
@blp.response(200, {"type": "string"}, content_type=TEXT, description="The note verifier key (name+hash+key)")
def log_key(village: str) -> Response:
    """The log's current note verifier key. Earlier keys (after a rotation) are listed on the village."""
    return cached(Response(store().verifier_keys(village)[-1] + "\n", mimetype="text/plain"), SHORT_LIVED)


@blp.route("/<village>/log/leaves/<int(max=2147483646):index>")
@blp.response(200, BINARY, content_type="application/octet-stream",
              description="The exact leaf bytes: the entry's RFC 8785 canonical JSON")
def leaf(village: str, index: int) -> Response:
    """The leaf at ``index``; its RFC 9162 leaf hash is SHA-256(0x00 || bytes)."""
    return cached(Response(store().leaf(village, index), mimetype="application/octet-stream"), IMMUTABLE)


@blp.route("/<village>/log/proof/inclusion")
@blp.arguments(InclusionQuery, location="query")
@blp.response(200, ProofSchema)
def inclusion(query: dict[str, int], village: str) -> Response:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``tree_size`` leaves."""
    hashes = store().inclusion_proof(village, query["index"], query["tree_size"])
    return _proof(hashes)


@blp.route("/<village>/log/proof/consistency")
@blp.arguments(ConsistencyQuery, location="query")
@blp.response(200, ProofSchema)
def consistency(query: dict[str, int], village: str) -> Response:
    """RFC 9162 consistency proof from the tree of ``first`` leaves to the tree of ``second``."""
    hashes = store().consistency_proof(village, query["first"], query["second"])
    return _proof(hashes)


def _proof(hashes: list[bytes]) -> Response:
    response = Response(json.dumps({"hashes": [b64encode(h) for h in hashes]}), mimetype="application/json")
    return cached(response, IMMUTABLE)


@blp.route("/<village>/log/proof/<int(max=2147483646):index>")
@blp.response(200, {"type": "string"}, content_type=TEXT,
              description="C2SP tlog-proof@v1: index, inclusion proof and signed checkpoint, checkable offline")
def offline_proof(village: str, index: int) -> Response:
    """An offline receipt for entry ``index`` against the latest checkpoint (keep it; check it anywhere)."""
    return cached(Response(store().tlog_proof(village, index), mimetype="text/plain"), SHORT_LIVED)


@blp.route("/<village>/log/tile/<path:path>")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/octet-stream",
              description="A C2SP tlog-tiles resource: a hash tile or an entry bundle, immutable")
def tile(village: str, path: str) -> Response:
    """The log in the C2SP tlog-tiles layout under ``log/``: ``log/checkpoint``, hash tiles
    ``log/tile/<L>/<N>[.p/<W>]`` and entry bundles ``log/tile/entries/<N>[.p/<W>]``. A tile is served once the
    latest checkpoint's tree holds it whole, and never changes: any static server or mirror can serve it."""
    return tile_response(functools.partial(store().tile, village), path)


def tile_response(read: Callable[[Tile], bytes], path: str) -> Response:
    """The tile ``tile/<path>`` as ``read`` gives it, cached for good. Any spelling that is not a canonical
    tile path is not found: one resource, one URL."""
    try:
        wanted = parse_tile_path(f"tile/{path}")
    except EncodingError as exc:
        raise NotFound(str(exc)) from exc
    return cached(Response(read(wanted), mimetype="application/octet-stream"), IMMUTABLE)
