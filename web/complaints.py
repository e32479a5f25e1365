"""The complaint channel's pages: file from a phone (from the door plate, the village page or a deduction's
"appeal" link), keep the tracking code, follow the case with it, answer, and say whether it was resolved;
and the handlers' console, which signs every step in the browser with the member's own key.

Filing and following work without JavaScript. Errors name the field in the reader's language.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

from api.extensions import filing_limit, now, store, tracking_limit
from api.schemas.complaints import FileComplaint, VillagerAnswer, VillagerRating
from ledger.canonical import b64encode
from ledger.errors import LedgerError
from storage import NotFound, complaints, reads
from storage.images import ImageRejected, read_uploads

bp = Blueprint("complaints_web", __name__, template_folder="templates")

CATEGORY_NAMES = {
    "finances": _l("Village finances"), "projects": _l("Village projects"), "cadre_conduct": _l("Conduct of village cadres"),
    "points_appeal": _l("Appeal of a points record"), "environment": _l("Environment and sanitation"),
    "neighbour_dispute": _l("Dispute between neighbours"), "suggestion": _l("Suggestion"), "other": _l("Other"),
}
ROUTE_NAMES = {
    "supervision": _l("Village supervision committee and township"), "jury": _l("Morality jury (supervision committee)"),
    "committee": _l("Village committee"), "grid": _l("Grid worker"),
}
STATUS_NAMES = {
    "received": _l("Received"), "accepted": _l("Accepted"), "assigned": _l("Assigned"), "in_progress": _l("In progress"),
    "replied": _l("Replied"), "closed": _l("Closed"), "reopened": _l("Reopened"),
}
STEP_NAMES = {
    "accept": _l("Accepted"), "assign": _l("Assigned to a handler"), "start": _l("Work started"), "reply": _l("Reply"),
    "close": _l("Closed"), "answer": _l("Your answer"), "rate": _l("Your rating"), "escalate": _l("Escalated to the township"),
}
RATING_NAMES = {"satisfied": _l("Satisfied"), "basically_satisfied": _l("Basically satisfied"), "unsatisfied": _l("Unsatisfied")}
FIELD_PROBLEMS = {
    "category": _l("Choose what the complaint is about."),
    "text": _l("Write what happened, in at most 2,000 characters."),
    "photos": _l("Photos must be real pictures (JPEG, PNG or WebP), at most 4, each at most 8 MB."),
    "plate": _l("This door plate is not known or has been replaced."),
    "appeal_of": _l("Only a deduction of your own household can be appealed here."),
    "code": _l("No complaint has this tracking code. Check the code and try again."),
    "rating": _l("Choose how satisfied you are."),
    "resolved": _l("Say whether the problem was resolved."),
}


def _problems(fields: list[str]) -> dict[str, str]:
    """Field -> a sentence in the reader's language (the API's problem names the same fields in English)."""
    return {name.split("[")[0]: str(FIELD_PROBLEMS.get(name.split("[")[0], _l("Please check this field."))) for name in fields}


def _village(village: str) -> Any:
    return reads.village_state(store(), village)[1]


@bp.route("/v/<village>/complain", methods=["GET"])
def complain_form(village: str) -> Any:
    state = _village(village)
    form = {"plate": request.args.get("plate", ""), "appeal_of": request.args.get("appeal", ""),
            "category": "points_appeal" if request.args.get("appeal") else ""}
    return render_template("complain.html", village=village, state=state, form=form, errors={}, categories=CATEGORY_NAMES)


@bp.route("/v/<village>/complain", methods=["POST"])
@filing_limit
def complain(village: str) -> Any:
    """File from the form; on any problem, show the form again with the problem by the field."""
    state = _village(village)
    raw = {k: v for k, v in request.form.items() if v != ""}
    if raw.get("anonymous") == "on":
        raw["anonymous"] = "true"
    try:
        form = FileComplaint().load({k: v for k, v in raw.items() if k != "household"})
        filed = complaints.file_from_the_door(
            store(), village, category=form["category"], text=form["text"], photos=read_uploads(request.files.getlist("photos")),
            anonymous=form.get("anonymous", False), plate=form.get("plate"), appeal_of=form.get("appeal_of"), now=now())
    except ValidationError as exc:
        return _form_again(village, state, raw, list(exc.messages))
    except ImageRejected as exc:
        return _form_again(village, state, raw, [exc.field])
    except complaints.ComplaintError as exc:
        return _form_again(village, state, raw, [exc.field])
    return _receipt_page(village, state, filed)


def _form_again(village: str, state: Any, raw: dict[str, str], fields: list[str]) -> tuple[str, int]:
    errors = _problems(fields)
    return render_template("complain.html", village=village, state=state, form=raw, errors=errors,
                           categories=CATEGORY_NAMES), 422


def _receipt_page(village: str, state: Any, filed: complaints.Filed) -> str:
    """The tracking code (shown once) and the receipt, which the phone verifies against the signed checkpoint."""
    found = complaints.track(store(), village, filed.tracking_code)
    index = filed.appended.index
    proof = store().inclusion_proof(village, index, filed.appended.tree_size)
    row, _ = reads.village_state(store(), village)
    return render_template(
        "complaint_receipt.html", village=village, state=state, filed=filed, found=found,
        categories=CATEGORY_NAMES, routes=ROUTE_NAMES, leaf=b64encode(store().leaf(village, index)),
        proof=[b64encode(h) for h in proof], index=index,
        proof_context=json.dumps({"checkpoint": filed.appended.checkpoint, "key": store().verifier_keys(village)[-1],
                                  "origin": row.origin}),
    )


@bp.route("/v/<village>/track", methods=["GET"])
def track_form(village: str) -> Any:
    return render_template("track.html", village=village, state=_village(village), errors={}, found=None, code="",
                           **_names())


@bp.route("/v/<village>/track", methods=["POST"])
@tracking_limit
def track(village: str) -> Any:
    """Follow a case with its code (posted, never in a URL); answer it; rate it once it is closed."""
    state = _village(village)
    action = request.form.get("action", "show")
    code = request.form.get("code", "").strip()
    try:
        if action == "answer":
            answer = VillagerAnswer().load({"code": code, "text": request.form.get("text", "")})
            complaints.villager_step(store(), village, code, "answer", text=answer["text"], now=now())
        elif action == "rate":
            loaded = VillagerRating().load({"code": code, "rating": request.form.get("rating", ""),
                                            "resolved": request.form.get("resolved", "")})
            complaints.villager_step(store(), village, code, "rate", rating=loaded["rating"], resolved=loaded["resolved"], now=now())
        complaints.sweep(store(), village, now())
        found = complaints.track(store(), village, code)
    except ValidationError as exc:
        return _track_again(village, state, code, list(exc.messages))
    except NotFound:
        return _track_again(village, state, "", ["code"])
    except complaints.ComplaintError as exc:
        return _track_again(village, state, code, [exc.field])
    return render_template("track.html", village=village, state=state, errors={}, found=found, code=code, **_names())


def _track_again(village: str, state: Any, code: str, fields: list[str]) -> tuple[str, int]:
    found = None
    if code:
        try:
            found = complaints.track(store(), village, code)
        except LedgerError:
            found = None
    return render_template("track.html", village=village, state=state, errors=_problems(fields), found=found,
                           code=code, **_names()), 422


def _names() -> dict[str, Any]:
    return {"categories": CATEGORY_NAMES, "routes": ROUTE_NAMES, "statuses": STATUS_NAMES, "steps": STEP_NAMES,
            "ratings": RATING_NAMES}


@bp.route("/v/<village>/desk")
def desk(village: str) -> Any:
    """The handlers' console: load your key file, sign in, handle the cases routed to you. Every step is
    signed in this browser; the server never sees the private key."""
    return render_template("desk.html", village=village, state=_village(village), **_names())


def init_app(app: Any) -> None:
    app.register_blueprint(bp)
