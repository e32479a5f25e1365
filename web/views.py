"""The villager pages. Only public facts appear: household public fields, points, rules, affairs; never
names from the personal-data table, ID numbers, phones or addresses (PIPL)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from api.extensions import store, witnesses
from ledger.canonical import b64encode
from ledger.entries import leaf_body
from ledger.state import household_account
from storage import NotFound, complaints, plates, reads
from storage import models as m
from storage.reads import EntryFilter, EntryRecord

from . import COOKIE, LANGUAGES
from .chart import points_chart

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/static/web")

PAGE = 20
LEDGER_NAMES = {"morality": _l("Morality bank"), "credit": _l("Credit points")}
ROLE_NAMES = {
    "committee": _l("Village committee"), "grid_worker": _l("Grid worker"), "supervisor": _l("Supervision committee"),
    "auditor": _l("Auditor"), "intake": _l("Complaint desk"), "township": _l("Township"),
}
KIND_NAMES = {
    "points.award": _l("Award"), "points.deduct": _l("Deduction"), "points.redeem": _l("Redeemed at the points supermarket"),
    "points.reverse": _l("Correction (reversal)"), "household.register": _l("Household registered"),
    "household.update": _l("Household record updated"),
}
CATEGORY_NAMES = {"finance": _l("Finances"), "project": _l("Projects"), "decision": _l("Decisions")}


@dataclass(frozen=True)
class EntryView:
    index: int
    date: str
    kind: str
    title: str
    reason: str
    ledger: str | None
    amount: int | None
    posted_by: str
    evidence: list[str]
    leaf: str
    proof: str  # the inclusion proof's hashes in base64, separated by spaces
    entry_id: str
    deduction: bool


@dataclass(frozen=True)
class Words:
    """The catalogue's names of kinds, roles and ledgers in one language, translated once per process (the
    catalogues do not change while it runs)."""

    kinds: dict[str, str]
    roles: dict[str, str]
    ledgers: dict[str, str]
    chart_title: str
    chinese: bool

    @classmethod
    def current(cls) -> Words:
        """The words in the request's language."""
        return _words(str(get_locale()))


@functools.cache
def _words(language: str) -> Words:
    """Requires ``language`` to be the request's (translations come from the request's catalogue)."""
    return Words({k: str(v) for k, v in KIND_NAMES.items()}, {k: str(v) for k, v in ROLE_NAMES.items()},
                 {k: str(v) for k, v in LEDGER_NAMES.items()}, str(_l("Points over time")), language.startswith("zh"))


def _title(body: dict[str, Any], rules: dict[str, m.RuleRow], words: Words) -> str:
    rule = rules.get(body.get("rule", ""))
    if rule is None:
        return str(body.get("item", ""))
    return rule.title_zh if words.chinese else rule.title_en


def _entry_view(row: EntryRecord, proof: list[bytes], rules: dict[str, m.RuleRow], roles: dict[bytes, frozenset[str]],
                words: Words) -> EntryView:
    body = leaf_body(row.leaf)
    signer_roles = sorted(roles.get(row.author, frozenset()))
    signed_amount = None
    if row.amount is not None:
        signed_amount = row.amount if row.credit == household_account(row.household) else -row.amount
    return EntryView(
        index=row.idx, date=row.time[:10], kind=words.kinds.get(row.kind, row.kind), title=_title(body, rules, words),
        reason=str(body.get("reason", "")), ledger=row.ledger, amount=signed_amount,
        posted_by=" / ".join(words.roles[r] for r in signer_roles if r in words.roles),
        evidence=list(body.get("evidence", [])), leaf=b64encode(row.leaf), proof=" ".join(map(b64encode, proof)),
        entry_id=row.entry_id, deduction=row.kind == "points.deduct",
    )


@bp.route("/h/<token>")
def household_by_plate(token: str) -> Any:
    """The page behind a door plate. Plates carry unguessable tokens, so households cannot be walked."""
    try:
        page = reads.household_page(store(), token, EntryFilter(
            kinds=tuple(KIND_NAMES), newest_first=True, before=request.args.get("before", type=int), limit=PAGE))
    except plates.PlateReplaced:
        return render_template("error.html", status=410, message=_l(
            "This door plate has been replaced. Please scan the new plate on the door.")), 410
    except plates.UnknownPlate:
        return render_template("error.html", status=404, message=_l("This door plate is not known.")), 404
    words = Words.current()
    entries = [_entry_view(row, proof, page.rules, page.roles, words) for row, proof in zip(page.rows, page.proofs)]
    chart = points_chart(page.movements, title=words.chart_title, labels=words.ledgers)
    return render_template(
        "household.html", village=page.village, state=page.state, household=page.household, entries=entries,
        chart=chart, ledger_names=words.ledgers, token=token, older=page.rows[-1].idx if len(page.rows) == PAGE else None,
        proof_context=json.dumps({"checkpoint": page.note, "key": page.log_key, "origin": page.village.origin,
                                  "village": page.village.slug, "witnesses": [w.vkey for w in witnesses()]}),
    )


@bp.route("/v/<village>")
def village_page(village: str) -> Any:
    """Public village affairs, the rules catalogue, the monthly red list and points statistics."""
    month = request.args.get("month") or datetime.now(UTC).strftime("%Y-%m")
    category = request.args.get("category")
    if category not in CATEGORY_NAMES:
        category = None
    row, state = reads.village_state(store(), village)  # an unknown village is NotFound: the 404 page
    affairs = reads.affairs(store(), village, month=month if _valid_month(month) else None, category=category)
    ranking = reads.ranking(store(), village, month=month, limit=10) if _valid_month(month) else []
    latest = _latest_versions(affairs)
    return render_template(
        "village.html", village=row, state=state, month=month, category=category, categories=CATEGORY_NAMES,
        affairs=latest, totals=_finance_totals(latest), rules=reads.rules(store(), village), ranking=ranking,
        ledger_names=LEDGER_NAMES, stats=reads.points_totals(store(), village),
        figures=complaints.figures(store(), village)[:12],
    )


def _valid_month(month: str) -> bool:
    try:
        datetime.strptime(month, "%Y-%m")
    except ValueError:
        return False
    return len(month) == 7


def _latest_versions(affairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Affairs come newest first; keep each record's latest version (earlier ones stay on the log)."""
    seen: set[str] = set()
    latest = []
    for affair in affairs:
        if affair["affair"] not in seen:
            seen.add(affair["affair"])
            latest.append(affair)
    return latest


def _finance_totals(affairs: list[dict[str, Any]]) -> dict[str, int]:
    totals = {"income": 0, "expense": 0}
    for affair in affairs:
        if affair["category"] == "finance":
            totals[affair["finance"]["direction"]] += affair["finance"]["amount_fen"]
    return totals


@bp.after_app_request
def remember_language(response: Response) -> Response:
    """A language chosen with ``?lang=`` is kept in a cookie for the next pages."""
    asked = request.args.get("lang")
    if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
        response.set_cookie(COOKIE, asked, max_age=365 * 24 * 3600, samesite="Lax")
    return response


@bp.app_context_processor
def language() -> dict[str, str]:
    """``language`` ("zh" or "en") for the templates."""
    return {"language": str(get_locale())}


@bp.app_template_filter("yuan")
def yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


@bp.errorhandler(NotFound)
def not_found(error: NotFound) -> Any:
    return render_template("error.html", status=404, message=_l("This page does not exist.")), 404
