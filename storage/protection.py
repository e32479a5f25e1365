"""Never a penalty for speaking up (rules 2): a deduction from a household that filed a complaint or an
appeal under its own name in the last ``PROTECTED_DAYS`` days needs a supervisor's cosignature.

Who filed is personal data kept off the log (``complaints.content``), so this rule is the server's, checked
on every append path inside the append's transaction; the verifier cannot replay it (the log never says
who complained, by design). The deductions it concerns are listed for the supervision committee
(``protected_deductions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session

from ledger.entries import Entry, decode_leaf, entry_time, format_time, parse_time
from ledger.errors import NotAuthorised
from ledger.state import State

from . import models as m

PROTECTED_DAYS = 90


def filers_since(session: Session, village_id: int, since: str) -> dict[str, str]:
    """Households that filed under their own name at or after ``since``: household -> latest filing time."""
    filers: dict[str, str] = {}
    for household, filed, _ in filers_of(session, village_id, since=since):
        filers[household] = max(filers.get(household, ""), filed)
    return filers


def exposed(state: State, entry: Entry) -> bool:
    """Whether ``entry``, just applied to ``state``, is a deduction this rule concerns: rules 2, and not
    co-signed by a supervisor."""
    return state.rules_version >= 2 and entry.kind == "points.deduct" and not _supervisor_cosigned(state, entry)


def require_supervisor_for_filers(session: Session, village_id: int, deductions: Sequence[tuple[int, Entry]]) -> None:
    """Raise NotAuthorised (field ``entry.cosigner``, ``position`` the entry's place in its batch) for the first
    of the ``exposed`` (position, deduction) pairs whose household filed within PROTECTED_DAYS before it. One
    query for the whole batch."""
    if not deductions:
        return
    since = format_time(min(entry_time(entry) for _, entry in deductions) - timedelta(days=PROTECTED_DAYS))
    filers = filers_since(session, village_id, since)
    for position, entry in deductions:
        filed = filers.get(entry.body["household"])
        if filed is not None and entry_time(entry) - timedelta(days=PROTECTED_DAYS) <= parse_time(filed):
            error = NotAuthorised(
                f"rule 2 (protection): a deduction from household {entry.body['household']} needs a supervisor's "
                "cosignature at present (the supervision committee reviews deductions from households under its "
                "protection)", field="entry.cosigner")
            error.position = position
            raise error


def _supervisor_cosigned(state: State, entry: Entry) -> bool:
    record = state.keys.get(entry.cosigner) if entry.cosigner else None
    return record is not None and "supervisor" in state.members[record.member].roles


@dataclass(frozen=True)
class ProtectedDeduction:
    """A deduction from a household that had filed under its own name within PROTECTED_DAYS before it."""

    entry_id: str
    index: int
    time: str
    household: str
    amount: int
    supervisor_cosigned: bool


def protected_deductions(session: Session, village_id: int, state: State) -> list[ProtectedDeduction]:
    """Every deduction from a household that had filed within PROTECTED_DAYS before it, newest first (for
    the supervision committee's desk)."""
    filings: dict[str, list[tuple[str, int]]] = {}
    for household, filed, filed_at in filers_of(session, village_id, since=""):
        filings.setdefault(household, []).append((filed, filed_at))
    if not filings:
        return []
    query = select(m.EntryRow.entry_id, m.EntryRow.idx, m.EntryRow.time, m.EntryRow.household, m.EntryRow.amount,  # type: ignore[call-overload]
                   m.EntryRow.leaf).where(
        m.EntryRow.village_id == village_id, m.EntryRow.kind == "points.deduct",
        m.EntryRow.household.in_(sorted(filings)),  # type: ignore[union-attr]
    ).order_by(m.EntryRow.idx.desc())  # type: ignore[attr-defined]
    found = []
    for entry_id, index, time, household, amount, leaf in session.execute(query):
        # After the filing in the log (times have whole seconds: a deduction of the same second may be before it).
        window = [filed for filed, filed_at in filings[household]
                  if filed_at < index and parse_time(time) - parse_time(filed) <= timedelta(days=PROTECTED_DAYS)]
        if window:
            entry = decode_leaf(bytes(leaf))
            found.append(ProtectedDeduction(entry_id, index, time, household, amount, _supervisor_cosigned(state, entry)))
    return found


def filers_of(session: Session, village_id: int, *, since: str) -> list[tuple[str, str, int]]:
    """(household, time filed, index of the receipt) of every complaint or appeal filed under a household's own
    name since ``since``."""
    query = select(m.ComplaintRow.content, m.CaseRow.filed, m.CaseRow.filed_at).join(  # type: ignore[call-overload]
        m.CaseRow, (m.CaseRow.village_id == m.ComplaintRow.village_id) & (m.CaseRow.receipt == m.ComplaintRow.receipt)
    ).where(m.ComplaintRow.village_id == village_id, m.CaseRow.filed >= since)
    return [(content["household"], filed, filed_at) for content, filed, filed_at in session.execute(query)
            if isinstance(content.get("household"), str) and not content.get("anonymous")]
