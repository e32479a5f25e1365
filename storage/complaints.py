"""The complaint channel at the door (家门口的监委): filing, tracking, handling, deadlines and figures.

What the log holds and what stays off it:
- the log: a ``complaint.receipt`` (receipt id, route, salted commitment to the content) and a
  ``complaint.step`` for every step of its handling (status changes, commitments to replies); so a
  case can be neither removed nor closed unseen, and ``ledger.state.apply`` refuses a step by anyone
  the case is not routed to (``may_handle``);
- off the log, erasable: the content (category, text, photos, household, who assisted), the steps'
  texts, the photos; each opened by its salt against its commitment. The tracking code is kept only
  as its SHA-256, so the database alone cannot open a case as the villager.

Villagers have no keys: the complaint desk's key, held by the server (``desk_keys``, encrypted like
the log keys) and registered in the ledger as a member with the ``intake`` role, signs their receipts,
answers and ratings and the escalations of missed deadlines. Handlers sign their own steps.

Anonymous complaints store no household, no IP address and no device identifier.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from sqlalchemy import select
from sqlmodel import Session

import keys
from ledger.canonical import b64encode
from ledger.entries import (
    Entry,
    complaint_commitment,
    leaf_body,
    make_unsigned,
    sign_entry,
    step_commitment,
)
from ledger.errors import EntryError, NotAuthorised
from ledger.state import DESK_STEPS, OPEN, Case, Household, Member, may_handle

from . import models as m
from . import plates, protection
from .appending import Appended
from .db import read_session, write_session
from .errors import NotFound, StorageError
from .images import CleanImage, clean_images
from .reads import entry_by_id
from .store import Store

log = logging.getLogger(__name__)

CATEGORIES = (
    "finances", "projects", "cadre_conduct", "points_appeal", "environment", "neighbour_dispute", "suggestion", "other",
)
# Never routed to the village committee, whatever a village configures: they may be about it.
FIXED_ROUTES = {"finances": "supervision", "cadre_conduct": "supervision", "points_appeal": "jury"}
CONFIGURABLE_ROUTES = ("supervision", "committee", "grid")
DEFAULT_ROUTES = {
    **FIXED_ROUTES, "projects": "supervision", "environment": "grid", "neighbour_dispute": "grid",
    "suggestion": "committee", "other": "committee",
}
RESPOND_DAYS, RESOLVE_DAYS = 3, 15
MAX_TEXT = 2000
TRACKING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed on a phone
TRACKING_GROUPS, TRACKING_GROUP = 4, 4  # 16 characters, 80 bits


class ComplaintError(StorageError):
    """A request the channel refuses; ``field`` names the offending input."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class BadPlate(ComplaintError):
    """A door plate that names no household of this village (unknown, replaced, or another village's)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="plate")


class DeskNotReady(StorageError):
    """The village's complaint desk key is not (or no longer) an active ``intake`` member key."""


class NotYours(StorageError):
    """The case is routed away from this member."""


@dataclass(frozen=True)
class Settings:
    routes: Mapping[str, str]
    respond_days: int
    resolve_days: int


@dataclass(frozen=True)
class Filed:
    receipt: str
    tracking_code: str
    appended: Appended


@dataclass(frozen=True)
class Message:
    entry_id: str
    step: str
    time: str
    by: str
    text: str | None
    salt: str
    commitment: str | None


@dataclass(frozen=True)
class CaseView:
    """A case as its villager (with the tracking code) or a handler sees it."""

    case: Case
    content: Mapping[str, Any]
    salt: str
    commitment: str
    receipt_index: int
    steps: list[Message] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)


# --- settings -----------------------------------------------------------------------------------------


def settings(store: Store, slug: str) -> Settings:
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        row = session.get(m.ComplaintSettingsRow, village.id)
    if row is None:
        return Settings(dict(DEFAULT_ROUTES), RESPOND_DAYS, RESOLVE_DAYS)
    return Settings({**DEFAULT_ROUTES, **row.routes}, row.respond_days, row.resolve_days)  # type: ignore[dict-item]


def set_settings(store: Store, slug: str, routes: Mapping[str, str], respond_days: int, resolve_days: int) -> Settings:
    """Change where categories go and the deadlines. Finances, cadre conduct and appeals of points keep
    their fixed routes: a village cannot send complaints about its committee to its committee."""
    for category, route in routes.items():
        if category not in CATEGORIES:
            raise ComplaintError(f"unknown category {category!r}", field=f"routes.{category}")
        if category in FIXED_ROUTES and route != FIXED_ROUTES[category]:
            raise ComplaintError(f"{category} always goes to {FIXED_ROUTES[category]}", field=f"routes.{category}")
        if category not in FIXED_ROUTES and route not in CONFIGURABLE_ROUTES:
            raise ComplaintError(f"must be one of {', '.join(CONFIGURABLE_ROUTES)}", field=f"routes.{category}")
    if not 1 <= respond_days <= resolve_days <= 90:
        raise ComplaintError("need 1 <= respond_days <= resolve_days <= 90", field="respond_days")
    chosen = {c: r for c, r in routes.items() if c not in FIXED_ROUTES}
    with write_session(store.engine) as session:
        village = store.village_row(session, slug)
        assert village.id is not None
        row = session.get(m.ComplaintSettingsRow, village.id)
        if row is None:
            row = m.ComplaintSettingsRow(village_id=village.id, routes={}, respond_days=respond_days, resolve_days=resolve_days)
        row.routes = {**row.routes, **chosen}
        row.respond_days, row.resolve_days = respond_days, resolve_days
        session.add(row)
    return settings(store, slug)


# --- the desk's key -----------------------------------------------------------------------------------


@overload
def desk_public_key(store: Store, slug: str) -> bytes: ...
@overload
def desk_public_key(store: Store, slug: str, *, create: bool) -> bytes | None: ...
def desk_public_key(store: Store, slug: str, *, create: bool = True) -> bytes | None:
    """The complaint desk's newest public key for ``slug``, made on first use (or None if there is none and
    not ``create``). The township registers it with ``member.add`` (role ``intake``) before villagers can file."""
    with write_session(store.engine) as session:
        village = store.village_row(session, slug)
        assert village.id is not None
        rows = _desk_rows(session, village.id)
        if not rows and not create:
            return None
        return bytes(rows[0].public) if rows else _new_desk_row(store, session, village.id)


def replace_desk_key(store: Store, slug: str) -> bytes:
    """A new desk key for ``slug`` (the old one lost or compromised); its public key. The desk keeps signing
    with the old key until the township registers the new one (``key.add`` for the desk member); then it
    signs with the new one, and the township revokes the old: the village is never without a desk."""
    with write_session(store.engine) as session:
        village = store.village_row(session, slug)
        assert village.id is not None
        return _new_desk_row(store, session, village.id)


def _new_desk_row(store: Store, session: Session, village_id: int) -> bytes:
    """A new desk key, dated after every earlier one of the village (``created`` orders them)."""
    key = keys.SigningKey.generate()
    created = datetime.now(UTC).replace(microsecond=0)
    newest = _desk_rows(session, village_id)
    if newest and _parse(newest[0].created) >= created:
        created = _parse(newest[0].created) + timedelta(seconds=1)
    session.add(m.DeskKey(village_id=village_id, public=key.public_bytes,
                          encrypted_pem=key.to_encrypted_pem(store.log_key_passphrase), created=_text(created)))
    return key.public_bytes


def _desk_rows(session: Session, village_id: int) -> list[m.DeskKey]:
    """The village's desk keys, newest first."""
    query = select(m.DeskKey).where(m.DeskKey.village_id == village_id)  # type: ignore[arg-type]
    return sorted(session.execute(query).scalars(), key=lambda row: row.created, reverse=True)


def _desk(store: Store, slug: str) -> keys.SigningKey:
    """The newest desk key that is an active member key of the village."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        assert village.id is not None
        rows = _desk_rows(session, village.id)
    if not rows:
        raise DeskNotReady(f"village {slug!r} has no complaint desk key yet: make one with `villageledger desk-key "
                           f"{slug}` and have the township register it with member.add (role intake)")
    state_keys = store.state(slug).keys
    for row in rows:
        record = state_keys.get(bytes(row.public))
        if record is not None and record.revoked_at is None:
            return keys.SigningKey.from_encrypted_pem(row.encrypted_pem, store.log_key_passphrase)
    raise DeskNotReady(
        f"the complaint desk key {b64encode(bytes(rows[0].public))} is not an active member key of {slug!r}: "
        "the township adds it with member.add (role intake), or key.add for the desk member"
    )


def _desk_entry(store: Store, slug: str, kind: str, body: Mapping[str, Any], now: datetime) -> Entry:
    desk = _desk(store, slug)
    unsigned = make_unsigned(kind=kind, village=slug, body=body, author=desk.public_bytes, time=_text(now))
    return sign_entry(unsigned, desk)


# --- filing and tracking ------------------------------------------------------------------------------


def new_tracking_code() -> str:
    groups = ("".join(secrets.choice(TRACKING_ALPHABET) for _ in range(TRACKING_GROUP)) for _ in range(TRACKING_GROUPS))
    return "-".join(groups)


def _tracking_hash(code: str) -> str:
    normal = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(f"villageledger/tracking/v1\n{normal}".encode()).hexdigest()


def file_complaint(
    store: Store,
    slug: str,
    *,
    category: str,
    text: str,
    photos: Sequence[CleanImage] = (),
    anonymous: bool = False,
    household: str | None = None,
    assisted_by: str | None = None,
    appeal_of: str | None = None,
    now: datetime,
) -> Filed:
    """File a complaint: append its receipt (signed by the desk) and store its content, in one transaction."""
    if category not in CATEGORIES:
        raise ComplaintError(f"must be one of {', '.join(CATEGORIES)}", field="category")
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise ComplaintError(f"must be 1 to {MAX_TEXT} characters", field="text")
    state = store.state(slug)
    if household is not None and household not in state.households:
        raise ComplaintError(f"household {household!r} is not registered", field="household")
    if assisted_by is not None:
        _require_households_grid_worker(state.members.get(assisted_by),
                                        state.households.get(household) if household is not None else None)
    if appeal_of is not None:
        _require_appealable(store, slug, appeal_of, household)
        category = "points_appeal"
    route = settings(store, slug).routes[category]
    grid = state.households[household].grid if household is not None and not anonymous else None
    if route == "grid" and grid is None:
        route = "committee"  # no household to place it in a grid: the committee routes it on
    content: dict[str, Any] = {"category": category, "text": text, "photos": [p.sha256 for p in photos],
                               "anonymous": anonymous, "filed": _text(now)}
    if household is not None and not anonymous:
        content["household"] = household
    if assisted_by is not None:
        content["assisted_by"] = assisted_by
    if appeal_of is not None:
        content["appeal_of"] = appeal_of
    salt = secrets.token_bytes(16)
    receipt = secrets.token_hex(16)
    body = {"receipt": receipt, "commitment": complaint_commitment(salt, content), "route": route,
            **({"grid": grid} if route == "grid" else {})}
    entry = _desk_entry(store, slug, "complaint.receipt", body, now)
    code = new_tracking_code()

    def keep(session: Session, village_id: int) -> None:
        session.add(m.ComplaintRow(village_id=village_id, receipt=receipt, tracking_hash=_tracking_hash(code),
                                   salt=salt, content=content))
        for photo in {p.sha256: p for p in photos}.values():
            session.add(m.ComplaintPhotoRow(village_id=village_id, receipt=receipt, sha256=photo.sha256,
                                            media_type=photo.media_type, data=photo.data))

    (appended,) = store.append(slug, [entry], alongside=keep)
    return Filed(receipt, code, appended)


def file_from_the_door(
    store: Store,
    slug: str,
    *,
    category: str,
    text: str,
    photos: Sequence[tuple[str, bytes]] = (),
    anonymous: bool = False,
    plate: str | None = None,
    household: str | None = None,
    assisted_by: str | None = None,
    appeal_of: str | None = None,
    now: datetime,
) -> Filed:
    """The one intake of the API and the villager's form: the door plate, if given, names the household (an
    unknown, replaced or other village's plate is refused naming ``plate``); ``household`` is only for a
    filing ``assisted_by`` a member; the photos (client file name, bytes) are cleaned (raises
    ``images.ImageRejected``); then ``file_complaint``."""
    named, household = household, None
    if plate:
        try:
            plate_village, household = plates.resolve(store, plate)
        except (plates.UnknownPlate, plates.PlateReplaced) as exc:
            raise BadPlate(str(exc)) from exc
        if plate_village != slug:
            raise BadPlate("the plate belongs to another village")
    if named is not None:
        if assisted_by is None:
            raise ComplaintError("only a member files for a household (assisted filing)", field="household")
        household = named
    return file_complaint(store, slug, category=category, text=text, photos=clean_images(photos), anonymous=anonymous,
                          household=household, assisted_by=assisted_by, appeal_of=appeal_of, now=now)


def sweep(store: Store, slug: str, now: datetime) -> None:
    """Escalate every case past its deadline (before complaints are read); a village whose desk is not set up
    has nothing to escalate with, and says so in the log."""
    try:
        escalate_overdue(store, slug, now)
    except DeskNotReady:
        log.warning("village %s: complaint desk not ready, deadlines not escalated", slug)


def _require_households_grid_worker(member: Member | None, household: Household | None) -> None:
    """Only a household's own grid worker files on its behalf (an elderly villager without a phone): not
    the committee the complaint may be about, nor an auditor, nor a grid worker of another grid."""
    if household is None:
        raise ComplaintError("an assisted filing names the household it is for", field="household")
    if member is None or "grid_worker" not in member.roles or member.grid != household.grid:
        who = member.id if member else "this member"
        raise ComplaintError(f"only the grid worker of grid {household.grid} may file on behalf of household "
                             f"{household.id}, not {who}", field="household")


def _require_appealable(store: Store, slug: str, entry_id: str, household: str | None) -> None:
    try:
        found = entry_by_id(store, slug, entry_id)
    except NotFound:
        found = None
    if found is None or found.kind != "points.deduct":
        raise ComplaintError(f"entry {entry_id} is not a deduction in this village's log", field="appeal_of")
    if household is not None and found.household != household:
        raise ComplaintError(f"entry {entry_id} is a deduction of another household", field="appeal_of")


def track(store: Store, slug: str, code: str) -> CaseView:
    """The case whose tracking code is ``code``. Raises NotFound (the same for a wrong code and a code of
    another village, so codes cannot be probed across villages)."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        assert village.id is not None
        row = session.execute(select(m.ComplaintRow).where(
            m.ComplaintRow.village_id == village.id, m.ComplaintRow.tracking_hash == _tracking_hash(code)  # type: ignore[arg-type]
        )).scalar_one_or_none()
        if row is None:
            raise NotFound("no complaint has this tracking code in this village")
        return _view(session, village.id, row)


def view(store: Store, slug: str, receipt: str, member: Member) -> CaseView:
    """The case for a handler it is routed to. Raises NotFound or NotYours."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        assert village.id is not None
        row = session.get(m.ComplaintRow, (village.id, receipt))
        if row is None:
            raise NotFound(f"no complaint {receipt} in village {slug!r}")
        found = _view(session, village.id, row)
    if not may_handle(member, found.case):
        raise NotYours(f"complaint {receipt} is routed to {found.case.route}; member {member.id} may not read it")
    return found


def _view(session: Session, village_id: int, row: m.ComplaintRow) -> CaseView:
    case_row = session.get(m.CaseRow, (village_id, row.receipt))
    assert case_row is not None, "a stored complaint always has its receipt in the log"
    receipt_entry = session.execute(select(m.EntryRow).where(
        m.EntryRow.village_id == village_id, m.EntryRow.kind == "complaint.receipt", m.EntryRow.ref == row.receipt  # type: ignore[arg-type]
    )).scalar_one()
    messages = session.execute(select(m.ComplaintMessageRow, m.EntryRow).join(
        m.EntryRow, (m.EntryRow.village_id == m.ComplaintMessageRow.village_id)  # type: ignore[arg-type]
        & (m.EntryRow.entry_id == m.ComplaintMessageRow.entry_id)
    ).where(m.ComplaintMessageRow.village_id == village_id, m.ComplaintMessageRow.receipt == row.receipt)  # type: ignore[arg-type]
     .order_by(m.EntryRow.idx)).all()  # type: ignore[arg-type]
    photos = session.execute(select(m.ComplaintPhotoRow.sha256).where(  # type: ignore[call-overload]
        m.ComplaintPhotoRow.village_id == village_id, m.ComplaintPhotoRow.receipt == row.receipt)).scalars()
    return CaseView(
        case=_case(case_row),
        content=dict(row.content),
        salt=b64encode(row.salt),
        commitment=complaint_commitment(row.salt, row.content),
        receipt_index=receipt_entry.idx,
        steps=[_message(message, entry) for message, entry in messages],
        photos=sorted(photos),
    )


def _message(row: m.ComplaintMessageRow, entry: m.EntryRow) -> Message:
    """A step as shown: its commitment is the one on the log (None for a step that commits to no text)."""
    content = dict(row.content)
    committed = leaf_body(entry.leaf).get("commitment")
    return Message(entry.entry_id, str(content["step"]), entry.time, str(content.get("by", "")),
                   content.get("text"), b64encode(row.salt), committed)  # type: ignore[arg-type]


def _case(row: m.CaseRow) -> Case:
    return Case(**{name: getattr(row, name) for name in Case.__dataclass_fields__})


def photo(store: Store, slug: str, receipt: str, sha256: str) -> tuple[str, bytes]:
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        row = session.get(m.ComplaintPhotoRow, (village.id, receipt, sha256))
        if row is None:
            raise NotFound(f"complaint {receipt} has no photo {sha256}")
        return row.media_type, bytes(row.data)


# --- steps --------------------------------------------------------------------------------------------


def villager_step(store: Store, slug: str, code: str, step: str, *, now: datetime, text: str | None = None,
                  rating: str | None = None, resolved: bool | None = None) -> Stepped:
    """The villager (with the tracking code alone) answers, or rates a closed case; the desk signs it."""
    found = track(store, slug, code)
    body: dict[str, Any] = {"receipt": found.case.receipt, "step": step}
    if step == "rate":
        body.update(rating=rating, resolved=resolved)
    elif step != "answer":
        raise ComplaintError("must be answer or rate", field="step")
    return _append_step(store, slug, body, "villager", text, now, lambda b: _desk_entry(store, slug, "complaint.step", b, now))


def handler_step(store: Store, slug: str, member: Member, signed: Entry, *, text: str | None, salt: bytes | None,
                 now: datetime) -> Stepped:
    """A handler's own signed step, dated now (as every entry: a reply cannot be backdated to look on time);
    ``text`` (a reply) is opened by ``salt`` against the step's commitment."""
    if signed.kind != "complaint.step":
        raise ComplaintError(f"must be a complaint.step entry, not {signed.kind}", field="entry.entry.kind")
    try:
        store.check_dated_now([signed], now)
    except EntryError as exc:
        raise ComplaintError(str(exc), field="entry.entry.time") from exc
    owner = store.state(slug).keys.get(signed.author)
    if owner is None or owner.member != member.id:
        raise NotAuthorised("the entry must be signed with your own member key", field="entry.entry.author")
    if signed.body["step"] in DESK_STEPS:
        raise ComplaintError(f"the {signed.body['step']} step is the desk's", field="entry.entry.body.step")
    content = _step_content(signed.body["receipt"], signed.body["step"], member.id, text)
    committed = "commitment" in signed.body or text is not None
    if committed and (salt is None or len(salt) < 16 or step_commitment(salt, content) != signed.body.get("commitment")):
        raise ComplaintError("the text and salt do not open the entry's commitment", field="salt")
    return _store_step(store, slug, signed, content, salt)


def _step_content(receipt: str, step: str, by: str, text: str | None) -> dict[str, Any]:
    """The committed record of a step: SHA-256(domain || salt || JCS(this))."""
    content: dict[str, Any] = {"receipt": receipt, "step": step, "by": by}
    if text is not None:
        content["text"] = text
    return content


def _append_step(store: Store, slug: str, body: dict[str, Any], by: str, text: str | None, now: datetime,
                 sign: Callable[[dict[str, Any]], Entry]) -> Stepped:
    if text is not None:
        text = text.strip()
        if not text or len(text) > MAX_TEXT:
            raise ComplaintError(f"must be 1 to {MAX_TEXT} characters", field="text")
    if body["step"] == "answer" and text is None:
        raise ComplaintError("an answer needs text", field="text")
    salt, content = secrets.token_bytes(16), _step_content(body["receipt"], body["step"], by, text)
    if text is not None:
        body["commitment"] = step_commitment(salt, content)
    return _store_step(store, slug, sign(body), content, salt)


@dataclass(frozen=True)
class Stepped:
    """Where a step landed in the log, and its case as the step left it."""

    appended: Appended
    case: Case


def _store_step(store: Store, slug: str, entry: Entry, content: Mapping[str, Any], salt: bytes | None) -> Stepped:
    """Append the step and keep its record (who took it, its text) beside it, in one transaction."""

    def keep(session: Session, village_id: int) -> None:
        session.add(m.ComplaintMessageRow(village_id=village_id, entry_id=entry.id, receipt=entry.body["receipt"],
                                          salt=salt or secrets.token_bytes(16), content=dict(content)))

    try:
        (appended,) = store.append(slug, [entry], alongside=keep)
    except EntryError as exc:
        raise ComplaintError(str(exc), field=exc.field or "entry") from exc
    with read_session(store.engine) as session:
        row = session.get(m.CaseRow, (store.village_row(session, slug).id, entry.body["receipt"]))
        assert row is not None, "the step was just applied to this case"
        return Stepped(appended, _case(row))


# --- handlers' lists, deadlines, figures --------------------------------------------------------------


def cases_for(store: Store, slug: str, member: Member) -> list[Case]:
    """Every case ``member`` may handle, newest first."""
    return [case for case in _cases(store, slug) if may_handle(member, case)]


def _cases(store: Store, slug: str) -> list[Case]:
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        rows = session.execute(select(m.CaseRow).where(m.CaseRow.village_id == village.id)  # type: ignore[arg-type]
                               .order_by(m.CaseRow.filed_at.desc())).scalars()  # type: ignore[attr-defined]
        return [_case(row) for row in rows]


def overdue(case: Case, rules: Settings, now: datetime) -> str | None:
    """Which deadline an open, not yet escalated case has missed, if any."""
    if case.status not in OPEN or case.escalated:
        return None
    filed = _parse(case.filed)
    if case.accepted is None and now > filed + timedelta(days=rules.respond_days):
        return "response_overdue"
    if now > filed + timedelta(days=rules.resolve_days):
        return "resolution_overdue"
    return None


def escalate_overdue(store: Store, slug: str, now: datetime) -> list[str]:
    """Escalate (to the township) every case whose deadline has passed; the desk signs each escalation,
    one case at a time, so a case the ledger refuses to escalate (bad data of an old log) never holds back
    the others. Returns the receipts escalated. Run by the server on every complaint request and by cron."""
    rules = settings(store, slug)
    due = [(case.receipt, reason) for case in _cases(store, slug) if (reason := overdue(case, rules, now))]
    if not due:
        return []
    desk = _desk(store, slug)
    escalated = []
    for receipt, reason in due:
        entry = sign_entry(make_unsigned(kind="complaint.step", village=slug, author=desk.public_bytes, time=_text(now),
                                         body={"receipt": receipt, "step": "escalate", "reason": reason}), desk)
        try:
            _store_step(store, slug, entry, _step_content(receipt, "escalate", "clock", None), None)
        except ComplaintError as exc:
            log.warning("village %s: complaint %s could not be escalated: %s", slug, receipt, exc)
            continue
        escalated.append(receipt)
    return escalated


@dataclass(frozen=True)
class MonthFigures:
    month: str
    filed: int
    closed: int
    resolved: int
    rated: int
    satisfied: int
    on_time: int
    median_hours_to_reply: float | None

    def rate(self, part: int, whole: int) -> float | None:
        return round(100 * part / whole, 1) if whole else None

    @property
    def resolution_rate(self) -> float | None:
        return self.rate(self.resolved, self.filed)

    @property
    def satisfaction_rate(self) -> float | None:
        return self.rate(self.satisfied, self.rated)

    @property
    def on_time_rate(self) -> float | None:
        return self.rate(self.on_time, self.closed)


def figures(store: Store, slug: str) -> list[MonthFigures]:
    """Per month of filing, from the cases on the log alone (an auditor recomputes them from the entries):
    resolution rate = closed and not declared unresolved / filed; satisfaction rate = satisfied or
    basically satisfied / rated; on-time rate = accepted within the response deadline and closed within
    the resolution deadline / closed; median hours from filing to the first reply."""
    rules = settings(store, slug)
    by_month: dict[str, list[Case]] = defaultdict(list)
    for case in _cases(store, slug):
        by_month[case.filed[:7]].append(case)
    return [_month(month, cases, rules) for month, cases in sorted(by_month.items(), reverse=True)]


def protected_deductions(store: Store, slug: str) -> list[protection.ProtectedDeduction]:
    """Deductions from households that had filed under their own name in the PROTECTED_DAYS before, newest
    first: what the supervision committee watches."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        assert village.id is not None
        return protection.protected_deductions(session, village.id, store.state(slug))


def _month(month: str, cases: list[Case], rules: Settings) -> MonthFigures:
    closed = [c for c in cases if c.status == "closed"]
    rated = [c for c in cases if c.rating is not None]
    replies = [(_parse(c.replied) - _parse(c.filed)).total_seconds() / 3600 for c in cases if c.replied]
    return MonthFigures(
        month=month,
        filed=len(cases),
        closed=len(closed),
        resolved=sum(1 for c in closed if c.resolved is not False),
        rated=len(rated),
        satisfied=sum(1 for c in rated if c.rating in ("satisfied", "basically_satisfied")),
        on_time=sum(1 for c in closed if _on_time(c, rules)),
        median_hours_to_reply=round(statistics.median(replies), 1) if replies else None,
    )


def _on_time(case: Case, rules: Settings) -> bool:
    filed = _parse(case.filed)
    accepted = case.accepted is not None and _parse(case.accepted) <= filed + timedelta(days=rules.respond_days)
    return accepted and case.closed is not None and _parse(case.closed) <= filed + timedelta(days=rules.resolve_days)


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "CATEGORIES", "BadPlate", "CaseView", "ComplaintError", "DeskNotReady", "Filed", "MonthFigures", "NotYours", "Settings", "Stepped",
    "cases_for", "desk_public_key", "escalate_overdue", "figures", "file_complaint", "file_from_the_door", "handler_step",
    "overdue", "photo", "protected_deductions", "replace_desk_key", "set_settings", "settings", "sweep", "track", "view",
    "villager_step",
]
