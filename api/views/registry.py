"""The household registry's personal data (PIPL): a household's head, members, phone and address are kept
in the erasable table, never on the log. The console stores them here first and gets back the salted
commitment, then signs ``household.register`` (or ``household.update``) carrying only that commitment.

Who may store them follows who may sign for the household: the committee, or the grid worker of every
grid involved (the household's grid if it is registered, and ``grid`` if given: the grid it is being
registered in or moved to). The ledger still decides whether the entry that carries the commitment
stands; a refusal here writes nothing."""

from __future__ import annotations

import re
from typing import Any

from ledger.formats import ID
from storage import NotFound, console, reads

from ..auth import Caller, require_caller
from ..extensions import Blueprint, store
from ..problems import Problem
from ..schemas.registry import Committed, StorePrivate

blp = Blueprint("registry", __name__, url_prefix="/api/v1/villages",
                description="The household registry's personal data (committee and grid workers)")

HOUSEHOLD_ID = re.compile(ID)


def _invalid(field: str, detail: str) -> Problem:
    return Problem(422, "invalid-request", "The request is not valid", f"{field}: {detail}",
                   errors=[{"field": field, "problem": detail}])


def _grids_involved(village: str, household: str, grid: str | None) -> set[str]:
    """The household's current grid, if it is registered, and the grid named in the request."""
    involved = {grid} if grid is not None else set()
    try:
        involved.add(reads.household(store(), village, household).row.grid)
    except NotFound:
        pass  # not registered yet: only the grid it will be registered in
    return involved


def _require_own_grids(caller: Caller, involved: set[str]) -> None:
    """A grid worker's limit, as the ledger's for ``household.register``/``update`` (§6.3 step 4)."""
    if not involved:
        raise _invalid("grid", "name the grid of a household that is not registered yet")
    outside = sorted(g for g in involved if g != caller.grid)
    if outside:
        named = ", ".join(outside)
        raise Problem(403, "forbidden", "Forbidden",
                      f"grid worker {caller.member} keeps personal data of grid {caller.grid}, not {named}",
                      errors=[{"field": "grid", "problem": f"{named} is not your grid ({caller.grid})"}])


@blp.route("/<village>/households/<household>/private", methods=["POST"])
@blp.arguments(StorePrivate)
@blp.response(201, Committed)
@blp.doc(security=[{"bearer": []}])
def store_private(body: dict[str, Any], village: str, household: str) -> dict[str, str]:
    """Keep a household's personal data with a fresh salt, replacing what was kept, and return the
    commitment to sign into ``household.register`` or ``household.update``. Until that entry is in the
    log, ``GET .../private`` reports that the data does not match the log."""
    # (1) who asks: the committee or a grid worker; (2) the path's household id and the grid;
    # (3) a grid worker, only for their own grid; (4) keep the data and answer with its commitment.
    caller = require_caller(village)  # (1)
    if not caller.roles & {"committee", "grid_worker"}:
        raise Problem(403, "forbidden", "Forbidden", "the committee and grid workers keep personal data")
    if not HOUSEHOLD_ID.fullmatch(household):  # (2)
        raise _invalid("household", "must be an id of lowercase letters, digits, '-' or '_' (at most 64)")
    grid = body.get("grid")
    if grid is not None and grid not in {g.grid_id for g in console.grids(store(), village)}:
        raise _invalid("grid", f"{grid!r} is not defined")
    if "committee" not in caller.roles:  # (3)
        _require_own_grids(caller, _grids_involved(village, household, grid))
    return {"commitment": store().put_private(village, household, body["data"])}  # (4)
