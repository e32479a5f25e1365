"""The committee console as a committee member or grid worker uses it, in headless Chromium at phone and
desktop sizes: load the key file once (decrypted and kept in the browser), then award or deduct points
for an event, with evidence photos, held to the rule's bounds before anything is signed; the household's
QR page then shows the new records, verified by the phone."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from conftest import screenshot
from kit import StoredVillage
from PIL import Image

from storage import plates

pytestmark = [pytest.mark.slow, pytest.mark.browser]

def photo() -> dict[str, Any]:
    out = io.BytesIO()
    Image.new("RGB", (200, 150), (20, 160, 60)).save(out, "JPEG")
    return {"name": "rescue.jpg", "mimeType": "image/jpeg", "buffer": out.getvalue()}


def posted(page: Any) -> str:
    page.wait_for_function("/[0-9]+/.test(document.getElementById('console-status').textContent)"
                           " && !document.getElementById('console-status').textContent.includes('…')")
    return str(page.inner_text("#console-status"))


def test_an_award_with_a_photo_shows_verified_on_the_households_qr_page(
    console: Callable[[str], Any], village: StoredVillage, live_server: str, request: pytest.FixtureRequest
) -> None:
    page = console("secretary")
    page.fill("#household-search", "g1-h2")
    page.check("#household-results input[type=checkbox]")
    page.select_option("#rule", "M-05")  # act of bravery: exactly 50, evidence required
    assert page.input_value("#amount") == "50"
    page.fill("#reason", "救助落水儿童")
    page.click("#points-submit")
    page.wait_for_selector(".status.bad")
    assert village.store.state(village.slug).balance("household:h2", "morality") == 0, "refused before signing"
    page.set_input_files("#evidence", [photo()])
    page.click("#points-submit")
    assert "1" in posted(page)
    assert village.store.state(village.slug).balance("household:h2", "morality") == 50
    screenshot(page, "console-award", request)

    page.goto(f"{live_server}/h/{plates.token_for(village.store, village.slug, 'h2')}")
    page.wait_for_selector(".status.ok")
    record = page.locator("li.entry").first
    assert "+50" in record.inner_text() and record.locator(".check.ok").count() == 1
    evidence = record.locator("a[href*='/attachments/']")
    assert evidence.count() == 1
    assert page.request.get(live_server + evidence.get_attribute("href")).headers["content-type"] == "image/jpeg"


def test_a_grid_worker_deducts_for_a_whole_grid_in_one_batch(
    console: Callable[[str], Any], village: StoredVillage
) -> None:
    page = console("grid1")
    size = village.size()
    page.select_option("#grid-pick", "g1")
    page.wait_for_function("document.getElementById('chosen').textContent.includes('2')")
    page.check("input[name=direction][value=deduct]")
    page.select_option("#rule", "D-01")
    page.fill("#reason", "村道两侧柴草乱堆")
    page.click("#points-submit")
    posted(page)
    state = village.store.state(village.slug)
    assert village.size() == size + 2 and state.balance("household:h1", "morality") == state.balance("household:h2", "morality") == -5


def test_points_outside_the_rule_cannot_be_submitted(console: Callable[[str], Any], village: StoredVillage) -> None:
    page = console("secretary")
    page.fill("#household-list", "g1-h1")
    page.select_option("#rule", "M-01")  # 1..10
    page.fill("#amount", "11")
    assert page.is_disabled("#points-submit") and page.inner_text("#amount-error")
    page.fill("#amount", "10")
    page.fill("#reason", "垃圾分类")
    page.click("#points-submit")
    posted(page)
    assert village.store.state(village.slug).balance("household:h1", "morality") == 10


def test_a_phone_number_in_a_reason_is_refused_before_anything_is_signed(
    console: Callable[[str], Any], village: StoredVillage
) -> None:
    page = console("secretary")
    size = village.size()
    page.fill("#household-list", "g1-h1")
    page.select_option("#rule", "M-01")
    page.fill("#amount", "2")
    page.fill("#reason", "帮助王大妈 电话 139 1234 5678")
    page.click("#points-submit")
    page.wait_for_selector(".status.bad")
    assert "个人信息" in page.inner_text("#console-status") and village.size() == size


def test_the_console_is_chinese_by_default_and_english_on_request(
    screen: Any, live_server: str, village: StoredVillage
) -> None:
    screen.goto(f"{live_server}/v/{village.slug}/console")
    assert screen.inner_text("h1") == "村两委工作台" and screen.locator("html").get_attribute("lang") == "zh-CN"
    screen.click("text=English")
    assert screen.locator("html").get_attribute("lang") == "en" and screen.inner_text("h1") == "Committee console"
