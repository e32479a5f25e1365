"""The client library and ``villageledger post``: sign locally, post over real HTTP, trust only what verifies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kit import StoredVillage

import keys
from cli import main
from cli.client import ApiError, LedgerClient
from ledger import merkle
from ledger.errors import CheckpointError
from ledger.note import verify_tlog_proof


def test_the_client_posts_and_returns_a_receipt_that_verifies_offline(live_server: str, village: StoredVillage) -> None:
    client = LedgerClient(live_server, log_keys=village.store.verifier_keys("testvillage"))
    entry = village.kit.award("h2", 4)
    (receipt,) = client.post("testvillage", [entry])
    assert receipt.index == village.store.size("testvillage") - 1
    trusted = [keys.parse_verifier_key(k) for k in village.store.verifier_keys("testvillage")]
    checkpoint = verify_tlog_proof(receipt.proof.text(), merkle.hash_leaf(entry.leaf), trusted)
    assert checkpoint.size == receipt.checkpoint.size


def test_the_client_refuses_a_checkpoint_signed_by_a_key_it_does_not_trust(live_server: str, village: StoredVillage) -> None:
    impostor = keys.verifier_key(village.kit.origin, keys.SigningKey.generate().public_bytes)
    client = LedgerClient(live_server, log_keys=[impostor])
    with pytest.raises(CheckpointError, match="no signature by a trusted key"):
        client.post("testvillage", [village.kit.award("h2", 4)])


def test_the_client_reports_the_servers_problem(live_server: str, village: StoredVillage) -> None:
    client = LedgerClient(live_server, log_keys=village.store.verifier_keys("testvillage"))
    with pytest.raises(ApiError, match="HTTP 403: grid worker grid1 may act only in grid g1, not g2"):
        client.post("testvillage", [village.kit.award("h3", 4, by="grid1")])


def test_post_signs_with_an_encrypted_key_file_and_writes_the_receipt(
    live_server: str, village: StoredVillage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "grid1.key"
    keys.save_private_key(village.kit.keys["grid1"], key_file, b"grid1-passphrase")
    monkeypatch.setenv("VILLAGELEDGER_KEY_PASSPHRASE", "grid1-passphrase")
    body = '{"household": "h2", "rule": "M-01", "amount": 3, "reason": "垃圾分类到位"}'
    result = CliRunner().invoke(main, [
        "post", "testvillage", "points.award", body, "--key", str(key_file), "--server", live_server,
        "--log-key", village.store.verifier_keys("testvillage")[-1], "--receipt", str(tmp_path / "r.tlog-proof"),
    ])
    assert result.exit_code == 0, result.output
    assert "appended points.award" in result.output and "verified" in result.output
    assert (tmp_path / "r.tlog-proof").read_text().startswith("c2sp.org/tlog-proof@v1\n")


@pytest.fixture
def post_as(
    live_server: str, village: StoredVillage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, str, str], Result]:
    """``post_as(member, kind, body)``: ``villageledger post`` with the member's encrypted key file."""

    def post(member: str, kind: str, body: str) -> Result:
        key_file = tmp_path / f"{member}.key"
        keys.save_private_key(village.kit.keys[member], key_file, f"pw-for-{member}".encode())
        monkeypatch.setenv("VILLAGELEDGER_KEY_PASSPHRASE", f"pw-for-{member}")
        return CliRunner().invoke(main, ["post", "testvillage", kind, body, "--key", str(key_file), "--server", live_server])

    return post


def test_post_refused_by_the_ledger_exits_non_zero_with_the_reason(post_as: Callable[[str, str, str], Result]) -> None:
    result = post_as("grid1", "points.award", '{"household": "h2", "rule": "M-01", "amount": 30, "reason": "太多了"}')
    assert result.exit_code == 1
    assert "amount 30 is outside rule M-01: between 1 and 10" in result.output


def test_post_of_a_committee_made_supervisor_is_refused_naming_the_rule(
    post_as: Callable[[str, str, str], Result], village: StoredVillage
) -> None:
    size = village.size()
    result = post_as("secretary", "member.role", '{"member": "secretary", "roles": ["committee", "supervisor"]}')
    assert result.exit_code == 1
    assert "rule 2 (appointments): only the township may appoint" in result.output and village.size() == size
