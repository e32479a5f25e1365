"""The JSON API: exact paths, signed writes, proofs a client can check, problems for every bad input."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from answers import problem
from flask import Flask
from flask.testing import FlaskClient
from kit import EVIDENCE, Kit, StoredVillage
from tamper import behind_the_triggers, flip_one_byte

import keys
from api.app import create_app
from ledger import merkle
from ledger.canonical import b64decode, b64encode
from ledger.note import open_checkpoint, verify_tlog_proof
from ledger.verify import verify_bundle

BASE = "/api/v1/villages/testvillage"


def trusted(client: FlaskClient) -> list[keys.NoteVerifier]:
    return [keys.parse_verifier_key(k) for k in client.get(BASE).json["log_keys"]]  # type: ignore[index]


def post(client: FlaskClient, *entries: Any) -> Any:
    wire = [e.to_wire() for e in entries]
    return client.post(f"{BASE}/entries", json=wire[0] if len(wire) == 1 else {"entries": wire})




# --- reading the log -------------------------------------------------------------------------------


def test_villages_are_listed_with_their_size_and_log_keys(client: FlaskClient, village: StoredVillage) -> None:
    listed = client.get("/api/v1/villages").json["villages"]  # type: ignore[index]
    assert [v["slug"] for v in listed] == ["testvillage"]
    one = client.get(BASE).json
    assert one["size"] == village.store.size("testvillage") and one["origin"] == village.kit.origin
    assert one["log_keys"] == village.store.verifier_keys("testvillage")


def test_unknown_village_is_a_404_problem(client: FlaskClient, village: StoredVillage) -> None:
    body = problem(client.get("/api/v1/villages/nowhere/log/checkpoint"), 404)
    assert body["detail"] == "no village 'nowhere'"


def test_checkpoint_is_signed_text_verifiable_with_the_published_key(client: FlaskClient, village: StoredVillage) -> None:
    response = client.get(f"{BASE}/log/checkpoint")
    assert response.mimetype == "text/plain" and "max-age=5" in response.headers["Cache-Control"]
    key = client.get(f"{BASE}/log/key").get_data(as_text=True).strip()
    checkpoint = open_checkpoint(response.get_data(as_text=True), [keys.parse_verifier_key(key)], origin=village.kit.origin)
    assert checkpoint.size == village.store.size("testvillage")


def test_an_unchanged_checkpoint_revalidates_with_304(client: FlaskClient, village: StoredVillage) -> None:
    first = client.get(f"{BASE}/log/checkpoint")
    again = client.get(f"{BASE}/log/checkpoint", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_leaves_and_inclusion_proofs_reproduce_the_checkpoint_root(client: FlaskClient, village: StoredVillage) -> None:
    checkpoint = open_checkpoint(client.get(f"{BASE}/log/checkpoint").get_data(as_text=True), trusted(client))
    for index in range(checkpoint.size):
        leaf = client.get(f"{BASE}/log/leaves/{index}")
        assert leaf.mimetype == "application/octet-stream" and "immutable" in leaf.headers["Cache-Control"]
        proof = client.get(f"{BASE}/log/proof/inclusion?index={index}&tree_size={checkpoint.size}").json["hashes"]
        merkle.verify_inclusion(index, checkpoint.size, merkle.hash_leaf(leaf.data), [b64decode(h) for h in proof],
                                checkpoint.root_hash)


def test_consistency_proofs_link_every_checkpointed_size(client: FlaskClient, village: StoredVillage) -> None:
    size = village.store.size("testvillage")
    roots = {n: merkle.root_of([merkle.hash_leaf(client.get(f"{BASE}/log/leaves/{i}").data) for i in range(n)])
             for n in (1, 5, size)}
    for first, second in ((1, 5), (5, size), (1, size)):
        hashes = client.get(f"{BASE}/log/proof/consistency?first={first}&second={second}").json["hashes"]
        merkle.verify_consistency(first, second, [b64decode(h) for h in hashes], roots[first], roots[second])


def test_offline_receipt_verifies_with_no_server(client: FlaskClient, village: StoredVillage) -> None:
    text = client.get(f"{BASE}/log/proof/3").get_data(as_text=True)
    leaf = client.get(f"{BASE}/log/leaves/3").data
    checkpoint = verify_tlog_proof(text, merkle.hash_leaf(leaf), trusted(client), origin=village.kit.origin)
    assert text.startswith("c2sp.org/tlog-proof@v1\nindex 3\n") and checkpoint.size == village.store.size("testvillage")


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("index=99&tree_size=5", 400, "index 99 is outside a tree of size 5"),
        ("index=0&tree_size=9999", 400, "tree size 9999 is outside 1.."),
        ("index=-1&tree_size=5", 422, "index: Must be greater than or equal to 0"),
        ("index=x&tree_size=5", 422, "index: Not a valid integer."),
        ("tree_size=5", 422, "index: Missing data for required field."),
    ],
)
def test_impossible_proofs_are_problems_naming_the_parameter(
    client: FlaskClient, village: StoredVillage, query: str, status: int, message: str
) -> None:
    assert message in problem(client.get(f"{BASE}/log/proof/inclusion?{query}"), status)["detail"]


def test_a_missing_leaf_is_a_404(client: FlaskClient, village: StoredVillage) -> None:
    assert "no entry at index 999" in problem(client.get(f"{BASE}/log/leaves/999"), 404)["detail"]


@pytest.mark.parametrize("path", ["/log/leaves/21330780183", "/log/proof/21330780183",
                                  "/log/proof/inclusion?index=0&tree_size=21330780183"])
def test_indexes_beyond_what_a_log_can_hold_are_client_errors(client: FlaskClient, village: StoredVillage, path: str) -> None:
    """Regression (found by schemathesis): an index past 2^31 overflowed PostgreSQL's integer column (500)."""
    assert client.get(BASE + path).status_code in (404, 422)


# --- writing -----------------------------------------------------------------------------------------


def test_a_signed_entry_is_appended_with_a_checkpoint_and_proof(client: FlaskClient, village: StoredVillage) -> None:
    entry = village.kit.award("h2", 5)
    response = post(client, entry)
    assert response.status_code == 201
    body = response.json
    checkpoint = open_checkpoint(body["checkpoint"], trusted(client))
    (appended,) = body["appended"]
    assert appended["entry_id"] == entry.id and appended["index"] == checkpoint.size - 1 == body["tree_size"] - 1
    assert b64decode(appended["leaf_hash"]) == merkle.hash_leaf(entry.leaf)
    merkle.verify_inclusion(appended["index"], checkpoint.size, merkle.hash_leaf(entry.leaf),
                            [b64decode(h) for h in appended["inclusion_proof"]], checkpoint.root_hash)


def test_posting_the_same_entry_twice_returns_the_first_result_and_writes_nothing(
    client: FlaskClient, village: StoredVillage
) -> None:
    entry = village.kit.award("h2", 5)
    first = post(client, entry).json
    size = village.store.size("testvillage")
    again = post(client, entry)
    assert again.status_code == 201 and again.json == first
    assert village.store.size("testvillage") == size


def test_a_batch_is_appended_all_or_nothing(client: FlaskClient, village: StoredVillage) -> None:
    kit, size = village.kit, village.store.size("testvillage")
    good = [kit.award(h, 3) for h in ("h1", "h2", "h3")]
    body = problem(post(client, good[1], good[2], kit.award("h2", 11)), 422)
    assert body["position"] == 2 and body["errors"] == [
        {"field": "entry.body.amount", "problem": "amount 11 is outside rule M-01: between 1 and 10"}
    ]
    assert village.store.size("testvillage") == size
    response = post(client, kit.award("h2", 3), kit.award("h3", 4))
    assert response.status_code == 201 and [a["index"] for a in response.json["appended"]] == [size, size + 1]


def _wire(kit: Kit, **change: Any) -> dict[str, Any]:
    wire = kit.award("h2", 5).to_wire()
    for path, value in change.items():
        target = wire
        *parents, last = path.split("__")
        for part in parents:
            target = target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return wire


@pytest.mark.parametrize(
    ("change", "status", "field", "message"),
    [
        ({"entry__kind": "points.steal"}, 422, "entry.kind", "Must be one of"),
        ({"entry__body__amount": None}, 422, "entry.body.amount", "Missing data for required field."),
        ({"entry__body__amount": "5"}, 422, "entry.body.amount", "Not a valid integer."),
        ({"entry__body__colour": "red"}, 422, "entry.body.colour", "Unknown field."),
        ({"entry__village": "othervillage"}, 422, "entry.village", "posted to 'testvillage'"),
        ({"entry__body__reason": "另一个理由"}, 403, "signatures", "signature by the author key"),
    ],
)
def test_bad_entries_are_refused_naming_the_field(
    client: FlaskClient, village: StoredVillage, change: dict[str, Any], status: int, field: str, message: str
) -> None:
    size = village.store.size("testvillage")
    body = problem(client.post(f"{BASE}/entries", json=_wire(village.kit, **change)), status)
    assert body["errors"][0]["field"] == field and message in body["errors"][0]["problem"]
    assert village.store.size("testvillage") == size


def test_an_unregistered_key_cannot_post(client: FlaskClient, village: StoredVillage) -> None:
    body = problem(post(client, village.kit.award("h2", 5, by="stranger")), 403)
    assert "is not registered in this village" in body["detail"] and body["errors"][0]["field"] == "entry.author"


def test_a_grid_worker_cannot_post_outside_their_grid(client: FlaskClient, village: StoredVillage) -> None:
    body = problem(post(client, village.kit.award("h3", 5, by="grid1")), 403)
    assert body["detail"] == "grid worker grid1 may act only in grid g1, not g2"


def test_an_id_reused_for_different_content_is_a_409(client: FlaskClient, village: StoredVillage) -> None:
    first = village.kit.award("h2", 5)
    post(client, first)
    body = problem(post(client, village.kit.sign("points.award", {**first.body, "amount": 6}, id=first.id)), 409)
    assert body["errors"][0]["field"] == "entry.id"


def test_evidence_and_rules_are_checked_at_the_door(client: FlaskClient, village: StoredVillage) -> None:
    assert "requires evidence" in problem(post(client, village.kit.award("h2", 50, rule="M-05")), 422)["detail"]
    assert post(client, village.kit.award("h2", 50, rule="M-05", evidence=[EVIDENCE])).status_code == 201


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b'{"entry": {"v": 1.5}}', 400, "non-integer number 1.5"),
        (b'{"entry": {}, "entry": {}}', 400, "duplicate JSON member 'entry'"),
        (b'{"entry": NaN}', 400, "JSON constant NaN"),
        (b"\xff\xfe{}", 400, "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
        (b"{", 400, "malformed JSON"),
        (b'{"entries": []}', 422, "entries: Length must be between 1 and 1000."),
        (b'{"entry": {}}', 422, "entry and signatures go together"),
        (b"{}", 422, "give either entry and signatures, or entries"),
    ],
)
def test_malformed_bodies_are_problems_not_crashes(
    client: FlaskClient, village: StoredVillage, data: bytes, status: int, message: str
) -> None:
    response = client.post(f"{BASE}/entries", data=data, content_type="application/json")
    assert message in problem(response, status)["detail"]


def test_an_oversized_body_is_a_413(app: Flask, client: FlaskClient, village: StoredVillage) -> None:
    data = b'{"entries": [' + b'"x",' * (app.config["MAX_CONTENT_LENGTH"] // 4) + b'"x"]}'
    problem(client.post(f"{BASE}/entries", data=data, content_type="application/json"), 413)


# --- reading entries, households, rules, affairs, ranking, export -----------------------------------


def test_entries_filter_by_household_and_kind_and_page_by_cursor(client: FlaskClient, village: StoredVillage) -> None:
    kit = village.kit
    post(client, kit.award("h2", 1), kit.award("h3", 2), kit.award("h2", 3))
    page = client.get(f"{BASE}/entries?household=h2&kind=points.award&limit=1").json
    assert [i["amount"] for i in page["items"]] == [1]
    rest = client.get(f"{BASE}/entries?household=h2&kind=points.award&after={page['next']}").json
    assert [i["amount"] for i in rest["items"]] == [3] and rest["next"] is None
    item = rest["items"][0]
    assert item["credit"] == "household:h2" and item["debit"] == "village"
    assert b64decode(item["leaf_hash"]) == merkle.hash_leaf(client.get(f"{BASE}/log/leaves/{item['index']}").data)


def test_households_show_public_fields_and_balances_only(client: FlaskClient, village: StoredVillage) -> None:
    post(client, village.kit.award("h2", 7))
    household = client.get(f"{BASE}/households/h2").json
    assert household["balances"] == {"morality": 7, "credit": 0} and household["green_card"] is False
    assert set(household) == {"household", "grid", "number", "public", "commitment", "balances", "green_card"}
    listed = client.get(f"{BASE}/households?grid=g1").json["items"]
    assert [h["household"] for h in listed] == ["h1", "h2"]
    assert problem(client.get(f"{BASE}/households/h9"), 404)["detail"] == "no household 'h9' in village 'testvillage'"


def test_rules_affairs_and_ranking_are_public(client: FlaskClient, village: StoredVillage) -> None:
    kit = village.kit
    assert [r["code"] for r in client.get(f"{BASE}/rules").json["rules"]] == ["C-01", "D-01", "M-01", "M-05"]
    affair = kit.sign("affair.publish", {
        "affair": "fin-1", "category": "finance", "title": "一月 保洁费", "text": "保洁员工资", "date": "2026-01-05",
        "finance": {"direction": "expense", "amount_fen": 120000},
    })
    post(client, affair, kit.award("h2", 9), kit.award("h3", 4))
    affairs = client.get(f"{BASE}/affairs?month=2026-01&category=finance").json["affairs"]  # the affair's own date
    assert [a["affair"] for a in affairs] == ["fin-1"] and affairs[0]["finance"]["amount_fen"] == 120000
    assert client.get(f"{BASE}/affairs?month=2026-02").json["affairs"] == []
    ranking = client.get(f"{BASE}/ranking?month={kit.clock.month()}").json["ranking"]  # the entries' own time
    assert [(r["household"], r["points"]) for r in ranking] == [("h2", 9), ("h3", 4)]
    assert "month: String does not match expected pattern." in problem(client.get(f"{BASE}/ranking?month=2026-13"), 422)["detail"]


def test_retired_rules_are_listed_only_when_asked_for(client: FlaskClient, village: StoredVillage) -> None:
    post(client, village.kit.sign("rule.retire", {"rule": "M-05", "reason": "并入新版积分细则"}))
    assert "M-05" not in [r["code"] for r in client.get(f"{BASE}/rules").json["rules"]]
    listed = {r["code"]: r for r in client.get(f"{BASE}/rules?include_retired=true").json["rules"]}
    assert listed["M-05"]["retired_at"] == village.store.size("testvillage") - 1
    assert listed["M-01"]["retired_at"] is None
    assert "include_retired: Not a valid boolean." in problem(client.get(f"{BASE}/rules?include_retired=maybe"), 422)["detail"]


def test_the_export_is_streamed_and_verifies(client: FlaskClient, village: StoredVillage) -> None:
    post(client, village.kit.award("h2", 5))
    response = client.get(f"{BASE}/export")
    assert response.mimetype == "application/x-ndjson" and response.is_streamed
    report = verify_bundle(response.data.splitlines(keepends=True), trusted(client), workers=0)
    assert report.size == village.store.size("testvillage") and report.balances["morality"]["household:h2"] == 5


# --- who may read what ------------------------------------------------------------------------------


def test_a_member_logs_in_by_signing_a_challenge(client: FlaskClient, village: StoredVillage) -> None:
    issued = client.post(f"{BASE}/auth/challenge").json
    assert issued["message"] == f"villageledger/auth/v1\ntestvillage\n{issued['challenge']}"
    signature = village.kit.keys["grid1"].sign(issued["message"].encode())
    token = client.post(f"{BASE}/auth/token", json={
        "key": village.kit.key_b64("grid1"), "challenge": issued["challenge"], "signature": b64encode(signature)})
    assert token.json["member"] == "grid1" and token.json["roles"] == ["grid_worker"]


def test_a_signed_challenge_is_exchanged_once_whichever_worker_sees_it(
    app: Flask, client: FlaskClient, village: StoredVillage
) -> None:
    issued = client.post(f"{BASE}/auth/challenge").json
    signature = village.kit.keys["grid1"].sign(issued["message"].encode())
    exchange = {"key": village.kit.key_b64("grid1"), "challenge": issued["challenge"], "signature": b64encode(signature)}
    assert client.post(f"{BASE}/auth/token", json=exchange).status_code == 200
    other_worker = create_app(app.config)  # its own store and caches, the same database
    try:
        replayed = other_worker.test_client().post(f"{BASE}/auth/token", json=exchange)
        assert problem(replayed, 401)["detail"] == "the challenge was already used; ask for a new one"
    finally:
        other_worker.extensions["villageledger.store"].engine.dispose()
    assert problem(client.post(f"{BASE}/auth/token", json=exchange), 401)["errors"][0]["field"] == "challenge"


@pytest.mark.parametrize(
    ("signer", "claimed", "message"),
    [
        ("grid1", "grid2", "the signature does not verify"),
        ("stranger", "stranger", "this key is not an active member key of the village"),
    ],
)
def test_login_fails_without_a_valid_signature_by_a_member_key(
    client: FlaskClient, village: StoredVillage, signer: str, claimed: str, message: str
) -> None:
    issued = client.post(f"{BASE}/auth/challenge").json
    signature = village.kit.keys[signer].sign(issued["message"].encode())
    response = client.post(f"{BASE}/auth/token", json={
        "key": village.kit.key_b64(claimed), "challenge": issued["challenge"], "signature": b64encode(signature)})
    assert message in problem(response, 401)["detail"]


def test_a_forged_challenge_is_refused(client: FlaskClient, village: StoredVillage) -> None:
    forged = "eyJ2IjoidGVzdHZpbGxhZ2UifQ.forged"
    signature = village.kit.keys["founder"].sign(f"villageledger/auth/v1\ntestvillage\n{forged}".encode())
    response = client.post(f"{BASE}/auth/token", json={
        "key": village.kit.key_b64("founder"), "challenge": forged, "signature": b64encode(signature)})
    assert problem(response, 401)["detail"] == "the challenge was not issued by this server"


def test_an_expired_challenge_or_token_is_refused(
    client: FlaskClient, village: StoredVillage, login: Callable[[str], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.auth

    headers = login("founder")
    issued = client.post(f"{BASE}/auth/challenge").json
    monkeypatch.setattr(api.auth, "CHALLENGE_SECONDS", 0)
    monkeypatch.setattr(api.auth, "TOKEN_SECONDS", 0)
    time.sleep(1.1)  # both are now older than their (shortened) lifetime
    signature = village.kit.keys["founder"].sign(issued["message"].encode())
    response = client.post(f"{BASE}/auth/token", json={
        "key": village.kit.key_b64("founder"), "challenge": issued["challenge"], "signature": b64encode(signature)})
    assert problem(response, 401)["detail"] == "the challenge has expired; ask for a new one"
    assert problem(client.get(f"{BASE}/check", headers=headers), 401)["detail"] == "the token has expired; sign a new challenge"


def test_a_token_stops_working_when_its_key_is_revoked(
    client: FlaskClient, village: StoredVillage, login: Callable[[str], dict[str, str]]
) -> None:
    headers = login("grid1")
    village.store.put_private("testvillage", "h1", {"head": "吴大山"})
    assert client.get(f"{BASE}/households/h1/private", headers=headers).status_code == 200
    post(client, village.kit.sign("key.revoke", {"key": village.kit.key_b64("grid1"), "reason": "手机丢失"}))
    response = client.get(f"{BASE}/households/h1/private", headers=headers)
    assert problem(response, 401)["detail"] == "this key is not an active member key of the village"


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("auditor", 403), ("supervisor", 403), ("intake", 403), ("grid2", 403), ("grid1", 200),
     ("secretary", 200), ("founder", 200)],
)
def test_personal_data_is_for_the_committee_and_the_households_grid_worker(
    client: FlaskClient, village: StoredVillage, login: Callable[[str], dict[str, str]], who: str | None, status: int
) -> None:
    data = {"head": "吴大山", "members": ["吴大山", "李小芳"], "phone": "13800000000", "id_number": "330182196001010011"}
    commitment = village.store.put_private("testvillage", "h1", data)
    post(client, village.kit.sign("household.update", {"household": "h1", "commitment": commitment}))
    response = client.get(f"{BASE}/households/h1/private", headers=login(who) if who else {})
    assert response.status_code == status
    if status == 200:
        assert response.json["data"] == data and response.json["matches_log"] is True


def test_public_answers_never_carry_personal_data(client: FlaskClient, village: StoredVillage) -> None:
    data = {"head": "吴大山", "phone": "13800000000", "id_number": "330182196001010011", "address": "上塘村12号"}
    commitment = village.store.put_private("testvillage", "h1", data)
    post(client, village.kit.sign("household.update", {"household": "h1", "commitment": commitment}))
    public = [client.get(f"{BASE}{path}").data for path in ("/households", "/households/h1", "/entries", "/export")]
    for secret in data.values():
        assert all(secret.encode() not in body for body in public)


def test_the_self_check_needs_a_member_and_passes_on_an_honest_log(
    client: FlaskClient, village: StoredVillage, login: Callable[[str], dict[str, str]]
) -> None:
    problem(client.get(f"{BASE}/check"), 401)
    report = client.get(f"{BASE}/check", headers=login("auditor")).json
    assert report["ok"] is True and report["size"] == village.store.size("testvillage") and report["failure"] is None


def test_the_self_check_names_an_entry_tampered_with_in_the_database(
    client: FlaskClient, village: StoredVillage, login: Callable[[str], dict[str, str]], engine: Any, backend: str
) -> None:
    (appended,) = village.append(village.kit.award("h2", 5))
    with behind_the_triggers(engine, backend) as connection:
        flip_one_byte(connection, village.store.village_id("testvillage"), appended.index)
    report = client.get(f"{BASE}/check", headers=login("supervisor")).json
    assert report["ok"] is False and report["failure"]["index"] == appended.index
    assert report["failure"]["message"].startswith(f"entry {appended.index} (points.award): stored bytes do not match")


@pytest.mark.parametrize("path", ["/households?after=0&grid=%00", "/entries?household=h%00", "%00/rules"])
def test_control_characters_in_a_request_are_refused_before_the_database_sees_them(
    client: FlaskClient, village: StoredVillage, path: str
) -> None:
    """Regression (found by schemathesis on PostgreSQL): a NUL in a query parameter was a 500 (DataError)."""
    response = client.get(BASE + path)
    assert response.status_code in (400, 404, 422) and response.mimetype == "application/problem+json"


# --- the contract -------------------------------------------------------------------------------------


def test_every_route_is_in_the_openapi_document(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {path.replace("{", "<").replace("}", ">") for path in spec["paths"]}
    routes = {
        re.sub(r"<\w+(\([^)]*\))?:", "<", rule.rule) for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/villages")
    }
    assert routes == documented


def test_every_error_response_is_documented_as_a_problem(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    responses = spec["components"]["responses"]
    assert {"DEFAULT_ERROR", "UNPROCESSABLE_ENTITY"} <= responses.keys()
    for name, response in responses.items():
        (media_type,) = response["content"]
        assert media_type == "application/problem+json", name
        assert response["content"][media_type]["schema"] == {"$ref": "#/components/schemas/Problem"}, name


def test_the_browsable_docs_load_nothing_from_outside(client: FlaskClient) -> None:
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "openapi.json" in html
    for token in html.split('"'):
        if token.startswith(("http://", "https://", "//")) and urlsplit(token).hostname != "localhost":
            pytest.fail(f"docs page loads {token} from outside")
    with client.get("/api/v1/docs/swagger-ui-bundle.js") as script:
        assert script.status_code == 200


def test_errors_outside_the_api_are_problems_too(client: FlaskClient) -> None:
    assert problem(client.get("/api/v1/nothing-here"), 404)["title"] == "Not Found"
    assert problem(client.delete("/api/v1/villages"), 405)["title"] == "Method Not Allowed"


def test_base64_in_answers_is_standard_padded(client: FlaskClient, village: StoredVillage) -> None:
    hashes = client.get(f"{BASE}/log/proof/inclusion?index=0&tree_size=3").json["hashes"]
    assert all(base64.b64encode(base64.b64decode(h)).decode() == h for h in hashes)
    assert json.loads(client.get(f"{BASE}/log/leaves/0").data)["entry"]["kind"] == "village.genesis"


# --- door plates (committee) ------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "status"), [(None, 401), ("grid1", 403), ("supervisor", 403), ("secretary", 200)])
def test_only_the_committee_prints_plates(
    client: FlaskClient, village: StoredVillage, login: Callable[[str], dict[str, str]], who: str | None, status: int
) -> None:
    response = client.get(f"{BASE}/plates.pdf?household=h1&household=h2", headers=login(who) if who else {})
    assert response.status_code == status
    if status == 200:
        assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF-")


def test_the_committee_reissues_a_plate_and_the_old_url_is_refused(
    client: FlaskClient, village: StoredVillage, login: Callable[[str], dict[str, str]]
) -> None:
    from storage import plates

    old = plates.token_for(village.store, village.slug, "h1")
    problem(client.post(f"{BASE}/households/h1/plate", headers=login("grid1")), 403)
    forged_host = {**login("founder"), "Host": "evil.example"}
    reissued = client.post(f"{BASE}/households/h1/plate", headers=forged_host).json
    assert reissued["household"] == "h1" and reissued["url"].startswith("http://127.0.0.1:5000/h/"), (
        "the plate points at VILLAGELEDGER_PUBLIC_URL (here the default), never at the request's Host")
    assert client.get(urlsplit(reissued["url"]).path).status_code == 200
    assert client.get(f"/h/{old}").status_code == 410
