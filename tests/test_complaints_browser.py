"""The complaint channel as people use it, in headless Chromium: a villager files from the door plate on a
phone (with a photo) and keeps the tracking code, the phone verifies the receipt against the signed
ledger, the supervision committee handles the case in its console (the key file decrypted and every step
signed in the browser), the villager follows it with the code and rates it; a committee member's console
never shows it."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import PHONE, assert_wcag_2_1_aa, screenshot, sign_in_at
from kit import StoredVillage
from PIL import Image

from storage import plates

pytestmark = [pytest.mark.slow, pytest.mark.browser]

INJECTION = '<img src="x" onerror="document.title=\'pwned\'">账目不公开'


def photo() -> dict[str, Any]:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (40, 120, 200)).save(out, "JPEG")
    return {"name": "IMG_2001.jpg", "mimeType": "image/jpeg", "buffer": out.getvalue()}


@pytest.fixture
def door(village: StoredVillage, desk: str, live_server: str) -> str:
    """Household h2's door plate URL, after a deduction it may appeal."""
    village.append(village.kit.sign("points.deduct", {"household": "h2", "rule": "D-01", "amount": 5, "reason": "柴草堆放在路旁"}))
    return f"{live_server}/h/{plates.token_for(village.store, village.slug, 'h2')}"


def file_from_the_door(phone: Any, door: str, request: pytest.FixtureRequest) -> str:
    """File a finances complaint from the household page; return the tracking code shown."""
    phone.goto(door)
    phone.click("a.button")  # 我要反映问题
    phone.select_option("#category", "finances")
    phone.fill("#text", INJECTION)
    phone.set_input_files("#photos", [photo()])
    phone.click("button[type=submit]")
    phone.wait_for_selector("#tracking-code")
    phone.wait_for_selector(".status.ok, .status.bad")
    assert phone.locator(".status.ok").count() == 1, phone.inner_text("#verify-status")
    assert phone.locator(".check.ok").count() == 1, "the phone verified the receipt against the signed checkpoint"
    screenshot(phone, "complaint-receipt", request)
    return phone.inner_text("#tracking-code").strip()


def sign_in(page: Any, live_server: str, slug: str, key: Path) -> None:
    sign_in_at(page, f"{live_server}/v/{slug}/desk", key, "#cases-section:not([hidden])")


def track(phone: Any, live_server: str, slug: str, code: str) -> None:
    phone.goto(f"{live_server}/v/{slug}/track")
    phone.fill("#code", code)
    phone.click("button[value=show]")
    phone.wait_for_selector("#case-status")


def test_a_complaint_from_the_door_is_handled_followed_and_rated(
    phone: Any, desktop: Any, door: str, live_server: str, village: StoredVillage,
    key_file: Callable[[str], Path], request: pytest.FixtureRequest,
) -> None:
    code = file_from_the_door(phone, door, request)
    track(phone, live_server, village.slug, code)
    assert "已受理" not in phone.inner_text("#case-status")

    sign_in(desktop, live_server, village.slug, key_file("supervisor"))
    desktop.click("#cases a")
    desktop.wait_for_selector("#case-section:not([hidden])")
    assert desktop.inner_text("#case-text") == INJECTION, "shown as text"
    assert desktop.locator('img[src="x"]').count() == 0 and desktop.title() != "pwned", "never as markup"
    desktop.wait_for_selector("#case-photos img")
    steps = ("accept", "assign", "start", "reply", "close")
    for done, step in enumerate(steps, start=1):
        if step == "assign":
            desktop.fill("#assignee", "township")
        if step == "reply":
            desktop.fill("#reply-text", "已调取工程台账，月底公示。")
        desktop.click(f"[data-step={step}]")
        desktop.wait_for_function(f"document.querySelectorAll('#case-steps li').length >= {done}")
    screenshot(desktop, "complaint-console", request)
    assert village.store.state(village.slug).cases[next(iter(village.store.state(village.slug).cases))].status == "closed"

    track(phone, live_server, village.slug, code)
    assert "已调取工程台账，月底公示。" in phone.inner_text(".timeline")
    phone.check("input[name=resolved][value=true]")
    phone.check("input[name=rating][value=satisfied]")
    phone.click("button[value=rate]")
    phone.wait_for_selector("#case-status")
    (case,) = village.store.state(village.slug).cases.values()
    assert (case.status, case.rating, case.resolved) == ("closed", "satisfied", True)
    screenshot(phone, "complaint-rated", request)


def test_the_committee_console_never_shows_a_complaint_about_finances(
    phone: Any, desktop: Any, door: str, live_server: str, village: StoredVillage,
    key_file: Callable[[str], Path], request: pytest.FixtureRequest,
) -> None:
    file_from_the_door(phone, door, request)
    sign_in(desktop, live_server, village.slug, key_file("secretary"))
    desktop.wait_for_function("document.getElementById('cases').textContent.length > 0")
    assert desktop.locator("#cases a").count() == 0
    desktop.reload()  # the key stays in this browser's IndexedDB: no key file the second time
    desktop.wait_for_selector("#cases-section:not([hidden])")


def test_an_appeal_from_a_deduction_is_upheld_by_the_jury_and_the_points_come_back(
    phone: Any, desktop: Any, door: str, live_server: str, village: StoredVillage,
    key_file: Callable[[str], Path], request: pytest.FixtureRequest,
) -> None:
    phone.goto(door)
    phone.click("a[href*=\"appeal=\"]")  # 申诉 on the deduction
    assert phone.input_value("#category") == "points_appeal"
    phone.fill("#text", "柴草不是我家堆的")
    phone.click("button[type=submit]")
    phone.wait_for_selector("#tracking-code")
    (case,) = village.store.state(village.slug).cases.values()
    assert case.route == "jury"
    before = village.store.state(village.slug).balance("household:h2", "morality")
    sign_in(desktop, live_server, village.slug, key_file("supervisor"))
    desktop.click("#cases a")
    desktop.click("[data-step=accept]")
    desktop.wait_for_function("document.querySelectorAll('#case-steps li').length >= 1")
    desktop.click("[data-uphold]")
    desktop.wait_for_function("document.getElementById('desk-status').textContent.includes('冲销')")
    assert village.store.state(village.slug).balance("household:h2", "morality") == before + 5
    screenshot(desktop, "appeal-upheld", request)


def test_the_supervisors_see_every_deduction_from_a_household_that_spoke_up(
    phone: Any, desktop: Any, door: str, live_server: str, village: StoredVillage,
    key_file: Callable[[str], Path], request: pytest.FixtureRequest,
) -> None:
    file_from_the_door(phone, door, request)  # household h2, under its own name
    deduction = {"household": "h2", "rule": "D-01", "amount": 5, "reason": "柴草又堆放在路旁"}
    village.append(village.kit.sign("points.deduct", deduction, cosigner="supervisor"))  # alone, it is refused
    sign_in(desktop, live_server, village.slug, key_file("supervisor"))
    desktop.wait_for_selector("#protected-section:not([hidden]) #protected li")
    items = desktop.locator("#protected li").all_inner_texts()
    assert len(items) == 1, items
    (item,) = items
    assert "h2" in item and "扣 5 分" in item and "村监会成员已共同签名" in item
    screenshot(desktop, "desk-protected-deductions", request)
    sign_in(phone, live_server, village.slug, key_file("secretary"))
    assert phone.locator("#protected-section").is_hidden(), "the committee does not get the list"


def test_a_form_error_names_the_field_in_chinese_and_keeps_the_text(phone: Any, door: str) -> None:
    phone.goto(door)
    phone.click("a.button")
    phone.fill("#text", "没有选类别")
    phone.click("button[type=submit]")
    assert phone.get_attribute("#category", "aria-invalid") == "true"
    assert phone.input_value("#text") == "没有选类别"
    assert "请选择" in phone.inner_text("#category-error")


def test_filing_works_without_javascript(chromium: Any, door: str) -> None:
    context = chromium.new_context(java_script_enabled=False, **PHONE)
    try:
        page = context.new_page()
        page.goto(door)
        page.click("a.button")
        page.select_option("#category", "environment")
        page.fill("#text", "河边有人倒垃圾")
        page.click("button[type=submit]")
        assert len(page.inner_text("#tracking-code").strip()) == 19
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_complaint_pages_meet_wcag_2_1_aa(phone: Any, door: str, live_server: str, village: StoredVillage, lang: str) -> None:
    for path in ("complain", "track", "desk"):
        phone.goto(f"{live_server}/v/{village.slug}/{path}?lang={lang}")
        assert_wcag_2_1_aa(phone)
