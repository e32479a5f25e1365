"""What the committee console needs besides signing. Members sign every entry in their browser; nothing
here signs for them. This module holds the error every console service refuses with and the village's
members and grids; the other services have modules of their own:

- ``storage.search``: a household search that reaches the personal data;
- ``storage.attachments``: attachments stored by SHA-256 (the log holds their hashes);
- ``storage.supermarket``: the points supermarket (积分超市): goods, redemptions, the month's report;
- ``storage.imports``: the preview of an old ledger's import (the API reads the sheet: ``api.sheets``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ledger.canonical import b64encode

from . import models as m
from .db import read_session
from .errors import StorageError
from .store import Store


class ConsoleError(StorageError):
    """A console request refused; ``field`` names the offending input (a form field, a body path)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# --- members and grids (public: cadres are public under 三务公开) ------------------------------------


@dataclass(frozen=True)
class MemberKey:
    key: str  # base64
    added_at: int  # log indexes
    revoked_at: int | None


@dataclass(frozen=True)
class MemberListing:
    member: str
    name: str
    roles: list[str]
    grid: str | None
    household: str | None
    keys: list[MemberKey]


def members(store: Store, slug: str) -> list[MemberListing]:
    """Every member with their roles and every key they ever had, by member id."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        keys: dict[str, list[MemberKey]] = {}
        for row in session.execute(select(m.MemberKeyRow).where(m.MemberKeyRow.village_id == village.id)  # type: ignore[arg-type]
                                   .order_by(m.MemberKeyRow.added_at)).scalars():  # type: ignore[arg-type]
            keys.setdefault(row.member_id, []).append(MemberKey(b64encode(row.public), row.added_at, row.revoked_at))
        rows = session.execute(select(m.MemberRow).where(m.MemberRow.village_id == village.id)  # type: ignore[arg-type]
                               .order_by(m.MemberRow.member_id)).scalars()
        return [MemberListing(r.member_id, r.name, r.roles.split(), r.grid, r.household, keys.get(r.member_id, []))
                for r in rows]


def grids(store: Store, slug: str) -> list[m.GridRow]:
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        return list(session.execute(select(m.GridRow).where(m.GridRow.village_id == village.id)  # type: ignore[arg-type]
                                    .order_by(m.GridRow.grid_id)).scalars())

