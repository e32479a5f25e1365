"""The committee console's points supermarket, village affairs and spreadsheet import, as a committee member
uses them in headless Chromium at phone and desktop sizes: stock a good and redeem it for a household (a
redemption the balance does not cover is refused before anything is signed) with a printable receipt;
publish a finance record with a PDF and a photo, and a project with its progress update, and find them on
the village page; import a CSV and an XLSX ledger, previewed row by row, its valid rows posted as one
batch."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from typing import Any

import openpyxl
import pytest
from conftest import SCREENSHOTS, screenshot
from kit import StoredVillage
from PIL import Image

from storage import supermarket as shop

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def photo(name: str = "receipt.jpg") -> dict[str, Any]:
    out = io.BytesIO()
    Image.new("RGB", (120, 90), (200, 60, 20)).save(out, "JPEG")
    return {"name": name, "mimeType": "image/jpeg", "buffer": out.getvalue()}


def posted(page: Any) -> str:
    """The status line once the console has finished (an index in it, no "…" left): its text."""
    page.wait_for_function("(s => /[0-9]/.test(s.textContent) && !s.textContent.includes('…'))"
                           "(document.getElementById('console-status'))")
    return str(page.inner_text("#console-status"))


def section_screenshot(page: Any, selector: str, name: str, request: pytest.FixtureRequest) -> None:
    """``screenshot`` of one part of the page: the console is one long page of every section."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(selector).screenshot(path=SCREENSHOTS / f"{name}-{request.node.callspec.id}.png")


def last_entry(village: StoredVillage) -> dict[str, Any]:
    return dict(json.loads(village.store.leaf(village.slug, village.size() - 1))["entry"])


def test_a_good_is_stocked_and_redeemed_for_a_household_with_a_printable_receipt(
    console: Callable[[str], Any], village: StoredVillage, request: pytest.FixtureRequest
) -> None:
    village.append(village.kit.award("h2", 10))
    page = console("secretary")
    page.fill("#good-name", "香皂")
    page.fill("#good-price", "3")
    page.fill("#good-stock", "5")
    page.click("#good-save")
    page.wait_for_selector("#goods tr:has-text('香皂')")
    assert [(g.name, g.price, g.stock) for g in shop.goods(village.store, village.slug)] == [("香皂", 3, 5)]

    page.fill("#redeem-search", "g1-h2")
    page.check("#redeem-results input[type=radio]")
    page.wait_for_function("document.getElementById('redeem-household').textContent.includes('10')")
    size = village.size()
    page.fill("#redeem-quantity", "4")  # 12 points: more than the household's 10
    assert "12" in page.inner_text("#redeem-error") and page.is_disabled("#redeem-submit")
    page.fill("#redeem-quantity", "6")  # more than the stock
    assert "5" in page.inner_text("#redeem-error") and page.is_disabled("#redeem-submit")
    assert village.size() == size, "refused before signing"

    page.fill("#redeem-quantity", "3")
    page.click("#redeem-submit")
    page.wait_for_selector("#receipt:not([hidden])")
    entry = last_entry(village)
    assert village.size() == size + 1
    assert entry["kind"] == "points.redeem" and entry["author"] == village.kit.key_b64("secretary")
    assert entry["body"] == {"household": "h2", "amount": 9, "item": "香皂", "quantity": 3}
    assert village.store.state(village.slug).balance("household:h2", "morality") == 1
    assert shop.goods(village.store, village.slug)[0].stock == 2
    fields = ("village", "household", "item", "quantity", "amount", "balance", "index", "entry", "date")
    receipt = {field: page.inner_text(f"#receipt [data-field={field}]") for field in fields}
    assert receipt | {"date": ""} == {
        "village": "测试村", "household": "g1-h2 h2家", "item": "香皂", "quantity": "3", "amount": "9",
        "balance": "1", "index": str(size), "entry": entry["id"], "date": "",
    }
    assert receipt["date"][:4] == entry["time"][:4]
    assert re.search(r"[:：] ?1$", page.inner_text("#redeem-household")), "the balance left after the redemption"

    page.evaluate("window.print = () => { window.printed = true; }")  # headless Chromium has no print dialog
    page.click("#print-receipt")
    assert page.evaluate("window.printed === true")
    page.emulate_media(media="print")
    assert page.is_visible("#receipt") and page.is_visible("#receipt [data-field=entry]")
    assert not any(page.is_visible(hidden) for hidden in ("#goods-table", "#console-nav", "#print-receipt"))
    screenshot(page, "console-receipt-printed", request)  # the page as printed: the receipt alone
    page.emulate_media(media="screen")

    totals = page.locator("#report-totals tbody tr", has_text="香皂").locator("td").all_inner_texts()
    assert totals == ["香皂", "2", "3", "9"]
    assert page.locator("#report-items tbody tr").count() == 1
    assert page.inner_text("#report-totals [data-total=amount]") == "9"


def test_affairs_are_published_with_attachments_and_a_project_progresses_by_new_versions(
    console: Callable[[str], Any], village: StoredVillage, live_server: str, request: pytest.FixtureRequest
) -> None:
    page = console("founder")
    size = village.size()
    page.fill("#affair-title", "道路硬化工程款")
    page.fill("#affair-text", "支付第一期工程款")
    page.fill("#affair-date", "2026-03-15")
    page.fill("#finance-amount", "1234.567")
    page.click("#affair-submit")
    page.wait_for_selector(".status.bad")
    assert page.inner_text("#finance-amount-error") and page.inner_text("#finance-direction-error")
    assert page.inner_text("#affair-title-error") == ""
    assert village.size() == size, "nothing is signed while a field is wrong"

    page.check("input[name=finance-direction][value=expense]")
    page.fill("#finance-amount", "1,234.5")
    page.fill("#finance-counterparty", "县交通建设公司")
    invoice = {"name": "发票.pdf", "mimeType": "application/pdf", "buffer": PDF}
    page.set_input_files("#affair-files", [invoice, photo()])
    page.wait_for_function("document.querySelectorAll('#affair-attachments li').length === 2")
    page.click("#affair-submit")
    posted(page)
    finance = last_entry(village)["body"]
    assert finance["finance"] == {"direction": "expense", "amount_fen": 123450, "counterparty": "县交通建设公司"}
    assert [(a["name"], a["media_type"]) for a in finance["attachments"]] == [
        ("发票.pdf", "application/pdf"), ("receipt.jpg", "image/jpeg")]

    page.check("input[name=category][value=project]")
    page.fill("#affair-title", "村道硬化")
    page.fill("#affair-text", "长 1.2 公里")
    page.fill("#affair-date", "2026-03-10")
    page.fill("#project-budget", "80000")
    page.fill("#project-contractor", "建德市路桥公司")
    page.fill("#project-progress", "10")
    page.click("#affair-submit")
    posted(page)
    first = last_entry(village)["body"]
    page.select_option("#affair-pick", first["affair"])
    assert page.input_value("#affair-title") == "村道硬化" and page.input_value("#project-budget") == "80000.00"
    assert page.is_disabled("input[name=category][value=finance]")
    page.fill("#project-progress", "101")
    page.click("#affair-submit")
    page.wait_for_selector("#project-progress-error:not(:empty)")
    page.fill("#project-progress", "60")
    page.select_option("#project-status", "ongoing")
    page.fill("#affair-date", "2026-03-20")
    page.click("#affair-submit")
    posted(page)
    update = last_entry(village)["body"]
    assert village.size() == size + 3
    assert update["affair"] == first["affair"], "a progress update is a new version of the same record"
    assert (first["project"]["progress"], update["project"]["progress"]) == (10, 60)
    assert update["project"]["status"] == "ongoing" and update["project"]["budget_fen"] == 8_000_000

    page.goto(f"{live_server}/v/{village.slug}?month=2026-03")
    record = page.locator(".affairs li", has_text="道路硬化工程款")
    links = record.locator("a[href*='/attachments/']")
    assert links.count() == 2
    for link, media_type in zip(links.all(), ("application/pdf", "image/jpeg")):
        href = link.get_attribute("href")
        got = page.request.get(f"{live_server}{href}")
        assert got.ok and got.headers["content-type"] == media_type
        assert hashlib.sha256(got.body()).hexdigest() == href.rsplit("/", 1)[1]
    assert page.request.get(f"{live_server}{links.first.get_attribute('href')}").body() == PDF
    project = page.locator(".affairs li", has_text="村道硬化")
    assert project.count() == 1 and "60%" in project.inner_text() and "10%" not in project.inner_text()
    section_screenshot(page, ".affairs", "village-affairs-attachments", request)


def csv_ledger() -> bytes:
    lines = ["户号,规则,分值,事由", "g1-h1,M-01,5,垃圾分类", "g1-h2,M-01,3,庭院整洁", "g9-h9,M-01,2,垃圾分类",
             "h3,M-01,4,门前三包"]  # row 3: no such household; row 4: a household by its id
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


def xlsx_ledger() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["门牌号", "细则编号", "积分", "原因"])
    sheet.append(["g1-h1", "D-01", 5, "柴草乱堆"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_a_spreadsheet_is_previewed_row_by_row_and_its_valid_rows_posted_as_one_batch(
    console: Callable[[str], Any], village: StoredVillage, request: pytest.FixtureRequest
) -> None:
    page = console("secretary")
    batches: list[Any] = []
    page.on("request", lambda sent: batches.append(sent) if sent.method == "POST" and "/entries" in sent.url else None)
    size = village.size()
    page.set_input_files("#import-file", {"name": "台账.csv", "mimeType": "text/csv", "buffer": csv_ledger()})
    page.wait_for_selector("#import-rows tbody tr[data-state=invalid]")
    assert page.locator("#import-rows tbody tr[data-row]").count() == 4
    assert page.input_value("#map-household") == "户号" and page.input_value("#map-reason") == "事由"
    bad = page.locator("#import-rows tbody tr[data-state=invalid]")
    assert bad.get_attribute("data-row") == "3" and bad.locator("td.wrong").first.inner_text() == "g9-h9"
    problems = page.inner_text("#import-rows tr[data-problems-of='3']")
    assert problems.startswith(page.inner_text("label[for=map-household]")), "named by its field"
    assert "no household has the id or number 'g9-h9'" in problems
    assert "3" in page.inner_text("#import-submit")

    page.select_option("#map-reason", "")  # no reason column: the preview runs again and every row lacks one
    page.wait_for_function("document.querySelectorAll('#import-rows tr[data-state=valid]').length === 0")
    assert page.is_disabled("#import-submit")
    page.select_option("#map-reason", "事由")
    page.wait_for_function("document.querySelectorAll('#import-rows tr[data-state=valid]').length === 3")
    assert village.size() == size, "a preview writes nothing"

    page.click("#import-submit")
    assert "3" in posted(page)
    assert village.size() == size + 3
    assert len(batches) == 1 and len(json.loads(batches[0].post_data)["entries"]) == 3, "one batch"
    state = village.store.state(village.slug)
    assert [state.balance(f"household:{h}", "morality") for h in ("h1", "h2", "h3")] == [5, 3, 4]
    progress = page.locator("#import-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == "3", "one step a signed entry"
    assert page.locator("#import-rows tr[data-state=posted]").count() == 3
    assert page.locator("#import-rows tr[data-state=invalid]").count() == 1, "the bad row stays listed"
    assert page.is_disabled("#import-submit") and page.is_disabled("#map-reason")
    section_screenshot(page, "#import", "console-import", request)

    page.set_input_files("#import-file", {"name": "扣分.xlsx", "mimeType": XLSX, "buffer": xlsx_ledger()})
    page.check("input[name=import-kind][value='points.deduct']")
    page.wait_for_selector("#import-rows tbody tr[data-state=valid]")
    assert page.input_value("#map-rule") == "细则编号"
    page.click("#import-submit")
    posted(page)
    assert village.size() == size + 4 and last_entry(village)["kind"] == "points.deduct"
    assert village.store.state(village.slug).balance("household:h1", "morality") == 0
