"""Interoperability with Go's golang.org/x/mod/sumdb/note and sumdb/tlog, an implementation we did not write.

Our checkpoints, signed with ``sign_checkpoint``, and our ``MemoryTree`` proofs are checked by
``tests/interop/gocheck`` (see its doc comment for what it checks). The Go program builds offline against
Debian's packages ``golang-go`` and ``golang-golang-x-mod-dev`` (source in GO_XMOD_DIR): its go.mod
replaces golang.org/x/mod with that directory, and GOPROXY=off forbids any download.

Without ``go`` the tests skip, except under CI (``CI`` set), where they fail: CI must install both packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ci import missing_tool
from kit import StoredVillage

from keys import SigningKey, verifier_key
from ledger import merkle
from ledger.canonical import b64decode, b64encode
from ledger.note import Checkpoint, cosign_note, sign_checkpoint

pytestmark = pytest.mark.slow

GOCHECK_DIR = Path(__file__).parent / "interop" / "gocheck"
GO_XMOD_DIR = Path("/usr/share/gocode/src/golang.org/x/mod")  # golang-golang-x-mod-dev; see go.mod
ORIGIN = "village.example/ledger"
LEAVES = 50


def _missing_toolchain() -> str | None:
    if shutil.which("go") is None:
        return "go is not on PATH (apt-get install golang-go golang-golang-x-mod-dev)"
    if not (GO_XMOD_DIR / "sumdb" / "note" / "note.go").is_file():
        return f"golang.org/x/mod source is not in {GO_XMOD_DIR} (apt-get install golang-golang-x-mod-dev)"
    return None


@pytest.fixture(scope="module")
def gocheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built gocheck binary. Skips without a Go toolchain, unless CI is set: then it fails."""
    missing = _missing_toolchain()
    if missing is not None:
        missing_tool("Go interop tests", missing)
    build = tmp_path_factory.mktemp("gocheck")
    env = {
        **os.environ,
        "GO111MODULE": "on",
        "GOFLAGS": "-mod=readonly",
        "GOPROXY": "off",  # offline: golang.org/x/mod comes from the go.mod replace directive
        "GOSUMDB": "off",
        "GOTOOLCHAIN": "local",
        "GOWORK": "off",
        "GOCACHE": str(build / "cache"),
        "GOPATH": str(build / "gopath"),
        "CGO_ENABLED": "0",
    }
    binary = build / "gocheck"
    result = subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=GOCHECK_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"go build failed:\n{result.stdout}{result.stderr}"
    return binary


def _case(origin: str = ORIGIN, extensions: tuple[str, ...] = (), rotated: bool = False,
          cosigned: bool = False) -> dict[str, Any]:
    """A tree of LEAVES leaves, a checkpoint signed by a fresh key, and proofs at many sizes.

    With ``rotated`` the checkpoint is also signed, first, by a retired key that Go is not told about; with
    ``cosigned`` a witness's cosignature/v1 follows the log's signature (Go knows neither the witness nor the
    signature type: it must ignore the line and still open the note with the log key).
    """
    key = SigningKey.generate()
    signers = [(origin, SigningKey.generate()), (origin, key)] if rotated else [(origin, key)]
    leaves = [f"entry {i}: {'x' * (i % 7)}".encode() for i in range(LEAVES)]
    tree = merkle.MemoryTree()
    for leaf in leaves:
        tree.append(merkle.hash_leaf(leaf))
    checkpoint = sign_checkpoint(Checkpoint(origin, tree.size, tree.root(), extensions), signers)
    if cosigned:
        text = Checkpoint(origin, tree.size, tree.root(), extensions).text()
        checkpoint += cosign_note(text, "witness.example/township", SigningKey.generate(), 1_765_000_000)
    sizes = [1, 2, 3, 7, 8, 9, 16, 31, 32, 33, LEAVES]
    inclusion = [
        {
            "index": index,
            "size": size,
            "proof": [b64encode(h) for h in tree.inclusion_proof(index, size)],
            "root": b64encode(tree.root(size)),
        }
        for size in sizes
        for index in sorted({0, size // 2, size - 1})
    ]
    consistency = [
        {
            "size1": size1,
            "size2": size2,
            "proof": [b64encode(h) for h in tree.consistency_proof(size1, size2)],
            "root1": b64encode(tree.root(size1)),
            "root2": b64encode(tree.root(size2)),
        }
        for size2 in sizes
        for size1 in sizes
        if size1 <= size2
    ]
    return {
        "vkey": verifier_key(origin, key.public_bytes),
        "checkpoint": checkpoint,
        "origin": origin,
        "leaves": [b64encode(leaf) for leaf in leaves],
        "leaf_hashes": [b64encode(merkle.hash_leaf(leaf)) for leaf in leaves],
        "inclusion": inclusion,
        "consistency": consistency,
    }


def _run(gocheck: Path, case: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case), encoding="utf-8")
    return subprocess.run([str(gocheck), str(path)], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("origin", "extensions", "rotated", "cosigned"),
    [
        (ORIGIN, (), False, False),
        ("村.example/台帳", ("exténsion line",), False, False),  # Unicode key name and origin
        (ORIGIN, (), True, False),  # key rotation: Go trusts only the new key and ignores the old signature
        (ORIGIN, (), False, True),  # a township's cosignature after the log's signature
    ],
    ids=["ascii", "unicode-with-extension", "rotated-key", "cosigned"],
)
def test_go_verifies_our_checkpoint_and_proofs(
    gocheck: Path, tmp_path: Path, origin: str, extensions: tuple[str, ...], rotated: bool, cosigned: bool
) -> None:
    case = _case(origin, extensions, rotated, cosigned)
    result = _run(gocheck, case, tmp_path)
    expected = 2 + LEAVES + 1 + len(case["inclusion"]) + len(case["consistency"])
    assert result.returncode == 0, f"Go rejected our data:\n{result.stdout}{result.stderr}"
    assert result.stdout == f"ok {expected} checks\n", f"every check ran: {result.stdout!r}"


def test_go_rejects_a_checkpoint_signature_with_one_flipped_byte(gocheck: Path, tmp_path: Path) -> None:
    case = _case()
    text, _, line = case["checkpoint"].partition("\n\n")
    prefix = f"\u2014 {ORIGIN} "
    raw = bytearray(b64decode(line[len(prefix) : -1]))
    raw[10] ^= 0x01  # a byte of the Ed25519 signature, after the 4-byte key ID
    case["checkpoint"] = f"{text}\n\n{prefix}{b64encode(bytes(raw))}\n"
    result = _run(gocheck, case, tmp_path)
    assert result.returncode == 1, f"Go accepted a tampered signature:\n{result.stdout}"
    assert "note.Open: invalid signature for key village.example/ledger+" in result.stdout, result.stdout


def test_go_rejects_a_mutated_inclusion_proof(gocheck: Path, tmp_path: Path) -> None:
    case = _case()
    proof = case["inclusion"][-1]
    first = bytearray(b64decode(proof["proof"][0]))
    first[0] ^= 0x01
    proof["proof"][0] = b64encode(bytes(first))
    result = _run(gocheck, case, tmp_path)
    assert result.returncode == 1, f"Go accepted a mutated proof:\n{result.stdout}"
    assert "tlog.CheckRecord: invalid transparency proof" in result.stdout, result.stdout


def test_go_reads_our_tiles_and_proves_what_our_api_proves(gocheck: Path, live_server: str, village: StoredVillage) -> None:
    """Go's tile reader (tlog.TileHashReader, which checks every tile against the checkpoint's root) reads a
    village's log from the C2SP tlog-tiles endpoints, checks every entry bundle against the level-0 hashes, and
    computes inclusion and consistency proofs from the tiles alone: they are the API's proofs."""
    village.grow(700)
    size, store, slug = village.size(), village.store, village.slug
    result = subprocess.run([str(gocheck), "tiles", f"{live_server}/api/v1/villages/{slug}/log/",
                             store.verifier_keys(slug)[-1]], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"Go could not read our tiles:\n{result.stdout}{result.stderr}"
    read = json.loads(result.stdout)
    assert (read["size"], read["leaves"]) == (size, size)
    assert read["inclusion"].keys() >= {"0", "255", "256", "511", "512", str(size - 1)}
    for index, proof in read["inclusion"].items():
        assert [b64decode(h) for h in proof] == store.inclusion_proof(slug, int(index), size), f"index {index}"
    assert read["consistency"].keys() >= {"1", "256", "512", str(size)}
    for old, proof in read["consistency"].items():
        assert [b64decode(h) for h in proof] == store.consistency_proof(slug, int(old), size), f"from {old}"
