"""The console's rules and registry sections as the village committee and a grid worker use them, in
headless Chromium at phone and desktop sizes: publish a rule, a new version of one and retire one, publish
the village rules (村规民约); register a household whose personal data stays off the log, define a grid,
reissue and print door plates; add a member with the key they made themselves, change their roles, replace
and revoke keys. Every change is signed in the browser; mistakes are named before signing, and the
ledger's refusals are shown as they come. One signed-in page serves each test."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import KEY_PASSPHRASE, screenshot
from kit import StoredVillage

import keys
from ledger.canonical import b64decode, b64encode
from ledger.entries import decode_leaf, household_commitment
from storage import plates

pytestmark = [pytest.mark.slow, pytest.mark.browser]

STATUS = "document.getElementById('console-status')"


def submit(page: Any, selector: str) -> tuple[str, bool]:
    """Click ``selector`` and wait for the console's last word on it: (text, whether it is a refusal)."""
    page.evaluate(f"{STATUS}.textContent = ''")
    page.click(selector)
    page.wait_for_function(f"{STATUS}.textContent && !{STATUS}.textContent.endsWith('…')")
    text = str(page.inner_text("#console-status"))
    return text, "bad" in str(page.get_attribute("#console-status", "class"))


def done(page: Any, selector: str) -> str:
    text, bad = submit(page, selector)
    assert not bad, text
    return text


def refused(page: Any, selector: str) -> str:
    text, bad = submit(page, selector)
    assert bad, text
    return text


def rule_row(page: Any, code: str) -> list[str]:
    cells = page.locator(f"#rules-table tr[data-rule='{code}'] td").all_inner_texts()
    return [cell.strip() for cell in cells]


def new_key() -> str:
    """A member's public key as ``villageledger keygen`` prints it."""
    return b64encode(keys.SigningKey.generate().public_bytes)


def raw(key: str) -> bytes:
    return b64decode(key, length=32)


def active_key(village: StoredVillage, member: str) -> str:
    state = village.store.state(village.slug)
    (key,) = [key for key, held in state.keys.items() if held.member == member and held.revoked_at is None]
    return b64encode(key)


def test_the_committee_keeps_the_rules_and_the_registry(
    console: Callable[[str], Any], village: StoredVillage, key_file: Callable[[str], Path], request: pytest.FixtureRequest
) -> None:
    """One signed-in page for every step: signing in is most of a step's cost."""
    page = console("secretary")
    publishes_a_rule_a_new_version_of_one_and_retires_one(page, village, key_file("supervisor"))
    publishes_the_village_rules(page)
    defines_a_grid_and_registers_a_household_keeping_its_personal_data_off_the_log(page, village)
    reissues_a_door_plate_and_prints_them_all(page, village)
    adds_a_member_with_their_own_key_and_changes_their_roles(page, village)
    replaces_a_key_in_one_batch_and_revokes_one(page, village)
    screenshot(page, "console-registry", request)


def publishes_a_rule_a_new_version_of_one_and_retires_one(page: Any, village: StoredVillage, supervisor_key: Path) -> None:
    m01 = rule_row(page, "M-01")
    assert m01[:3] == ["M-01", "垃圾分类", "Garbage sorting"] and m01[-1] == "1"

    # A deduction that would punish speaking up, and an amount out of range, are named before signing.
    size = village.size()
    page.fill("#rules-code", "D-02")
    page.fill("#rules-title-zh", "乱投诉")
    page.fill("#rules-title-en", "Stalls blocking the road")
    page.check("input[name=rules-direction][value=deduct]")
    page.fill("#rules-amount", "0")
    assert "投诉" in refused(page, "#rules-submit")
    assert page.inner_text("#rules-form [data-error=amount]") and village.size() == size

    page.fill("#rules-title-zh", "占道经营")
    page.fill("#rules-amount", "3")
    page.check("#rules-evidence")
    # A deduction rule takes effect only with a supervisor's signature: the supervisor loads their key here.
    assert "村监会" in refused(page, "#rules-submit") and page.inner_text("#rules-form [data-error=approver]")
    assert village.size() == size
    page.set_input_files("#rules-approver-file", str(supervisor_key))
    page.fill("#rules-approver-passphrase", KEY_PASSPHRASE)
    done(page, "#rules-submit")
    approval = decode_leaf(village.store.leaf(village.slug, village.size() - 1))
    assert approval.cosigner == village.kit.public("supervisor"), "co-signed by the supervisor"
    assert rule_row(page, "D-02")[5] == "3" and rule_row(page, "D-02")[-1] == "1"
    rule = village.store.state(village.slug).rules["D-02"]
    assert (rule.direction, rule.amount, rule.evidence_required) == ("deduct", 3, True)

    # A new version of M-01 keeps its ledger and direction (prefilled, fixed) and replaces the rest.
    page.select_option("#rules-base", "M-01")
    assert page.input_value("#rules-title-zh") == "垃圾分类"
    assert page.is_disabled("input[name=rules-direction][value=deduct]")
    page.fill("#rules-max", "12")
    done(page, "#rules-submit")
    assert rule_row(page, "M-01")[5] == "1–12" and rule_row(page, "M-01")[-1] == "2"
    version = village.store.state(village.slug).rules["M-01"]
    assert (version.version, version.max, version.direction) == (2, 12, "award")

    page.select_option("#rules-retire-code", "C-01")
    page.fill("#rules-retire-reason", "并入新版积分细则")
    done(page, "#rules-retire-submit")
    assert page.locator("#rules-table tr[data-rule='C-01']").count() == 0
    assert village.store.state(village.slug).rules["C-01"].retired_at is not None


def publishes_the_village_rules(page: Any) -> None:
    """A decision record whose latest version is shown, as text."""
    text = "一、爱护公共环境，垃圾分类投放。\n二、邻里和睦，互帮互助。<b>不是标签</b>"
    page.fill("#village-rules-new-text", text)
    page.fill("#village-rules-meeting", "2026年第一次村民代表大会")
    refused(page, "#village-rules-submit")  # the meeting's outcome is missing
    assert page.inner_text("#village-rules-form [data-error='decision.outcome']")
    page.fill("#village-rules-outcome", "全票通过")
    done(page, "#village-rules-submit")
    assert page.inner_text("#village-rules-text") == text
    assert page.locator("#village-rules-text b").count() == 0, "shown as text, never as markup"
    assert "全票通过" in page.inner_text("#village-rules-meta")


def defines_a_grid_and_registers_a_household_keeping_its_personal_data_off_the_log(
    page: Any, village: StoredVillage
) -> None:
    page.fill("#reg-grid-id", "g3")
    page.fill("#reg-grid-name", "三组")
    done(page, "#reg-grid-submit")
    assert "g3" in village.store.state(village.slug).grids and "g3 三组" in page.inner_text("#reg-grids")

    # The log holds only the commitment to the household's personal data.
    personal = {"head": "赵德明", "members": ["钱秀兰", "赵小虎"], "phone": "139 0000 1234",
                "address": "小溪村三组7号"}
    page.fill("#reg-household-id", "h9")
    page.select_option("#reg-household-grid", "g3")
    page.fill("#reg-household-number", "3-07")
    page.fill("#reg-household-label", "赵家")
    page.check("#reg-household-lead")
    page.fill("#reg-household-members", "钱秀兰\n赵小虎\n")
    page.fill("#reg-household-phone", "139 0000 1234")
    page.fill("#reg-household-address", "小溪村三组7号")
    page.fill("#reg-household-head", "赵德明")
    done(page, "#reg-household-submit")
    household = village.store.state(village.slug).households["h9"]
    salt, data = village.store.private(village.slug, "h9")
    assert data == personal and household.commitment == household_commitment(salt, personal)
    assert (household.grid, household.number) == ("g3", "3-07")
    assert household.public == {"label": "赵家", "lead_household": True}
    log = b"".join(village.store.export(village.slug)).decode()
    # Whole values: a fragment such as "1234" turns up by chance in the log's hex ids and signatures.
    assert not any(value in log for value in ("赵德明", "钱秀兰", "139 0000 1234", "三组7号")), "only the commitment"

    # Editing the public fields alone leaves the personal data and its commitment as they are.
    page.fill("#reg-search", "赵德明")
    page.click("#reg-households li[data-household=h9] button.edit")
    page.wait_for_function("document.getElementById('reg-household-head').value === '赵德明'")
    page.fill("#reg-household-label", "赵德明家")
    assert "h9" in done(page, "#reg-household-submit")
    updated = village.store.state(village.slug).households["h9"]
    assert updated.public == {"label": "赵德明家", "lead_household": True}
    assert updated.commitment == household.commitment


def reissues_a_door_plate_and_prints_them_all(page: Any, village: StoredVillage) -> None:
    """A reissued plate replaces the old one at once; all plates print as one PDF."""
    old = plates.token_for(village.store, village.slug, "h2")
    page.fill("#reg-search", "g1-h2")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#reg-households li[data-household=h2] button.reissue")
    page.wait_for_selector("#reg-plate:not([hidden])")
    with pytest.raises(plates.PlateReplaced):
        plates.resolve(village.store, old)
    assert page.inner_text("#reg-plate-url").endswith(plates.token_for(village.store, village.slug, "h2"))
    with page.expect_download() as download:
        page.click("#reg-print-plates")
    assert download.value.suggested_filename == f"{village.slug}-plates.pdf"
    with open(download.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"


def adds_a_member_with_their_own_key_and_changes_their_roles(page: Any, village: StoredVillage) -> None:
    first = new_key()
    page.fill("#reg-member-id", "zhao")
    page.fill("#reg-member-name", "赵德明")
    page.check("#reg-member-form input[value=grid_worker]")
    page.fill("#reg-member-key", first[:-2])
    refused(page, "#reg-member-submit")  # a grid worker needs a grid; the pasted key is cut short
    for field in ("grid", "key"):
        assert page.inner_text(f"#reg-member-form [data-error={field}]"), field
    page.select_option("#reg-member-grid", "g3")
    page.fill("#reg-member-key", f" {first}\n")  # as copied from a terminal
    done(page, "#reg-member-submit")
    state = village.store.state(village.slug)
    assert (state.members["zhao"].roles, state.members["zhao"].grid) == (frozenset({"grid_worker"}), "g3")
    assert state.keys[raw(first)].member == "zhao"
    assert page.locator("#reg-members tr[data-member=zhao] td").nth(3).inner_text() == "g3"

    page.select_option("#reg-role-member", "zhao")
    assert page.is_checked("#reg-role-form input[value=grid_worker]")
    assert page.input_value("#reg-role-grid") == "g3"
    page.uncheck("#reg-role-form input[value=grid_worker]")
    page.check("#reg-role-form input[value=supervisor]")
    size = village.size()
    assert "rule 2 (appointments)" in refused(page, "#reg-role-submit"), "the township alone appoints supervisors"
    assert village.size() == size
    page.uncheck("#reg-role-form input[value=supervisor]")
    page.check("#reg-role-form input[value=committee]")
    done(page, "#reg-role-submit")
    member = village.store.state(village.slug).members["zhao"]
    assert (member.roles, member.grid) == (frozenset({"committee"}), None)


def replaces_a_key_in_one_batch_and_revokes_one(page: Any, village: StoredVillage) -> None:
    """Replacing a key is the new key's key.add and the old key's key.revoke, appended as one batch."""
    first, second = active_key(village, "zhao"), new_key()
    page.select_option("#reg-key-member", "zhao")
    page.select_option("#reg-key-old", first)
    page.fill("#reg-key-new", second)
    page.fill("#reg-key-reason", "换了手机")
    done(page, "#reg-key-rotate")
    lines = [json.loads(line) for line in village.store.export(village.slug)]
    kinds = [line["entry"]["kind"] if "entry" in line else next(iter(line)) for line in lines]
    assert kinds[-7:-3] == ["checkpoint", "key.add", "key.revoke", "checkpoint"], "no checkpoint between them"
    state = village.store.state(village.slug)
    assert state.keys[raw(first)].revoked_at == state.keys[raw(second)].added_at + 1

    page.select_option("#reg-key-old", second)
    page.fill("#reg-key-reason", "离任")
    done(page, "#reg-key-revoke")
    assert village.store.state(village.slug).keys[raw(second)].revoked_at is not None
    assert page.locator(f"#reg-key-old option[value='{second}']").count() == 0, "only keys in use are offered"


def test_a_grid_worker_registers_and_moves_households_only_in_their_own_grid(
    console: Callable[[str], Any], village: StoredVillage
) -> None:
    page = console("grid1")
    committee_forms = ("#rules-form", "#village-rules-form", "#reg-grid-form", "#reg-member-form",
                       "#reg-print-plates")
    for committee_only in committee_forms:
        assert page.is_hidden(committee_only), committee_only
    listed = page.eval_on_selector_all("#reg-households li", "items => items.map(i => i.dataset.household)")
    assert sorted(listed) == ["h1", "h2"] and page.input_value("#reg-household-grid") == "g1"

    size = village.size()
    page.fill("#reg-household-id", "h8")
    page.select_option("#reg-household-grid", "g2")
    page.fill("#reg-household-number", "2-08")
    page.fill("#reg-household-head", "孙大伟")
    assert "g2" in refused(page, "#reg-household-submit")  # by the register, before anything is signed
    assert village.size() == size, "nothing signed"
    assert village.store.private(village.slug, "h8") is None, "nothing kept"

    page.click("#reg-households li[data-household=h1] button.edit")
    page.wait_for_function("document.getElementById('reg-household-id').value === 'h1'")
    page.select_option("#reg-household-grid", "g2")
    assert "may act only in grid g1" in refused(page, "#reg-household-submit"), "the ledger's own refusal"
    assert village.store.state(village.slug).households["h1"].grid == "g1" and village.size() == size

    page.click("#reg-household-new")
    page.fill("#reg-household-id", "h8")
    page.fill("#reg-household-number", "1-08")
    page.fill("#reg-household-head", "孙大伟")
    done(page, "#reg-household-submit")
    assert village.store.state(village.slug).households["h8"].grid == "g1"
    assert village.store.private(village.slug, "h8")[1] == {"head": "孙大伟"}
