"""Finding a household in the committee console: by number, public label or (for those the personal-data
policy lets read it) the head of household's name, as a person types them."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import and_, select

from . import models as m
from .console import ConsoleError
from .db import read_session
from .store import Store


@dataclass(frozen=True)
class HouseholdMatch:
    household: str
    number: str
    label: str | None
    grid: str
    name: str | None  # the head of household, from the personal data (erasable), if recorded


def search_households(store: Store, slug: str, *, q: str = "", grid: str | None = None,
                      limit: int = 50, with_names: bool = True) -> list[HouseholdMatch]:
    """Households (of ``grid``, if given) whose number, public label or (``with_names``) head-of-household
    name contains ``q``, ignoring case; an exact number first, then by id; at most ``limit``. Without
    ``with_names`` no name is read, matched or returned. Requires limit >= 1.

    Matched here rather than in SQL: the name sits in a JSON column, which SQLite and PostgreSQL search
    differently, and a village has at most a few thousand households."""
    if limit < 1:
        raise ConsoleError("must be at least 1", field="limit")
    needle = folded(q)
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        conditions = [m.HouseholdRow.village_id == village.id]
        if grid is not None:
            conditions.append(m.HouseholdRow.grid == grid)
        rows = session.execute(
            select(m.HouseholdRow, m.HouseholdPrivate.data)  # type: ignore[call-overload]
            .join(m.HouseholdPrivate, and_(m.HouseholdPrivate.village_id == m.HouseholdRow.village_id,  # type: ignore[arg-type]
                                           m.HouseholdPrivate.household_id == m.HouseholdRow.household_id), isouter=True)  # type: ignore[arg-type]
            .where(*conditions)
            .order_by(m.HouseholdRow.household_id)
        ).all()
    found = []
    for row, private in rows:
        label = row.public.get("label")
        head = (private or {}).get("head") if with_names else None
        match = HouseholdMatch(row.household_id, row.number, label if isinstance(label, str) else None, row.grid,
                               head if isinstance(head, str) else None)
        if any(needle in folded(text) for text in (match.number, match.label, match.name) if text):
            found.append(match)
    found.sort(key=lambda match: (folded(match.number) != needle, match.household))
    return found[:limit]


def folded(text: str | None) -> str:
    """``text`` compared as a person types it: full-width forms as ASCII (NFKC), case ignored, trimmed."""
    return unicodedata.normalize("NFKC", text or "").casefold().strip()
