"""Specification of the township's witness (``storage.witness``, ``api.township``) and of the village server
asking it to cosign (``storage.cosigning``): C2SP tlog-witness over a database of its own, tested on SQLite
and PostgreSQL, then as real processes (gunicorn), with aics-witness (PyPI, C2SP code we did not write) as a
second witness."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ci import missing_tool
from click.testing import CliRunner
from conftest import PHONE, screenshot
from conftest import TOWNSHIP_WITNESS as WITNESS
from flask.testing import FlaskClient
from kit import StoredVillage
from servers import BIN, Server, eventually, free_port, register_with_township, served
from sqlalchemy import Engine
from tamper import append_without_the_rules

from api.township import create_app as create_township_app
from cli import main
from keys import ALG_COSIGNATURE_V1, NoteVerifier, SigningKey, parse_verifier_key
from ledger import merkle
from ledger.canonical import b64decode
from ledger.note import Checkpoint, open_note, parse_tlog_proof, sign_checkpoint
from ledger.tiles import Tile
from ledger.witness import AddCheckpoint, WitnessRefusal
from storage import NotFound, Store, make_engine
from storage.cosigning import CosigningError, WitnessEndpoint, parse_witnesses, request_cosignature
from storage.witness import Witness, add_log, make_witness_key, origin_hash

ORIGIN = "village.example/fork-test"


class Clock:
    def __init__(self) -> None:
        self.now = 1_765_000_000.0

    def __call__(self) -> float:
        return self.now


class Log:
    """A log whose key the test holds, so that it can sign a fork as an operator with the key would."""

    def __init__(self, leaves: int = 20) -> None:
        self.key = SigningKey.generate()
        self.vkey = NoteVerifier.from_public_key(ORIGIN, self.key.public_bytes)
        self.tree = merkle.MemoryTree()
        for i in range(leaves):
            self.tree.append(merkle.hash_leaf(b"entry %d" % i))

    def note(self, size: int, root: bytes | None = None) -> str:
        checkpoint = Checkpoint(ORIGIN, size, self.tree.root(size) if root is None else root)
        return sign_checkpoint(checkpoint, [(ORIGIN, self.key)])

    def body(self, old: int, size: int, *, root: bytes | None = None, proof: list[bytes] | None = None) -> bytes:
        hashes = proof if proof is not None else self.tree.consistency_proof(old, size) if 0 < old < size else []
        return AddCheckpoint(old, tuple(hashes), self.note(size, root)).encode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log(engine: Engine) -> Log:
    made = Log()
    add_log(engine, ORIGIN, [_vkey_text(made.vkey)])
    return made


@pytest.fixture
def witness(engine: Engine, clock: Clock) -> Witness:
    return Witness(engine, name=WITNESS, key=SigningKey.generate(), clock=clock)


def _vkey_text(verifier: NoteVerifier) -> str:
    from keys import verifier_key
    return verifier_key(verifier.name, verifier.public, verifier.algorithm)


def _refused(witness: Witness, body: bytes) -> WitnessRefusal:
    with pytest.raises(WitnessRefusal) as caught:
        witness.add_checkpoint(body)
    return caught.value


# The witness over its database --------------------------------------------------------------------------


def test_the_witness_cosigns_a_first_checkpoint_then_only_consistent_ones(witness: Witness, log: Log) -> None:
    cosigner = parse_verifier_key(witness.vkey)
    line = witness.add_checkpoint(log.body(0, 7))
    assert open_note(log.note(7) + line, [log.vkey, cosigner]).cosigned_at == {WITNESS: 1_765_000_000}
    line = witness.add_checkpoint(log.body(7, 20))
    assert witness.checkpoint(origin_hash(ORIGIN)) == log.note(20) + line, "the monitoring path serves it"
    [row] = witness.logs()
    assert (row.size, row.root, row.cosigned_at) == (20, log.tree.root(20), 1_765_000_000)


def test_a_stale_old_size_is_409_and_names_the_size_cosigned(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.body(0, 7))
    refused = _refused(witness, log.body(0, 20))
    assert (refused.status, refused.cosigned_size) == (409, 7)


def test_an_unknown_log_is_404_and_a_checkpoint_not_signed_by_its_key_403(witness: Witness, log: Log) -> None:
    other = Log()
    other_origin = other.body(0, 7).replace(ORIGIN.encode(), b"village.example/unknown")
    assert _refused(witness, other_origin).status == 404
    assert _refused(witness, other.body(0, 7)).status == 403, "same origin, another key"
    with pytest.raises(NotFound):
        witness.checkpoint(origin_hash(ORIGIN))


def test_a_fork_is_refused_and_kept_as_evidence_and_changes_nothing(witness: Witness, log: Log) -> None:
    """An operator with the log key shows the witness a rewritten history: never cosigned, kept as proof."""
    witness.add_checkpoint(log.body(0, 7))
    forked = Log()
    forked.key, forked.vkey = log.key, log.vkey
    forked.tree = merkle.MemoryTree()
    for i in range(20):
        forked.tree.append(merkle.hash_leaf(b"rewritten" if i == 3 else b"entry %d" % i))
    refused = _refused(witness, forked.body(7, 20))
    assert refused.status == 422
    [evidence] = witness.evidence(ORIGIN)
    assert evidence.status == 422 and forked.note(20) in evidence.request
    assert witness.logs()[0].size == 7, "the witness still holds what it cosigned"


def test_a_clock_gone_back_is_503_not_an_earlier_cosignature(witness: Witness, log: Log, clock: Clock) -> None:
    witness.add_checkpoint(log.body(0, 7))
    clock.now -= 60
    assert _refused(witness, log.body(7, 20)).status == 503
    assert witness.logs()[0].size == 7


def test_a_log_key_rotation_keeps_what_was_cosigned(engine: Engine, witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.body(0, 7))
    new_key = SigningKey.generate()
    add_log(engine, ORIGIN, [_vkey_text(log.vkey), _vkey_text(NoteVerifier.from_public_key(ORIGIN, new_key.public_bytes))])
    log.key = new_key
    assert witness.logs()[0].size == 7
    witness.add_checkpoint(log.body(7, 20))
    with pytest.raises(ValueError, match="named after its origin"):
        add_log(engine, ORIGIN, [witness.vkey])


def test_check_and_persist_are_atomic(open_engine: Callable[[], Engine], log: Log, clock: Clock) -> None:
    """Eight witnesses' worth of requests at once, each from size 0 to another size (own engines, as workers
    of one witness would be): exactly one is cosigned; every other learns the size it holds (409)."""
    key = SigningKey.generate()
    barrier = threading.Barrier(8)
    answers: list[int] = []

    def submit(size: int) -> None:
        witness = Witness(open_engine(), name=WITNESS, key=key, clock=clock)
        barrier.wait()
        try:
            witness.add_checkpoint(log.body(0, size))
            answers.append(200)
        except WitnessRefusal as refusal:
            answers.append(refusal.status)

    threads = [threading.Thread(target=submit, args=(size,)) for size in range(10, 18)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200] + [409] * 7


# The village server asking its witness -------------------------------------------------------------------


def test_witnesses_are_configured_as_pairs_of_url_and_cosigner_key() -> None:
    key = SigningKey.generate()
    from keys import verifier_key
    vkey = verifier_key(WITNESS, key.public_bytes, ALG_COSIGNATURE_V1)
    [witness] = parse_witnesses(f"  http://127.0.0.1:9/witness/ {vkey}\n")
    assert witness == WitnessEndpoint("http://127.0.0.1:9/witness", parse_verifier_key(vkey))
    for bad, problem in [(vkey, "one is missing"), (f"ftp://x {vkey}", "not an http"),
                         (f"http://x {verifier_key(WITNESS, key.public_bytes)}", "not a cosigner key")]:
        with pytest.raises(ValueError, match=problem):
            parse_witnesses(bad)


@pytest.mark.slow
def test_a_village_server_gets_its_checkpoints_cosigned_by_the_township_node(
        township: Callable[[], tuple[Server, str]], village: StoredVillage, client: Any, database_url: str,
        live_server: str, tmp_path: Path) -> None:
    """The township node runs as its own process on its own database; the village server posts its latest
    checkpoint, then a larger one with a consistency proof, and serves the cosigned checkpoint; the township
    mirrors the log over the village's tiles and serves the same tiles."""
    server, vkey = township()
    endpoint = WitnessEndpoint(f"{server.url}/witness", parse_verifier_key(vkey))
    with pytest.raises(CosigningError, match="refused the checkpoint .* \\(404\\)"):
        request_cosignature(village.store, village.slug, endpoint)
    register_with_township(server, village, live_server)
    assert request_cosignature(village.store, village.slug, endpoint) == village.size()
    village.grow(village.size() + 30)
    cosigned = CliRunner().invoke(main, ["cosign"], env={"VILLAGELEDGER_WITNESSES": f"{endpoint.url} {vkey}",
                                                         "VILLAGELEDGER_DATABASE_URL": database_url})
    assert cosigned.exit_code == 0 and f"{WITNESS} cosigned size {village.size()}" in cosigned.output, cosigned.output
    served = client.get(f"/api/v1/villages/{village.slug}/log/checkpoint").text
    opened = open_note(served, [*village.trusted(), parse_verifier_key(vkey)])
    assert WITNESS in opened.verified and opened.cosigned_at[WITNESS] > 0
    assert opened.text.split("\n")[1] == str(village.size())
    [listed] = json.loads(urllib_get(f"{server.url}/witness/logs"))["logs"]
    assert listed == {"origin": village.kit.origin, "village": village.slug, "size": village.size(),
                      "cosigned_at": opened.cosigned_at[WITNESS], "mirrored": True, "problem": None}
    monitored = urllib_get(f"{server.url}/witness/{origin_hash(village.kit.origin)}/checkpoint")
    assert open_note(monitored, [*village.trusted(), parse_verifier_key(vkey)]).cosigned_at == opened.cosigned_at
    size = village.size()
    exported, policy = tmp_path / "export.vlbundle", tmp_path / "township.policy"
    exported.write_bytes(b"".join(village.store.export(village.slug)))
    policy.write_text(f"# the township's witness\nwitness township {vkey}\nquorum township\n")
    audited = CliRunner().invoke(main, ["verify", str(exported), "--policy", str(policy), "--quiet", "--workers", "0",
                                        *(f"--log-key={key}" for key in village.store.verifier_keys(village.slug))])
    assert audited.exit_code == 0 and f"{size} entries verified" in audited.output, audited.output
    mirrored = urllib_bytes(f"{server.url}/mirror/{village.slug}/log/tile/entries/000.p/{size}")
    assert mirrored == urllib_bytes(f"{live_server}/api/v1/villages/{village.slug}/log/tile/entries/000.p/{size}")
    receipt = parse_tlog_proof(village.store.tlog_proof(village.slug, 3))
    assert WITNESS in open_note(receipt.checkpoint, [*village.trusted(), parse_verifier_key(vkey)]).cosigned_at, (
        "receipts carry it")
    village.grow(village.size() + 1)
    newest = parse_tlog_proof(village.store.tlog_proof(village.slug, village.size() - 1))
    assert newest.checkpoint.endswith(f"\n\n\u2014 {village.kit.origin} {newest.checkpoint.split(' ')[-1]}"), (
        "an entry no cosigned checkpoint holds yet is proved against the latest, uncosigned")


def urllib_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def urllib_get(url: str) -> str:
    return urllib_bytes(url).decode()


@pytest.fixture
def aics_witness(tmp_path: Path) -> Iterator[Callable[[StoredVillage], tuple[str, str]]]:
    """``aics_witness(village)``: aics-witness (PyPI) serving on loopback, witnessing the village's log;
    returns its submission prefix and cosigner key. A second witness, written by others."""
    binary = BIN / "aics-witness"
    if not binary.exists():
        missing_tool("aics-witness interop", "aics-witness is not installed (see the README's test command)")
    processes: list[subprocess.Popen[bytes]] = []

    def start(village: StoredVillage) -> tuple[str, str]:
        folder = tmp_path / "aics-witness"
        folder.mkdir()
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AICS_WITNESS_CONFIG": str(folder / "witness.json")}

        def run(*arguments: str) -> str:
            return subprocess.run([str(binary), *arguments], env=environment, capture_output=True, text=True,
                                  timeout=60, check=True).stdout

        vkey = run("init", "--name", "aics.example/w2").split()[0]
        for log_key in village.store.verifier_keys(village.slug):
            run("add-log", "--origin", village.kit.origin, "--vkey", log_key)
        port = free_port()
        with (folder / "serve.log").open("ab") as output:
            processes.append(subprocess.Popen([str(binary), "serve", "--listen", f"127.0.0.1:{port}"], env=environment,
                                              stdout=output, stderr=subprocess.STDOUT, start_new_session=True))
        eventually(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), "aics-witness to serve")
        return f"http://127.0.0.1:{port}", vkey

    yield start
    for process in processes:
        process.kill()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return urllib_get(url).strip() == "ok"
    except OSError:
        return False


@pytest.mark.slow
def test_a_second_witness_written_by_others_cosigns_the_same_log(
        township: Callable[[], tuple[Server, str]], aics_witness: Callable[[StoredVillage], tuple[str, str]],
        village: StoredVillage, client: Any) -> None:
    """aics-witness cosigns the checkpoints our village server sends it (so our add-checkpoint requests and
    consistency proofs are what a C2SP witness expects); the served checkpoint carries both cosignatures; and
    aics-tlog and tlog-scales verify the log's signature and our witness's cosignature on it, and aics-tlog our
    receipts."""
    from aics_tlog import cosign, note, tree  # type: ignore[import-not-found, unused-ignore]
    from tlog_scales.signing import Vkey
    from tlog_scales.tlog import Checkpoint as ScalesCheckpoint

    server, ours = township()
    register_with_township(server, village)
    url, theirs = aics_witness(village)
    witnesses = [WitnessEndpoint(f"{server.url}/witness", parse_verifier_key(ours)),
                 WitnessEndpoint(url, parse_verifier_key(theirs))]
    for _ in range(2):  # a first checkpoint, then one proved consistent with it
        village.grow(village.size() + 20)
        for witness in witnesses:
            assert request_cosignature(village.store, village.slug, witness) == village.size()
    served = client.get(f"/api/v1/villages/{village.slug}/log/checkpoint").text
    opened = open_note(served, [*village.trusted(), *(w.key for w in witnesses)])
    assert set(opened.cosigned_at) == {WITNESS, "aics.example/w2"}
    parsed = note.parse_note(served)
    assert note.verify_note(parsed, [note.parse_vkey(village.store.verifier_keys(village.slug)[-1])])
    [line] = [s for s in parsed.signatures if s.name == WITNESS]
    checkpoint = open_note(served, village.trusted()).text.split("\n")
    ours_key = parse_verifier_key(ours)
    assert cosign.verify_cosignature(line.signature, WITNESS, ours_key.public, checkpoint[0], int(checkpoint[1]),
                                     b64decode(checkpoint[2]))
    scales_checkpoint = ScalesCheckpoint.from_text(served)  # tlog-scales (PyPI) verifies both signatures too
    for vkey_text in (village.store.verifier_keys(village.slug)[-1], ours):
        verifier = Vkey.from_string(vkey_text).get_verifier()
        [signature] = [sig for sig in scales_checkpoint.signatures if verifier.vkey.match(sig)]
        verifier.verify_note(signature, scales_checkpoint)
    receipt = parse_tlog_proof(village.store.tlog_proof(village.slug, 5))  # against the cosigned checkpoint
    assert receipt.checkpoint == served
    assert tree.verify_leaf_inclusion(village.store.leaf(village.slug, 5), 5, int(checkpoint[1]), list(receipt.hashes),
                                      b64decode(checkpoint[2])), "aics-tlog verifies our receipt"


# The township monitors: it mirrors each village log over its tiles and replays it before cosigning ----------


def _add_checkpoint_body(village: StoredVillage, old: int) -> bytes:
    """What ``request_cosignature`` posts: the latest checkpoint, with the proof from ``old``."""
    store, slug = village.store, village.slug
    size, note = store.size(slug), store.latest_checkpoint(slug)
    proof = store.consistency_proof(slug, old, size) if 0 < old < size else []
    return AddCheckpoint(old, tuple(proof), note).encode()


@pytest.fixture
def township_database(make_database: Callable[[str], str]) -> str:
    return make_database("township")


@pytest.fixture
def monitoring(township_database: str, village: StoredVillage, live_server: str) -> Iterator[Witness]:
    """A township witness on its own database that mirrors and monitors the test village, read over HTTP."""
    township_engine = make_engine(township_database)
    add_log(township_engine, village.kit.origin, village.store.verifier_keys(village.slug), village=village.slug,
            tiles_url=f"{live_server}/api/v1/villages/{village.slug}/log/")
    yield Witness(township_engine, name=WITNESS, key=SigningKey.generate())
    township_engine.dispose()


def test_the_township_mirrors_the_log_it_cosigns_and_a_lost_village_is_restored_from_it(
        monitoring: Witness, village: StoredVillage, make_database: Callable[[str], str], tmp_path: Path) -> None:
    village.grow(300)  # a full entry bundle and a partial one
    monitoring.add_checkpoint(_add_checkpoint_body(village, 0))
    village.grow(340)
    monitoring.add_checkpoint(_add_checkpoint_body(village, 300))
    assert monitoring.logs()[0].problem is None
    mirror = Store(monitoring.engine, log_key_passphrase=b"unused: a mirror never signs")
    assert mirror.size(village.slug) == 340
    assert [mirror.leaf(village.slug, i) for i in range(340)] == [village.store.leaf(village.slug, i) for i in range(340)]
    assert mirror.tile(village.slug, Tile(0, 1, 84)) == village.store.tile(village.slug, Tile(0, 1, 84))
    bundle = tmp_path / "from-the-township.vlbundle"
    bundle.write_bytes(b"".join(mirror.export(village.slug)))
    engine = make_engine(make_database("restored"))
    try:
        restored = Store(engine, log_key_passphrase=b"a new server")
        report = restored.restore(bundle, village.trusted())
        assert (report.size, restored.state(village.slug).balances) == (340, village.store.state(village.slug).balances)
    finally:
        engine.dispose()


def test_the_township_refuses_to_cosign_a_log_that_breaks_a_rule_and_says_which_entry(
        monitoring: Witness, village: StoredVillage) -> None:
    """An operator with the database and the log key appends an award signed by a supervisor (who may not
    award), with a checkpoint signed by the village's key: consistent, so a witness that only checks
    consistency would cosign it. The township replays it, refuses, names the entry, and keeps nothing of it."""
    monitoring.add_checkpoint(_add_checkpoint_body(village, 0))
    cosigned = village.size()
    append_without_the_rules(village.store, village.slug, village.kit.award("h1", 5, by="supervisor"))
    refused = _refused(monitoring, _add_checkpoint_body(village, cosigned))
    assert refused.status == 422
    assert f"entry {cosigned} (points.award)" in str(refused) and "may not sign points.award" in str(refused)
    [row] = monitoring.logs()
    assert (row.size, row.problem) == (cosigned, str(refused).removeprefix("the log breaks the ledger's rules: "))
    assert len(monitoring.evidence(village.kit.origin)) == 1
    assert Store(monitoring.engine, log_key_passphrase=b"x").size(village.slug) == cosigned, "the mirror kept none"


def test_the_township_refuses_an_entry_dated_after_its_cosignature_time(monitoring: Witness,
                                                                         village: StoredVillage) -> None:
    """The committee cannot choose the dates of its entries: one dated an hour ahead of the witness's clock
    (appended behind the server's own clock check) is refused."""
    monitoring.add_checkpoint(_add_checkpoint_body(village, 0))
    cosigned = village.size()
    village.kit.clock.advance(hours=1)
    append_without_the_rules(village.store, village.slug, village.kit.award("h1", 5))
    refused = _refused(monitoring, _add_checkpoint_body(village, cosigned))
    assert refused.status == 422 and f"entry {cosigned} (points.award): it is dated" in str(refused)


@pytest.fixture
def township_page(township_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    """The township node's app (in this process) on the township's database: its page."""
    monkeypatch.setenv("VILLAGELEDGER_INSTANCE_PATH", str(tmp_path / "township-instance"))
    make_witness_key(b"page test")
    app = create_township_app({"DATABASE_URL": township_database, "WITNESS_NAME": WITNESS,
                               "WITNESS_KEY_PASSPHRASE": "page test"})
    yield app.test_client()
    app.extensions["villageledger.witness"].engine.dispose()


def test_the_township_page_says_in_plain_words_which_villages_keep_the_rules(
        monitoring: Witness, village: StoredVillage, township_page: FlaskClient) -> None:
    monitoring.add_checkpoint(_add_checkpoint_body(village, 0))
    page = township_page.get("/").text
    assert "测试村" in page and f"共 {village.size()} 条记录" in page and "所有记录均符合规则" in page
    assert "投诉 0 件" in page and re.search(r"最近核对：\d+月\d+日 \d\d:\d\d（0 分钟前）", page), page
    cosigned = village.size()
    append_without_the_rules(village.store, village.slug, village.kit.award("h1", 5, by="supervisor"))
    _refused(monitoring, _add_checkpoint_body(village, cosigned))
    page = township_page.get("/").text
    assert "乡镇拒绝签名：有一条记录违反规则" in page and f"entry {cosigned} (points.award)" in page


@pytest.mark.slow
@pytest.mark.browser
def test_the_township_page_fits_a_phone(monitoring: Witness, village: StoredVillage, township_page: FlaskClient,
                                        phone: Any, request: pytest.FixtureRequest) -> None:
    """Read in Chromium at 360 px: nothing scrolls sideways, the refusal is in plain words (screenshot kept)."""
    monitoring.add_checkpoint(_add_checkpoint_body(village, 0))
    cosigned = village.size()
    append_without_the_rules(village.store, village.slug, village.kit.award("h1", 5, by="supervisor"))
    _refused(monitoring, _add_checkpoint_body(village, cosigned))
    with served(township_page.application) as url:
        phone.goto(f"{url}/")
        assert "乡镇拒绝签名" in phone.inner_text("main")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
        screenshot(phone, "township-page", request)
