"""Households: public fields and balances for anyone; personal data only for the committee and the
household's own grid worker, behind a member token."""

from __future__ import annotations

from typing import Any

from ledger.entries import household_commitment
from storage import NotFound, reads
from storage.reads import HouseholdView

from ..auth import require_caller
from ..extensions import Blueprint, store
from ..problems import Problem
from ..schemas.households import HouseholdPage, HouseholdQuery, HouseholdSchema, PrivateHousehold

blp = Blueprint("households", __name__, url_prefix="/api/v1/villages", description="Households and balances")


def household_item(view: HouseholdView) -> dict[str, Any]:
    row = view.row
    return {
        "household": row.household_id, "grid": row.grid, "number": row.number, "public": row.public,
        "commitment": row.commitment, "balances": view.balances, "green_card": view.green_card,
    }


@blp.route("/<village>/households")
@blp.arguments(HouseholdQuery, location="query")
@blp.response(200, HouseholdPage)
def list_households(query: dict[str, Any], village: str) -> dict[str, Any]:
    """Households with their public fields and balances, by id; page with ``after``."""
    views = reads.households(store(), village, grid=query.get("grid"), after=query.get("after"), limit=query["limit"])
    last = views[-1].row.household_id if len(views) == query["limit"] else None
    return {"items": [household_item(v) for v in views], "next": last}


@blp.route("/<village>/households/<household>")
@blp.response(200, HouseholdSchema)
def get_household(village: str, household: str) -> dict[str, Any]:
    """One household's public fields, balances and green-card status. History: ``entries?household=``."""
    return household_item(reads.household(store(), village, household))


@blp.route("/<village>/households/<household>/private")
@blp.response(200, PrivateHousehold)
@blp.doc(security=[{"bearer": []}])
def get_private(village: str, household: str) -> dict[str, Any]:
    """The household's personal data (PIPL): committee members, and the grid worker of its grid, only."""
    caller = require_caller(village)
    view = reads.household(store(), village, household)
    if not caller.may_read_personal_data(view.row.grid):
        raise Problem(403, "forbidden", "Forbidden",
                      "personal data is for the committee and the household's own grid worker")
    found = store().private(village, household)
    if found is None:
        raise NotFound(f"household {household!r} has no personal data (never given, or erased)")
    salt, data = found
    return {
        "household": household, "data": data, "salt": salt, "commitment": view.row.commitment,
        "matches_log": household_commitment(salt, data) == view.row.commitment,
    }
