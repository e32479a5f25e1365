"""Tested as a villager would: a phone-sized Chromium opens the door plate's URL, reads the page in
Chinese or English, and sees every record verified by the phone itself; a tampered record is flagged, a
replaced plate is refused, and the page meets WCAG 2.1 AA. Screenshots go to ``artifacts/screenshots/``
(CI keeps that folder as its artefacts)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import PHONE, assert_wcag_2_1_aa, screenshot
from kit import StoredVillage
from tamper import behind_the_triggers, flip_one_byte

from storage import plates

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHECKED = ".status.ok, .status.bad"


@pytest.fixture
def door(village: StoredVillage, live_server: str) -> str:
    """The URL on household h2's door plate, for a household with a little history."""
    kit = village.kit
    village.append(kit.award("h2", 7), kit.award("h2", 3, by="grid1"), kit.sign("points.deduct", {
        "household": "h2", "rule": "D-01", "amount": 5, "reason": "柴草堆放在路旁"}))
    return f"{live_server}/h/{plates.token_for(village.store, village.slug, 'h2')}"


def test_a_villager_scans_the_plate_and_the_phone_verifies_every_record(
    phone: Any, door: str, request: pytest.FixtureRequest
) -> None:
    phone.goto(door)
    phone.wait_for_selector(CHECKED)
    assert "本页所有记录均已由本手机核对签名账本" in phone.inner_text("#verify-status")
    records = phone.locator("li.entry")
    assert records.count() == 4 and phone.locator(".check.ok").count() == 4
    assert phone.locator("html").get_attribute("lang") == "zh-CN"
    screenshot(phone, "household-zh", request)


def test_the_villager_switches_to_english(phone: Any, door: str, request: pytest.FixtureRequest) -> None:
    phone.goto(door)
    phone.click("text=English")
    phone.wait_for_selector(CHECKED)
    assert phone.locator("html").get_attribute("lang") == "en"
    assert "All records on this page were verified by this phone" in phone.inner_text("#verify-status")
    assert phone.locator("h2#history").inner_text() == "Records"
    screenshot(phone, "household-en", request)


def test_a_record_changed_in_the_database_is_flagged_on_the_phone(
    phone: Any, door: str, village: StoredVillage, engine: Any, backend: str, request: pytest.FixtureRequest
) -> None:
    victim = village.store.size(village.slug) - 3  # the award of 7
    with behind_the_triggers(engine, backend) as connection:
        flip_one_byte(connection, village.store.village_id(village.slug), victim)
    phone.goto(door)
    phone.wait_for_selector(CHECKED)
    assert "记录与签名账本不符" in phone.inner_text("#verify-status")
    flagged = phone.locator(f'li.entry[data-index="{victim}"] .check')
    assert "与签名账本不符" in flagged.inner_text() and "root mismatch" in flagged.inner_text()
    assert phone.locator(".check.ok").count() == 3
    screenshot(phone, "household-tampered", request)


def test_a_replaced_plate_is_refused_and_says_so(
    phone: Any, door: str, village: StoredVillage, live_server: str, request: pytest.FixtureRequest
) -> None:
    new = plates.reissue(village.store, village.slug, "h2")
    response = phone.goto(door)
    assert response.status == 410 and "此门牌已更换" in phone.inner_text("main")
    screenshot(phone, "plate-replaced", request)
    phone.goto(f"{live_server}/h/{new}")
    phone.wait_for_selector(CHECKED)
    assert phone.locator(".status.ok").count() == 1


def test_without_javascript_everything_shows_and_says_it_is_unverified(chromium: Any, door: str) -> None:
    context = chromium.new_context(java_script_enabled=False, **PHONE)
    try:
        page = context.new_page()
        page.goto(door)
        assert "尚未验证" in page.inner_text("#verify-status")
        assert page.locator("li.entry").count() == 4 and "柴草堆放在路旁" in page.inner_text("main")
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_pages_meet_wcag_2_1_aa(phone: Any, door: str, live_server: str, village: StoredVillage, lang: str) -> None:
    for url in (f"{door}?lang={lang}", f"{live_server}/v/{village.slug}?lang={lang}"):
        phone.goto(url)
        if "/h/" in url:
            phone.wait_for_selector(CHECKED)
        assert_wcag_2_1_aa(phone)
