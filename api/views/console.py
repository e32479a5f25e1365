"""The committee console's server side: everything the browser console needs besides signing. Entries are
signed in the browser and posted to ``.../entries`` (a redemption to ``.../supermarket/redeem``, which
lowers the stock in the same transaction); this serves the village's members and grids, finds households
by name or number, keeps attachments, runs the points supermarket and previews imports of old ledgers
(see ``storage.console``); an import's sheet is read here (``api.sheets``) and its rows handed to storage."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, request

from ledger.formats import ID
from ledger.kinds import KINDS, SIGNING_ROLES
from storage import attachments, console, imports, search, supermarket

from .. import sheets
from ..auth import Caller, require_caller
from ..extensions import Blueprint, store
from ..problems import Problem
from ..schemas.common import BINARY
from ..schemas.console import (
    AttachmentSchema,
    AttachmentUpload,
    GoodList,
    GoodSchema,
    GridList,
    HouseholdMatches,
    HouseholdSearchQuery,
    ImportPreviewSchema,
    ImportUpload,
    MemberList,
    PutGood,
    RedeemRequest,
    RedeemResult,
    RedemptionReport,
    RedemptionsQuery,
)

blp = Blueprint("console_api", __name__, url_prefix="/api/v1/villages",
                       description="The committee console: members, household search, attachments, points supermarket, imports")

View = TypeVar("View", bound=Callable[..., Any])
SHA256 = re.compile(r"[0-9a-f]{64}")
ITEM = re.compile(ID)
RESERVED_ITEMS = ("redeem", "redemptions")  # paths of their own under .../supermarket/
SEE_ALL_HOUSEHOLDS = frozenset({"committee", "supervisor", "township"})
MULTIPART_SLACK = 1024 * 1024  # form boundaries and headers around the file


def _forbidden(detail: str) -> Problem:
    return Problem(403, "forbidden", "Forbidden", detail)


def _member_with(village: str, roles: frozenset[str], detail: str) -> Caller:
    caller = require_caller(village)
    if not caller.roles & roles:
        raise _forbidden(detail)
    return caller


def _accepting(max_bytes: int) -> Callable[[View], View]:
    """Let the view's request body be up to ``max_bytes``, above the app's MAX_CONTENT_LENGTH. Goes
    between ``blp.route`` and ``blp.arguments``: the limit must be set before the form is parsed."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            request.max_content_length = max_bytes
            return view(*args, **kwargs)

        return limited  # type: ignore[return-value]

    return decorate


# --- members and grids ---------------------------------------------------------------------------------


@blp.route("/<village>/members")
@blp.response(200, MemberList)
def list_members(village: str) -> dict[str, Any]:
    """Every member, their roles, grid and keys (added and revoked, as log indexes): cadres are public."""
    return {"items": [vars(member) | {"keys": [vars(key) for key in member.keys]}
                      for member in console.members(store(), village)]}


@blp.route("/<village>/grids")
@blp.response(200, GridList)
def list_grids(village: str) -> dict[str, Any]:
    """The village's grids (网格)."""
    return {"items": [{"grid": g.grid_id, "name": g.name, "name_en": g.name_en} for g in console.grids(store(), village)]}


# --- household search ------------------------------------------------------------------------------------


@blp.route("/<village>/households/search")
@blp.arguments(HouseholdSearchQuery, location="query")
@blp.response(200, HouseholdMatches)
@blp.doc(security=[{"bearer": []}])
def search_households(query: dict[str, Any], village: str) -> dict[str, Any]:
    """Find households by part of their number or public label, and by the head of household's name for
    those the personal-data policy lets read it (``Caller.may_read_personal_data``): the committee,
    supervisors and township see every household, a grid worker their own grid's; names only the
    committee and the grid worker of the grid."""
    caller = _member_with(village, SEE_ALL_HOUSEHOLDS | {"grid_worker"},
                          "household search is for the committee, supervisors, the township and grid workers")
    grid = query.get("grid")
    if not caller.roles & SEE_ALL_HOUSEHOLDS:
        if grid is not None and grid != caller.grid:
            raise Problem(403, "forbidden", "Forbidden", f"a grid worker searches only their own grid ({caller.grid})",
                          errors=[{"field": "grid", "problem": f"is not your grid ({caller.grid})"}])
        grid = caller.grid
    found = search.search_households(store(), village, q=query["q"], grid=grid, limit=query["limit"],
                                     with_names=caller.may_read_personal_data(grid))
    return {"items": [vars(match) for match in found]}


# --- attachments ---------------------------------------------------------------------------------------


@blp.route("/<village>/attachments", methods=["POST"])
@_accepting(attachments.MAX_PDF_BYTES + MULTIPART_SLACK)
@blp.arguments(AttachmentUpload, location="files")
@blp.response(201, AttachmentSchema)
@blp.doc(security=[{"bearer": []}])
def upload_attachment(files: dict[str, Any], village: str) -> dict[str, Any]:
    """Keep a file for entries to name by its SHA-256 (evidence, an affair's receipts): a photo is
    re-encoded from its pixels (no EXIF, no GPS), a PDF kept as uploaded. Uploading it again is harmless."""
    _member_with(village, SIGNING_ROLES, "attachments are uploaded by members who sign entries")
    upload = files["file"]
    raw = upload.read(attachments.MAX_PDF_BYTES + 1)
    return vars(attachments.store_attachment(store(), village, raw, filename=upload.filename or ""))


@blp.route("/<village>/attachments/<sha256>")
@blp.response(200, BINARY, content_type="image/jpeg")
@blp.doc(responses={"200": {"description": "The file: a cleaned photo or a PDF",
                            "content": {media_type: {"schema": BINARY} for media_type in attachments.MEDIA_TYPES}}})
def get_attachment(village: str, sha256: str) -> Response:
    """An attachment by its SHA-256 (public: the entries that name it are public)."""
    if not SHA256.fullmatch(sha256):
        raise Problem(404, "not-found", "Not Found", "an attachment is named by its SHA-256 in lowercase hex")
    media_type, data = attachments.attachment(store(), village, sha256)
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"}
    if media_type == "application/pdf":
        headers["Content-Disposition"] = f'attachment; filename="{sha256}.pdf"'
    return Response(data, mimetype=media_type, headers=headers)


# --- the points supermarket ----------------------------------------------------------------------------


@blp.route("/<village>/supermarket")
@blp.response(200, GoodList)
def list_goods(village: str) -> dict[str, Any]:
    """The points supermarket's items, prices (morality points) and stock."""
    return {"items": [vars(good) for good in supermarket.goods(store(), village)]}


@blp.route("/<village>/supermarket/<item>", methods=["PUT"])
@blp.arguments(PutGood)
@blp.response(200, GoodSchema)
@blp.doc(security=[{"bearer": []}])
def put_good(body: dict[str, Any], village: str, item: str) -> dict[str, Any]:
    """Create or change an item (the committee)."""
    _member_with(village, frozenset({"committee"}), "the supermarket's items are set by the village committee")
    if not ITEM.match(item) or item in RESERVED_ITEMS:
        detail = "must be an id of lowercase letters, digits, '-' or '_' (at most 64), not redeem or redemptions"
        raise Problem(422, "invalid-request", "The request is not valid", f"item: {detail}",
                      errors=[{"field": "item", "problem": detail}])
    return vars(supermarket.put_good(store(), village, item, name=body["name"], price=body["price"],
                                     stock=body["stock"]))


@blp.route("/<village>/supermarket/redeem", methods=["POST"])
@blp.arguments(RedeemRequest)
@blp.response(201, RedeemResult)
@blp.doc(security=[{"bearer": []}])
def redeem(body: dict[str, Any], village: str) -> dict[str, Any]:
    """Redeem points for an item: the member's own signed ``points.redeem`` (item = the item's name,
    amount = price x quantity) is appended and the stock lowered in one transaction, or nothing happens.
    The ledger checks the household's balance and the grid worker's grid."""
    caller = _member_with(village, KINDS["points.redeem"].signers, "redemptions are posted by the committee and grid workers")
    done = supermarket.redeem(store(), village, member=caller.member, item=body["item"], signed=body["entry"])
    appended = done.appended
    proof = store().inclusion_proof(village, appended.index, appended.tree_size)
    return {"index": appended.index, "entry_id": appended.entry_id, "tree_size": appended.tree_size,
            "checkpoint": appended.checkpoint, "inclusion_proof": proof, "stock": done.stock}


@blp.route("/<village>/supermarket/redemptions")
@blp.arguments(RedemptionsQuery, location="query")
@blp.response(200, RedemptionReport)
def redemptions(query: dict[str, Any], village: str) -> dict[str, Any]:
    """The month's redemptions from the log (by the entries' time), and totals per item."""
    report = supermarket.redemptions(store(), village, query["month"])
    return {"items": [vars(item) for item in report.items], "totals": report.totals}


# --- importing old ledgers -----------------------------------------------------------------------------


@blp.route("/<village>/imports/preview", methods=["POST"])
@blp.arguments(ImportUpload, location="files")
@blp.response(200, ImportPreviewSchema)
@blp.doc(security=[{"bearer": []}])
def preview_import(form: dict[str, Any], village: str) -> dict[str, Any]:
    """Check an old ledger (CSV or XLSX, at most 1,000 rows and 5 MB) row by row as the ledger would check
    the entries the caller would sign for it; nothing is written. The browser signs one entry per valid
    row and posts them as one batch."""
    caller = _member_with(village, SIGNING_ROLES, "imports are for members who sign entries")
    if not caller.roles & KINDS[form["kind"]].signers:
        raise Problem(403, "forbidden", "Forbidden", f"your roles ({', '.join(sorted(caller.roles))}) may not sign {form['kind']}",
                      errors=[{"field": "kind", "problem": f"you may not sign {form['kind']}"}])
    table = sheets.read_table(form["file"].read(sheets.MAX_IMPORT_BYTES + 1))
    preview = imports.preview_import(store(), village, table, kind=form["kind"], member=caller.member,
                                     suggested=sheets.suggest_mapping(table.columns), mapping=form.get("mapping"))
    return {"columns": preview.columns, "mapping": preview.mapping, "rows": [vars(row) for row in preview.rows],
            "valid": preview.valid, "invalid": preview.invalid}
