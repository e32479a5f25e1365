"""Specification of ``ledger.note``: C2SP signed notes, checkpoints and tlog proofs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ci import missing_tool
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

import keys
from keys import ALG_COSIGNATURE_V1, NoteVerifier, SigningKey, note_key_hash, parse_verifier_key, verifier_key
from ledger import merkle
from ledger.canonical import b64decode, b64encode
from ledger.errors import CheckpointError, ProofError
from ledger.note import (
    Checkpoint,
    Note,
    TlogProof,
    cosign_note,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_tlog_proof,
    sign_checkpoint,
    sign_note,
    verify_tlog_proof,
)

Signer = tuple[str, SigningKey]

ASSETS = Path(__file__).parent / "assets" / "keys"  # made by tests/assets/keys/generate.py with OpenSSL
ASSET_PASSPHRASE = b"test passphrase, not a secret"

# Published in the documentation of golang.org/x/mod/sumdb/note (package note, "Signed Note Format").
GO_EXAMPLE_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_EXAMPLE_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_EXAMPLE_NOTE = (
    GO_EXAMPLE_TEXT + "\n"
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "village.example/ledger"
ROOT = bytes(range(32))


@pytest.fixture
def make_signer() -> Callable[..., Signer]:
    """Factory: a fresh key under ``name`` (the log's origin by default)."""

    def make(name: str = ORIGIN) -> Signer:
        return name, SigningKey.generate()

    return make


def verifier(signer: Signer) -> NoteVerifier:
    name, key = signer
    return NoteVerifier.from_public_key(name, key.public_bytes)


LOG: Signer = (ORIGIN, SigningKey.generate())  # shared by hypothesis tests, which cannot use fixtures

note_lines = st.text(alphabet=st.characters(exclude_categories=["Cs"], min_codepoint=0x20), max_size=30)
note_texts = st.lists(note_lines, min_size=1, max_size=6).map(lambda lines: "".join(f"{x}\n" for x in lines))


# Signed notes --------------------------------------------------------------------------------------------


def test_go_example_note_opens() -> None:
    note = open_note(GO_EXAMPLE_NOTE, [parse_verifier_key(GO_EXAMPLE_VKEY)])
    assert note == Note(text=GO_EXAMPLE_TEXT, verified=("PeterNeumann",)), "Go's published note verifies"


def test_sign_note_reproduces_go_example_byte_for_byte() -> None:
    key = SigningKey.from_encrypted_pem((ASSETS / "go-note-example.pem").read_bytes(), ASSET_PASSPHRASE)
    assert sign_note(GO_EXAMPLE_TEXT, [("PeterNeumann", key)]) == GO_EXAMPLE_NOTE, "same bytes as Go's Sign"


@given(text=note_texts)
def test_signed_note_round_trip(text: str) -> None:
    note = sign_note(text, [LOG])
    assert open_note(note, [verifier(LOG)]) == Note(text=text, verified=(ORIGIN,)), "text back, signer named"


def test_signed_note_layout() -> None:
    note = sign_note("hello\n", [LOG])
    text, blank, signature_line = note.partition("\n\n")
    assert (text, blank) == ("hello", "\n\n"), "text, then one blank line"
    assert signature_line.startswith(f"\u2014 {ORIGIN} "), "em dash, space, key name, space"
    raw = b64decode(signature_line[len(f"\u2014 {ORIGIN} ") : -1])
    assert raw[:4] == verifier(LOG).key_hash and len(raw) == 68, "key ID then 64-byte signature"


def test_text_may_contain_blank_lines() -> None:
    # c2sp.org/signed-note: "The note text MAY contain empty lines"; the last one separates signatures.
    text = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u00e8 subito sera.\n"
    assert open_note(sign_note(text, [LOG]), [verifier(LOG)]).text == text, "text with a blank line"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "note text is empty"),
        ("no newline", "does not end with a newline"),
        ("tab\there\n", "control character U\\+0009"),
        ("crlf\r\n", "control character U\\+000D"),
    ],
)
def test_sign_note_preconditions_on_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sign_note(text, [LOG])


def test_sign_note_preconditions_on_signers(make_signer: Callable[..., Signer]) -> None:
    with pytest.raises(ValueError, match="at least one signer"):
        sign_note("t\n", [])
    with pytest.raises(ValueError, match="listed twice"):
        sign_note("t\n", [LOG, LOG])
    with pytest.raises(ValueError, match="U\\+3000"):
        sign_note("t\n", [make_signer("village\u3000ledger")])
    with pytest.raises(ValueError, match="101 signers, at most 100"):
        sign_note("t\n", [make_signer(f"w{i}") for i in range(101)])


def test_tampered_text_is_rejected() -> None:
    note = sign_note("balance 10\n", [LOG])
    with pytest.raises(
        CheckpointError, match=f"signature 1 by trusted key {ORIGIN}\\+[0-9a-f]{{8}} does not verify"
    ):
        open_note(note.replace("balance 10\n", "balance 99\n", 1), [verifier(LOG)])


@pytest.mark.parametrize("position", [4, 20, 67])  # a signature byte (the key ID is bytes 0-3)
def test_tampered_signature_is_rejected(position: int) -> None:
    note = sign_note("balance 10\n", [LOG])
    text, _, line = note.partition("\n\n")
    prefix = f"\u2014 {ORIGIN} "
    raw = bytearray(b64decode(line[len(prefix) : -1]))
    raw[position] ^= 0x01
    tampered = f"{text}\n\n{prefix}{b64encode(bytes(raw))}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(tampered, [verifier(LOG)])


def test_unknown_signatures_are_ignored(make_signer: Callable[..., Signer]) -> None:
    witness = make_signer("witness.example")
    note = sign_note("t\n", [witness, LOG])
    assert open_note(note, [verifier(LOG)]).verified == (ORIGIN,), "the witness signature is skipped"


def test_without_a_trusted_signature_the_note_is_rejected_naming_the_keys(
    make_signer: Callable[..., Signer],
) -> None:
    stranger = make_signer("stranger.example")
    note = sign_note("t\n", [stranger])
    trusted = verifier(LOG)
    with pytest.raises(CheckpointError) as caught:
        open_note(note, [trusted])
    message = str(caught.value)
    assert message.startswith("no signature by a trusted key"), message
    assert f"stranger.example+{verifier(stranger).key_hash.hex()}" in message, "names the key that signed"
    assert f"{ORIGIN}+{trusted.key_hash.hex()}" in message, "names the keys that were trusted"


def test_same_name_other_key_is_unknown_not_invalid(make_signer: Callable[..., Signer]) -> None:
    # c2sp.org/signed-note: ignore signatures from unknown keys "even if they share a name or ID".
    impostor = make_signer(ORIGIN)
    with pytest.raises(CheckpointError, match="no signature by a trusted key"):
        open_note(sign_note("t\n", [impostor]), [verifier(LOG)])


def test_same_key_id_other_name_is_unknown(make_signer: Callable[..., Signer]) -> None:
    trusted = verifier(LOG)
    note = sign_note("t\n", [LOG]).replace(f"\u2014 {ORIGIN} ", "\u2014 other.example ")
    with pytest.raises(CheckpointError, match=f"signed by other.example\\+{trusted.key_hash.hex()}"):
        open_note(note, [trusted])


def test_key_rotation_note_signed_by_old_and_new_key_opens_with_either(
    make_signer: Callable[..., Signer],
) -> None:
    old, new = make_signer(), make_signer()
    note = sign_note("t\n", [old, new])
    assert open_note(note, [verifier(old)]).verified == (ORIGIN,), "clients still trusting the old key"
    assert open_note(note, [verifier(new)]).verified == (ORIGIN,), "clients already trusting the new key"
    assert open_note(note, [verifier(old), verifier(new)]).verified == (ORIGIN,), "a name is listed once"


def test_multiple_trusted_signers_are_listed_in_note_order(make_signer: Callable[..., Signer]) -> None:
    witness = make_signer("witness.example")
    note = sign_note("t\n", [LOG, witness])
    assert open_note(note, [verifier(witness), verifier(LOG)]).verified == (ORIGIN, "witness.example"), (
        "order"
    )


def test_one_bad_trusted_signature_rejects_the_whole_note(make_signer: Callable[..., Signer]) -> None:
    witness = make_signer("witness.example")
    good = sign_note("t\n", [LOG, witness])
    bad_witness_line = sign_note("other\n", [witness]).partition("\n\n")[2]
    tampered = good.rsplit("\u2014 witness.example", 1)[0] + bad_witness_line
    with pytest.raises(CheckpointError, match="signature 2 by trusted key witness.example"):
        open_note(tampered, [verifier(LOG), verifier(witness)])


def test_ambiguous_verifiers_are_a_caller_error() -> None:
    trusted = verifier(LOG)
    forged = NoteVerifier.__new__(NoteVerifier)  # a second key under the same name and key ID
    object.__setattr__(forged, "name", trusted.name)
    object.__setattr__(forged, "key_hash", trusted.key_hash)
    object.__setattr__(forged, "public", bytes(32))
    with pytest.raises(ValueError, match="share name and key ID"):
        open_note(sign_note("t\n", [LOG]), [trusted, forged])


SIG = "\u2014 village.example/ledger AAAAAAAAAAAAAAAA\n"


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("t\n" + SIG, "no blank line between text and signatures"),
        ("t\n\n", "no signature lines"),
        ("t\n\n" + SIG[:-1], "does not end with a newline"),
        ("t\n\n- village.example/ledger AAAAAAAAAAAAAAAA\n", "does not start with an em dash"),
        ("t\n\n\u2014 village.example/ledger\n", "no signature after the key name"),
        ("t\n\n\u2014  AAAAAAAAAAAAAAAA\n", "key name is empty"),
        ("t\n\n\u2014 village\u00a0ledger AAAAAAAAAAAAAAAA\n", "U\\+00A0"),
        ("t\n\n\u2014 village.example/ledger AAAA AAAA\n", "not valid base64"),
        ("t\n\n\u2014 village.example/ledger AAAAAB==\n", "not canonical base64"),
        ("t\n\n\u2014 village.example/ledger AAAAAA==\n", "4 bytes, shorter than a key ID and signature"),
        ("t\r\n\n" + SIG, "control character U\\+000D"),
        ("t\n\n" + SIG * 101, "101 signatures, at most 100"),
    ],
)
def test_malformed_notes_say_what_is_wrong(note: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        open_note(note, [verifier(LOG)])


def test_a_hundred_signatures_are_accepted(make_signer: Callable[..., Signer]) -> None:
    signers = [make_signer(f"witness{i}.example") for i in range(99)] + [LOG]
    assert open_note(sign_note("t\n", signers), [verifier(LOG)]).verified == (ORIGIN,), "100 is the limit"


# Checkpoints ---------------------------------------------------------------------------------------------

single_lines = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], min_codepoint=0x20), min_size=1, max_size=30
)
checkpoints = st.builds(
    Checkpoint,
    origin=single_lines,
    size=st.integers(min_value=0, max_value=2**63 - 1),
    root_hash=st.binary(min_size=32, max_size=32),
    extensions=st.lists(single_lines, max_size=3).map(tuple),
)


def test_checkpoint_text_is_the_spec_example() -> None:
    checkpoint = Checkpoint(
        "example.com/behind-the-sofa", 20852163, b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    )
    assert checkpoint.text() == (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    ), "c2sp.org/tlog-checkpoint example body"


@given(checkpoint=checkpoints)
def test_checkpoint_text_round_trips(checkpoint: Checkpoint) -> None:
    assert parse_checkpoint(checkpoint.text()) == checkpoint, "parse inverts text()"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("o\n1\n" + b64encode(ROOT), "does not end with a newline"),
        ("o\n1\n", "2 lines, expected origin, size and root hash"),
        ("\n1\n" + b64encode(ROOT) + "\n", "line 1 is empty"),
        ("o\n1\n" + b64encode(ROOT) + "\n\n", "line 4 is empty"),
        ("o\n01\n" + b64encode(ROOT) + "\n", "'01' is not a decimal number without leading zeros"),
        ("o\n+1\n" + b64encode(ROOT) + "\n", "'\\+1' is not a decimal"),
        ("o\n1_0\n" + b64encode(ROOT) + "\n", "'1_0' is not a decimal"),
        ("o\n\u0661\n" + b64encode(ROOT) + "\n", "is not a decimal"),  # ARABIC-INDIC DIGIT ONE
        ("o\n-1\n" + b64encode(ROOT) + "\n", "'-1' is not a decimal"),
        ("o\n9223372036854775808\n" + b64encode(ROOT) + "\n", "exceeds 2\\*\\*63 - 1"),
        ("o\n1\n" + b64encode(ROOT[:31]) + "\n", "root hash decodes to 31 bytes, expected 32"),
        ("o\n1\n" + b64encode(ROOT)[:-1] + "\n", "root hash is not valid base64"),
        ("o\n1\n" + b64encode(ROOT) + "\next\x7f\tx\n", "line 4 contains control character U\\+0009"),
    ],
)
def test_parse_checkpoint_is_strict(text: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        parse_checkpoint(text)


def test_checkpoint_size_zero_is_allowed() -> None:
    empty = merkle.EMPTY_ROOT
    assert parse_checkpoint(f"o\n0\n{b64encode(empty)}\n") == Checkpoint("o", 0, empty), "the empty tree"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"origin": ""}, "origin is empty"),
        ({"origin": "a\nb"}, "origin contains a newline"),
        ({"size": -1}, "size -1 is not an integer"),
        ({"size": True}, "size True is not an integer"),
        ({"root_hash": b"\0" * 31}, "31 bytes, expected 32"),
        ({"extensions": ("",)}, "extension line is empty"),
    ],
)
def test_checkpoint_invariants(fields: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"origin": "o", "size": 1, "root_hash": ROOT, **fields}
    with pytest.raises(ValueError, match=message):
        Checkpoint(**arguments)  # type: ignore[arg-type]


def test_signed_checkpoint_round_trip() -> None:
    checkpoint = Checkpoint(ORIGIN, 7, ROOT, ("extension",))
    note = sign_checkpoint(checkpoint, [LOG])
    assert open_checkpoint(note, [verifier(LOG)], origin=ORIGIN) == checkpoint, "same checkpoint back"
    assert open_checkpoint(note, [verifier(LOG)]) == checkpoint, "origin check is optional"


def test_wrong_origin_is_rejected() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), [LOG])
    with pytest.raises(
        CheckpointError, match="checkpoint origin is 'village.example/ledger', expected 'other.example'"
    ):
        open_checkpoint(note, [verifier(LOG)], origin="other.example")


def test_a_signed_note_that_is_not_a_checkpoint_is_rejected() -> None:
    with pytest.raises(CheckpointError, match="malformed checkpoint"):
        open_checkpoint(sign_note("just a note\n", [LOG]), [verifier(LOG)])


def test_checkpoint_signed_by_untrusted_key_is_rejected(make_signer: Callable[..., Signer]) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), [make_signer()])
    with pytest.raises(CheckpointError, match="no signature by a trusted key"):
        open_checkpoint(note, [verifier(LOG)], origin=ORIGIN)


# Tlog proofs ---------------------------------------------------------------------------------------------

# c2sp.org/tlog-proof example (its signatures are elided with "[...]" in the spec; parsing keeps the
# checkpoint verbatim, so the example parses even though it cannot be verified).
SPEC_PROOF = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

\u2014 example.com/fancylog hI2DJw[...]1roloI=
\u2014 witness1.example mJirIklj[...]qY9v2B/5bg==
"""


def test_spec_example_proof_parses_and_reformats() -> None:
    proof = parse_tlog_proof(SPEC_PROOF)
    assert proof.index == 73894 and len(proof.hashes) == 5, "index and five hashes"
    assert proof.extra is not None and proof.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz"), "extra"
    assert proof.checkpoint.startswith("example.com/fancylog\n109482\n"), "checkpoint kept verbatim"
    assert proof.text() == SPEC_PROOF, "text() is the inverse of parsing"


@given(
    index=st.integers(min_value=0, max_value=2**63 - 1),
    hashes=st.lists(st.binary(min_size=32, max_size=32), max_size=8).map(tuple),
    extra=st.none() | st.binary(max_size=40),
)
def test_tlog_proof_text_round_trips(index: int, hashes: tuple[bytes, ...], extra: bytes | None) -> None:
    proof = TlogProof(index, hashes, sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), [LOG]), extra)
    assert parse_tlog_proof(proof.text()) == proof, "parse inverts text()"


@pytest.fixture
def tree() -> merkle.MemoryTree:
    log = merkle.MemoryTree()
    for i in range(13):
        log.append(merkle.hash_leaf(f"entry {i}".encode()))
    return log


def make_proof(tree: merkle.MemoryTree, index: int, signers: list[Signer] | None = None) -> TlogProof:
    checkpoint = sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root()), signers or [LOG])
    return TlogProof(index, tuple(tree.inclusion_proof(index, tree.size)), checkpoint)


@pytest.mark.parametrize("index", [0, 5, 12])
def test_tlog_proof_verifies(tree: merkle.MemoryTree, index: int) -> None:
    text = make_proof(tree, index).text()
    checkpoint = verify_tlog_proof(text, merkle.hash_leaf(f"entry {index}".encode()), [verifier(LOG)], ORIGIN)
    assert checkpoint == Checkpoint(ORIGIN, 13, tree.root()), "returns the checkpoint that was proved against"


def _flip_first_hash(proof: TlogProof) -> TlogProof:
    first = bytes([proof.hashes[0][0] ^ 0x01]) + proof.hashes[0][1:]
    return TlogProof(proof.index, (first, *proof.hashes[1:]), proof.checkpoint)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_flip_first_hash, "root mismatch"),
        (lambda p: TlogProof(p.index + 1, p.hashes, p.checkpoint), "root mismatch"),
        (
            lambda p: TlogProof(p.index, p.hashes[:-1], p.checkpoint),
            "inclusion proof has 3 hashes, expected 4",
        ),
        (lambda p: TlogProof(p.index, (*p.hashes, bytes(32)), p.checkpoint), "has 5 hashes, expected 4"),
        (
            lambda p: TlogProof(13, p.hashes, p.checkpoint),
            "requires 0 <= index < size, got index 13, size 13",
        ),
    ],
)
def test_mutated_tlog_proof_is_rejected(
    tree: merkle.MemoryTree, mutate: Callable[[TlogProof], TlogProof], message: str
) -> None:
    text = mutate(make_proof(tree, 5)).text()
    with pytest.raises(ProofError, match=message):
        verify_tlog_proof(text, merkle.hash_leaf(b"entry 5"), [verifier(LOG)], ORIGIN)


def test_tlog_proof_for_another_leaf_is_rejected(tree: merkle.MemoryTree) -> None:
    with pytest.raises(ProofError, match="root mismatch"):
        verify_tlog_proof(make_proof(tree, 5).text(), merkle.hash_leaf(b"entry 6"), [verifier(LOG)], ORIGIN)


def test_tlog_proof_checkpoint_must_be_trusted_and_from_the_origin(
    tree: merkle.MemoryTree, make_signer: Callable[..., Signer]
) -> None:
    leaf = merkle.hash_leaf(b"entry 5")
    untrusted = make_proof(tree, 5, [make_signer()]).text()
    with pytest.raises(CheckpointError, match="no signature by a trusted key"):
        verify_tlog_proof(untrusted, leaf, [verifier(LOG)], ORIGIN)
    with pytest.raises(CheckpointError, match="expected 'other.example'"):
        verify_tlog_proof(make_proof(tree, 5).text(), leaf, [verifier(LOG)], "other.example")


def test_tlog_proof_with_tampered_checkpoint_is_rejected(tree: merkle.MemoryTree) -> None:
    text = make_proof(tree, 5).text().replace("\n13\n", "\n14\n")
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_tlog_proof(text, merkle.hash_leaf(b"entry 5"), [verifier(LOG)], ORIGIN)


CHECKPOINT_NOTE = "o\n1\n" + b64encode(ROOT) + "\n\n" + SIG


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("c2sp.org/tlog-proof@v1\nindex 0\n", "no blank line before the checkpoint"),
        ("c2sp.org/tlog-proof@v1\nindex 0\n\n", "checkpoint is missing"),
        ("c2sp.org/tlog-proof@v2\nindex 0\n\n" + CHECKPOINT_NOTE, "first line is 'c2sp.org/tlog-proof@v2'"),
        ("c2sp.org/tlog-proof@v1\n\n" + CHECKPOINT_NOTE, "line 2 is not 'index <N>'"),
        ("c2sp.org/tlog-proof@v1\nindex 00\n\n" + CHECKPOINT_NOTE, "index '00' is not a decimal"),
        ("c2sp.org/tlog-proof@v1\nindex  1\n\n" + CHECKPOINT_NOTE, "index ' 1' is not a decimal"),
        ("c2sp.org/tlog-proof@v1\nindex 0\nextra AA==\n\n" + CHECKPOINT_NOTE, "hash 0 is not valid base64"),
        ("c2sp.org/tlog-proof@v1\nextra A\nindex 0\n\n" + CHECKPOINT_NOTE, "extra data is not valid base64"),
        (
            "c2sp.org/tlog-proof@v1\nindex 0\nAAAA\n\n" + CHECKPOINT_NOTE,
            "hash 0 decodes to 3 bytes, expected 32",
        ),
    ],
)
def test_malformed_tlog_proofs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ProofError, match=message):
        parse_tlog_proof(text)


def test_tlog_proof_invariants() -> None:
    with pytest.raises(ValueError, match="index -1"):
        TlogProof(-1, (), CHECKPOINT_NOTE)
    with pytest.raises(ValueError, match="hash 0 is 31 bytes"):
        TlogProof(0, (bytes(31),), CHECKPOINT_NOTE)
    with pytest.raises(ValueError, match="ending in a newline"):
        TlogProof(0, (), "")


# Cosignatures (c2sp.org/tlog-cosignature, Ed25519 cosignature/v1) ----------------------------------------

WITNESS = "township.example/witness"
WITNESS_KEY = SigningKey.generate()
COSIGNER = NoteVerifier.from_public_key(WITNESS, WITNESS_KEY.public_bytes, ALG_COSIGNATURE_V1)


def _cosigned(checkpoint: Checkpoint, timestamp: int = 1_765_000_000) -> tuple[str, NoteVerifier]:
    log_key = SigningKey.generate()
    note = sign_checkpoint(checkpoint, [(checkpoint.origin, log_key)])
    return note + cosign_note(checkpoint.text(), WITNESS, WITNESS_KEY, timestamp), NoteVerifier.from_public_key(
        checkpoint.origin, log_key.public_bytes)


CHECKPOINT = Checkpoint("village.example/demo", 700, bytes(range(32)))


def test_a_cosigned_checkpoint_opens_with_the_log_key_and_the_witness_key_and_tells_the_time() -> None:
    note, log = _cosigned(CHECKPOINT)
    opened = open_note(note, [log, COSIGNER])
    assert opened.verified == ("village.example/demo", WITNESS)
    assert opened.cosigned_at == {WITNESS: 1_765_000_000}
    assert open_note(note, [log]).cosigned_at == {}, "an untrusted cosignature is ignored"


def test_a_cosignature_line_is_key_id_timestamp_and_signature_of_the_cosignature_v1_message() -> None:
    line = cosign_note(CHECKPOINT.text(), WITNESS, WITNESS_KEY, 1_765_000_000)
    name, raw = line.removeprefix("\u2014 ").removesuffix("\n").split(" ")
    raw_bytes = b64decode(raw)
    assert name == WITNESS and len(raw_bytes) == 4 + 8 + 64
    assert raw_bytes[:4] == note_key_hash(WITNESS, WITNESS_KEY.public_bytes, ALG_COSIGNATURE_V1)
    assert raw_bytes[4:12] == (1_765_000_000).to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1765000000\n" + CHECKPOINT.text().encode()
    keys.verify_signature(WITNESS_KEY.public_bytes, raw_bytes[12:], message)


def test_a_cosigner_key_is_a_vkey_of_type_4() -> None:
    text = verifier_key(WITNESS, WITNESS_KEY.public_bytes, ALG_COSIGNATURE_V1)
    assert b64decode(text.split("+", 2)[2])[0] == 0x04
    assert parse_verifier_key(text) == COSIGNER
    assert parse_verifier_key(text).is_cosigner and not parse_verifier_key(
        verifier_key(WITNESS, WITNESS_KEY.public_bytes)).is_cosigner


def test_a_log_signature_is_not_a_cosignature_nor_the_other_way_round() -> None:
    """The type byte is in the key ID: the same key as log and as cosigner has two IDs, so one kind of
    signature can never be taken for the other."""
    as_log = NoteVerifier.from_public_key(WITNESS, WITNESS_KEY.public_bytes)
    note = sign_note(CHECKPOINT.text(), [(WITNESS, WITNESS_KEY)])
    with pytest.raises(CheckpointError, match="no signature by a trusted key"):
        open_note(note, [COSIGNER])
    cosigned_only = CHECKPOINT.text() + "\n" + cosign_note(CHECKPOINT.text(), WITNESS, WITNESS_KEY, 5)
    with pytest.raises(CheckpointError, match="no signature by a trusted key"):
        open_note(cosigned_only, [as_log])


@pytest.mark.parametrize("change", ["time", "signature", "text"])
def test_a_tampered_cosignature_fails_the_whole_note(change: str) -> None:
    note, log = _cosigned(CHECKPOINT)
    text, _, lines = note.rpartition("\n\n")
    log_line, cosignature = lines.rstrip("\n").split("\n")
    name, encoded = cosignature.removeprefix("\u2014 ").split(" ")
    raw = bytearray(b64decode(encoded))
    if change == "time":
        raw[11] ^= 1
    elif change == "signature":
        raw[20] ^= 1
    tampered_text = text.replace("700", "701") if change == "text" else text
    tampered = f"{tampered_text}\n\n{log_line}\n\u2014 {name} {b64encode(bytes(raw))}\n"
    with pytest.raises(CheckpointError):
        open_note(tampered, [log, COSIGNER] if change != "text" else [COSIGNER])


def test_our_cosignatures_verify_with_aics_tlog() -> None:
    """aics-tlog (PyPI), a C2SP implementation we did not write, verifies our cosignature/v1 lines."""
    try:
        from aics_tlog import cosign  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        missing_tool("aics-tlog cross-check", "aics-tlog is not installed (see the README's test command)")
    line = cosign_note(CHECKPOINT.text(), WITNESS, WITNESS_KEY, 1_765_000_000)
    raw = b64decode(line.removesuffix("\n").split(" ")[2])
    assert raw[:4] == cosign.cosignature_key_id(WITNESS, WITNESS_KEY.public_bytes)
    assert cosign.verify_cosignature(raw[4:], WITNESS, WITNESS_KEY.public_bytes, CHECKPOINT.origin, CHECKPOINT.size,
                                     CHECKPOINT.root_hash)
    theirs = Ed25519PrivateKey.generate()
    public = theirs.public_key().public_bytes_raw()
    blob, _ = cosign.sign_cosignature(theirs, "other.example/w", 1_765_000_001, CHECKPOINT.origin, CHECKPOINT.size,
                                      CHECKPOINT.root_hash)
    note, log = _cosigned(CHECKPOINT)
    their_line = f"\u2014 other.example/w {b64encode(cosign.cosignature_key_id('other.example/w', public) + blob)}\n"
    other = NoteVerifier.from_public_key("other.example/w", public, ALG_COSIGNATURE_V1)
    assert open_note(note + their_line, [log, other]).cosigned_at == {"other.example/w": 1_765_000_001}, (
        "and we open theirs")


def test_a_note_only_cosigned_is_refused_a_witness_vouches_for_a_log_never_instead_of_it() -> None:
    cosigned_only = CHECKPOINT.text() + "\n" + cosign_note(CHECKPOINT.text(), WITNESS, WITNESS_KEY, 5)
    with pytest.raises(CheckpointError, match="no signature by a trusted log key: the note is only cosigned"):
        open_note(cosigned_only, [COSIGNER])
