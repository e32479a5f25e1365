"""Specification of ``ledger.witness``: the C2SP tlog-witness ``add-checkpoint`` request and what a witness
answers, check by check, in the spec's order (c2sp.org/tlog-witness)."""

from __future__ import annotations

import pytest

from keys import NoteVerifier, SigningKey
from ledger import merkle
from ledger.canonical import b64encode
from ledger.note import Checkpoint, sign_checkpoint
from ledger.witness import AddCheckpoint, Witnessed, WitnessRefusal, judge, parse_add_checkpoint

ORIGIN = "village.example/demo"
LOG_KEY = SigningKey.generate()
LOG = NoteVerifier.from_public_key(ORIGIN, LOG_KEY.public_bytes)
TREE = merkle.MemoryTree()
for i in range(20):
    TREE.append(merkle.hash_leaf(b"entry %d" % i))


def signed(size: int, *, key: SigningKey = LOG_KEY, root: bytes | None = None) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, TREE.root(size) if root is None else root), [(ORIGIN, key)])


def body(old: int, size: int, *, proof: list[bytes] | None = None, note: str | None = None) -> bytes:
    hashes = TREE.consistency_proof(old, size) if proof is None and 0 < old <= size else proof or []
    return AddCheckpoint(old, tuple(hashes), note or signed(size)).encode()


def seen(size: int) -> Witnessed:
    return Witnessed(ORIGIN, (LOG,), size, TREE.root(size) if size else None)


def refusal(request: bytes, log: Witnessed | None) -> WitnessRefusal:
    with pytest.raises(WitnessRefusal) as caught:
        judge(parse_add_checkpoint(request), log)
    return caught.value


def test_a_first_checkpoint_is_cosigned_without_proof() -> None:
    assert judge(parse_add_checkpoint(body(0, 7)), seen(0)) == Checkpoint(ORIGIN, 7, TREE.root(7))


def test_a_checkpoint_consistent_with_the_one_cosigned_is_cosigned() -> None:
    assert judge(parse_add_checkpoint(body(7, 20)), seen(7)).size == 20
    assert judge(parse_add_checkpoint(body(20, 20)), seen(20)).size == 20, "the same checkpoint again"


def test_the_request_reads_as_the_spec_writes_it() -> None:
    request = parse_add_checkpoint(body(7, 20))
    assert (request.old_size, request.proof) == (7, tuple(TREE.consistency_proof(7, 20)))
    assert request.origin == ORIGIN and request.note.startswith(f"{ORIGIN}\n20\n")
    assert request.encode() == body(7, 20), "the request reads back as it was written"
    first = AddCheckpoint(0, (), signed(7)).encode()
    assert first == f"old 0\n\n{signed(7)}".encode(), "the spec's form: old size line, proof lines, empty line"


@pytest.mark.parametrize(("request_body", "problem"), [
    (b"old 07\n\n" + signed(7).encode(), "is not 'old <size>'"),
    (b"old -1\n\n" + signed(7).encode(), "is not 'old <size>'"),
    (b"old 1\nnot base64\n\n" + signed(7).encode(), "proof line 1 is not valid base64"),
    (("old 1\n" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + "\n").encode() + signed(7).encode(),
     "64 consistency proof lines, at most 63"),
    (b"old 0\n", "no empty line before the checkpoint"),
    (b"old 0\n" + signed(7).encode(), "proof line 1 is not valid base64"),  # the checkpoint read as proof
    (b"\xff\n\n", "not UTF-8"),
])
def test_a_malformed_request_is_400(request_body: bytes, problem: str) -> None:
    with pytest.raises(WitnessRefusal, match=problem) as caught:
        parse_add_checkpoint(request_body)
    assert caught.value.status == 400


def test_an_unknown_origin_is_404() -> None:
    assert refusal(body(0, 7), None).status == 404


def test_a_checkpoint_not_signed_by_the_log_key_is_403() -> None:
    assert refusal(body(0, 7, note=signed(7, key=SigningKey.generate())), seen(0)).status == 403
    forged = signed(7).replace(b64encode(TREE.root(7)), b64encode(TREE.root(8)))
    assert refusal(body(0, 7, note=forged), seen(0)).status == 403, "a signature by the log key that fails"


def test_an_old_size_above_the_checkpoint_size_is_400() -> None:
    assert refusal(body(9, 7, proof=[]), seen(9)).status == 400


def test_an_old_size_other_than_the_one_cosigned_is_409_with_that_size() -> None:
    refused = refusal(body(5, 20), seen(7))
    assert (refused.status, refused.cosigned_size) == (409, 7)
    assert refusal(body(0, 20), seen(7)).cosigned_size == 7, "a client that knows nothing learns the size"


def test_a_fork_is_422() -> None:
    """The operator shows the witness a tree that does not extend the one it cosigned: never cosigned."""
    other = merkle.MemoryTree()
    for i in range(20):
        other.append(merkle.hash_leaf(b"rewritten %d" % i if i == 3 else b"entry %d" % i))
    fork = signed(20, root=other.root(20))
    assert refusal(body(7, 20, proof=other.consistency_proof(7, 20), note=fork), seen(7)).status == 422
    assert refusal(body(7, 20, note=fork), seen(7)).status == 422, "the honest proof does not fit the fork"
    assert refusal(body(7, 7, note=signed(7, root=other.root(7))), seen(7)).status == 422, "same size, other root"


def test_a_proof_from_size_0_and_a_non_empty_root_at_size_0_are_422() -> None:
    assert refusal(body(0, 7, proof=[TREE.root(1)]), seen(0)).status == 422
    assert refusal(body(0, 0, note=signed(0, root=TREE.root(1))), seen(0)).status == 422
    assert judge(parse_add_checkpoint(body(0, 0, note=signed(0, root=merkle.EMPTY_ROOT))), seen(0)).size == 0
