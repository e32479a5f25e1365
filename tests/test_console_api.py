"""The committee console's server side: public members and grids, a household search that reaches the
personal data (the committee, supervisors and township see every household, a grid worker their grid),
attachments stored by the hash of their cleaned bytes, the points supermarket (a redemption is the
member's own signed entry, appended with the stock lowered, or nothing at all), the month's redemptions,
and the preview of an old ledger's import, which checks every row as the ledger would and writes nothing."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from typing import Any

import openpyxl
import pytest
from answers import problem
from flask.testing import FlaskClient
from kit import StoredVillage
from pictures import jpeg_with_gps
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from ledger import merkle
from ledger.canonical import b64decode
from ledger.entries import Entry
from ledger.note import open_checkpoint

BASE = "/api/v1/villages/testvillage"
Login = Callable[[str], dict[str, str]]




# --- members and grids -----------------------------------------------------------------------------


def test_members_and_grids_are_public_with_roles_grids_and_keys(client: FlaskClient, village: StoredVillage) -> None:
    members = {m["member"]: m for m in client.get(f"{BASE}/members").json["items"]}
    assert members["secretary"] == {
        "member": "secretary", "name": "李秀英", "roles": ["committee"], "grid": None, "household": None,
        "keys": [{"key": village.kit.key_b64("secretary"), "added_at": members["secretary"]["keys"][0]["added_at"],
                  "revoked_at": None}],
    }
    assert members["grid1"]["grid"] == "g1" and members["chen"]["household"] == "h1"
    assert client.get(f"{BASE}/grids").json["items"] == [
        {"grid": "g1", "name": "g1 组", "name_en": None}, {"grid": "g2", "name": "g2 组", "name_en": None},
    ]
    problem(client.get("/api/v1/villages/nowhere/members"), 404)


# --- household search ------------------------------------------------------------------------------


def test_the_committee_finds_a_household_by_its_heads_name_number_or_label(
    client: FlaskClient, village: StoredVillage, login: Login
) -> None:
    village.store.put_private(village.slug, "h2", {"head": "王建国", "phone": "13800000000"})
    problem(client.get(f"{BASE}/households/search?q=王建国"), 401, "Authorization")
    secretary = login("secretary")

    def found(query: str, who: dict[str, str] = secretary) -> list[Any]:
        response = client.get(f"{BASE}/households/search?{query}", headers=who)
        assert response.status_code == 200, response.data
        return [item["household"] for item in response.json["items"]]

    by_name = client.get(f"{BASE}/households/search?q=王建国", headers=secretary).json["items"]
    assert by_name == [{"household": "h2", "number": "g1-h2", "label": "h2家", "grid": "g1", "name": "王建国"}]
    assert found("q=G1-H") == ["h1", "h2"], "the number, ignoring case"
    assert found("q=h3家") == ["h3"], "the public label"
    assert found("q=g1-h2") == ["h2"] and found("q=nobody") == []
    assert found("") == ["h1", "h2", "h3"] and found("limit=2") == ["h1", "h2"]
    assert found("grid=g2") == ["h3"]
    assert found("", login("supervisor")) == found("", login("township")) == ["h1", "h2", "h3"]
    for outsider in ("auditor", "intake"):
        problem(client.get(f"{BASE}/households/search", headers=login(outsider)), 403)
    problem(client.get(f"{BASE}/households/search?limit=501", headers=secretary), 422, "limit")


# One personal-data policy for every route (Caller.may_read_personal_data): who reads the head of household
# h2's name, per role, through the search and through .../private.
READS_H2_PERSONAL_DATA = {"founder": True, "secretary": True, "chen": True, "grid1": True, "grid2": False,
                          "supervisor": False, "township": False, "auditor": False, "intake": False}


@pytest.mark.parametrize("member", list(READS_H2_PERSONAL_DATA))
def test_one_personal_data_policy_for_every_route(client: FlaskClient, village: StoredVillage, login: Login, member: str) -> None:
    village.store.put_private(village.slug, "h2", {"head": "王建国", "phone": "13800000000"})
    who = login(member)
    private = client.get(f"{BASE}/households/h2/private", headers=who)
    searched = client.get(f"{BASE}/households/search?q=王建国", headers=who)
    listed = client.get(f"{BASE}/households/search?q=g1-h2", headers=who)
    names = [item.get("name") for response in (searched, listed) if response.status_code == 200
             for item in response.json["items"]]
    reads = READS_H2_PERSONAL_DATA[member]
    assert (private.status_code == 200) is reads, private.json
    assert ("王建国" in names) is reads, "a name found by searching for it, or shown beside the number"
    if not reads:
        assert private.status_code == 403 and "王建国" not in listed.get_data(as_text=True)


def test_a_grid_worker_searches_only_their_own_grid(client: FlaskClient, village: StoredVillage, login: Login) -> None:
    grid1 = login("grid1")
    assert [i["household"] for i in client.get(f"{BASE}/households/search", headers=grid1).json["items"]] == ["h1", "h2"]
    assert client.get(f"{BASE}/households/search?q=h3", headers=grid1).json["items"] == []
    problem(client.get(f"{BASE}/households/search?grid=g2", headers=grid1), 403, "grid")
    assert [i["household"] for i in client.get(f"{BASE}/households/search", headers=login("grid2")).json["items"]] == ["h3"]


# --- attachments -----------------------------------------------------------------------------------




def upload(client: FlaskClient, headers: dict[str, str], data: bytes, name: str) -> Any:
    # Encoded here, in memory: the test client spools a large form to a temporary file it never closes.
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), filename=name)})
    return client.post(f"{BASE}/attachments", headers=headers, data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def test_a_photo_is_kept_without_its_exif_under_the_hash_of_the_cleaned_bytes(
    client: FlaskClient, village: StoredVillage, login: Login
) -> None:
    raw = jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(0x8825), "the upload carries GPS"
    stored = upload(client, login("grid1"), raw, "DCIM/rescue.JPEG")
    assert stored.status_code == 201, stored.data
    assert stored.json["media_type"] == "image/jpeg" and stored.json["name"] == "rescue.jpg"

    served = client.get(f"{BASE}/attachments/{stored.json['sha256']}")  # no token: entries that name it are public
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert not Image.open(io.BytesIO(served.data)).getexif(), "no EXIF at all, so no GPS"
    assert hashlib.sha256(served.data).hexdigest() == stored.json["sha256"] != hashlib.sha256(raw).hexdigest()
    assert stored.json["size"] == len(served.data)
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.headers["X-Content-Type-Options"] == "nosniff" and "Content-Disposition" not in served.headers

    again = upload(client, login("secretary"), raw, "again.jpg")
    assert again.status_code == 201 and again.json["sha256"] == stored.json["sha256"], "idempotent by hash"


def test_a_pdf_is_kept_as_uploaded_and_served_as_a_download(client: FlaskClient, village: StoredVillage, login: Login) -> None:
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    stored = upload(client, login("secretary"), pdf, "会议纪要")
    assert stored.status_code == 201, stored.data
    assert stored.json == {"sha256": hashlib.sha256(pdf).hexdigest(), "media_type": "application/pdf",
                           "size": len(pdf), "name": "会议纪要.pdf"}
    served = client.get(f"{BASE}/attachments/{stored.json['sha256']}")
    assert served.data == pdf and served.mimetype == "application/pdf"
    assert served.headers["Content-Disposition"].startswith("attachment") and served.headers["X-Content-Type-Options"] == "nosniff"


def test_a_pdf_may_exceed_the_apis_request_limit_up_to_20_mb(client: FlaskClient, village: StoredVillage, login: Login) -> None:
    large = b"%PDF-1.7\n" + bytes(17 * 1024 * 1024)  # the app refuses other bodies over 16 MB
    assert upload(client, login("secretary"), large, "scan.pdf").status_code == 201
    problem(upload(client, login("secretary"), large + bytes(3 * 1024 * 1024), "scan.pdf"), 422, "file")


def test_anything_but_a_photo_or_a_pdf_is_refused_and_only_signing_members_upload(
    client: FlaskClient, village: StoredVillage, login: Login
) -> None:
    html = b"<html><script>alert(1)</script></html>"
    body = problem(upload(client, login("secretary"), html, "photo.jpg"), 422, "file")
    assert "not a JPEG, PNG or WebP image nor a PDF" in body["detail"]
    problem(upload(client, {}, jpeg_with_gps(), "a.jpg"), 401, "Authorization")
    problem(upload(client, login("auditor"), jpeg_with_gps(), "a.jpg"), 403)
    problem(client.post(f"{BASE}/attachments", headers=login("secretary"), data={}, content_type="multipart/form-data"), 422, "file")
    problem(client.get(f"{BASE}/attachments/{'ab' * 32}"), 404)
    problem(client.get(f"{BASE}/attachments/not-a-hash"), 404)


# --- the points supermarket -------------------------------------------------------------------------


SOAP = {"name": "香皂", "price": 3, "stock": 5}


@pytest.fixture
def shop(client: FlaskClient, village: StoredVillage, login: Login) -> dict[str, str]:
    """Soap at 3 points, 5 in stock; household h2 has 10 morality points. The committee's headers."""
    village.append(village.kit.award("h2", 10))
    committee = login("secretary")
    assert client.put(f"{BASE}/supermarket/soap", headers=committee, json=SOAP).status_code == 200
    return committee


def redeem_entry(village: StoredVillage, quantity: int = 2, *, amount: int | None = None, item: str = "香皂",
                 household: str = "h2", by: str = "secretary") -> Entry:
    body = {"household": household, "amount": 3 * quantity if amount is None else amount, "item": item, "quantity": quantity}
    return village.kit.sign("points.redeem", body, by=by)


def stock(client: FlaskClient) -> int:
    return int(next(good["stock"] for good in client.get(f"{BASE}/supermarket").json["items"] if good["item"] == "soap"))


def test_only_the_committee_sets_the_supermarkets_items(client: FlaskClient, village: StoredVillage, login: Login) -> None:
    problem(client.put(f"{BASE}/supermarket/soap", json=SOAP), 401)
    problem(client.put(f"{BASE}/supermarket/soap", headers=login("grid1"), json=SOAP), 403)
    committee = login("secretary")
    created = client.put(f"{BASE}/supermarket/soap", headers=committee, json=SOAP)
    assert created.status_code == 200 and created.json == {"item": "soap", **SOAP}
    client.put(f"{BASE}/supermarket/towel", headers=committee, json={"name": "毛巾", "price": 5, "stock": 0})
    assert client.put(f"{BASE}/supermarket/soap", headers=committee, json={**SOAP, "stock": 20}).json["stock"] == 20
    assert client.get(f"{BASE}/supermarket").json["items"] == [  # public
        {"item": "soap", "name": "香皂", "price": 3, "stock": 20}, {"item": "towel", "name": "毛巾", "price": 5, "stock": 0},
    ]
    problem(client.put(f"{BASE}/supermarket/soap", headers=committee, json={**SOAP, "price": 0}), 422, "price")
    problem(client.put(f"{BASE}/supermarket/soap", headers=committee, json={**SOAP, "stock": -1}), 422, "stock")
    problem(client.put(f"{BASE}/supermarket/soap", headers=committee, json={**SOAP, "name": " "}), 422, "name")
    problem(client.put(f"{BASE}/supermarket/bar", headers=committee, json=SOAP), 422, "name")  # soap has that name
    problem(client.put(f"{BASE}/supermarket/Soap!", headers=committee, json=SOAP), 422, "item")
    problem(client.put(f"{BASE}/supermarket/redeem", headers=committee, json=SOAP), 422, "item")


def test_a_redemption_appends_the_members_signed_entry_and_lowers_the_stock(
    client: FlaskClient, village: StoredVillage, shop: dict[str, str], login: Login
) -> None:
    entry = redeem_entry(village, 2)
    size = village.size()
    answer = client.post(f"{BASE}/supermarket/redeem", headers=shop, json={"item": "soap", "entry": entry.to_wire()})
    assert answer.status_code == 201, answer.data
    assert answer.json["stock"] == 3 == stock(client)
    assert answer.json["index"] == size and answer.json["tree_size"] == village.size() == size + 1
    trusted = village.trusted()
    checkpoint = open_checkpoint(answer.json["checkpoint"], trusted)
    merkle.verify_inclusion(answer.json["index"], checkpoint.size, merkle.hash_leaf(entry.leaf),
                            [b64decode(h) for h in answer.json["inclusion_proof"]], checkpoint.root_hash)
    assert village.store.state(village.slug).balance("household:h2", "morality") == 4

    again = client.post(f"{BASE}/supermarket/redeem", headers=shop, json={"item": "soap", "entry": entry.to_wire()})
    assert again.status_code == 201 and again.json["index"] == size and again.json["stock"] == 3, "re-posting changes nothing"

    grid1 = client.post(f"{BASE}/supermarket/redeem", headers=login("grid1"),
                        json={"item": "soap", "entry": redeem_entry(village, 1, by="grid1").to_wire()})
    assert grid1.status_code == 201 and grid1.json["stock"] == 2, "a grid worker redeems in their grid"


def test_a_refused_redemption_changes_neither_the_stock_nor_the_log(
    client: FlaskClient, village: StoredVillage, shop: dict[str, str], login: Login
) -> None:
    refused = [  # (request, headers, status, field)
        ({"item": "soap", "entry": redeem_entry(village, 4)}, shop, 422, "entry.entry.body.amount"),  # 12 > 10 points
        ({"item": "soap", "entry": redeem_entry(village, 3, amount=6)}, shop, 422, "entry.entry.body.amount"),  # wrong price
        ({"item": "soap", "entry": redeem_entry(village, 1, item="肥皂")}, shop, 422, "entry.entry.body.item"),
        ({"item": "towel", "entry": redeem_entry(village, 1)}, shop, 422, "item"),  # no such item
        ({"item": "soap", "entry": redeem_entry(village, 1, household="h3")}, shop, 422, "entry.entry.body.amount"),  # 0 points
        ({"item": "soap", "entry": redeem_entry(village, 1, household="h3", by="grid1")}, login("grid1"), 403,
         "entry.entry.body.household"),  # outside grid1's grid
        ({"item": "soap", "entry": redeem_entry(village, 1)}, login("grid1"), 403, "entry.entry.author"),  # not theirs
        ({"item": "soap", "entry": village.kit.award("h2", 1, by="secretary")}, shop, 422, "entry.entry.kind"),
        ({"item": "soap", "entry": redeem_entry(village, 1)}, login("supervisor"), 403, None),
    ]
    client.put(f"{BASE}/supermarket/soap", headers=shop, json={**SOAP, "stock": 2})
    refused.append(({"item": "soap", "entry": redeem_entry(village, 3)}, shop, 422, "entry.entry.body.quantity"))  # 3 > 2
    size = village.size()
    for body, headers, status, field in refused:
        wire = {"item": body["item"], "entry": body["entry"].to_wire()}
        problem(client.post(f"{BASE}/supermarket/redeem", headers=headers, json=wire), status, field)
        assert stock(client) == 2 and village.size() == size, body["entry"].body
    problem(client.post(f"{BASE}/supermarket/redeem", json={"item": "soap", "entry": redeem_entry(village).to_wire()}), 401)


def test_the_months_redemptions_are_reported_with_totals_per_item(
    client: FlaskClient, village: StoredVillage, shop: dict[str, str]
) -> None:
    first, second = redeem_entry(village, 1), redeem_entry(village, 2)
    for entry in (first, second):
        assert client.post(f"{BASE}/supermarket/redeem", headers=shop, json={"item": "soap", "entry": entry.to_wire()}).status_code == 201
    village.append(village.kit.sign("points.reverse", {"entry": first.id, "reason": "商品缺货，退回积分"}, by="supervisor"))
    month = village.kit.clock.month()
    report = client.get(f"{BASE}/supermarket/redemptions?month={month}").json
    assert [(i["household"], i["item"], i["quantity"], i["amount"], i["reversed"]) for i in report["items"]] == [
        ("h2", "香皂", 1, 3, True), ("h2", "香皂", 2, 6, False),
    ]
    assert report["items"][0]["time"] == first.time
    assert report["totals"] == {"香皂": {"quantity": 2, "amount": 6}}
    village.kit.clock.next_month()
    assert client.get(f"{BASE}/supermarket/redemptions?month={village.kit.clock.month()}").json == {"items": [], "totals": {}}
    problem(client.get(f"{BASE}/supermarket/redemptions?month=2026-13"), 422, "month")
    problem(client.get(f"{BASE}/supermarket/redemptions"), 422, "month")


# --- importing an old ledger -------------------------------------------------------------------------


def preview(client: FlaskClient, headers: dict[str, str], data: bytes, kind: str = "points.award",
            name: str = "ledger.csv", **form: str) -> Any:
    return client.post(f"{BASE}/imports/preview", headers=headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), name), "kind": kind, **form})


def csv_bytes(rows: list[list[str]], encoding: str = "gb18030") -> bytes:
    return "\r\n".join(",".join(row) for row in rows).encode(encoding)


def test_a_gb18030_csv_is_checked_row_by_row_as_the_ledger_would_and_nothing_is_written(
    client: FlaskClient, village: StoredVillage, login: Login
) -> None:
    village.append(village.kit.sign("rule.retire", {"rule": "C-01", "reason": "并入新版积分细则"}))
    rows = [
        ["户号", "规则编号", "分值", "事由", "备注"],
        ["g1-h1", "M-01", "5", "垃圾分类到位", "老台账第3页"],  # 1: by number
        ["h2", "m-01", "３", "清理河道", ""],  # 2: by id, rule and full-width digit as typed
        ["9-999", "M-01", "5", "x", ""],  # 3
        ["h2", "X-99", "5", "x", ""],  # 4
        ["h2", "D-01", "5", "x", ""],  # 5: a deduction rule
        ["h2", "C-01", "10", "x", ""],  # 6: retired
        ["h2", "M-01", "11", "x", ""],  # 7: out of bounds
        ["h2", "M-01", "五", "x", ""],  # 8
        ["h2", "M-05", "50", "见义勇为", ""],  # 9: evidence required
        ["h2", "M-01", "5", "", ""],  # 10
        ["", "", "", "", ""],  # 11: blank, skipped
        ["h3", "M-01", "2", "长" * 501, ""],  # 12
    ]
    size = village.size()
    answer = preview(client, login("secretary"), csv_bytes(rows))
    assert answer.status_code == 200, answer.data
    result = answer.json
    assert result["columns"] == rows[0]
    assert result["mapping"] == {"household": "户号", "rule": "规则编号", "amount": "分值", "reason": "事由"}
    assert (result["valid"], result["invalid"]) == (2, 9)
    by_row = {row["row"]: row for row in result["rows"]}
    assert 11 not in by_row
    assert {k: by_row[1][k] for k in ("household", "number", "rule", "amount", "reason", "errors")} == {
        "household": "h1", "number": "g1-h1", "rule": "M-01", "amount": 5, "reason": "垃圾分类到位", "errors": []}
    assert (by_row[2]["household"], by_row[2]["rule"], by_row[2]["amount"], by_row[2]["errors"]) == ("h2", "M-01", 3, [])

    def error(row: int) -> tuple[str, str]:
        (only,) = by_row[row]["errors"]
        return only["field"], only["problem"]

    assert error(3) == ("household", "no household has the id or number '9-999'")
    assert error(4) == ("rule", "rule X-99 does not exist")
    assert error(5) == ("rule", "rule D-01 is for points.deduct, not points.award")
    assert error(6)[0] == "rule" and "retired" in error(6)[1]
    assert error(7) == ("amount", "amount 11 is outside rule M-01: between 1 and 10")
    assert error(8) == ("amount", "Not a valid integer.") and by_row[8]["amount"] is None
    assert error(9)[0] == "rule" and "requires evidence" in error(9)[1] and "import carries no evidence" in error(9)[1]
    assert error(10) == ("reason", "is empty")
    assert error(12)[0] == "reason" and "500" in error(12)[1]
    assert village.size() == size, "a preview writes nothing"


def test_an_xlsx_workbook_is_read_by_its_values_with_the_mapping_given(
    client: FlaskClient, village: StoredVillage, login: Login
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["门牌", "Rule", "扣分", "说明"])
    sheet.append(["g1-h1", "D-01", 5, "柴草乱堆"])
    sheet.append(["g1-h2", "D-01", 5.0, "乱堆乱放"])  # Excel keeps every number as a float
    sheet.append(["g2-h3", "M-01", 3, "不是扣分规则"])
    out = io.BytesIO()
    workbook.save(out)
    mapping = '{"amount": "扣分", "reason": "说明"}'  # the household and rule columns are suggested
    answer = preview(client, login("secretary"), out.getvalue(), "points.deduct", "台账.xlsx", mapping=mapping)
    assert answer.status_code == 200, answer.data
    result = answer.json
    assert result["mapping"] == {"household": "门牌", "rule": "Rule", "amount": "扣分", "reason": "说明"}
    assert [(r["household"], r["amount"], r["errors"]) for r in result["rows"][:2]] == [("h1", 5, []), ("h2", 5, [])]
    assert result["rows"][2]["errors"] == [{"field": "rule", "problem": "rule M-01 is for points.award, not points.deduct"}]

    unmapped = preview(client, login("secretary"), out.getvalue(), "points.deduct", "台账.xlsx").json
    assert unmapped["mapping"]["amount"] is None
    assert {"field": "amount", "problem": "no column is mapped to amount"} in unmapped["rows"][0]["errors"]
    problem(preview(client, login("secretary"), out.getvalue(), "points.deduct", mapping='{"amount": "分数"}'), 422, "mapping.amount")
    problem(preview(client, login("secretary"), out.getvalue(), "points.deduct", mapping='["分数"]'), 422, "mapping")


def test_a_grid_workers_rows_outside_their_grid_are_flagged(client: FlaskClient, village: StoredVillage, login: Login) -> None:
    rows = [["household", "code", "points", "reason"], ["h1", "M-01", "2", "ok"], ["h3", "M-01", "2", "not mine"]]
    result = preview(client, login("grid1"), csv_bytes(rows, "utf-8-sig")).json
    assert result["mapping"] == {"household": "household", "rule": "code", "amount": "points", "reason": "reason"}
    assert result["rows"][0]["errors"] == []
    assert result["rows"][1]["errors"] == [{"field": "household", "problem": "grid worker grid1 may act only in grid g1, not g2"}]


def test_formula_looking_cells_are_refused_row_by_row(client: FlaskClient, village: StoredVillage, login: Login) -> None:
    rows = [["户号", "规则编号", "分值", "事由"], ["h1", "M-01", "2", '=HYPERLINK("http://evil.example","点我")'],
            ["h2", "M-01", "2", "@SUM(A1:A9)"], ["h2", "M-01", "2", "+1"], ["h2", "M-01", "2", "清理河道 = 好事"]]
    result = preview(client, login("secretary"), csv_bytes(rows, "utf-8")).json
    assert [[e["field"] for e in row["errors"]] for row in result["rows"]] == [["reason"], ["reason"], ["reason"], []]
    assert "spreadsheet formula" in result["rows"][0]["errors"][0]["problem"]


def test_a_workbook_of_a_million_blank_rows_is_refused_at_once(
    client: FlaskClient, village: StoredVillage, login: Login
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["户号", "规则编号", "分值", "事由"])
    sheet.cell(row=1_000_000, column=1, value="h1")  # read back as a million rows, all but one blank
    out = io.BytesIO()
    workbook.save(out)
    started = time.monotonic()
    body = problem(preview(client, login("secretary"), out.getvalue(), name="blank.xlsx"), 422, "file")
    assert "more than 2000 lines (blank ones included)" in body["detail"]
    assert time.monotonic() - started < 5


def test_an_import_is_refused_whole_when_too_long_unreadable_or_not_the_callers_to_sign(
    client: FlaskClient, village: StoredVillage, login: Login
) -> None:
    secretary = login("secretary")
    too_long = [["户号", "规则", "积分", "原因"]] + [["h1", "M-01", "1", "垃圾分类"]] * 1001
    body = problem(preview(client, secretary, csv_bytes(too_long)), 422, "file")
    assert "more than 1000 rows" in body["detail"]
    assert preview(client, secretary, csv_bytes(too_long[:1001])).json["valid"] == 1000
    problem(preview(client, secretary, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), name="old.xls"), 422, "file")
    problem(preview(client, secretary, b"PK\x03\x04 not really a workbook", name="x.xlsx"), 422, "file")
    problem(preview(client, secretary, b"\x80\xff" * 10), 422, "file")  # neither UTF-8 nor GB18030
    problem(preview(client, secretary, b""), 422, "file")
    problem(preview(client, secretary, csv_bytes(too_long[:2]), kind="points.redeem"), 422, "kind")
    problem(preview(client, login("supervisor"), csv_bytes(too_long[:2])), 403, "kind")
    problem(preview(client, login("auditor"), csv_bytes(too_long[:2])), 403)
    problem(preview(client, {}, csv_bytes(too_long[:2])), 401)
