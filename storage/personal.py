"""Households' personal data (PIPL): kept off the log, in the erasable ``household_private`` table. The log
holds only a salted commitment to it, which erasing the row leaves unopenable.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, delete

from ledger.entries import household_commitment

from . import models as m
from .db import read_session, upsert, write_session
from .villages import Villages


class PersonalData:
    """Every village's register of households' personal data."""

    def __init__(self, engine: Engine, villages: Villages) -> None:
        self.engine, self.villages = engine, villages

    def put(self, slug: str, household: str, data: Mapping[str, Any]) -> str:
        """Store a household's personal data with a fresh salt; returns the commitment to put on the log."""
        salt = secrets.token_bytes(16)
        commitment = household_commitment(salt, data)
        with write_session(self.engine) as session:
            village = self.villages.row(session, slug)
            upsert(session, m.HouseholdPrivate, [{"village_id": village.id, "household_id": household, "salt": salt, "data": dict(data)}])
        return commitment

    def get(self, slug: str, household: str) -> tuple[bytes, dict[str, Any]] | None:
        """(salt, data) of the household, if recorded (and not erased)."""
        with read_session(self.engine) as session:
            village = self.villages.row(session, slug)
            row = session.get(m.HouseholdPrivate, (village.id, household))
            return (row.salt, dict(row.data)) if row else None

    def erase(self, slug: str, household: str) -> bool:
        """Erase a household's personal data. The log keeps only the (now unopenable) commitment."""
        with write_session(self.engine) as session:
            village = self.villages.row(session, slug)
            result = session.execute(
                delete(m.HouseholdPrivate).where(
                    m.HouseholdPrivate.village_id == village.id, m.HouseholdPrivate.household_id == household  # type: ignore[arg-type]
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
