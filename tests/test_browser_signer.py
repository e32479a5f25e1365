"""Specification of ``web/static/signer.js``, a member's key in the browser, run in a real headless Chromium.

signer.js opens the key file that ``keys.SigningKey.to_encrypted_pem`` writes, keeps the key
non-extractable in IndexedDB, canonicalises and signs entries and logs in. Python is the reference:

- ``canonicalize`` gives the bytes of ``ledger.canonical.canonical_json`` (the ``rfc8785`` package), on
  chosen edge cases and on a real signed entry of every kind;
- an entry signed (and cosigned) in the browser is the wire form ``ledger.entries.sign_entry`` gives, and
  ``parse_entry`` and ``check_signatures`` accept it;
- a key file opens to a non-extractable key whose public key is Python's; every other file is refused,
  each with its message; a saved key outlives the page and still signs;
- ``login`` gets a token the app accepts, and signs nothing but the login message of a challenge.

Most tests share one page whose origin, ``http://signer.localhost`` (a secure context, as WebCrypto needs),
Playwright answers from web/static/ without a server: they touch no database, so they do not run once per
backend. The login tests import the module from the app itself (``live_server``), which also shows that the
app serves it at /static/web/signer.js. Without Chromium or Playwright these tests skip, except under CI.

The tests use ``cryptography`` directly, as the project does only in keys/, for what keys/ rightly cannot:
writing a key that is not Ed25519, and finding a wrong passphrase that decrypts to valid padding.
"""

from __future__ import annotations

import base64
import json
import re
import textwrap
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, AnyStr
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from keyfiles import AES_256_CBC, der_of, wrong_passphrase_that_unpads
from kit import Kit, StoredVillage

from keys import KeyFileError, SigningKey
from ledger.canonical import b64encode, canonical_json
from ledger.entries import (
    Entry,
    check_signatures,
    make_unsigned,
    parse_entry,
    sign_entry,
    signing_message,
)
from ledger.kinds import KIND_NAMES as KINDS

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SIGNER = Path(__file__).resolve().parents[1] / "web" / "static" / "signer.js"
MODULE = "/static/web/signer.js"  # where the app serves it (web/views.py)
VERIFIER = "/static/web/verify.js"  # which it imports the signature rule from
VERIFY_IMPORT = 'import { verifySignature } from "./verify.js";\n'
ORIGIN = "http://signer.localhost"
API = [
    "canonicalize",
    "cosign",
    "forgetKey",
    "importKeyFile",
    "loadKey",
    "login",
    "makeUnsigned",
    "saveKey",
    "signEntry",
]
TYPED = "村委会 passphrase"  # what a member types
PASSPHRASE = TYPED.encode()  # what the CLI makes of it

# In the page, after SETUP: window.harness = {signer (the module), keys: {name: {privateKey, publicKey}},
# error(call): the message of the Error that `call` throws, or null if it resolves}.
SETUP = """async (module) => {
    const signer = await import(module);
    const error = async (call) => {
        try { await call(); return null; }
        catch (exc) { if (exc instanceof Error) return exc.message; throw exc; }
    };
    window.harness = { signer, error, keys: {} };
    return [window.isSecureContext, Object.keys(signer).sort()];
}"""


def _serve_signer(route: Any) -> None:
    path = urlsplit(route.request.url).path
    if path == "/":
        route.fulfill(content_type="text/html; charset=utf-8", body="<!doctype html><title>signer.js</title>")
    elif path in (MODULE, VERIFIER):
        route.fulfill(content_type="text/javascript; charset=utf-8", body=(SIGNER.parent / path.rsplit("/", 1)[1]).read_bytes())
    else:
        route.fulfill(status=404)


def _start(page: Any, url: str) -> Any:
    page.goto(url)
    assert page.evaluate(SETUP, MODULE) == [True, API]
    return page


@pytest.fixture(scope="module")
def page(chromium: Any) -> Iterator[Any]:
    """One page for the module on ORIGIN, in a context of its own (its own IndexedDB), with the harness."""
    context = chromium.new_context()
    context.route(f"{ORIGIN}/**", _serve_signer)
    yield _start(context.new_page(), f"{ORIGIN}/")
    context.close()


def open_keys(page: Any, named: Mapping[str, SigningKey]) -> dict[str, str]:
    """Open each key's key file in the page as ``window.harness.keys[name]``; their public keys."""
    files = {name: key.to_encrypted_pem(PASSPHRASE).decode() for name, key in named.items()}
    opened: dict[str, str] = page.evaluate(
        """async ([files, passphrase]) => {
            const { signer, keys } = window.harness;
            for (const [name, pem] of Object.entries(files)) {
                keys[name] = await signer.importKeyFile(pem, passphrase);
            }
            return Object.fromEntries(Object.keys(files).map((name) => [name, keys[name].publicKey]));
        }""",
        [files, TYPED],
    )
    return opened


@pytest.fixture(scope="module")
def members(page: Any) -> Kit:
    """A test village's kit whose every key is open in the page under its name."""
    kit = Kit()
    assert open_keys(page, kit.keys) == {name: kit.key_b64(name) for name in kit.keys}
    return kit


def test_the_module_exports_its_api_and_needs_nothing_but_the_browser() -> None:
    source = SIGNER.read_text(encoding="utf-8").replace(VERIFY_IMPORT, "", 1)  # the one signature rule
    assert not re.search(r"^\s*import\b|\bimport\(|\brequire\(|https?://", source, re.MULTILINE)
    assert sorted(re.findall(r"^export (?:async )?function (\w+)", source, re.MULTILINE)) == API


# --- canonicalize: RFC 8785, byte for byte as ledger.canonical --------------------------------------------

CANONICAL_CASES: dict[str, Any] = {
    "nested objects": {"b": {"d": [1, {"f": None, "e": True}], "c": False}, "a": [], "": {}},
    "Chinese text": {"name": "测试村", "reason": "垃圾分类到位，表扬一次", "村": "小溪"},
    # U+1F600 is the surrogate pair D83D DE00: before U+FFFD in UTF-16 order, after it by code point
    "UTF-16 order is not code point order": {"\U0001F600": 1, "\uFFFD": 2, "\u00e9": 3, "z": 4, "Z": 5},
    "astral characters": ["\U0001F600", "\U00020000", "\U0001D11E"],
    "quotes, backslash, solidus": "\"\\/'",
    "control characters U+0000 to U+001F": "".join(map(chr, range(0x20))),
    "DEL, C1 controls and line separators, unescaped": "\x7f\x80\x9f\u2028\u2029",
    "member names that look like numbers": {"10": 1, "9": 2, "1e1": 3, "-1": 4},
    "integers": [0, -1, 1, 2**53 - 1, -(2**53 - 1), 1_000_000],
    "floats": [1.5, -1.5, 1e21, 1e-7, 1e20, 0.1, 123456789.125, 5e-324, 1.7976931348623157e308, -0.0],
    "literals": [True, False, None],
    "a bare string": "villageledger",
}

CANONICALIZE = """async (texts) => {
    const { signer } = window.harness;
    const base64 = (bytes) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));
    return texts.map((text) => base64(new TextEncoder().encode(signer.canonicalize(JSON.parse(text)))));
}"""


def canonicalized(page: Any, values: list[Any]) -> list[bytes]:
    """The UTF-8 bytes of the browser's canonicalize(value) for each value, sent as JSON text."""
    encoded = page.evaluate(CANONICALIZE, [json.dumps(value) for value in values])
    return [base64.b64decode(text) for text in encoded]


def test_canonicalize_writes_the_bytes_python_writes(page: Any) -> None:
    python = {case: canonical_json(value) for case, value in CANONICAL_CASES.items()}
    browser = dict(zip(CANONICAL_CASES, canonicalized(page, list(CANONICAL_CASES.values())), strict=True))
    assert browser == python
    utf16_case = python["UTF-16 order is not code point order"]
    assert utf16_case.index("\U0001F600".encode()) < utf16_case.index("\uFFFD".encode())


def one_entry_of_each_kind(kit: Kit) -> list[Entry]:
    """The first entry of each kind in the kit's genesis, setup and activity, in the order of KINDS."""
    entries = [kit.genesis(), *kit.setup_entries(), *kit.activity(rounds=3)]
    first = {entry.kind: entry for entry in reversed(entries)}
    assert set(first) == set(KINDS), f"the kit signs no {sorted(set(KINDS) - set(first))}"
    return [first[kind] for kind in KINDS]


def test_canonicalize_gives_the_leaf_of_a_signed_entry_of_every_kind(page: Any, members: Kit) -> None:
    entries = one_entry_of_each_kind(members)
    assert canonicalized(page, [entry.to_wire() for entry in entries]) == [entry.leaf for entry in entries]


NOT_JSON = {
    "({a: [1, undefined]})": "cannot canonicalise value.a[1]: undefined is not a JSON value",
    "[1, , 3]": "cannot canonicalise value[1]: undefined is not a JSON value",
    "({f() {}})": "cannot canonicalise value.f: function is not a JSON value",
    "({n: NaN})": "cannot canonicalise value.n: NaN is not a finite number",
    "[-Infinity]": "cannot canonicalise value[0]: -Infinity is not a finite number",
    "({amount: 10n})": "cannot canonicalise value.amount: bigint is not a JSON value",
    "[Symbol('s')]": "cannot canonicalise value[0]: symbol is not a JSON value",
    "({when: new Date(0)})": "cannot canonicalise value.when: Date is not a plain object",
    "new Map()": "cannot canonicalise value: Map is not a plain object",
    "({text: 'a\\ud800'})": "cannot canonicalise value.text: string contains a lone surrogate",
    "({'\\udc00': 1})": "cannot canonicalise value: a member name contains a lone surrogate",
    "(() => { const a = {b: {}}; a.b.c = a; return a; })()": (
        "cannot canonicalise value.b.c: it contains itself"
    ),
}


def test_canonicalize_refuses_what_is_not_json_saying_where(page: Any) -> None:
    messages = page.evaluate(
        """async (sources) => {
            const { signer, error } = window.harness;
            return Promise.all(sources.map((source) => error(() => signer.canonicalize(eval(source)))));
        }""",
        list(NOT_JSON),
    )
    assert dict(zip(NOT_JSON, messages, strict=True)) == NOT_JSON


def test_the_same_value_twice_is_not_a_cycle(page: Any) -> None:
    text = page.evaluate("""() => {
        const shared = [1];
        return window.harness.signer.canonicalize({ x: shared, y: [shared, shared] });
    }""")
    assert text == '{"x":[1],"y":[[1],[1]]}'


# --- makeUnsigned, signEntry, cosign: as ledger.entries --------------------------------------------------

ENTRY_ID = "6a61cab17df3bdbdc602e8c3ab5988d6"
TIME = "2026-03-01T08:05:00Z"
AWARD = {"household": "h1", "rule": "M-01", "amount": 5, "reason": "垃圾分类到位"}


def test_make_unsigned_is_pythons_make_unsigned(page: Any, members: Kit) -> None:
    same: dict[str, Any] = {"kind": "points.award", "village": members.slug, "body": AWARD, "time": TIME}
    grid1, chen, founder = (members.public(name) for name in ("grid1", "chen", "founder"))
    python = [
        make_unsigned(**same, entry_id=ENTRY_ID, author=grid1),
        make_unsigned(**same, entry_id=ENTRY_ID, author=chen, cosigner=founder),
    ]
    browser = page.evaluate(
        """(cases) => cases.map(window.harness.signer.makeUnsigned)""",
        [
            {**same, "id": ENTRY_ID, "author": b64encode(grid1)},
            {**same, "id": ENTRY_ID, "author": b64encode(chen), "cosigner": b64encode(founder)},
        ],
    )
    assert browser == python


def test_make_unsigned_chooses_a_fresh_random_id_and_the_time_now(page: Any, members: Kit) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    first, second = page.evaluate(
        """(fields) => [1, 2].map(() => window.harness.signer.makeUnsigned(fields))""",
        {"kind": "points.award", "village": members.slug, "body": AWARD, "author": members.key_b64("grid1")},
    )
    after = datetime.now(UTC)
    assert re.fullmatch(r"[0-9a-f]{32}", first["id"]) and first["id"] != second["id"]
    assert before <= datetime.strptime(first["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= after


def test_make_unsigned_refuses_a_malformed_envelope(page: Any, members: Kit) -> None:
    author = members.key_b64("grid1")
    good: dict[str, Any] = {"kind": "points.award", "village": members.slug, "body": AWARD, "author": author}
    cases: dict[str, dict[str, Any]] = {
        """village "Test Village" is not a village slug (lowercase letters, digits, '-')""": {
            "village": "Test Village"
        },
        "author is not a canonical base64 Ed25519 public key (32 bytes)": {"author": author[:-2]},
        "cosigner must be a different key from the author": {"cosigner": author},
        'id "6A61CAB17DF3BDBDC602E8C3AB5988D6" is not 32 lowercase hex digits': {"id": ENTRY_ID.upper()},
        'time "2026-03-01 08:05:00" is not a UTC time YYYY-MM-DDTHH:MM:SSZ': {"time": "2026-03-01 08:05:00"},
        "body is not a JSON object": {"body": [AWARD]},
    }
    messages = page.evaluate(
        """async (cases) => {
            const { signer, error } = window.harness;
            return Promise.all(cases.map((fields) => error(() => signer.makeUnsigned(fields))));
        }""",
        [{**good, **change} for change in cases.values()],
    )
    assert messages == list(cases)


SIGN = """async (entries) => {
    const { signer, keys } = window.harness;
    return Promise.all(entries.map(async ([unsigned, by, cosigner]) => {
        const { privateKey, publicKey } = keys[by];
        const signed = await signer.signEntry(unsigned, privateKey, publicKey);
        return cosigner ? signer.cosign(signed, keys[cosigner].privateKey, keys[cosigner].publicKey) : signed;
    }));
}"""


def test_an_entry_of_every_kind_signed_in_the_browser_is_the_one_python_signs(
    page: Any, members: Kit
) -> None:
    """Ed25519 is deterministic (RFC 8032), so the same key over the same message gives the same bytes."""
    names = {members.key_b64(name): name for name in members.keys}
    entries = one_entry_of_each_kind(members)
    signed = page.evaluate(SIGN, [[entry.unsigned, names[entry.unsigned["author"]], names.get(entry.unsigned.get("cosigner"))]
                                  for entry in entries])  # the genesis is co-signed by the township
    assert signed == [entry.to_wire() for entry in entries]
    for wire in signed:
        check_signatures(parse_entry(wire))


def test_a_cosigned_entry_is_the_one_python_signs(page: Any, members: Kit) -> None:
    unsigned = members.unsigned("points.award", AWARD, by="chen", cosigner="founder")
    wire = page.evaluate(
        """async (unsigned) => {
            const { signer, keys: { chen, founder } } = window.harness;
            const signed = await signer.signEntry(unsigned, chen.privateKey, chen.publicKey);
            return signer.cosign(signed, founder.privateKey, founder.publicKey);
        }""",
        unsigned,
    )
    assert wire == sign_entry(unsigned, members.keys["chen"], members.keys["founder"]).to_wire()
    check_signatures(parse_entry(wire))


def test_signing_refuses_keys_the_entry_does_not_name_and_forged_author_signatures(
    page: Any, members: Kit
) -> None:
    solo = members.unsigned("points.award", AWARD, by="grid1")
    cosigned = members.unsigned("points.award", AWARD, by="chen", cosigner="founder")
    other_cosigner = signing_message({**cosigned, "cosigner": members.key_b64("secretary")})
    chen = {"key": members.key_b64("chen"), "sig": b64encode(members.keys["chen"].sign(other_cosigner))}
    forged = {"entry": cosigned, "signatures": [chen]}  # chen signed this entry with another cosigner
    messages = page.evaluate(
        """async ([solo, cosigned, forged]) => {
            const { signer, error, keys: { chen, founder, grid1, secretary } } = window.harness;
            const signed = await signer.signEntry(cosigned, chen.privateKey, chen.publicKey);
            const cosignedTwice = await signer.cosign(signed, founder.privateKey, founder.publicKey);
            return Promise.all([
                error(() => signer.signEntry(solo, founder.privateKey, founder.publicKey)),
                error(() => signer.signEntry(solo, founder.privateKey, grid1.publicKey)),
                error(() => signer.cosign(signed, secretary.privateKey, secretary.publicKey)),
                error(() => signer.cosign(cosignedTwice, founder.privateKey, founder.publicKey)),
                error(() => signer.cosign(forged, founder.privateKey, founder.publicKey)),
            ]);
        }""",
        [solo, cosigned, forged],
    )
    assert messages == [
        f"the entry's author is {members.key_b64('grid1')}, not {members.key_b64('founder')}",
        f"privateKey is not the private key of {members.key_b64('grid1')}",
        f"the entry's cosigner is {members.key_b64('founder')}, not {members.key_b64('secretary')}",
        "a cosigner signs an entry that has exactly one signature, its author's",
        "the author's signature does not verify",
    ]


# --- importKeyFile: the key file of keys.SigningKey.to_encrypted_pem -------------------------------------


def test_a_key_file_opens_to_a_non_extractable_signing_key_with_pythons_public_key(page: Any) -> None:
    key = SigningKey.generate()
    opened = page.evaluate(
        """async ([pem, passphrase]) => {
            const { privateKey, publicKey } = await window.harness.signer.importKeyFile(pem, passphrase);
            const { type, extractable, algorithm, usages } = privateKey;
            const exports = await Promise.all(["pkcs8", "jwk", "raw"].map((format) => crypto.subtle
                .exportKey(format, privateKey).then(() => "exported", (exc) => exc.name)));
            return { publicKey, type, extractable, algorithm: algorithm.name, usages, exports };
        }""",
        [key.to_encrypted_pem(PASSPHRASE).decode(), TYPED],
    )
    assert opened == {
        "publicKey": b64encode(key.public_bytes),
        "type": "private",
        "extractable": False,
        "algorithm": "Ed25519",
        "usages": ["sign"],
        "exports": ["InvalidAccessError"] * 3,
    }


def pem(label: str, der: bytes) -> str:
    lines = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"


def once(text: AnyStr, old: AnyStr, new: AnyStr) -> AnyStr:
    """``text`` with ``old``, which it holds exactly once, replaced by ``new``."""
    assert text.count(old) == 1, f"{old!r} is not in the key file exactly once"
    return text.replace(old, new)


KEY_FILE = SigningKey.generate().to_encrypted_pem(PASSPHRASE).decode()
KEY_DER = der_of(KEY_FILE)
HMAC_WITH_SHA256 = bytes.fromhex("06082a864886f70d0209")  # the DER of OID 1.2.840.113549.2.9
PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
RFC_8410_PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
"""  # RFC 8410 §10.3: an Ed25519 key in unencrypted PKCS#8
SUPPORTED = "villageledger key files use PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC"


def p256_key_file() -> str:
    """An EC P-256 key encrypted as our key files are: the right format, the wrong curve."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE),
    ).decode()


# case: (key file, passphrase, the browser's message)
REFUSED_KEY_FILES: dict[str, tuple[str, str, str]] = {
    "wrong passphrase": (KEY_FILE, "村委会 passphrasE", "cannot decrypt private key: wrong passphrase"),
    "wrong passphrase, padding valid by chance": (
        KEY_FILE, wrong_passphrase_that_unpads(KEY_FILE), "cannot decrypt private key: wrong passphrase"
    ),
    "empty passphrase": (KEY_FILE, "", "cannot decrypt private key: the passphrase is empty"),
    "unencrypted PKCS#8": (
        RFC_8410_PRIVATE_KEY, TYPED, "private key is not encrypted; refusing to use a plaintext key"
    ),
    "encrypted EC P-256 key": (
        p256_key_file(), TYPED, "private key is an EC key (1.2.840.10045.2.1), expected an Ed25519 key"
    ),
    "not PEM": ("my key", TYPED, "key file is not a PEM file (-----BEGIN ENCRYPTED PRIVATE KEY-----)"),
    "another PEM label": (
        pem("CERTIFICATE", KEY_DER), TYPED, "key file holds a CERTIFICATE, expected an ENCRYPTED PRIVATE KEY"
    ),
    "PEM body without its last pad": (
        once(KEY_FILE, "==\n-----END", "=\n-----END"), TYPED, "key file's PEM body is not valid base64"
    ),
    "DER truncated": (pem("ENCRYPTED PRIVATE KEY", KEY_DER[:-1]), TYPED, "key file: DER is truncated"),
    "DER with trailing bytes": (
        pem("ENCRYPTED PRIVATE KEY", KEY_DER + b"\x05\x00"),  # a NULL after the EncryptedPrivateKeyInfo
        TYPED,
        "key file: expected one DER element, found 2",
    ),
    "PRF hmacWithSHA1": (
        pem("ENCRYPTED PRIVATE KEY", once(KEY_DER, HMAC_WITH_SHA256, HMAC_WITH_SHA256[:-1] + b"\x07")),
        TYPED,
        f"PBKDF2 PRF hmacWithSHA1 (1.2.840.113549.2.7) is not supported; {SUPPORTED}",
    ),
    "AES-128-CBC": (
        pem("ENCRYPTED PRIVATE KEY", once(KEY_DER, AES_256_CBC, AES_256_CBC[:-1] + b"\x02")),
        TYPED,
        f"key file cipher aes128CBC (2.16.840.1.101.3.4.1.2) is not supported; {SUPPORTED}",
    ),
    "PBES1 (pbeWithMD5AndDES-CBC)": (
        pem("ENCRYPTED PRIVATE KEY", once(KEY_DER, PBES2, PBES2[:-1] + b"\x03")),
        TYPED,
        f"key file encryption 1.2.840.113549.1.5.3 is not supported; {SUPPORTED}",
    ),
}


def test_a_key_file_python_refuses_is_refused_saying_why(page: Any) -> None:
    messages = page.evaluate(
        """async (cases) => {
            const { signer, error } = window.harness;
            const open = ([pem, passphrase]) => error(() => signer.importKeyFile(pem, passphrase));
            return Promise.all(cases.map(open));
        }""",
        [[key_file, passphrase] for key_file, passphrase, _ in REFUSED_KEY_FILES.values()],
    )
    assert dict(zip(REFUSED_KEY_FILES, messages, strict=True)) == {
        case: message for case, (_, _, message) in REFUSED_KEY_FILES.items()
    }
    opened_by_python = [case for case, (key_file, passphrase, _) in REFUSED_KEY_FILES.items()
                        if opens(key_file, passphrase)]
    assert not opened_by_python


def opens(key_file: str, passphrase: str) -> bool:
    """Whether Python's ``SigningKey.from_encrypted_pem`` opens ``key_file``."""
    try:
        SigningKey.from_encrypted_pem(key_file.encode(), passphrase.encode())
    except KeyFileError:
        return False
    return True


# --- saveKey, loadKey, forgetKey: IndexedDB ----------------------------------------------------------------


def test_a_saved_key_is_loaded_by_another_page_still_signs_and_is_forgotten(page: Any, members: Kit) -> None:
    page.evaluate(
        """async (village) => {
            const { signer, keys: { supervisor } } = window.harness;
            await signer.saveKey(village, { ...supervisor, member: "supervisor" });
        }""",
        members.slug,
    )
    unsigned = members.unsigned("points.reverse", {"entry": ENTRY_ID, "reason": "登记有误"}, by="supervisor")
    later = _start(page.context.new_page(), f"{ORIGIN}/")  # another page of the origin: it shares IndexedDB
    loaded = later.evaluate(
        """async ([village, unsigned]) => {
            const { signer } = window.harness;
            const { privateKey, publicKey, member } = await signer.loadKey(village);
            const wire = await signer.signEntry(unsigned, privateKey, publicKey);
            await signer.forgetKey(village);
            return { extractable: privateKey.extractable, member, wire, after: await signer.loadKey(village),
                     elsewhere: await signer.loadKey("othervillage") };
        }""",
        [members.slug, unsigned],
    )
    later.close()
    assert loaded == {
        "extractable": False,
        "member": "supervisor",
        "wire": sign_entry(unsigned, members.keys["supervisor"]).to_wire(),
        "after": None,
        "elsewhere": None,
    }
    check_signatures(parse_entry(loaded["wire"]))


def test_save_key_refuses_an_extractable_key_and_a_bad_record(page: Any, members: Kit) -> None:
    messages = page.evaluate(
        """async (village) => {
            const { signer, error, keys: { founder } } = window.harness;
            const extractable = await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"]);
            return Promise.all([
                error(() => signer.saveKey(village, { ...founder, privateKey: extractable.privateKey })),
                error(() => signer.saveKey(village, { ...founder, publicKey: "founder" })),
                error(() => signer.saveKey(village, { ...founder, privateKey: extractable.publicKey })),
                error(() => signer.saveKey("../other", founder)),
            ]);
        }""",
        members.slug,
    )
    assert messages == [
        "refusing to store an extractable private key",
        "publicKey is not a canonical base64 Ed25519 public key (32 bytes)",
        "privateKey is not an Ed25519 private CryptoKey",
        """village "../other" is not a village slug (lowercase letters, digits, '-')""",
    ]


# --- login -------------------------------------------------------------------------------------------------

# The token response of login(base, village, the key `name`), or {error: its message}.
LOGIN = """async ([base, village, name]) => {
    const { signer, keys, error } = window.harness;
    let answer;
    const message = await error(async () => {
        answer = await signer.login(base, village, keys[name].privateKey, keys[name].publicKey);
    });
    return message === null ? answer : { error: message };
}"""


@pytest.mark.parametrize(
    "message",
    [
        "villageledger/entry/v1\n{}",  # an entry, say
        "villageledger/auth/v1\nanothervillage\nchallenge-1",
        "villageledger/auth/v1\ntestvillage\nchallenge-2",
    ],
    ids=["another domain", "another village", "another challenge"],
)
def test_login_signs_nothing_but_the_login_message_of_the_challenge(
    page: Any, members: Kit, message: str
) -> None:
    asked = []

    def server(route: Any) -> None:
        asked.append(urlsplit(route.request.url).path)
        route.fulfill(json={"challenge": "challenge-1", "message": message, "expires_in": 300})

    page.route(f"{ORIGIN}/api/**", server)
    try:
        answer = page.evaluate(LOGIN, [ORIGIN, members.slug, "founder"])
    finally:
        page.unroute(f"{ORIGIN}/api/**", server)
    refusal = "refusing to sign: the server's message is not the login message for its challenge"
    assert answer == {"error": refusal}
    assert asked == [f"/api/v1/villages/{members.slug}/auth/challenge"]


@pytest.fixture
def app_page(chromium: Any, live_server: str, village: StoredVillage) -> Iterator[Any]:
    """A page of the app itself, with signer.js imported from where the app serves it."""
    context = chromium.new_context()
    yield _start(context.new_page(), f"{live_server}/v/{village.slug}")
    context.close()


def test_a_member_logs_in_and_the_token_opens_the_self_check(
    app_page: Any, village: StoredVillage, client: FlaskClient
) -> None:
    open_keys(app_page, {"supervisor": village.kit.keys["supervisor"]})
    answer = app_page.evaluate(LOGIN, ["", village.slug, "supervisor"])  # "": the page's own origin
    assert {key: answer[key] for key in ("member", "roles", "expires_in")} == {
        "member": "supervisor", "roles": ["supervisor"], "expires_in": 900
    }
    bearer = {"Authorization": f"Bearer {answer['token']}"}
    check = client.get(f"/api/v1/villages/{village.slug}/check", headers=bearer)
    assert check.status_code == 200 and check.json is not None and check.json["ok"] is True


def test_a_strangers_login_is_refused_with_the_servers_detail(
    app_page: Any, village: StoredVillage, live_server: str
) -> None:
    open_keys(app_page, {"stranger": village.kit.keys["stranger"]})
    answer = app_page.evaluate(LOGIN, [live_server, village.slug, "stranger"])
    refusal = "login refused (HTTP 401): this key is not an active member key of the village"
    assert answer == {"error": refusal}
