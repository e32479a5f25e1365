"""The complaint channel: villagers file and follow with a tracking code alone; handlers, logged in with
their member key, see only the cases routed to them and sign each step themselves (see
``storage.complaints``). Filing and tracking are rate-limited per client, one limit across every worker
and route; the client's address is held by the limiter's store only (process memory, or a Redis/Valkey
run without persistence), never in the database."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Response

from ledger.canonical import b64decode
from ledger.entries import parse_entry
from ledger.errors import EncodingError, EntryError
from ledger.state import Case
from storage import complaints
from storage.images import ImageRejected, read_uploads

from ..auth import Caller, current_caller, require_caller
from ..extensions import Blueprint, filing_limit, now, store, tracking_limit
from ..problems import Problem
from ..schemas.common import BINARY
from ..schemas.complaints import (
    CaseList,
    CaseViewSchema,
    ComplaintFigures,
    ComplaintReceiptSchema,
    ComplaintSettings,
    DeskKeySchema,
    FileComplaint,
    HandlerStep,
    ProtectedDeductionList,
    StepResult,
    TrackingCode,
    VillagerAnswer,
    VillagerRating,
)

blp = Blueprint("complaints", __name__, url_prefix="/api/v1/villages", description="The complaint channel (家门口的监委)")

def case_item(case: Case) -> dict[str, Any]:
    return dataclasses.asdict(case)  # the response schema keeps the public fields


def view_item(found: complaints.CaseView) -> dict[str, Any]:
    return {"case": case_item(found.case), "content": dict(found.content), "salt": found.salt,
            "commitment": found.commitment, "receipt_index": found.receipt_index,
            "steps": [vars(step) for step in found.steps], "photos": found.photos}


def step_item(stepped: complaints.Stepped) -> dict[str, Any]:
    appended = stepped.appended
    return {"index": appended.index, "entry_id": appended.entry_id, "tree_size": appended.tree_size,
            "checkpoint": appended.checkpoint, "case": case_item(stepped.case)}


def file_from_request(village: str, form: dict[str, Any], caller: Caller | None) -> complaints.Filed:
    """``complaints.file_from_the_door`` for the API's form: a filing for a ``household`` needs a member token."""
    if form.get("household") and caller is None:
        raise Problem(401, "unauthorised", "Authentication required", "only a member may file for a household",
                      errors=[{"field": "household", "problem": "needs a member token (assisted filing)"}])
    try:
        return complaints.file_from_the_door(
            store(), village, category=form["category"], text=form["text"], photos=read_uploads(form.get("photos", [])),
            anonymous=form.get("anonymous", False), plate=form.get("plate"), household=form.get("household"),
            assisted_by=caller.member if caller and form.get("household") else None, appeal_of=form.get("appeal_of"),
            now=now(),
        )
    except ImageRejected as exc:
        raise Problem(422, exc.code, "Photo refused", str(exc), errors=[{"field": exc.field, "problem": str(exc)}]) from exc


@blp.route("/<village>/complaints", methods=["POST"])
@filing_limit
@blp.arguments(FileComplaint, location="files")
@blp.response(201, ComplaintReceiptSchema)
def file(form: dict[str, Any], village: str) -> dict[str, Any]:
    """File a complaint (multipart form). Answers the tracking code (shown once: keep it) and the
    receipt's inclusion proof; ``salt`` and ``content`` open the receipt's commitment."""
    filed = file_from_request(village, form, current_caller(village))
    found = complaints.track(store(), village, filed.tracking_code)
    proof = store().inclusion_proof(village, filed.appended.index, filed.appended.tree_size)
    return {"receipt": filed.receipt, "tracking_code": filed.tracking_code, "index": filed.appended.index,
            "tree_size": filed.appended.tree_size, "checkpoint": filed.appended.checkpoint,
            "inclusion_proof": proof, "salt": found.salt, "content": dict(found.content)}


@blp.route("/<village>/complaints/track", methods=["POST"])
@tracking_limit
@blp.arguments(TrackingCode)
@blp.response(200, CaseViewSchema)
def track(request: dict[str, str], village: str) -> dict[str, Any]:
    """The case behind a tracking code (POST, so the code never appears in a URL or a server log)."""
    complaints.sweep(store(), village, now())
    return view_item(complaints.track(store(), village, request["code"]))


@blp.route("/<village>/complaints/answer", methods=["POST"])
@tracking_limit
@blp.arguments(VillagerAnswer)
@blp.response(201, StepResult)
def answer(request: dict[str, str], village: str) -> dict[str, Any]:
    """The villager answers the handlers (committed to the ledger by the desk)."""
    return step_item(complaints.villager_step(store(), village, request["code"], "answer", text=request["text"], now=now()))


@blp.route("/<village>/complaints/rate", methods=["POST"])
@tracking_limit
@blp.arguments(VillagerRating)
@blp.response(201, StepResult)
def rate(request: dict[str, Any], village: str) -> dict[str, Any]:
    """The villager rates a closed case and says whether it was resolved; unsatisfied or unresolved
    reopens it once and escalates it to the township."""
    return step_item(complaints.villager_step(store(), village, request["code"], "rate", rating=request["rating"],
                                              resolved=request["resolved"], now=now()))


def _member(village: str) -> Any:
    caller = require_caller(village)
    return store().state(village).members[caller.member]


@blp.route("/<village>/complaints")
@blp.response(200, CaseList)
@blp.doc(security=[{"bearer": []}])
def cases(village: str) -> dict[str, Any]:
    """The cases routed to the calling member (never those that may be about them), newest first."""
    member = _member(village)
    complaints.sweep(store(), village, now())
    return {"items": [case_item(case) for case in complaints.cases_for(store(), village, member)]}


@blp.route("/<village>/complaints/protected-deductions")
@blp.response(200, ProtectedDeductionList)
@blp.doc(security=[{"bearer": []}])
def protected_deductions(village: str) -> dict[str, Any]:
    """Deductions from households that had filed a complaint or an appeal under their own name in the 90
    days before (each needs a supervisor's cosignature): for the supervision committee and the township."""
    member = _member(village)
    if not member.roles & {"supervisor", "township"}:
        raise Problem(403, "forbidden", "Forbidden", f"member {member.id} is not on the supervision committee or the township")
    return {"items": [vars(item) for item in complaints.protected_deductions(store(), village)]}


@blp.route("/<village>/complaints/<receipt>")
@blp.response(200, CaseViewSchema)
@blp.doc(security=[{"bearer": []}])
def case(village: str, receipt: str) -> dict[str, Any]:
    """A case with its content and every step, for a member it is routed to (403 for anyone else)."""
    member = _member(village)
    complaints.sweep(store(), village, now())
    return view_item(complaints.view(store(), village, receipt, member))


@blp.route("/<village>/complaints/<receipt>/photos/<sha256>")
@blp.response(200, BINARY, content_type="image/jpeg")
@blp.doc(security=[{"bearer": []}])
def photo(village: str, receipt: str, sha256: str) -> Response:
    """A complaint's photo (re-encoded, no metadata), for a member the case is routed to."""
    complaints.view(store(), village, receipt, _member(village))
    media_type, data = complaints.photo(store(), village, receipt, sha256)
    return Response(data, mimetype=media_type, headers={"Cache-Control": "private, max-age=3600"})


@blp.route("/<village>/complaints/<receipt>/steps", methods=["POST"])
@blp.arguments(HandlerStep)
@blp.response(201, StepResult)
@blp.doc(security=[{"bearer": []}])
def handler_step(request: dict[str, Any], village: str, receipt: str) -> dict[str, Any]:
    """A handler's own signed ``complaint.step`` (with the reply's text and salt when it commits to one)."""
    member = _member(village)
    complaints.view(store(), village, receipt, member)
    signed = parse_entry(request["entry"])
    if signed.body.get("receipt") != receipt:
        raise EntryError(f"the entry is a step of complaint {signed.body.get('receipt')}, not {receipt}", field="entry.entry.body.receipt")
    try:
        salt = b64decode(request["salt"], what="salt") if "salt" in request else None
    except EncodingError as exc:
        raise Problem(422, "invalid-request", "The request is not valid", str(exc), errors=[{"field": "salt", "problem": str(exc)}]) from exc
    return step_item(complaints.handler_step(store(), village, member, signed, text=request.get("text"), salt=salt,
                                             now=now()))


@blp.route("/<village>/complaint-settings")
@blp.response(200, ComplaintSettings)
def get_settings(village: str) -> dict[str, Any]:
    """Where each category of complaint goes, and the deadlines (public: villagers may know who handles what)."""
    found = complaints.settings(store(), village)
    return {"routes": dict(found.routes), "respond_days": found.respond_days, "resolve_days": found.resolve_days}


@blp.route("/<village>/complaint-settings", methods=["PUT"])
@blp.arguments(ComplaintSettings)
@blp.response(200, ComplaintSettings)
@blp.doc(security=[{"bearer": []}])
def put_settings(request: dict[str, Any], village: str) -> dict[str, Any]:
    """Change routing and deadlines: the supervision committee or the township only. Finances, cadre
    conduct and appeals of points keep their fixed routes."""
    caller = require_caller(village)
    if not caller.roles & {"supervisor", "township"}:
        raise Problem(403, "forbidden", "Forbidden", "only the supervision committee or the township sets complaint routing")
    found = complaints.set_settings(store(), village, request["routes"], request["respond_days"], request["resolve_days"])
    return {"routes": dict(found.routes), "respond_days": found.respond_days, "resolve_days": found.resolve_days}


@blp.route("/<village>/complaint-figures")
@blp.response(200, ComplaintFigures)
def figures(village: str) -> dict[str, Any]:
    """Per month of filing: resolution, satisfaction and on-time rates and the median time to reply —
    aggregates only, each recomputable from the log's complaint entries."""
    store().village_id(village)
    complaints.sweep(store(), village, now())
    months = complaints.figures(store(), village)
    return {"months": [{**vars(month), "resolution_rate": month.resolution_rate,
                        "satisfaction_rate": month.satisfaction_rate, "on_time_rate": month.on_time_rate}
                       for month in months]}


@blp.route("/<village>/complaint-desk")
@blp.response(200, DeskKeySchema)
def desk(village: str) -> dict[str, Any]:
    """The complaint desk's public key, which the committee registers (``member.add``, role intake)."""
    public = complaints.desk_public_key(store(), village, create=False)
    if public is None:
        raise Problem(404, "not-found", "Not Found", f"village {village!r} has no complaint desk key yet")
    record = store().state(village).keys.get(public)
    return {"key": public, "registered": record is not None and record.revoked_at is None}
