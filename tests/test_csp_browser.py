"""Our pages work under their own Content-Security-Policy, in headless Chromium with the policy enforced:
the phone verifies a household's records, the console and the desk sign in and mount, the complaint and
tracking pages load, and the browser reports no violation of the policy on any of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PHONE, sign_in_at
from kit import StoredVillage

from storage import plates

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def enforced(chromium: Any) -> Iterator[tuple[Any, list[str]]]:
    """A phone page with the policy enforced, and the policy violations its console reports."""
    context = chromium.new_context(**PHONE)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
    yield page, violations
    context.close()


def test_every_page_works_under_its_policy(
    enforced: tuple[Any, list[str]], live_server: str, village: StoredVillage, desk: str, key_file: Callable[[str], Path]
) -> None:
    page, violations = enforced
    page.goto(f"{live_server}/h/{plates.token_for(village.store, village.slug, 'h2')}")
    page.wait_for_selector(".status.ok")  # the phone's script verified the records (WebCrypto, our own JS)
    for path in (f"/v/{village.slug}", f"/v/{village.slug}/complain", f"/v/{village.slug}/track"):
        page.goto(live_server + path)
        page.wait_for_load_state("load")
    sign_in_at(page, f"{live_server}/v/{village.slug}/console", key_file("secretary"), "body[data-ready]")
    page.goto(f"{live_server}/v/{village.slug}/desk")  # the key stays in this browser: signed in at once
    page.wait_for_selector("#cases-section:not([hidden])")
    assert violations == []
