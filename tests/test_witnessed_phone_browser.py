"""A phone that trusts only the door plate (issue 22): the plate's address pins the township's witness in its
fragment (never sent to a server), and the household page says "verified" only for a checkpoint that witness
cosigned and that extends the last one this phone saw, and says when the township checked it, in Beijing time.
The witness is a real township node (gunicorn, its own database); the phone is Debian's Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from conftest import PHONE, screenshot
from kit import StoredVillage
from servers import Server, register_with_township

from keys import parse_verifier_key
from ledger.canonical import b64encode
from storage import plates
from storage.cosigning import WitnessEndpoint, request_cosignature
from storage.db import write_session
from storage.models import CosignatureRow

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHECKED = ".status.ok, .status.bad"


@pytest.fixture
def witness(township: Callable[[], tuple[Server, str]], village: StoredVillage) -> WitnessEndpoint:
    """The township's witness of the test village, started and told about the village."""
    server, vkey = township()
    register_with_township(server, village)
    return WitnessEndpoint(f"{server.url}/witness", parse_verifier_key(vkey))


@pytest.fixture
def app_config(app_config: dict[str, Any], witness: WitnessEndpoint) -> dict[str, Any]:
    return {**app_config, "WITNESSES": f"{witness.url} {witness.vkey}"}


@pytest.fixture
def door(village: StoredVillage, live_server: str, witness: WitnessEndpoint) -> str:
    """Household h2's plate address, pinning the township's witness, once the village's ledger is cosigned."""
    kit = village.kit
    village.append(kit.award("h2", 7), kit.award("h2", 3, by="grid1"))
    request_cosignature(village.store, village.slug, witness)
    token = plates.token_for(village.store, village.slug, "h2")
    return plates.plate_url(live_server, token, [plates.witness_pin(witness.vkey)])


def test_the_phone_shows_when_the_township_checked_the_ledger(phone: Any, door: str,
                                                               request: pytest.FixtureRequest) -> None:
    phone.goto(door)
    phone.wait_for_selector(CHECKED)
    said = phone.inner_text("#verify-status")
    assert phone.locator(".status.ok").count() == 1, said
    assert re.search(r"账本由乡镇于\d+月\d+日 \d\d:\d\d核对", said), said
    assert not re.search(r"\d{4}-\d\d-\d\dT|Z\b", said), "no ISO time in what she reads"
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"], "nothing scrolls sideways"
    screenshot(phone, "household-witnessed", request)


def test_a_checkpoint_the_township_has_not_cosigned_is_not_verified(
        phone: Any, door: str, village: StoredVillage, request: pytest.FixtureRequest) -> None:
    """The server shows a checkpoint the township never saw (appended since, or shown to this phone only)."""
    village.append(village.kit.award("h2", 1))
    phone.goto(door)
    phone.wait_for_selector(CHECKED)
    assert phone.locator(".status.bad").count() == 1
    assert "尚未验证：乡镇还没有核对这本账" in phone.inner_text("#verify-status")
    screenshot(phone, "household-unwitnessed", request)


def test_the_pin_stays_with_the_phone_and_another_witness_does_not_count(
        phone: Any, door: str, witness: WitnessEndpoint) -> None:
    phone.goto(door)
    phone.wait_for_selector(".status.ok")
    phone.goto(door.split("#")[0])  # later, from the browser's history: no fragment, the pin was kept
    phone.wait_for_selector(".status.ok")
    assert "账本由乡镇于" in phone.inner_text("#verify-status")
    other = door.split("#")[0] + "#w=" + plates.witness_pin("another.example/w+00000000+BAAA")
    phone.goto(other)
    phone.reload()
    phone.wait_for_selector(CHECKED)
    assert "尚未验证" in phone.inner_text("#verify-status"), "a plate pinning another witness is not satisfied"


def test_a_ledger_that_differs_from_the_one_this_phone_saw_is_a_plain_failure(
        phone: Any, door: str, request: pytest.FixtureRequest) -> None:
    """A split view: this phone was shown another history of the same size before (kept in IndexedDB)."""
    phone.goto(door)
    phone.wait_for_selector(".status.ok")
    phone.evaluate("""() => new Promise((resolve) => {
        const open = indexedDB.open("villageledger", 1);
        open.onsuccess = () => {
            const store = open.result.transaction("checkpoints", "readwrite").objectStore("checkpoints");
            const cursor = store.openCursor();
            cursor.onsuccess = () => {
                const seen = cursor.result;
                seen.update({ size: seen.value.size, root: btoa("x".repeat(32)) });
                resolve();
            };
        };
    })""")
    phone.reload()
    phone.wait_for_selector(CHECKED)
    assert phone.locator(".status.bad").count() == 1
    assert phone.inner_text("#verify-status") == "警告：这本账与本手机上次看到的不一致。请告诉村监会。", "plain words"
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"], "nothing scrolls sideways"
    screenshot(phone, "household-forked", request)


def test_a_township_approval_the_operator_wrote_into_the_database_is_refused(
        phone: Any, door: str, village: StoredVillage, witness: WitnessEndpoint) -> None:
    """An operator with the database adds a 'cosignature' of the latest checkpoint under the township's name and
    key ID (both public) without the township's key: the phone does not count it."""
    village.append(village.kit.award("h2", 1))
    size = village.size()
    forged = b64encode(witness.key.key_hash + (1_765_000_000).to_bytes(8, "big") + bytes(64))
    with write_session(village.store.engine) as session:
        session.add(CosignatureRow(village_id=village.store.village_id(village.slug), witness=witness.key.name,
                                   size=size, line=f"\u2014 {witness.key.name} {forged}\n", cosigned_at=1_765_000_000))
        session.commit()
    phone.goto(door)
    phone.wait_for_selector(CHECKED)
    assert phone.locator(".status.bad").count() == 1
    assert "账本由乡镇于" not in phone.inner_text("#verify-status")
