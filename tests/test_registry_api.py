"""Storing a household's personal data for the registry (``POST .../households/{h}/private``): the
committee, or the grid worker of every grid involved, keeps it in the erasable table and gets back the
salted commitment that ``household.register``/``update`` carries; the data itself never reaches the log.
A refusal, whoever asks and whatever is wrong, writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from answers import problem
from flask.testing import FlaskClient
from kit import StoredVillage

from ledger.entries import household_commitment

BASE = "/api/v1/villages/testvillage"
DATA = {"head": "陈志强", "members": ["李梅", "陈小军"], "phone": "138 0000 0000",
        "address": "小溪村3组12号"}
Login = Callable[[str], dict[str, str]]




def store(client: FlaskClient, household: str, headers: dict[str, str], **body: Any) -> Any:
    return client.post(f"{BASE}/households/{household}/private", headers=headers, json={"data": DATA, **body})


def test_the_commitment_opens_with_the_kept_salt_and_data(
    client: FlaskClient, village: StoredVillage, login: Login
) -> None:
    response = store(client, "h9", login("secretary"))
    assert response.status_code == 201, response.data
    salt, data = village.store.private(village.slug, "h9")
    assert data == DATA and len(salt) == 16
    assert response.json == {"commitment": household_commitment(salt, DATA)}
    again = store(client, "h9", login("secretary"))
    assert again.json["commitment"] != response.json["commitment"], "a fresh salt each time"
    assert village.store.private(village.slug, "h9")[1] == DATA


@pytest.mark.parametrize(("who", "household", "grid", "stored"), [
    ("founder", "h3", None, True),  # the committee: any household, registered or not
    ("secretary", "new", None, True),
    ("grid1", "h1", None, True),  # a grid worker: their own grid's household
    ("grid1", "new", "g1", True),  # ... or one about to be registered in their grid
    ("grid1", "h1", "g2", False),  # ... not moving it out of their grid
    ("grid1", "h3", None, False),  # ... not another grid's household
    ("grid2", "new", "g1", False),  # ... nor registering in another grid
    ("supervisor", "h1", None, False),
    ("township", "h1", None, False),
    ("auditor", "h1", None, False),
    ("intake", "h1", None, False),
])
def test_the_committee_and_the_households_grid_worker_may_store_personal_data(
    client: FlaskClient, village: StoredVillage, login: Login,
    who: str, household: str, grid: str | None, stored: bool,
) -> None:
    response = store(client, household, login(who), **({"grid": grid} if grid else {}))
    if stored:
        assert response.status_code == 201, response.data
        assert village.store.private(village.slug, household) is not None
    else:
        problem(response, 403)
        assert village.store.private(village.slug, household) is None, "nothing written on refusal"


def test_without_a_member_token_nothing_is_stored(client: FlaskClient, village: StoredVillage) -> None:
    problem(client.post(f"{BASE}/households/h1/private", json={"data": DATA}), 401, "Authorization")
    problem(client.post("/api/v1/villages/nowhere/households/h1/private", json={"data": DATA}), 401)
    assert village.store.private(village.slug, "h1") is None


@pytest.mark.parametrize(("body", "field"), [
    ({}, "data"),
    ({"data": {}}, "data.head"),
    ({"data": {**DATA, "head": "   "}}, "data.head"),
    ({"data": {**DATA, "head": "陈" * 33}}, "data.head"),
    ({"data": {**DATA, "id_number": "330182199001011234"}}, "data.id_number"),  # nothing kept by accident
    ({"data": {**DATA, "phone": "call me"}}, "data.phone"),
    ({"data": {**DATA, "members": "李梅"}}, "data.members"),
    ({"data": {**DATA, "members": ["李梅\x00"]}}, "data.members.0"),
    ({"data": {**DATA, "address": "\ud800"}}, "data.address"),
    ({"data": DATA, "grid": "G 1"}, "grid"),
    ({"data": DATA, "grid": "g9"}, "grid"),  # not defined
    ({"data": DATA, "extra": 1}, "extra"),
])
def test_bad_input_is_refused_naming_the_field(
    client: FlaskClient, village: StoredVillage, login: Login, body: dict[str, Any], field: str
) -> None:
    problem(client.post(f"{BASE}/households/h9/private", headers=login("secretary"), json=body), 422, field)
    assert village.store.private(village.slug, "h9") is None


def test_a_bad_household_id_or_a_grid_workers_missing_grid_is_named(
    client: FlaskClient, village: StoredVillage, login: Login
) -> None:
    problem(store(client, "H-1", login("secretary")), 422, "household")
    problem(store(client, "new", login("grid1")), 422, "grid")  # a new household: which grid?
    assert village.store.private(village.slug, "new") is None
