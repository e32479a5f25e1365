"""Specification of the complaint channel (家门口的监委) in storage and over the API.

A complaint filed at the door is committed to the ledger by the complaint desk (its receipt verifies
against a signed checkpoint), reaches only the members it is routed to, is handled step by step with
every step on the ledger, escalates to the township when a deadline passes (a controllable clock), is
rated by the villager with the tracking code alone, and is counted in public figures.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from kit import Clock, StoredVillage
from pictures import jpeg_with_gps
from PIL import Image
from sqlalchemy import select

from ledger import merkle
from ledger.canonical import b64decode, b64encode
from ledger.entries import complaint_commitment, decode_leaf, format_time, step_commitment
from ledger.note import open_checkpoint
from storage import models as m
from storage.db import read_session


@pytest.fixture
def clock(village: StoredVillage) -> Clock:
    """The server's clock (the kit's, which the app and the store read), pinned at the test's start so the
    test moves it on."""
    clock = village.kit.clock
    clock.set(clock())
    return clock


@pytest.fixture
def api(village: StoredVillage, desk: str, clock: Clock) -> str:
    """The test village's API base, with its complaint desk registered and the clock pinned."""
    return f"/api/v1/villages/{village.slug}"


def file(client: FlaskClient, api: str, category: str = "finances", text: str = "村道硬化工程账目不公开",
         *, headers: dict[str, str] | None = None, photos: list[tuple[bytes, str]] = (), **form: Any) -> Any:  # type: ignore[assignment]
    data = {"category": category, "text": text, **form, "photos": [(io.BytesIO(raw), name) for raw, name in photos]}
    return client.post(f"{api}/complaints", data=data, headers=headers or {}, content_type="multipart/form-data")


def plate_of(village: StoredVillage, household: str) -> str:
    from storage import plates

    return plates.token_for(village.store, village.slug, household)


# --- filing -----------------------------------------------------------------------------------------


def test_a_filed_complaint_is_a_receipt_on_the_ledger_that_opens_with_its_salt(
    client: FlaskClient, api: str, village: StoredVillage, desk: str
) -> None:
    response = file(client, api, plate=plate_of(village, "h2"))
    assert response.status_code == 201, response.json
    filed = response.json
    entry = decode_leaf(village.store.leaf(village.slug, filed["index"]))
    assert entry.kind == "complaint.receipt" and b64encode(entry.author) == desk, "signed by the desk"
    assert entry.body["receipt"] == filed["receipt"] and entry.body["route"] == "supervision"
    assert complaint_commitment(b64decode(filed["salt"]), filed["content"]) == entry.body["commitment"]
    assert filed["content"]["household"] == "h2" and "text" in filed["content"]
    assert "村道" not in village.store.leaf(village.slug, filed["index"]).decode(), "the content stays off the log"
    checkpoint = open_checkpoint(filed["checkpoint"], village.trusted())
    proof = [b64decode(h) for h in filed["inclusion_proof"]]
    merkle.verify_inclusion(filed["index"], checkpoint.size, merkle.hash_leaf(entry.leaf), proof, checkpoint.root_hash)


def test_the_tracking_code_alone_opens_the_case_and_is_stored_only_as_a_hash(
    client: FlaskClient, api: str, village: StoredVillage
) -> None:
    filed = file(client, api).json
    code = filed["tracking_code"]
    assert client.post(f"{api}/complaints/track", json={"code": code.lower().replace("-", "")}).json["case"]["status"] == "received"
    wrong = client.post(f"{api}/complaints/track", json={"code": "AAAA-AAAA-AAAA-AAAA"})
    assert wrong.status_code == 404 and wrong.mimetype == "application/problem+json"
    with read_session(village.store.engine) as session:
        stored = session.execute(select(m.ComplaintRow)).scalar_one()
    assert code not in repr(vars(stored)) and code.replace("-", "") not in repr(vars(stored))


def test_an_anonymous_complaint_stores_no_household(client: FlaskClient, api: str, village: StoredVillage) -> None:
    filed = file(client, api, "environment", plate=plate_of(village, "h2"), anonymous="true").json
    assert "household" not in filed["content"] and filed["content"]["anonymous"] is True
    case = village.store.state(village.slug).cases[filed["receipt"]]
    assert case.route == "committee", "no household to place it in a grid: the committee routes it on"


@pytest.mark.parametrize(
    ("category", "route", "grid"),
    [("finances", "supervision", None), ("cadre_conduct", "supervision", None), ("projects", "supervision", None),
     ("environment", "grid", "g1"), ("neighbour_dispute", "grid", "g1"), ("suggestion", "committee", None)],
)
def test_each_category_goes_where_the_village_routes_it(
    client: FlaskClient, api: str, village: StoredVillage, category: str, route: str, grid: str | None
) -> None:
    filed = file(client, api, category, plate=plate_of(village, "h1")).json
    case = village.store.state(village.slug).cases[filed["receipt"]]
    assert (case.route, case.grid) == (route, grid)


def test_routing_is_configurable_except_where_the_committee_may_be_accused(
    client: FlaskClient, api: str, login: Callable[[str], dict[str, str]]
) -> None:
    routes = {"environment": "committee", "projects": "committee"}
    as_supervisor = login("supervisor")
    changed = client.put(f"{api}/complaint-settings", headers=as_supervisor,
                         json={"routes": routes, "respond_days": 2, "resolve_days": 10})
    assert changed.status_code == 200 and changed.json["routes"]["projects"] == "committee"
    for category, route in (("finances", "committee"), ("cadre_conduct", "grid"), ("points_appeal", "committee")):
        refused = client.put(f"{api}/complaint-settings", headers=as_supervisor,
                             json={"routes": {category: route}, "respond_days": 3, "resolve_days": 15})
        assert refused.status_code == 422 and refused.json["errors"][0]["field"] == f"routes.{category}"
    by_committee = client.put(f"{api}/complaint-settings", headers=login("secretary"),
                              json={"routes": {"projects": "committee"}, "respond_days": 3, "resolve_days": 15})
    assert by_committee.status_code == 403, "the committee cannot reroute complaints"
    assert client.get(f"{api}/complaint-settings").json["routes"]["finances"] == "supervision"


def test_filing_needs_a_registered_desk(client: FlaskClient, village: StoredVillage) -> None:
    response = file(client, f"/api/v1/villages/{village.slug}")
    assert response.status_code == 503 and "register it with member.add" in response.json["detail"]
    assert village.store.state(village.slug).cases == {}, "nothing written"


@pytest.mark.parametrize(
    ("form", "field"),
    [({"category": "gossip"}, "category"), ({"text": ""}, "text"), ({"plate": "x" * 30}, "plate"),
     ({"appeal_of": "0" * 32}, "appeal_of")],
)
def test_bad_input_names_the_field_and_writes_nothing(
    client: FlaskClient, api: str, village: StoredVillage, form: dict[str, str], field: str
) -> None:
    size = village.size()
    response = file(client, api, **{"category": "finances", "text": "有问题", **form})  # type: ignore[arg-type]
    assert response.status_code == 422, response.json
    assert field in {e["field"] for e in response.json["errors"]}
    assert village.size() == size




def test_photos_are_re_encoded_without_gps_and_only_images_are_accepted(
    client: FlaskClient, api: str, village: StoredVillage, login: Callable[[str], dict[str, str]]
) -> None:
    raw = jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(0x8825), "the upload carries GPS"
    filed = file(client, api, photos=[(raw, "IMG_0001.jpg")]).json
    (sha,) = filed["content"]["photos"]
    served = client.get(f"{api}/complaints/{filed['receipt']}/photos/{sha}", headers=login("supervisor"))
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert not Image.open(io.BytesIO(served.data)).getexif(), "no EXIF at all, so no GPS"
    size = village.size()
    for payload, name in ((b"<html><script>alert(1)</script></html>", "photo.jpg"), (b"MZ\x90\x00" + bytes(200), "a.exe")):
        refused = file(client, api, photos=[(payload, name)])
        assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "photos[0]"
    assert village.size() == size


def test_filing_is_rate_limited_per_client(client: FlaskClient, api: str) -> None:
    statuses = [file(client, api).status_code for _ in range(6)]
    assert statuses == [201] * 5 + [429]


# --- who may read and act -----------------------------------------------------------------------------


@pytest.fixture
def filed(client: FlaskClient, api: str, village: StoredVillage) -> dict[str, str]:
    """One complaint on each route, by category: their receipts and tracking codes."""
    plate = plate_of(village, "h1")
    made = {}
    for category in ("finances", "points_appeal", "suggestion", "environment"):
        answer = file(client, api, category, plate=plate).json
        made[category], made[f"{category}-code"] = answer["receipt"], answer["tracking_code"]
    return made


CAN_READ = {
    "finances": {"supervisor", "township"},
    "points_appeal": {"supervisor"},
    "suggestion": {"founder", "secretary", "chen"},
    "environment": {"founder", "secretary", "chen", "grid1"},
}


@pytest.mark.parametrize("member", ["founder", "secretary", "chen", "grid1", "grid2", "supervisor", "township", "auditor"])
def test_a_member_sees_and_reads_exactly_the_cases_routed_to_them(
    client: FlaskClient, api: str, filed: dict[str, str], login: Callable[[str], dict[str, str]], member: str
) -> None:
    headers = login(member)
    listed = {case["receipt"] for case in client.get(f"{api}/complaints", headers=headers).json["items"]}
    expected = {category for category, readers in CAN_READ.items() if member in readers}
    assert listed == {filed[category] for category in expected}
    for category in CAN_READ:
        response = client.get(f"{api}/complaints/{filed[category]}", headers=headers)
        assert response.status_code == (200 if category in expected else 403), (category, response.json)
        if response.status_code == 200:
            assert response.json["content"]["category"] == category


def test_complaints_are_private_without_a_token(client: FlaskClient, api: str, filed: dict[str, str]) -> None:
    assert client.get(f"{api}/complaints").status_code == 401
    assert client.get(f"{api}/complaints/{filed['finances']}").status_code == 401


def sign_step(village: StoredVillage, member: str, receipt: str, step: str, text: str | None = None,
              *, at: datetime | None = None, **body: Any) -> dict[str, Any]:
    """What a handler's browser posts: the signed step (dated ``at``, else now), and the text with the salt
    that opens it."""
    payload: dict[str, Any] = {}
    if text is not None:
        salt = secrets.token_bytes(16)
        body["commitment"] = step_commitment(salt, {"receipt": receipt, "step": step, "by": member, "text": text})
        payload = {"text": text, "salt": b64encode(salt)}
    dated = {"time": format_time(at)} if at else {}
    entry = village.kit.sign("complaint.step", {"receipt": receipt, "step": step, **body}, by=member, **dated)
    return {"entry": entry.to_wire(), **payload}


def test_a_case_runs_from_filing_to_rating_with_every_step_on_the_ledger(
    client: FlaskClient, api: str, village: StoredVillage, filed: dict[str, str],
    login: Callable[[str], dict[str, str]],
) -> None:
    receipt, code = filed["finances"], filed["finances-code"]
    as_supervisor = login("supervisor")
    for step, text in (("accept", None), ("reply", "已核查，账目将于下周公示")):
        posted = client.post(f"{api}/complaints/{receipt}/steps", headers=as_supervisor,
                             json=sign_step(village, "supervisor", receipt, step, text))
        assert posted.status_code == 201, posted.json
    answered = client.post(f"{api}/complaints/answer", json={"code": code, "text": "请公示到每一笔"})
    assert answered.status_code == 201 and answered.json["case"]["status"] == "replied"
    closing = client.post(f"{api}/complaints/{receipt}/steps", headers=as_supervisor,
                          json=sign_step(village, "supervisor", receipt, "close"))
    assert closing.json["case"]["status"] == "closed"
    seen = client.post(f"{api}/complaints/track", json={"code": code}).json
    assert [s["step"] for s in seen["steps"]] == ["accept", "reply", "answer", "close"]
    reply = seen["steps"][1]
    assert reply["text"] == "已核查，账目将于下周公示" and reply["by"] == "supervisor"
    entry = decode_leaf(village.store.leaf(village.slug, village.size() - 2))  # the reply... then the answer
    assert entry.body["step"] == "answer" and entry.body["commitment"] == seen["steps"][2]["commitment"]
    rated = client.post(f"{api}/complaints/rate", json={"code": code, "rating": "unsatisfied", "resolved": False})
    case = rated.json["case"]
    assert (case["status"], case["reopened"], case["escalated"]) == ("reopened", True, True)
    listed = client.get(f"{api}/complaints", headers=login("township")).json["items"]
    assert receipt in {c["receipt"] for c in listed}


def test_a_handler_step_must_be_the_handlers_own_and_open_its_commitment(
    client: FlaskClient, api: str, village: StoredVillage, filed: dict[str, str],
    login: Callable[[str], dict[str, str]],
) -> None:
    receipt = filed["finances"]
    size = village.size()
    forged = client.post(f"{api}/complaints/{receipt}/steps", headers=login("township"),
                         json=sign_step(village, "supervisor", receipt, "accept"))
    assert forged.status_code == 403 and forged.json["errors"][0]["field"] == "entry.entry.author"
    client.post(f"{api}/complaints/{receipt}/steps", headers=login("supervisor"),
                json=sign_step(village, "supervisor", receipt, "accept"))
    size += 1
    lying = sign_step(village, "supervisor", receipt, "reply", "原文")
    lying["text"] = "改过的答复"
    refused = client.post(f"{api}/complaints/{receipt}/steps", headers=login("supervisor"), json=lying)
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "salt"
    by_committee = client.post(f"{api}/complaints/{receipt}/steps", headers=login("secretary"),
                               json=sign_step(village, "secretary", receipt, "close"))
    assert by_committee.status_code == 403, "the committee cannot close a complaint about finances"
    assert village.size() == size


def test_a_handler_step_is_dated_now(
    client: FlaskClient, api: str, village: StoredVillage, filed: dict[str, str], clock: Clock,
    login: Callable[[str], dict[str, str]],
) -> None:
    receipt = filed["finances"]
    backdated = sign_step(village, "supervisor", receipt, "accept", at=clock() - timedelta(hours=1))
    refused = client.post(f"{api}/complaints/{receipt}/steps", headers=login("supervisor"), json=backdated)
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "entry.entry.time"


def test_an_upheld_appeal_reverses_the_deduction_and_a_deduction_cannot_answer_a_complaint(
    client: FlaskClient, api: str, village: StoredVillage, login: Callable[[str], dict[str, str]]
) -> None:
    kit = village.kit
    deduction = kit.sign("points.deduct", {"household": "h1", "rule": "D-01", "amount": 5, "reason": "柴草乱堆"})
    village.append(deduction)
    filed = file(client, api, "other", "那堆柴草不是我家的", plate=plate_of(village, "h1"), appeal_of=deduction.id).json
    case = village.store.state(village.slug).cases[filed["receipt"]]
    assert (case.route, filed["content"]["category"], filed["content"]["appeal_of"]) == ("jury", "points_appeal", deduction.id)
    reversal = kit.sign("points.reverse", {"entry": deduction.id, "reason": "申诉成立", "case": filed["receipt"]}, by="supervisor")
    assert client.post(f"{api}/entries", json=reversal.to_wire()).status_code == 201
    assert village.store.state(village.slug).balance("household:h1", "morality") == 0
    revenge = kit.sign("points.deduct", {"household": "h1", "rule": "D-01", "amount": 5,
                                        "reason": f"恶意申诉 {filed['receipt']}"})
    assert client.post(f"{api}/entries", json=revenge.to_wire()).status_code == 422


def test_an_appeal_must_name_a_deduction_of_the_household(
    client: FlaskClient, api: str, village: StoredVillage
) -> None:
    deduction = village.kit.sign("points.deduct", {"household": "h2", "rule": "D-01", "amount": 5, "reason": "乱堆"})
    award = village.kit.award("h1", 3)
    village.append(deduction, award)
    for entry_id in (deduction.id, award.id):
        refused = file(client, api, "points_appeal", plate=plate_of(village, "h1"), appeal_of=entry_id)
        assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "appeal_of"


def test_a_grid_worker_files_for_an_elderly_villager_recorded_as_assisted(
    client: FlaskClient, api: str, login: Callable[[str], dict[str, str]]
) -> None:
    filed = file(client, api, "environment", household="h2", headers=login("grid1")).json
    assert (filed["content"]["household"], filed["content"]["assisted_by"]) == ("h2", "grid1")
    assert file(client, api, "environment", household="h2").status_code == 401


@pytest.mark.parametrize("member", ["founder", "secretary", "auditor", "supervisor", "grid2"])
def test_nobody_but_the_households_grid_worker_files_on_its_behalf(
    client: FlaskClient, api: str, village: StoredVillage, login: Callable[[str], dict[str, str]], member: str
) -> None:
    size = village.size()
    refused = file(client, api, "finances", household="h2", headers=login(member))
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "household", refused.json
    assert f"only the grid worker of grid g1 may file on behalf of household h2, not {member}" in refused.json["detail"]
    assert village.size() == size


# --- deadlines and figures -------------------------------------------------------------------------------


def test_a_missed_deadline_escalates_the_case_to_the_township(
    client: FlaskClient, api: str, village: StoredVillage, clock: Clock, login: Callable[[str], dict[str, str]]
) -> None:
    receipt = file(client, api, "suggestion").json["receipt"]
    township = login("township")
    filed_at = clock()
    clock.advance(days=3)
    assert client.get(f"{api}/complaints", headers=township).json["items"] == [], "three days are allowed"
    clock.advance(seconds=1)
    (case,) = client.get(f"{api}/complaints", headers=township).json["items"]
    assert (case["receipt"], case["escalated"]) == (receipt, True)
    escalation = decode_leaf(village.store.leaf(village.slug, village.size() - 1))
    assert escalation.body == {"receipt": receipt, "step": "escalate", "reason": "response_overdue"}
    assert escalation.time == format_time(filed_at + timedelta(days=3, seconds=1)), "signed at the server's clock"
    clock.advance(days=30)
    client.get(f"{api}/complaints", headers=township)
    assert village.size() == escalation_index(village) + 1, "escalated once"


def escalation_index(village: StoredVillage) -> int:
    return max(i for i in range(village.size()) if decode_leaf(village.store.leaf(village.slug, i)).kind == "complaint.step")


def test_the_public_figures_count_resolution_satisfaction_and_timeliness(
    client: FlaskClient, api: str, village: StoredVillage, clock: Clock, login: Callable[[str], dict[str, str]]
) -> None:
    """Four cases filed in one month: one resolved on time and satisfied, one replied late and unsatisfied
    then closed again, one closed and rated basically satisfied, one still open."""
    as_committee = login("secretary")
    filed_in = clock().strftime("%Y-%m")
    codes = [file(client, api, "suggestion", f"建议 {n}").json for n in range(4)]

    def step(receipt: str, name: str, text: str | None = None) -> None:
        posted = client.post(f"{api}/complaints/{receipt}/steps", headers=as_committee,
                             json=sign_step(village, "secretary", receipt, name, text, at=clock()))
        assert posted.status_code == 201, posted.json

    def handle(filed: dict[str, Any], hours: float) -> None:
        step(filed["receipt"], "accept")
        clock.advance(hours=hours)
        step(filed["receipt"], "reply", "已处理")
        step(filed["receipt"], "close")

    def rate(filed: dict[str, Any], rating: str, resolved: bool) -> None:
        client.post(f"{api}/complaints/rate", json={"code": filed["tracking_code"], "rating": rating, "resolved": resolved})

    handle(codes[0], 2)
    rate(codes[0], "satisfied", True)
    handle(codes[2], 4)
    rate(codes[2], "basically_satisfied", True)
    handle(codes[1], 24 * 20 - 6)  # replied 20 days after filing: past the 15-day deadline
    rate(codes[1], "unsatisfied", False)
    step(codes[1]["receipt"], "accept")
    step(codes[1]["receipt"], "reply", "再次处理")
    step(codes[1]["receipt"], "close")
    rate(codes[1], "unsatisfied", False)
    (march,) = client.get(f"{api}/complaint-figures").json["months"]  # the month of filing, whatever it is
    assert march["month"] == filed_in
    assert (march["filed"], march["closed"], march["resolved"], march["rated"], march["satisfied"]) == (4, 3, 2, 3, 2)
    assert march["resolution_rate"] == 50.0 and march["satisfaction_rate"] == 66.7 and march["on_time_rate"] == 66.7
    assert march["median_hours_to_reply"] == 6.0  # replies at 2 h, 6 h and 20 days after filing



@pytest.mark.parametrize("member", ["founder", "secretary", "chen", "grid1", "grid2", "supervisor", "township", "auditor", "intake"])
def test_every_private_complaint_route_answers_only_the_members_a_case_is_routed_to(
    client: FlaskClient, api: str, village: StoredVillage, login: Callable[[str], dict[str, str]], member: str
) -> None:
    """Reading a case, its photos, and acting on it: each route, each role; nobody without a token."""
    raw = jpeg_with_gps()
    receipts = {category: file(client, api, category, plate=plate_of(village, "h1"), photos=[(raw, "a.jpg")]).json
                for category in CAN_READ}
    headers = login(member)
    for category, filed in receipts.items():
        may = member in CAN_READ[category]
        receipt, (sha,) = filed["receipt"], filed["content"]["photos"]
        reads = [client.get(f"{api}/complaints/{receipt}", headers=headers),
                 client.get(f"{api}/complaints/{receipt}/photos/{sha}", headers=headers)]
        assert [r.status_code for r in reads] == ([200, 200] if may else [403, 403]), (category, member)
        acted = client.post(f"{api}/complaints/{receipt}/steps", headers=headers,
                            json=sign_step(village, member, receipt, "accept"))
        assert acted.status_code == (201 if may else 403), (category, member, acted.json)
        for path in (f"/complaints/{receipt}", f"/complaints/{receipt}/photos/{sha}"):
            assert client.get(f"{api}{path}").status_code == 401


def test_a_case_accepted_but_not_closed_in_time_escalates_for_resolution(
    client: FlaskClient, api: str, village: StoredVillage, clock: Clock, login: Callable[[str], dict[str, str]]
) -> None:
    receipt = file(client, api, "suggestion").json["receipt"]
    client.post(f"{api}/complaints/{receipt}/steps", headers=login("secretary"),
                json=sign_step(village, "secretary", receipt, "accept"))
    clock.advance(days=14)
    assert client.get(f"{api}/complaints", headers=login("township")).json["items"] == [], "accepted in time"
    clock.advance(days=1, seconds=1)
    (case,) = client.get(f"{api}/complaints", headers=login("township")).json["items"]
    assert case["escalated"] and case["status"] == "accepted"
    escalation = decode_leaf(village.store.leaf(village.slug, village.size() - 1))
    assert escalation.body["reason"] == "resolution_overdue"


def test_an_anonymous_complaint_keeps_no_address_or_device(
    client: FlaskClient, api: str, village: StoredVillage
) -> None:
    marker_agent = "Mozilla/5.0 (Linux; Android 9; Redmi 6A) device-7f3a"
    response = client.post(f"{api}/complaints", data={"category": "cadre_conduct", "text": "有人收受红包", "anonymous": "true"},
                           headers={"User-Agent": marker_agent, "X-Forwarded-For": "10.9.8.7"},
                           environ_base={"REMOTE_ADDR": "192.0.2.77"}, content_type="multipart/form-data")
    assert response.status_code == 201
    with read_session(village.store.engine) as session:
        stored = [repr(row) for model in (m.ComplaintRow, m.ComplaintMessageRow, m.ComplaintPhotoRow, m.CaseRow)
                  for row in session.execute(select(model)).all()]
        leaves = [row.leaf.decode() for row in session.execute(select(m.EntryRow)).scalars()]
    for trace in ("192.0.2.77", "10.9.8.7", "device-7f3a", "Redmi"):
        assert not any(trace in text for text in stored + leaves), trace


def test_the_village_page_shows_the_figures_and_no_complaint_content(
    client: FlaskClient, api: str, village: StoredVillage, clock: Clock, login: Callable[[str], dict[str, str]]
) -> None:
    filed = file(client, api, "suggestion", "建议修路灯").json
    for step, text in (("accept", None), ("reply", "已安排"), ("close", None)):
        client.post(f"{api}/complaints/{filed['receipt']}/steps", headers=login("secretary"),
                    json=sign_step(village, "secretary", filed["receipt"], step, text))
    client.post(f"{api}/complaints/rate", json={"code": filed["tracking_code"], "rating": "satisfied", "resolved": True})
    page = client.get(f"/v/{village.slug}?lang=en").get_data(as_text=True)
    figures = page[page.index('id="complaint-figures"'):page.index("</table>", page.index('id="complaint-figures"'))]
    assert clock().strftime("%Y-%m") in figures and figures.count("100.0 %") == 3, "resolved, satisfied and on time"
    assert "建议修路灯" not in page and "已安排" not in page and filed["tracking_code"] not in page


def test_every_step_shows_who_took_it_and_only_the_commitments_on_the_log(
    client: FlaskClient, api: str, village: StoredVillage, filed: dict[str, str], login: Callable[[str], dict[str, str]]
) -> None:
    receipt, code = filed["suggestion"], filed["suggestion-code"]
    for step, text in (("accept", None), ("reply", "已安排")):
        client.post(f"{api}/complaints/{receipt}/steps", headers=login("secretary"),
                    json=sign_step(village, "secretary", receipt, step, text))
    steps = client.post(f"{api}/complaints/track", json={"code": code}).json["steps"]
    assert [(s["step"], s["by"], s["commitment"] is None) for s in steps] == [("accept", "secretary", True),
                                                                              ("reply", "secretary", False)]
    salt, content = b64decode(steps[1]["salt"]), {"receipt": receipt, "step": "reply", "by": "secretary", "text": "已安排"}
    assert step_commitment(salt, content) == steps[1]["commitment"]
