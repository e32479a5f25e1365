"""Specification of ``web/static/verify.js``, the in-browser verifier, run in a real headless Chromium.

verify.js ports ``ledger/merkle.py``, ``ledger/note.py`` and ``keys/_note_keys.py`` to the browser with
WebCrypto alone. Here it is held to the Python reference, which the other test files specify:

- every transparency-dev/merkle vector in ``shared/vectors/merkle/{inclusion,consistency}``, read in
  place: the browser refuses exactly the cases with ``wantErr``, with the Python verifier's message;
- a log built in Python: every receipt and consistency proof it serves verifies in the browser, and
  tampered receipts are refused, each with its message;
- verifier keys, signed notes and checkpoints, good and malformed: the browser refuses exactly what
  Python refuses, with the same message.

Chromium is Debian's ``/usr/bin/chromium`` driven by Python Playwright (never ``playwright install``).
The module is served by a static file server on 127.0.0.1: WebCrypto exists only in a secure context,
which ``about:blank`` is not and a loopback origin is. Without Chromium or Playwright these tests skip,
except under CI (``CI`` set and not 0/false/no), where they fail.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kit import Kit, MemoryLedger
from vectors import (
    CONSISTENCY_VECTORS,
    INCLUSION_VECTORS,
    VECTORS,
    check_consistency_case,
    check_inclusion_case,
)

from keys import ALG_COSIGNATURE_V1, SigningKey, note_key_hash, parse_verifier_key, verifier_key
from ledger.canonical import b64decode, b64encode
from ledger.errors import LedgerError
from ledger.merkle import MemoryTree, hash_leaf
from ledger.note import Checkpoint, cosign_note, open_checkpoint, open_note, sign_checkpoint, sign_note

pytestmark = [pytest.mark.slow, pytest.mark.browser]

STATIC = Path(__file__).resolve().parents[1] / "web" / "static"
API = [
    "hashChildren",
    "hashLeaf",
    "openCheckpoint",
    "parseVerifierKey",
    "rootFromInclusionProof",
    "verifyConsistency",
    "verifyEntry",
    "verifyInclusion",
    "verifySignature",
]

# In the page, after SETUP: window.harness = {verify (the module), bytes (base64 to Uint8Array), hex,
# error(call): the message of the Error that `call` throws, or null if it resolves}.
SETUP = """async () => {
    const verify = await import("/verify.js");
    const bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    const hex = (value) => Array.from(value, (b) => b.toString(16).padStart(2, "0")).join("");
    const error = async (call) => {
        try { await call(); return null; }
        catch (exc) { if (exc instanceof Error) return exc.message; throw exc; }
    };
    window.harness = { verify, bytes, hex, error };
    return Object.keys(verify).sort();
}"""


class _StaticFiles(http.server.SimpleHTTPRequestHandler):
    """web/static/ as files, and an empty page at / to import them from."""

    def do_GET(self) -> None:
        if self.path != "/":
            return super().do_GET()
        page = b"<!doctype html><meta charset=utf-8><title>verify.js under test</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def static_server() -> Iterator[str]:
    """The base URL of a server on 127.0.0.1 for web/static/."""
    handler = functools.partial(_StaticFiles, directory=str(STATIC))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()
        thread.join()


@pytest.fixture(scope="session")
def page(chromium: Any, static_server: str) -> Iterator[Any]:
    """One Chromium page for the session, with verify.js imported as ``window.harness.verify``."""
    page = chromium.new_page()
    page.goto(f"{static_server}/")
    assert page.evaluate(SETUP) == API
    yield page
    page.close()


def test_the_module_is_small_and_needs_nothing_but_webcrypto() -> None:
    source = (STATIC / "verify.js").read_text(encoding="utf-8")
    assert len(source.encode()) < 20_000, "a phone on a slow line loads it with the page (cosignatures: +1.3 KB)"
    assert not re.search(r"^\s*import\b|\bimport\(|\brequire\(|https?://", source, re.MULTILINE)
    exported = sorted(re.findall(r"^export async function (\w+)", source, re.MULTILINE))
    assert exported == API


def test_chromium_verifies_ed25519_with_webcrypto(page: Any) -> None:
    key = SigningKey.generate()
    signature = key.sign(b"message")
    verified = page.evaluate(
        """async ([key, signature]) => {
            const { bytes } = window.harness;
            const publicKey = await crypto.subtle.importKey(
                "raw", bytes(key), { name: "Ed25519" }, false, ["verify"]);
            const message = new TextEncoder().encode("message");
            return crypto.subtle.verify("Ed25519", publicKey, bytes(signature), message);
        }""",
        [b64encode(key.public_bytes), b64encode(signature)],
    )
    assert verified is True


# --- The transparency-dev/merkle vectors -------------------------------------------------------------------

VECTOR_FOLDERS = sorted(
    {path.parent for kind in ("inclusion", "consistency") for path in (VECTORS / kind).rglob("*.json")}
)

EVALUATE_VECTORS = """async (cases) => {
    const { verify, bytes, error } = window.harness;
    return Promise.all(cases.map(({ id, text }) => error(async () => {
        const c = JSON.parse(text);
        const proof = (c.proof ?? []).map(bytes);
        if (id.startsWith("inclusion/")) {
            return verify.verifyInclusion(c.leafIdx, c.treeSize, bytes(c.leafHash), proof, bytes(c.root));
        }
        return verify.verifyConsistency(c.size1, c.size2, proof, bytes(c.root1), bytes(c.root2));
    })));
}"""


def _js_number(value: int) -> str:
    """How JS prints ``value`` once JSON.parse has made it a double (for integers below 10**21)."""
    return f"{Decimal(repr(float(value))):f}"


def python_message(case_id: str, case: dict[str, Any]) -> str | None:
    """The message ledger.merkle raises for ``case`` (None if it verifies), with any integer beyond
    2**53 written as the browser reads it: JSON.parse rounds 2**64 - 1 to 18446744073709552000."""
    check = check_inclusion_case if case_id.startswith("inclusion/") else check_consistency_case
    try:
        check(case)
    except LedgerError as exc:
        message = str(exc)
        for name in ("leafIdx", "treeSize", "size1", "size2"):
            if case.get(name, 0) > 2**53:
                message = message.replace(str(case[name]), _js_number(case[name]))
        return message
    return None


def test_the_vector_folders_hold_every_vector() -> None:
    files = [path for folder in VECTOR_FOLDERS for path in folder.glob("*.json")]
    assert len(files) == len(INCLUSION_VECTORS) + len(CONSISTENCY_VECTORS) == 196


@pytest.mark.parametrize("folder", VECTOR_FOLDERS, ids=lambda folder: folder.relative_to(VECTORS).as_posix())
def test_the_browser_refuses_exactly_the_vectors_python_refuses_with_its_message(
    page: Any, folder: Path
) -> None:
    files = sorted(folder.glob("*.json"))
    cases = [
        {"id": path.relative_to(VECTORS).with_suffix("").as_posix(), "text": path.read_text(encoding="utf-8")}
        for path in files
    ]
    errors = page.evaluate(EVALUATE_VECTORS, cases)
    mismatches = []
    for case, error in zip(cases, errors, strict=True):
        vector = json.loads(case["text"])
        expected = python_message(case["id"], vector)
        if vector["wantErr"] and error is None:
            mismatches.append(f"{case['id']}: ACCEPTED, but wantErr ({vector['desc']})")
        elif not vector["wantErr"] and error is not None:
            mismatches.append(f"{case['id']}: refused with {error!r}, but not wantErr ({vector['desc']})")
        elif error != expected:
            mismatches.append(f"{case['id']}: message {error!r}, Python says {expected!r}")
    assert not mismatches, f"{len(mismatches)} of {len(cases)} vectors disagree:\n" + "\n".join(mismatches)


# --- A log built in Python ---------------------------------------------------------------------------------


@dataclass
class Log:
    """A village log kept by ``ledger.merkle.MemoryTree``, with checkpoints signed by its log key."""

    origin: str
    key: SigningKey
    leaves: list[bytes]
    tree: MemoryTree
    signed: dict[int, str] = field(default_factory=dict)  # the log's checkpoint at each size

    @classmethod
    def build(cls, kit: Kit) -> Log:
        """The kit's standard village and three rounds of its activity: some fifty entries of every kind."""
        ledger = MemoryLedger(kit)
        for entry in kit.activity(rounds=3):
            ledger.append(entry)
        log = cls(kit.origin, SigningKey.generate(), [entry.leaf for entry in ledger.entries], MemoryTree())
        for leaf in log.leaves:
            log.tree.append(hash_leaf(leaf))
        return log

    @property
    def verifier(self) -> str:
        return verifier_key(self.origin, self.key.public_bytes)

    def checkpoint(self, size: int, *, root: bytes | None = None, key: SigningKey | None = None) -> str:
        body = Checkpoint(origin=self.origin, size=size, root_hash=root or self.tree.root(size))
        return sign_checkpoint(body, [(self.origin, key or self.key)])

    def receipt(self, index: int, size: int) -> dict[str, Any]:
        """What a page gets for entry ``index`` at ``size``: leaf (base64 here), index, proof, checkpoint."""
        if size not in self.signed:
            self.signed[size] = self.checkpoint(size)
        return {
            "leaf": b64encode(self.leaves[index]),
            "index": index,
            "proof": [b64encode(h) for h in self.tree.inclusion_proof(index, size)],
            "checkpoint": self.signed[size],
        }


@pytest.fixture(scope="module")
def log() -> Log:
    return Log.build(Kit())


VERIFY_RECEIPTS = """async ([receipts, verifierKey, origin]) => {
    const { verify, bytes, error } = window.harness;
    return Promise.all(receipts.map(async (receipt) => {
        let result;
        const message = await error(async () => {
            result = await verify.verifyEntry({ ...receipt, leaf: bytes(receipt.leaf) }, verifierKey, origin);
        });
        return message ?? result;
    }));
}"""


def verify_receipts(
    page: Any, receipts: list[dict[str, Any]], verifier: str, origin: str | None = None
) -> list[Any]:
    """verifyEntry's result for each receipt: {"ok": True, "size": n}, or the message it threw."""
    return page.evaluate(VERIFY_RECEIPTS, [receipts, verifier, origin])


def test_every_entry_verifies_at_every_size_of_the_log(page: Any, log: Log) -> None:
    pairs = [(index, size) for size in range(1, len(log.leaves) + 1) for index in range(size)]
    results = verify_receipts(
        page, [log.receipt(index, size) for index, size in pairs], log.verifier, log.origin
    )
    assert len(log.leaves) > 40
    assert results == [{"ok": True, "size": size} for _, size in pairs]


def test_every_consistency_proof_of_the_log_verifies(page: Any, log: Log) -> None:
    size = len(log.leaves)
    cases = [
        [
            first,
            second,
            [b64encode(h) for h in log.tree.consistency_proof(first, second)],
            b64encode(log.tree.root(first)),
            b64encode(log.tree.root(second)),
        ]
        for second in range(size + 1)
        for first in range(second + 1)
    ]
    errors = page.evaluate(
        """async (cases) => {
            const { verify, bytes, error } = window.harness;
            return Promise.all(cases.map(([size1, size2, proof, root1, root2]) => error(
                () => verify.verifyConsistency(size1, size2, proof.map(bytes), bytes(root1), bytes(root2)))));
        }""",
        cases,
    )
    assert errors == [None] * len(cases)


def test_leaf_hashes_and_roots_are_pythons(page: Any, log: Log) -> None:
    computed = page.evaluate(
        """async ([leaves, proof]) => {
            const { verify, bytes, hex } = window.harness;
            const hashes = await Promise.all(leaves.map((leaf) => verify.hashLeaf(bytes(leaf))));
            const root = await verify.rootFromInclusionProof(0, leaves.length, hashes[0], proof.map(bytes));
            return [hashes.map(hex), hex(root)];
        }""",
        [
            [b64encode(leaf) for leaf in log.leaves],
            [b64encode(h) for h in log.tree.inclusion_proof(0, log.tree.size)],
        ],
    )
    assert computed == [[hash_leaf(leaf).hex() for leaf in log.leaves], log.tree.root().hex()]


def _flip(data: bytes, at: int) -> bytes:
    flipped = bytearray(data)
    flipped[at] ^= 0x01
    return bytes(flipped)


def _flip_base64(text: str, at: int) -> str:
    return b64encode(_flip(b64decode(text), at))


BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _non_canonical(text: str) -> str:
    """Padded base64 ``text`` with a pad bit set: the same bytes to a lenient decoder, refused by ours."""
    data, pad = text.rstrip("="), "=" * (len(text) - len(text.rstrip("=")))
    assert pad, "base64 without padding has no pad bits"
    return data[:-1] + BASE64_ALPHABET[BASE64_ALPHABET.index(data[-1]) | 1] + pad


def _signature_line_flipped(note: str, at: int) -> str:
    """``note`` with byte ``at`` of its signature field (4-byte key ID, then the signature) flipped."""
    text, _, line = note[:-1].rpartition("\n")
    name, encoded = line.rsplit(" ", 1)
    return f"{text}\n{name} {_flip_base64(encoded, at)}\n"


ROOT_MISMATCH = r"^root mismatch: calculated [0-9a-f]{64}, expected [0-9a-f]{64}$"
NOT_VERIFIED = (
    r"^signature 1 by trusted key {label} does not verify: "
    r"Ed25519 signature does not verify under the given public key$"
)


def _tampered(log: Log, how: str) -> tuple[dict[str, Any], str]:
    """A receipt of entry 5 at size 12, tampered ``how``, and the message the browser must give."""
    index, size = 5, 12
    receipt = log.receipt(index, size)
    label = re.escape(f"{log.origin}+{parse_verifier_key(log.verifier).key_hash.hex()}")
    if how == "leaf":
        receipt["leaf"] = _flip_base64(receipt["leaf"], 30)
        return receipt, ROOT_MISMATCH
    if how == "proof hash":
        receipt["proof"][1] = _flip_base64(receipt["proof"][1], 0)
        return receipt, ROOT_MISMATCH
    if how == "checkpoint signature":
        receipt["checkpoint"] = _signature_line_flipped(receipt["checkpoint"], 4 + 20)
        return receipt, NOT_VERIFIED.format(label=label)
    if how == "checkpoint root":
        root_line = b64encode(log.tree.root(size))
        receipt["checkpoint"] = receipt["checkpoint"].replace(root_line, _flip_base64(root_line, 7))
        return receipt, NOT_VERIFIED.format(label=label)
    if how == "root signed by the log key":  # the log itself lies: a signature cannot help
        receipt["checkpoint"] = log.checkpoint(size, root=_flip(log.tree.root(size), 7))
        return receipt, ROOT_MISMATCH
    if how == "checkpoint signed by another key":
        other = SigningKey.generate()
        receipt["checkpoint"] = log.checkpoint(size, key=other)
        other_label = re.escape(
            f"{log.origin}+{parse_verifier_key(verifier_key(log.origin, other.public_bytes)).key_hash.hex()}"
        )
        return receipt, f"^no signature by a trusted key: note is signed by {other_label}; trusted: {label}$"
    if how == "index beyond the checkpoint":
        receipt["index"] = size
        return receipt, rf"^inclusion proof requires 0 <= index < size, got index {size}, size {size}$"
    if how == "index of another entry":
        receipt["index"] = index + 1
        return receipt, ROOT_MISMATCH
    if how == "index not a safe integer":
        receipt["index"] = 2.5
        return receipt, r"^inclusion proof index 2.5 is not an integer in \[0, 2\*\*53 - 1\]$"
    if how == "proof truncated":
        receipt["proof"].pop()
        return receipt, r"^inclusion proof has 3 hashes, expected 4$"
    if how == "proof hash not canonical base64":
        receipt["proof"][0] = _non_canonical(receipt["proof"][0])
        return receipt, r"^proof hash 0 is not canonical base64$"
    raise AssertionError(how)


TAMPERINGS = [
    "leaf",
    "proof hash",
    "checkpoint signature",
    "checkpoint root",
    "root signed by the log key",
    "checkpoint signed by another key",
    "index beyond the checkpoint",
    "index of another entry",
    "index not a safe integer",
    "proof truncated",
    "proof hash not canonical base64",
]


@pytest.mark.parametrize("how", TAMPERINGS)
def test_a_tampered_receipt_is_refused_saying_why(page: Any, log: Log, how: str) -> None:
    receipt, message = _tampered(log, how)
    (result,) = verify_receipts(page, [receipt], log.verifier, log.origin)
    assert isinstance(result, str), f"a receipt with a tampered {how} verified: {result}"
    assert re.search(message, result), result


def test_a_checkpoint_of_another_origin_is_refused(page: Any, log: Log) -> None:
    (result,) = verify_receipts(page, [log.receipt(3, 8)], log.verifier, "villageledger.test/elsewhere")
    assert result == f"checkpoint origin is '{log.origin}', expected 'villageledger.test/elsewhere'"


def test_a_tree_larger_than_2_53_is_refused_though_python_accepts_it(page: Any, log: Log) -> None:
    receipt = log.receipt(0, 1)
    receipt["checkpoint"] = log.checkpoint(2**53, root=log.tree.root(1))
    open_checkpoint(receipt["checkpoint"], [parse_verifier_key(log.verifier)])  # Python: fine
    (result,) = verify_receipts(page, [receipt], log.verifier)
    assert (
        result
        == "malformed checkpoint: tree size 9007199254740992 exceeds 2**53 - 1, the limit of this verifier"
    )


# --- Verifier keys, notes and checkpoints: the browser refuses what Python refuses -------------------------

ORIGIN = "village.example/ledger"
ROOT = bytes(range(32))
LOG_KEY = SigningKey.generate()
OTHER_KEY = SigningKey.generate()
VKEY = verifier_key(ORIGIN, LOG_KEY.public_bytes)
BODY = f"{ORIGIN}\n5\n{b64encode(ROOT)}\n"
NOTE = sign_note(BODY, [(ORIGIN, LOG_KEY)])
SIG_LINE = NOTE[len(BODY) + 1 :]
OTHER_LINE = sign_note(BODY, [(ORIGIN, OTHER_KEY)])[len(BODY) + 1 :]
KEY_DATA = b64encode(b"\x01" + LOG_KEY.public_bytes)
KEY_DATA_ALGORITHM_2 = b64encode(b"\x02" + LOG_KEY.public_bytes)
KEY_DATA_31_BYTES = b64encode(b"\x01" + LOG_KEY.public_bytes[:31])
KEY_ID = VKEY.split("+")[1]
SIGNATURE = SIG_LINE.split(" ")[-1][:-1]

# Published in the documentation of golang.org/x/mod/sumdb/note (package note, "Signed Note Format").
GO_EXAMPLE_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_EXAMPLE_NOTE = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n"
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


WITNESS = "witness.village.example"
WITNESS_KEY = SigningKey.generate()
WITNESS_VKEY = verifier_key(WITNESS, WITNESS_KEY.public_bytes, ALG_COSIGNATURE_V1)
WITNESS_KEY_ID = note_key_hash(WITNESS, WITNESS_KEY.public_bytes, ALG_COSIGNATURE_V1)
COSIGNATURE = cosign_note(BODY, WITNESS, WITNESS_KEY, 1_765_000_000)


def _signed(body: str, *, name: str = ORIGIN, key: SigningKey = LOG_KEY) -> str:
    return sign_note(body, [(name, key)])


def _sig_with(raw: bytes) -> str:
    return f"\u2014 {ORIGIN} {b64encode(raw)}\n"


KEY_CASES = {
    "valid": VKEY,
    "a witness's key (type 0x04)": verifier_key("witness.example", OTHER_KEY.public_bytes, ALG_COSIGNATURE_V1),
    "upper-case key ID": VKEY.replace(KEY_ID, KEY_ID.upper()),
    "non-ASCII name": verifier_key("小溪村.example/账本", LOG_KEY.public_bytes),
    "no plus": "village.example",
    "one plus": f"{ORIGIN}+{KEY_ID}",
    "empty name": f"+{KEY_ID}+{KEY_DATA}",
    "space in name": f"a b+{KEY_ID}+{KEY_DATA}",
    "ideographic space in name": f"a\u3000b+{KEY_ID}+{KEY_DATA}",
    "control character in name": f"a\x07b+{KEY_ID}+{KEY_DATA}",
    "7-digit key ID": f"{ORIGIN}+{KEY_ID[:7]}+{KEY_DATA}",
    "non-hex key ID": f"{ORIGIN}+{KEY_ID[:7]}g+{KEY_DATA}",
    "wrong key ID": f"{ORIGIN}+{_flip(bytes.fromhex(KEY_ID), 0).hex()}+{KEY_DATA}",
    "empty key data": f"{ORIGIN}+{KEY_ID}+",
    "key data not base64": f"{ORIGIN}+{KEY_ID}+{KEY_DATA[:-1]}",
    "key data not canonical": f"{ORIGIN}+{KEY_ID}+{_non_canonical(KEY_DATA_31_BYTES)}",
    "unknown algorithm": f"{ORIGIN}+{KEY_ID}+{KEY_DATA_ALGORITHM_2}",
    "short key": f"{ORIGIN}+{KEY_ID}+{KEY_DATA_31_BYTES}",
    "plus in key data": VKEY + "+",
}

# Each case: (note, verifier keys, origin or None).
NOTE_CASES: dict[str, tuple[str, list[str], str | None]] = {
    "valid": (NOTE, [VKEY], None),
    "valid, origin required": (NOTE, [VKEY], ORIGIN),
    "another origin required": (NOTE, [VKEY], "village.example/other"),
    "Go's documented example (not a checkpoint)": (GO_EXAMPLE_NOTE, [GO_EXAMPLE_VKEY], None),
    "extension lines": (_signed(BODY + "ext one\next two\n"), [VKEY], None),
    "non-ASCII origin and key name": (
        _signed(f"小溪村.example/账本\n5\n{b64encode(ROOT)}\n", name="小溪村.example/账本"),
        [verifier_key("小溪村.example/账本", LOG_KEY.public_bytes)],
        None,
    ),
    "an untrusted signature first": (
        BODY + "\n" + OTHER_LINE.replace(ORIGIN, "witness.example") + SIG_LINE,
        [VKEY],
        None,
    ),
    "only another key's signature": (BODY + "\n" + OTHER_LINE, [VKEY], None),
    "two trusted keys, one signed": (NOTE, [verifier_key(ORIGIN, OTHER_KEY.public_bytes), VKEY], None),
    "no verifier key": (NOTE, [], None),
    "bad verifier key": (NOTE, ["nonsense"], None),
    "a good then a bad trusted signature": (
        NOTE + _sig_with(bytes.fromhex(KEY_ID) + bytes(64)),
        [VKEY],
        None,
    ),
    "signature of 65 bytes": (BODY + "\n" + _sig_with(bytes.fromhex(KEY_ID) + bytes(65)), [VKEY], None),
    "signature of 4 bytes": (BODY + "\n" + _sig_with(bytes.fromhex(KEY_ID)), [VKEY], None),
    "signature not base64": (BODY + "\n" + f"\u2014 {ORIGIN} abc\n", [VKEY], None),
    "signature not canonical base64": (NOTE.replace(SIGNATURE, _non_canonical(SIGNATURE)), [VKEY], None),
    "no signature after the name": (BODY + f"\n\u2014 {ORIGIN}\n", [VKEY], None),
    "empty key name": (BODY + "\n" + SIG_LINE.replace(ORIGIN, ""), [VKEY], None),
    "plus in key name": (BODY + "\n" + SIG_LINE.replace(ORIGIN, ORIGIN + "+x"), [VKEY], None),
    "hyphen for the em dash": (BODY + "\n" + SIG_LINE.replace("\u2014", "-"), [VKEY], None),
    "missing final newline": (NOTE[:-1], [VKEY], None),
    "no blank line": (BODY + SIG_LINE, [VKEY], None),
    "no signature lines": (BODY + "\n", [VKEY], None),
    "CRLF line ends": (NOTE.replace("\n", "\r\n"), [VKEY], None),
    "tab in the origin": (NOTE.replace("village.example", "village\texample", 1), [VKEY], None),
    "101 signature lines": (BODY + "\n" + OTHER_LINE * 100 + SIG_LINE, [VKEY], None),
    "100 signature lines": (BODY + "\n" + OTHER_LINE * 99 + SIG_LINE, [VKEY], None),
    "text altered after signing": (NOTE.replace("\n5\n", "\n6\n"), [VKEY], None),
    "checkpoint of two lines": (_signed(f"{ORIGIN}\n5\n"), [VKEY], None),
    "checkpoint with an empty extension line": (_signed(BODY + "\next\n"), [VKEY], None),
    "size with a leading zero": (_signed(BODY.replace("\n5\n", "\n05\n")), [VKEY], None),
    "size with a plus sign": (_signed(BODY.replace("\n5\n", "\n+5\n")), [VKEY], None),
    "size in Arabic-Indic digits": (_signed(BODY.replace("\n5\n", "\n\u0665\n")), [VKEY], None),
    "size beyond 2**63 - 1": (_signed(BODY.replace("\n5\n", f"\n{2**63}\n")), [VKEY], None),
    "size 0": (_signed(BODY.replace("\n5\n", "\n0\n")), [VKEY], None),
    "root of 31 bytes": (_signed(f"{ORIGIN}\n5\n{b64encode(ROOT[:31])}\n"), [VKEY], None),
    "root not canonical base64": (_signed(f"{ORIGIN}\n5\n{_non_canonical(b64encode(ROOT))}\n"), [VKEY], None),
    "root not base64": (_signed(f"{ORIGIN}\n5\nroot\n"), [VKEY], None),
    "cosigned, the witness trusted": (NOTE + COSIGNATURE, [VKEY, WITNESS_VKEY], None),
    "cosigned, the witness not trusted": (NOTE + COSIGNATURE, [VKEY], None),
    "only cosigned": (BODY + "\n" + COSIGNATURE, [VKEY, WITNESS_VKEY], None),
    "a cosignature that does not verify": (NOTE + COSIGNATURE.replace(COSIGNATURE[-8:-1], "AAAAAAA"), [VKEY, WITNESS_VKEY],
                                           None),
    "a cosignature of 64 bytes": (NOTE + f"\u2014 {WITNESS} {b64encode(WITNESS_KEY_ID + bytes(64))}\n",
                                  [VKEY, WITNESS_VKEY], None),
    "a log signature under the witness's key id": (NOTE + f"\u2014 {WITNESS} {b64encode(WITNESS_KEY_ID + bytes(72))}\n",
                                                   [VKEY, WITNESS_VKEY], None),
}


def _python_outcome(call: Any) -> dict[str, Any]:
    try:
        return {"value": call()}
    except (LedgerError, ValueError) as exc:
        return {"error": str(exc)}


QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def _agree(js: dict[str, Any], python: dict[str, Any]) -> bool:
    """The same value, or the same message but for how a quoted string is escaped (Python's repr()
    writes '\\u3000' where JSON.stringify writes the character itself)."""
    if "error" in js and "error" in python:
        return js == python or QUOTED.sub("'…'", js["error"]) == QUOTED.sub("'…'", python["error"])
    return js == python


def test_verifier_keys_are_parsed_as_python_parses_them(page: Any) -> None:
    results = page.evaluate(
        """async (texts) => {
            const { verify, hex } = window.harness;
            return Promise.all(texts.map(async (text) => {
                try {
                    const key = await verify.parseVerifierKey(text);
                    return { value: [key.name, hex(key.keyId), hex(key.publicKey)] };
                } catch (exc) { return { error: exc.message }; }
            }));
        }""",
        list(KEY_CASES.values()),
    )

    def python_parse(text: str) -> list[str]:
        key = parse_verifier_key(text)
        return [key.name, key.key_hash.hex(), key.public.hex()]

    mismatches = [
        f"{case}: browser {js}, Python {python}"
        for (case, text), js in zip(KEY_CASES.items(), results, strict=True)
        if not _agree(js, python := _python_outcome(lambda text=text: python_parse(text)))
    ]
    assert not mismatches, "\n".join(mismatches)
    assert sum("error" in r for r in results) == len(KEY_CASES) - 4  # all but the four valid ones


def test_notes_and_checkpoints_are_opened_as_python_opens_them(page: Any) -> None:
    results = page.evaluate(
        """async (cases) => {
            const { verify, hex } = window.harness;
            return Promise.all(cases.map(async ([note, keys, origin]) => {
                try {
                    const checkpoint = await verify.openCheckpoint(note, keys, origin ?? undefined);
                    return { value: [checkpoint.origin, checkpoint.size, hex(checkpoint.rootHash), checkpoint.cosignedAt] };
                } catch (exc) { return { error: exc.message }; }
            }));
        }""",
        [list(case) for case in NOTE_CASES.values()],
    )

    def python_open(note: str, keys: list[str], origin: str | None) -> list[Any]:
        verifiers = [parse_verifier_key(k) for k in keys]
        checkpoint = open_checkpoint(note, verifiers, origin)
        return [checkpoint.origin, checkpoint.size, checkpoint.root_hash.hex(), dict(open_note(note, verifiers).cosigned_at)]

    mismatches = [
        f"{case}: browser {js}, Python {python}"
        for (case, args), js in zip(NOTE_CASES.items(), results, strict=True)
        if not _agree(js, python := _python_outcome(lambda args=args: python_open(*args)))
    ]
    assert not mismatches, "\n".join(mismatches)
    accepted = [case for case, js in zip(NOTE_CASES, results, strict=True) if "value" in js]
    assert accepted == [
        "valid",
        "valid, origin required",
        "extension lines",
        "non-ASCII origin and key name",
        "an untrusted signature first",
        "two trusted keys, one signed",
        "100 signature lines",
        "size 0",
        "cosigned, the witness trusted",
        "cosigned, the witness not trusted",
    ]


def test_the_worked_example_of_the_data_model_verifies(page: Any) -> None:
    """docs/data-model.md §14: the receipt of entry 5, with the leaf and the verifier key printed there."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "data-model.md").read_text(encoding="utf-8")
    leaf = re.search(r"Leaf 5 = .*?```\n(.*?)\n```", doc, re.DOTALL)
    receipt = re.search(r"`GET /api/v1/villages/xiaoxi/log/proof/5`:\n\n```\n(.*?)```", doc, re.DOTALL)
    vkey = re.search(r"^verifier key = (\S+)$", doc, re.MULTILINE)
    assert leaf and receipt and vkey
    header, _, checkpoint = receipt.group(1).partition("\n\n")
    lines = header.split("\n")
    assert lines[:2] == ["c2sp.org/tlog-proof@v1", "index 5"]
    entry = {
        "leaf": b64encode(leaf.group(1).encode()),
        "index": 5,
        "proof": lines[2:],
        "checkpoint": checkpoint,
    }
    assert verify_receipts(page, [entry], vkey.group(1), "ledger.example.org/xiaoxi") == [
        {"ok": True, "size": 6}
    ]


SPECCHECK = json.loads((Path(__file__).resolve().parent / "assets" / "ed25519-speccheck" / "cases.json").read_text())


def test_the_phone_keeps_the_one_signature_rule_over_the_speccheck_cases(page: Any) -> None:
    """verify.js accepts exactly what keys.verify_signature accepts (tests/test_keys.py): case 3 alone."""
    accepted = page.evaluate(
        """async (cases) => {
            const { verify, error } = window.harness;
            const raw = (text) => Uint8Array.from(text.match(/../g), (pair) => parseInt(pair, 16));
            const results = [];
            for (const c of cases) {
                results.push(await error(() => verify.verifySignature(raw(c.pub_key), raw(c.signature), raw(c.message))));
            }
            return results;
        }""",
        SPECCHECK,
    )
    assert [n for n, failure in enumerate(accepted) if failure is None] == [3]
    assert accepted[0] == "Ed25519 public key is a point of small order"
    assert accepted[2] == "Ed25519 signature's R is a point of small order"
