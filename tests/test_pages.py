"""The villager pages, as a phone fetches them (server-rendered HTML; the in-browser checks are tested in
Chromium separately): Chinese by default, English on request, everything public and nothing personal,
and every record carrying what the phone needs to verify it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit import StoredVillage
from sqlalchemy import event
from statements import recorded_statements

import keys
from ledger import merkle
from ledger.canonical import b64decode
from ledger.note import open_checkpoint
from storage import plates, reads

WEB_STATIC = Path(__file__).resolve().parents[1] / "web" / "static"


class Entries(HTMLParser):
    """The ``li.entry`` elements' data attributes, and every URL the page refers to."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict[str, str]] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "li" and values.get("class") == "entry":
            self.entries.append(values)
        for name in ("href", "src"):
            if name in values:
                self.urls.append(values[name])


def parsed(html: str) -> Entries:
    parser = Entries()
    parser.feed(html)
    return parser


@pytest.fixture
def door(village: StoredVillage) -> str:
    """The path printed on household h2's door plate."""
    return f"/h/{plates.token_for(village.store, village.slug, 'h2')}"


def test_the_plate_opens_the_household_page_in_chinese(client: FlaskClient, village: StoredVillage, door: str) -> None:
    village.append(village.kit.award("h2", 7), village.kit.sign("points.deduct", {
        "household": "h2", "rule": "D-01", "amount": 5, "reason": "柴草堆放在路旁"}))
    page = client.get(door)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="zh-CN">' in html
    assert "积分记录" in html and "道德银行积分" in html and "柴草堆放在路旁" in html
    assert re.search(r"<dt>道德银行积分</dt><dd>2</dd>", html)
    assert "+7" in html and "-5" in html and "网格员" not in html and "村两委" in html


def test_english_is_one_tap_away_and_remembered(client: FlaskClient, door: str) -> None:
    english = client.get(f"{door}?lang=en")
    assert '<html lang="en">' in english.get_data(as_text=True) and "lang=en" in english.headers["Set-Cookie"]
    assert "Records" in client.get(door).get_data(as_text=True)


def test_without_javascript_the_page_shows_everything_and_says_it_is_unverified(
    client: FlaskClient, village: StoredVillage, door: str
) -> None:
    village.append(village.kit.award("h2", 3))
    html = client.get(door).get_data(as_text=True)
    assert "尚未验证" in html and html.count(">未验证<") == len(parsed(html).entries) == 2


def test_every_record_carries_its_leaf_and_a_proof_into_the_signed_checkpoint(
    client: FlaskClient, village: StoredVillage, door: str
) -> None:
    village.append(village.kit.award("h2", 3), village.kit.award("h1", 4), village.kit.award("h2", 5))
    html = client.get(door).get_data(as_text=True)
    context = json.loads(re.search(r'<script type="application/json" id="proof-context">(.*?)</script>', html, re.DOTALL).group(1))
    assert context["key"] == village.store.verifier_keys(village.slug)[-1]
    checkpoint = open_checkpoint(context["checkpoint"], village.trusted(), origin=context["origin"])
    entries = parsed(html).entries
    assert [int(e["data-index"]) for e in entries] == sorted((int(e["data-index"]) for e in entries), reverse=True)
    for entry in entries:
        leaf = b64decode(entry["data-leaf"])
        proof = [b64decode(h) for h in entry["data-proof"].split()]
        merkle.verify_inclusion(int(entry["data-index"]), checkpoint.size, merkle.hash_leaf(leaf), proof, checkpoint.root_hash)
        if "data-amount" in entry:
            body = json.loads(leaf)["entry"]["body"]
            assert abs(int(entry["data-amount"])) == body["amount"] and body["household"] == "h2"


def test_the_chart_shows_the_balance_at_the_end_of_each_month_of_the_entries_own_dates(
    client: FlaskClient, village: StoredVillage, door: str
) -> None:
    kit = village.kit
    village.append(kit.award("h2", 3))
    first = kit.clock.month()
    kit.clock.next_month()
    body = {"household": "h2", "rule": "M-01", "amount": 7, "reason": "下个月 垃圾分类到位"}
    village.append(kit.sign("points.award", body))
    balance = reads.household(village.store, village.slug, "h2").balances["morality"]
    desc = re.search(r"<desc>(.*?)</desc>", client.get(door + "?lang=en").get_data(as_text=True)).group(1)
    assert f"Morality bank: {first} {balance - 7}, {kit.clock.month()} {balance}" in desc


def test_a_page_read_while_an_append_commits_is_the_page_of_the_checkpoint_it_began_with(
    app: Flask, client: FlaskClient, village: StoredVillage, door: str
) -> None:
    village.append(village.kit.award("h2", 3))
    before = client.get(door).get_data(as_text=True)
    appended: list[object] = []

    def append_once(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT entries.") and not appended:  # the page's entries
            appended.append(village.append(village.kit.award("h2", 5)))

    engine = app.extensions["villageledger.store"].engine
    event.listen(engine, "before_cursor_execute", append_once)
    try:
        during = client.get(door).get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", append_once)
    assert appended and during == before
    assert len(parsed(client.get(door).get_data(as_text=True)).entries) == len(parsed(before).entries) + 1


def test_a_household_page_asks_the_database_three_questions(app: Flask, client: FlaskClient, door: str) -> None:
    client.get(door)  # the village's facts (rules, roles, keys) are read once per checkpoint
    with recorded_statements(app.extensions["villageledger.store"].engine) as statements:
        assert client.get(door).status_code == 200
    questions = [statement for statement, _ in statements if statement.startswith("SELECT")]
    assert len(questions) == 3  # the plate with all that hangs on it, the entries, the chart's months


def test_long_histories_are_paged(client: FlaskClient, village: StoredVillage, door: str) -> None:
    village.append(*[village.kit.award("h2", 1) for _ in range(25)])
    first = parsed(client.get(door).get_data(as_text=True))
    assert len(first.entries) == 20
    older = next(url for url in first.urls if url.startswith("?before="))
    second = parsed(client.get(door + older).get_data(as_text=True))
    assert len(second.entries) == 6  # the last 5 awards and the registration


def test_personal_data_never_appears_on_public_pages(client: FlaskClient, village: StoredVillage, door: str) -> None:
    data = {"head": "吴大山", "members": ["吴大山", "李小芳"], "phone": "13800000000",
            "id_number": "330182196001010011", "address": "上塘村12号"}
    commitment = village.store.put_private(village.slug, "h2", data)
    village.append(village.kit.sign("household.update", {"household": "h2", "commitment": commitment}))
    pages = [client.get(door).get_data(as_text=True), client.get(f"/v/{village.slug}").get_data(as_text=True)]
    for value in ("吴大山", "李小芳", "13800000000", "330182196001010011", "上塘村12号"):
        assert all(value not in page for page in pages)


def test_a_household_cannot_be_reached_by_its_id(client: FlaskClient, village: StoredVillage) -> None:
    assert client.get("/h/h2").status_code == 404


def test_a_reissued_plate_works_at_once_and_the_old_one_says_it_was_replaced(
    client: FlaskClient, village: StoredVillage, door: str
) -> None:
    new = plates.reissue(village.store, village.slug, "h2")
    assert client.get(f"/h/{new}").status_code == 200
    old = client.get(door)
    assert old.status_code == 410 and "此门牌已更换" in old.get_data(as_text=True)


def test_the_first_page_is_small_and_loads_nothing_from_outside(client: FlaskClient, village: StoredVillage, door: str) -> None:
    village.append(*[village.kit.award("h2", 1) for _ in range(30)])
    page = client.get(door)
    html = page.get_data(as_text=True)
    assets = [url for url in parsed(html).urls if url.startswith("/static/")] + ["/static/web/verify.js"]  # imported
    weight = len(page.data)
    for url in assets:
        with client.get(url) as asset:
            assert asset.status_code == 200
            weight += len(asset.data)
    assert weight < 100 * 1024, f"first page weighs {weight} bytes"
    for url in parsed(html).urls:
        assert not urlsplit(url).netloc, f"the page loads {url} from elsewhere"


def test_the_village_page_shows_affairs_by_month_and_category_with_totals(client: FlaskClient, village: StoredVillage) -> None:
    kit = village.kit
    def finance(affair: str, direction: str, fen: int, date: str) -> Any:
        return kit.sign("affair.publish", {"affair": affair, "category": "finance", "title": f"{affair} 收支",
                                           "text": "村集体收支", "date": date,
                                           "finance": {"direction": direction, "amount_fen": fen}})
    village.append(finance("a1", "income", 500000, "2026-03-05"), finance("a2", "expense", 120050, "2026-03-09"),
                   finance("a3", "income", 999900, "2026-04-01"))
    html = client.get(f"/v/{village.slug}?month=2026-03&category=finance").get_data(as_text=True)
    assert "a1 收支" in html and "a2 收支" in html and "a3 收支" not in html
    assert "收入 ¥5,000.00" in html and "支出 ¥1,200.50" in html
    assert "垃圾分类" in html  # the rules catalogue


def test_the_village_page_shows_the_monthly_red_list(client: FlaskClient, village: StoredVillage) -> None:
    village.append(village.kit.award("h2", 9), village.kit.award("h3", 4))
    month = village.kit.award("h1", 1).time[:7]
    html = client.get(f"/v/{village.slug}?month={month}").get_data(as_text=True)
    assert re.search(r"h2家 <strong>\+9</strong>.*h3家 <strong>\+4</strong>", html, re.DOTALL)


def test_an_unknown_village_page_is_a_404_page(client: FlaskClient) -> None:
    page = client.get("/v/nowhere")
    assert page.status_code == 404 and "页面不存在" in page.get_data(as_text=True)


def test_the_message_catalogue_is_complete_and_compiled(tmp_path: Path) -> None:
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    folder = Path(__file__).resolve().parents[1] / "web" / "translations" / "zh" / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []
    with (folder / "messages.mo").open("rb") as handle:
        compiled = read_mo(handle)
    assert {m.id: m.string for m in catalog if m.id} == {m.id: m.string for m in compiled if m.id}


def test_the_log_key_on_the_page_is_the_one_that_signed_the_checkpoint(
    client: FlaskClient, village: StoredVillage, door: str
) -> None:
    html = client.get(door).get_data(as_text=True)
    context = json.loads(re.search(r'id="proof-context">(.*?)</script>', html, re.DOTALL).group(1))
    open_checkpoint(context["checkpoint"], [keys.parse_verifier_key(context["key"])])


# --- the browser's protections ---------------------------------------------------------------------


@pytest.mark.parametrize("page", ["door", "/v/testvillage", "/v/testvillage/desk", "/v/testvillage/console",
                                  "/v/testvillage/track", "/v/testvillage/complain"])
def test_every_page_is_sent_with_a_strict_policy_never_framed_cached_or_referred(
    client: FlaskClient, door: str, page: str
) -> None:
    response = client.get(door if page == "door" else page)
    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store" and response.headers["X-Content-Type-Options"] == "nosniff"


def test_private_answers_are_not_stored_and_public_ones_may_be(
    client: FlaskClient, village: StoredVillage, login: Callable[[str], dict[str, str]]
) -> None:
    headers = login("supervisor")
    assert client.get(f"/api/v1/villages/{village.slug}/complaints", headers=headers).headers["Cache-Control"] == "no-store"
    assert client.post(f"/api/v1/villages/{village.slug}/auth/challenge").headers["Cache-Control"] == "no-store"
    public = client.get(f"/api/v1/villages/{village.slug}/households/h1")
    assert "Cache-Control" not in public.headers and public.headers["Referrer-Policy"] == "no-referrer"
