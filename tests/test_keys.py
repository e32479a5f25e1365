"""Specification of ``keys``: Ed25519 signing keys, encrypted key files, signed-note verifier keys."""

from __future__ import annotations

import json
import os
import pickle
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci import missing_tool
from hypothesis import assume, given
from hypothesis import strategies as st
from keyfiles import wrong_passphrase_that_unpads

import keys
from keys import KeyFileError, NoteVerifier, SigningKey
from ledger.canonical import b64decode, b64encode
from ledger.errors import EncodingError, LedgerError, SignatureError

ASSETS = Path(__file__).parent / "assets" / "keys"  # made by tests/assets/keys/generate.py with OpenSSL
ASSET_PASSPHRASE = b"test passphrase, not a secret"

# RFC 8032 section 7.1, TEST 1 (the seed is in ASSETS / "rfc8032-test1.pem").
RFC8032_TEST1_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_TEST1_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065"
    "224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
# Published in the documentation of golang.org/x/mod/sumdb/note (seed in ASSETS / "go-note-example.pem").
GO_EXAMPLE_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_EXAMPLE_PUBLIC = b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]

KEY = SigningKey.generate()  # generating is cheap, but one key keeps hypothesis examples fast

valid_names = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters="+\x85"),
    min_size=1,
    max_size=40,
)


# Signing and verifying ----------------------------------------------------------------------------------


@given(message=st.binary(max_size=512))
def test_a_signature_verifies_under_its_public_key(message: bytes) -> None:
    signature = KEY.sign(message)
    assert len(signature) == 64, "Ed25519 signatures are 64 bytes"
    keys.verify_signature(KEY.public_bytes, signature, message)


@given(message=st.binary(max_size=64), other=st.binary(max_size=64))
def test_a_signature_does_not_verify_another_message(message: bytes, other: bytes) -> None:
    assume(message != other)
    with pytest.raises(SignatureError, match="does not verify"):
        keys.verify_signature(KEY.public_bytes, KEY.sign(message), other)


def test_a_signature_does_not_verify_under_another_key() -> None:
    with pytest.raises(SignatureError, match="does not verify"):
        keys.verify_signature(SigningKey.generate().public_bytes, KEY.sign(b"m"), b"m")


@pytest.mark.parametrize("flip", [0, 31, 32, 63])
def test_a_signature_with_a_flipped_bit_is_rejected(flip: int) -> None:
    signature = bytearray(KEY.sign(b"village"))
    signature[flip] ^= 0x01
    with pytest.raises(SignatureError):
        keys.verify_signature(KEY.public_bytes, bytes(signature), b"village")


def test_public_key_and_signature_of_wrong_length_are_signature_errors() -> None:
    signature = KEY.sign(b"m")
    with pytest.raises(SignatureError, match="public key is 31 bytes, expected 32"):
        keys.verify_signature(KEY.public_bytes[:31], signature, b"m")
    with pytest.raises(SignatureError, match="signature is 65 bytes, expected 64"):
        keys.verify_signature(KEY.public_bytes, signature + b"\0", b"m")


def test_rfc8032_test1_vector() -> None:
    key = SigningKey.from_encrypted_pem((ASSETS / "rfc8032-test1.pem").read_bytes(), ASSET_PASSPHRASE)
    assert key.public_bytes == RFC8032_TEST1_PUBLIC, "public key derived from the RFC 8032 TEST 1 seed"
    assert key.sign(b"") == RFC8032_TEST1_SIGNATURE, "RFC 8032 TEST 1 signature of the empty message"
    keys.verify_signature(RFC8032_TEST1_PUBLIC, RFC8032_TEST1_SIGNATURE, b"")


def test_signature_errors_are_ledger_errors() -> None:
    assert issubclass(SignatureError, LedgerError), "one hierarchy"
    assert issubclass(KeyFileError, LedgerError), "one hierarchy"


# The private key stays private ---------------------------------------------------------------------------


def test_repr_shows_only_the_public_key() -> None:
    assert repr(KEY) == f"SigningKey(public={KEY.public_bytes.hex()})", "no private material in repr"


def test_a_signing_key_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(KEY)


def test_encrypted_pem_round_trip() -> None:
    pem = KEY.to_encrypted_pem(b"correct horse")
    again = SigningKey.from_encrypted_pem(pem, b"correct horse")
    assert again.public_bytes == KEY.public_bytes, "same key after the round trip"
    assert again.sign(b"x") == KEY.sign(b"x"), "Ed25519 is deterministic: same key, same signature"


def test_encrypted_pem_is_encrypted_pkcs8() -> None:
    pem = KEY.to_encrypted_pem(b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"), "PKCS#8 EncryptedPrivateKeyInfo"
    assert b"BEGIN PRIVATE KEY" not in pem, "no plaintext PKCS#8"


def test_encrypted_pem_uses_a_fresh_salt_each_time() -> None:
    assert KEY.to_encrypted_pem(b"pw") != KEY.to_encrypted_pem(b"pw"), "salt and IV are random"


def test_an_empty_passphrase_is_refused() -> None:
    with pytest.raises(ValueError, match="empty passphrase"):
        KEY.to_encrypted_pem(b"")


def test_wrong_passphrase_says_so() -> None:
    pem = KEY.to_encrypted_pem(b"correct horse")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        SigningKey.from_encrypted_pem(pem, b"battery staple")
    with pytest.raises(KeyFileError, match="passphrase is empty"):
        SigningKey.from_encrypted_pem(pem, b"")


def test_a_wrong_passphrase_that_decrypts_to_valid_padding_by_chance_says_so_too() -> None:
    """About 1 wrong passphrase in 256 unpads; pyca then fails on the key data, not at the decryption."""
    pem = KEY.to_encrypted_pem(b"correct horse")
    with pytest.raises(KeyFileError, match="^cannot decrypt private key: wrong passphrase$"):
        SigningKey.from_encrypted_pem(pem, wrong_passphrase_that_unpads(pem.decode()).encode())


def test_a_plaintext_private_key_is_refused() -> None:
    # RFC 8410 PrivateKeyInfo of the RFC 8032 TEST 1 seed: a published key, unencrypted.
    der = bytes.fromhex("302e020100300506032b657004220420") + bytes.fromhex(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    )
    pem = b"-----BEGIN PRIVATE KEY-----\n" + b64encode(der).encode() + b"\n-----END PRIVATE KEY-----\n"
    with pytest.raises(KeyFileError, match="not encrypted"):
        SigningKey.from_encrypted_pem(pem, b"anything")


def test_a_key_that_is_not_ed25519_is_refused() -> None:
    with pytest.raises(KeyFileError, match="expected an Ed25519 key"):
        SigningKey.from_encrypted_pem((ASSETS / "p256.pem").read_bytes(), ASSET_PASSPHRASE)


def test_garbage_is_a_malformed_pem() -> None:
    with pytest.raises(KeyFileError, match="malformed"):
        SigningKey.from_encrypted_pem(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n", b"pw")


# Key files -----------------------------------------------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Umask 0: whatever mode a file gets, it got from the code, not from the environment."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_saved_key_file_is_mode_0600_and_encrypted(tmp_path: Path, permissive_umask: None) -> None:
    path = tmp_path / "log.key"
    keys.save_private_key(KEY, path, b"correct horse")
    assert _mode(path) == 0o600, f"key file mode is {_mode(path):o}, expected 600"
    content = path.read_bytes()
    assert content.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"), "encrypted PKCS#8 on disk"
    assert keys.load_private_key(path, b"correct horse").public_bytes == KEY.public_bytes, "round trip"


def test_saving_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    path.write_bytes(b"precious")
    with pytest.raises(KeyFileError, match="already exists"):
        keys.save_private_key(KEY, path, b"correct horse")
    assert path.read_bytes() == b"precious", "the existing file is untouched"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_overwriting_replaces_a_world_readable_file_with_a_0600_one(
    tmp_path: Path, permissive_umask: None
) -> None:
    path = tmp_path / "log.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    keys.save_private_key(KEY, path, b"correct horse", overwrite=True)
    assert _mode(path) == 0o600, f"replaced key file mode is {_mode(path):o}, expected 600"
    assert keys.load_private_key(path, b"correct horse").public_bytes == KEY.public_bytes, "new key in place"
    assert [p.name for p in tmp_path.iterdir()] == ["log.key"], "no temporary file left behind"


def test_saving_with_an_empty_passphrase_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    with pytest.raises(ValueError, match="empty passphrase"):
        keys.save_private_key(KEY, path, b"")
    assert not path.exists(), "no file for a refused key"


def test_loading_names_the_file_and_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    keys.save_private_key(KEY, path, b"correct horse")
    with pytest.raises(KeyFileError, match=r"log\.key: cannot decrypt private key: wrong passphrase"):
        keys.load_private_key(path, b"battery staple")
    with pytest.raises(KeyFileError, match=r"cannot read private key file .*missing\.key"):
        keys.load_private_key(tmp_path / "missing.key", b"correct horse")


# Signed-note keys ----------------------------------------------------------------------------------------


def test_go_example_verifier_key() -> None:
    verifier = keys.parse_verifier_key(GO_EXAMPLE_VKEY)
    assert verifier.name == "PeterNeumann", "name before the first +"
    assert verifier.key_hash == bytes.fromhex("c74f20a3"), "key hash as published"
    assert keys.verifier_key(verifier.name, verifier.public) == GO_EXAMPLE_VKEY, "formatted as Go does"


def test_note_key_hash_is_the_spec_formula() -> None:
    import hashlib

    expected = hashlib.sha256(b"example.com/log\n\x01" + KEY.public_bytes).digest()[:4]
    assert keys.note_key_hash("example.com/log", KEY.public_bytes) == expected, (
        "SHA-256(name||0x0A||0x01||key)[:4]"
    )


@given(name=valid_names)
def test_verifier_key_round_trips(name: str) -> None:
    text = keys.verifier_key(name, KEY.public_bytes)
    verifier = keys.parse_verifier_key(text)
    assert verifier == NoteVerifier.from_public_key(name, KEY.public_bytes), "parse inverts format"
    assert verifier.public == KEY.public_bytes, "public key preserved"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PeterNeumann+c74f20a3", "not of the form name\\+hash\\+keydata"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name is empty"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "space character U\\+0020"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not 8 hexadecimal digits"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match c74f20a3"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "not valid base64"),
        ("PeterNeumann+c74f20a3+" + b64encode(b"\x02" + GO_EXAMPLE_PUBLIC), "algorithm 0x02 is unknown"),
        ("PeterNeumann+c74f20a3+" + b64encode(b"\x01" + GO_EXAMPLE_PUBLIC[:31]), "is 31 bytes, expected 32"),
        ("PeterNeumann+c74f20a3+", "verifier key data is empty"),
    ],
)
def test_malformed_verifier_keys_are_refused(text: str, message: str) -> None:
    with pytest.raises(EncodingError, match=message):
        keys.parse_verifier_key(text)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        ("a+b", "contains '\\+'"),
        ("a b", "U\\+0020"),
        ("a\tb", "U\\+0009"),
        ("village\u00a0ledger", "U\\+00A0"),  # no-break space
        ("village\u3000ledger", "U\\+3000"),  # ideographic space
        ("village\u2028", "U\\+2028"),  # line separator
        ("village\x85", "U\\+0085"),  # next line
        ("a\x1fb", "control character U\\+001F"),
    ],
)
def test_key_names_follow_the_spec(name: str, message: str) -> None:
    assert keys.key_name_problem(name) is not None, f"{name!r} must be refused"
    with pytest.raises(ValueError, match=message):
        keys.note_key_hash(name, KEY.public_bytes)


@pytest.mark.parametrize("name", ["example.com/log", "村/ledger", "Ωmega", "a\u200bb", "log-ü/2024"])
def test_unicode_key_names_without_spaces_are_valid(name: str) -> None:
    assert keys.key_name_problem(name) is None, f"{name!r} is a valid key name"
    assert keys.parse_verifier_key(keys.verifier_key(name, KEY.public_bytes)).name == name, "round trip"


def test_unicode_spaces_are_exactly_what_python_calls_space() -> None:
    # Go's unicode.IsSpace is Unicode White_Space; outside ASCII controls Python's isspace agrees.
    for code in range(0x20, sys.maxunicode + 1):
        ch = chr(code)
        if 0xD800 <= code <= 0xDFFF or ch == "+":
            continue
        refused = keys.key_name_problem("a" + ch) is not None
        assert refused == ch.isspace(), f"U+{code:04X}: refused={refused}, isspace={ch.isspace()}"


def test_note_verifier_checks_its_invariant() -> None:
    with pytest.raises(ValueError, match="does not match"):
        NoteVerifier("example.com/log", b"\0\0\0\0", KEY.public_bytes)
    with pytest.raises(ValueError, match="33 bytes, expected 32"):
        NoteVerifier.from_public_key("example.com/log", KEY.public_bytes + b"\0")


def test_note_verifier_verifies_raw_signatures() -> None:
    verifier = NoteVerifier.from_public_key("example.com/log", KEY.public_bytes)
    verifier.verify(b"text\n", KEY.sign(b"text\n"))
    with pytest.raises(SignatureError, match="does not verify"):
        verifier.verify(b"text!\n", KEY.sign(b"text\n"))


# --- one signature rule: the ed25519-speccheck table --------------------------------------------------------

SPECCHECK = Path(__file__).resolve().parent / "assets" / "ed25519-speccheck"
CASES = json.loads((SPECCHECK / "cases.json").read_text())
ACCEPTED = {3}  # the signature rule's row: small-order or non-canonical A or R, S >= L, cofactored only: refused


def test_the_copied_speccheck_cases_are_the_published_ones() -> None:
    published = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "ed25519-speccheck" / "cases.json"
    if not published.exists():
        missing_tool("check of the copied speccheck cases", "../shared is not beside this clone")
    assert (SPECCHECK / "cases.json").read_bytes() == published.read_bytes()


@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_signature_rule_over_the_speccheck_cases(case: int) -> None:
    vector = CASES[case]
    public, signature, message = (bytes.fromhex(vector[name]) for name in ("pub_key", "signature", "message"))
    if case in ACCEPTED:
        keys.verify_signature(public, signature, message)
    else:
        with pytest.raises(SignatureError):
            keys.verify_signature(public, signature, message)


@pytest.mark.parametrize(
    ("public", "problem"),
    [
        pytest.param(bytes.fromhex(CASES[0]["pub_key"]), "is a point of small order", id="speccheck 0 (order 8)"),
        pytest.param(bytes.fromhex(CASES[10]["pub_key"]), "is a point of small order", id="speccheck 10 (order 2, sign bit set)"),
        pytest.param(bytes.fromhex(CASES[3]["pub_key"]), "is not a point of the prime-order subgroup", id="speccheck 3 (mixed order)"),
        pytest.param((2**255 - 19 + 1).to_bytes(32, "little"), "is not a canonical encoding", id="y = p + 1"),
    ],
)
def test_no_small_order_mixed_order_or_non_canonical_key_is_a_member_key(public: bytes, problem: str) -> None:
    with pytest.raises(SignatureError, match=f"^Ed25519 public key {problem}$"):
        keys.require_member_key(public)
    keys.require_member_key(keys.SigningKey.generate().public_bytes)


def test_under_a_small_order_key_no_fixed_signature_verifies_any_message() -> None:
    """Before the rule, speccheck case 0's signature verified under its key for about 1 message in 9."""
    public, signature = (bytes.fromhex(CASES[0][name]) for name in ("pub_key", "signature"))
    for n in range(400):
        with pytest.raises(SignatureError):
            keys.verify_signature(public, signature, os.urandom(32) + n.to_bytes(2, "big"))
