"""Specification of ``ledger.merkle``: RFC 9162 Merkle tree hashing, compact ranges, proof plans and proofs.

Three sources of truth, each checked against the others:

- the published vectors of transparency-dev/merkle, read in place from ``shared/vectors/merkle/``;
- the RFC's own recursive definitions (``MTH``, ``PATH``, ``PROOF``), written out below as reference code;
- properties over random trees of up to ``MAX_SIZE`` leaves.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors import (
    CONSISTENCY_VECTORS,
    INCLUSION_VECTORS,
    b64,
    check_consistency_case,
    check_inclusion_case,
)

from ledger.errors import ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    NODE_PREFIX,
    CompactRange,
    MemoryTree,
    NodeID,
    ProofPlan,
    consistency_plan,
    hash_children,
    hash_leaf,
    inclusion_plan,
    range_nodes,
    root_from_inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# The leaf data of the RFC 6962 reference tree (transparency-dev/merkle testonly), which the vectors use.
RFC6962_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

MAX_SIZE = 300
LEAVES = [hash_leaf(b"leaf %d" % i) for i in range(MAX_SIZE)]

PROPERTIES = settings(max_examples=30, deadline=None)

ROOT_MISMATCH = r"root[12]? mismatch: calculated [0-9a-f]{64}, expected [0-9a-f]{64}$"


def proof_length(kind: str) -> str:
    return rf"^{kind} proof has \d+ hash(es)?, expected \d+$"


def flip_bit(value: bytes, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def ceil_log2(n: int) -> int:
    return (n - 1).bit_length()


# --- The RFC's definitions, written out as reference code --------------------------------------------------


def largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def rfc_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 ``PATH(m, D[n])``, over leaf hashes."""
    n = len(leaves)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*rfc_path(m, leaves[:k]), root_of(leaves[k:])]
    return [*rfc_path(m - k, leaves[k:]), root_of(leaves[:k])]


def rfc_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1 ``SUBPROOF(m, D[n], b)``, over leaf hashes."""
    n = len(leaves)
    if m == n:
        return [] if whole else [root_of(leaves)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*rfc_subproof(m, leaves[:k], whole), root_of(leaves[k:])]
    return [*rfc_subproof(m - k, leaves[k:], False), root_of(leaves[:k])]


def rfc_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 2.1.4.1 ``PROOF(m, D[n])``; defined for 0 < m < n, and empty where we accept m in (0, n)."""
    if m in (0, len(leaves)):
        return []
    return rfc_subproof(m, leaves, True)


@functools.cache
def root_at(size: int) -> bytes:
    return root_of(LEAVES[:size])


@functools.cache
def full_tree() -> MemoryTree:
    tree = MemoryTree()
    for leaf_hash in LEAVES:
        tree.append(leaf_hash)
    return tree


def tree_of(leaf_hashes: Sequence[bytes]) -> MemoryTree:
    tree = MemoryTree()
    for leaf_hash in leaf_hashes:
        tree.append(leaf_hash)
    return tree


# --- Vectors -----------------------------------------------------------------------------------------------


def happy_paths(vectors: list[Any]) -> list[Any]:
    return [case for case in vectors if case.id.endswith("/happy-path")]


def index_or_size(kind: str) -> str:
    return rf"^{kind} proof (requires 0 <= |has \d+ hash)|^{ROOT_MISMATCH}"


# Why each systematic mutation fails: the first failed check names it.
MUTATION_MESSAGES = {
    "inclusion": [
        (r"wrong-leaf", r"^leaf hash has 9 bytes, expected 32$"),
        (r"(empty|random)-root|modified-proof", "^" + ROOT_MISMATCH),
        (r"(trailing|preceding)-|(removed|inserted)-component", proof_length("inclusion")),
        (r"(leafIdx|treeSize)-", index_or_size("inclusion")),
    ],
    "consistency": [
        (r"wrong-root1", r"^root1 has 9 bytes, expected 32$"),
        (r"wrong-root2", r"^root2 has 9 bytes, expected 32$"),
        (r"swapped-roots|modified-proof", "^" + ROOT_MISMATCH),
        (r"empty-proof|truncated-proof|(trailing|preceding)-", proof_length("consistency")),
        (r"size[12]-", index_or_size("consistency")),
    ],
}

# The edge cases the vectors settle by convention, and how we report each.
CONVENTION_MESSAGES = {
    "inclusion/single-entry/empty-leaf": r"^leaf hash has 0 bytes, expected 32$",
    "inclusion/single-entry/empty-root": r"^root has 0 bytes, expected 32$",
    "inclusion/single-entry/empty-root-and-leaf": r"^root has 0 bytes, expected 32$",
    "inclusion/additional/0/empty-root": r"requires 0 <= index < size, got index 0, size 0$",
    "inclusion/additional/0/empty-root-and-random-leaf": r"requires 0 <= index < size, got index 0, size 0$",
    "inclusion/additional/0/random-leaf": r"requires 0 <= index < size, got index 0, size 0$",
    "inclusion/additional/1/empty-root": r"^leaf hash has 0 bytes, expected 32$",
    "inclusion/additional/1/empty-root-and-random-leaf": "^" + ROOT_MISMATCH,
    "inclusion/additional/1/random-leaf": r"^root has 0 bytes, expected 32$",
    "inclusion/additional/2/empty-root": r"requires 0 <= index < size, got index 1, size 0$",
    "inclusion/additional/2/empty-root-and-random-leaf": r"requires 0 <= index < size, got index 1, size 0$",
    "inclusion/additional/2/random-leaf": r"requires 0 <= index < size, got index 1, size 0$",
    "inclusion/additional/3/empty-root": r"requires 0 <= index < size, got index 2, size 1$",
    "inclusion/additional/3/empty-root-and-random-leaf": r"requires 0 <= index < size, got index 2, size 1$",
    "inclusion/additional/3/random-leaf": r"requires 0 <= index < size, got index 2, size 1$",
}
CONVENTION_MESSAGES |= {
    f"consistency/additional/{name}": message
    for name, message in {
        # size1 > size2 is impossible.
        "size1-is-greater-than-size2": r"requires 0 <= size1 <= size2, got size1 1, size2 0$",
        "size1-is-greater-than-size2-again": r"got size1 2, size2 1$",
        # Equal sizes, or size1 == 0: the proof must be empty.
        "sizes-match-but-proof-is-not-empty-and-sizes-are-one": r"has 1 hash, expected 0$",
        "sizes-match-but-proof-is-not-empty-and-sizes-are-zero": r"has 1 hash, expected 0$",
        "consistency-check-on-empty-tree-size1-is-zero-is-useless": r"has 1 hash, expected 0$",
        # size1 < size2, both > 0: the proof must not be empty.
        "sizes-do-not-watch-and-proof-is-empty": r"has 0 hashes, expected 1$",
        # Equal sizes > 0: root2 must be root1.
        "sizes-are-equal-one-but-roots-are-not": r"^root2 mismatch",
        "roots-do-not-not-match-and-sizes-are-one": r"^root2 mismatch",
        # size1 == 0: root1 must be the root of the empty tree (and root2 too when size2 == 0).
        "sizes-are-equal-zero-and-proof-is-empty": r"^root1 mismatch: calculated e3b0c442",
        "sizes-are-equal-zero-but-roots-are-not": r"^root1 mismatch: calculated e3b0c442",
        "size1-is-zero-and-does-not-equal-size2": r"^root1 mismatch: calculated e3b0c442",
        "roots-do-not-match-and-sizes-are-zero": r"^root2 mismatch: calculated e3b0c442",
        # size1 == 0 < size2: root2 cannot be computed, but must at least be a hash.
        "size1-is-zero-and-size2-is-not-zero": r"^root2 has 12 bytes, expected 32$",
    }.items()
}


def expected_vector_message(case_id: str) -> str:
    if case_id in CONVENTION_MESSAGES:
        return CONVENTION_MESSAGES[case_id]
    kind, _, name = case_id.split("/", 2)
    for mutation, message in MUTATION_MESSAGES[kind]:
        if re.match(mutation, name):
            return message
    raise AssertionError(f"no expected message for vector {case_id}")


def test_vectors_are_all_found_in_place() -> None:
    assert len(INCLUSION_VECTORS) == 98
    assert len(CONSISTENCY_VECTORS) == 98
    assert all(case.id.startswith("inclusion/") for case in INCLUSION_VECTORS)


@pytest.mark.parametrize("case", INCLUSION_VECTORS)
def test_inclusion_vector(case: dict[str, Any], request: pytest.FixtureRequest) -> None:
    if case["wantErr"]:
        with pytest.raises(ProofError, match=expected_vector_message(request.node.callspec.id)):
            check_inclusion_case(case)
    else:
        check_inclusion_case(case)


@pytest.mark.parametrize("case", CONSISTENCY_VECTORS)
def test_consistency_vector(case: dict[str, Any], request: pytest.FixtureRequest) -> None:
    if case["wantErr"]:
        with pytest.raises(ProofError, match=expected_vector_message(request.node.callspec.id)):
            check_consistency_case(case)
    else:
        check_consistency_case(case)


# --- The RFC 6962 reference tree ---------------------------------------------------------------------------


def roots_named_by_vectors() -> dict[int, bytes]:
    """Roots at each size that some happy-path vector states, without hard-coding any."""
    roots: dict[int, bytes] = {}
    for param in happy_paths(INCLUSION_VECTORS):
        case = param.values[0]
        roots[case["treeSize"]] = b64(case["root"])
    for param in happy_paths(CONSISTENCY_VECTORS):
        case = param.values[0]
        roots[case["size1"]] = b64(case["root1"])
        roots[case["size2"]] = b64(case["root2"])
    # No vector states the root at size 4, but by PATH's definition the last hash of the inclusion proof
    # of leaf 5 in the tree of 8 is MTH(D[0:4]).
    (leaf_5_of_8,) = [p.values[0] for p in INCLUSION_VECTORS if p.id == "inclusion/2/happy-path"]
    assert (leaf_5_of_8["leafIdx"], leaf_5_of_8["treeSize"]) == (5, 8)
    roots[4] = b64(leaf_5_of_8["proof"][-1])
    return roots


def test_reference_tree_roots_at_sizes_1_to_8_are_those_of_the_vectors() -> None:
    roots = roots_named_by_vectors()
    assert sorted(roots) == list(range(1, 9))
    leaf_hashes = [hash_leaf(data) for data in RFC6962_LEAVES]
    compact = CompactRange()
    for size in range(1, 9):
        compact.append(leaf_hashes[size - 1])
        assert root_of(leaf_hashes[:size]) == roots[size], f"size {size}"
        assert compact.root() == roots[size], f"size {size}"


@pytest.mark.parametrize("case", happy_paths(INCLUSION_VECTORS))
def test_inclusion_happy_path_is_the_proof_memory_tree_serves(case: dict[str, Any]) -> None:
    index, size = case["leafIdx"], case["treeSize"]
    tree = tree_of([hash_leaf(data) for data in RFC6962_LEAVES[:size]])
    assert hash_leaf(RFC6962_LEAVES[index]) == b64(case["leafHash"])
    assert tree.root() == b64(case["root"])
    assert tree.inclusion_proof(index, size) == [b64(h) for h in case["proof"] or []]


@pytest.mark.parametrize("case", happy_paths(CONSISTENCY_VECTORS))
def test_consistency_happy_path_is_the_proof_memory_tree_serves(case: dict[str, Any]) -> None:
    size1, size2 = case["size1"], case["size2"]
    tree = tree_of([hash_leaf(data) for data in RFC6962_LEAVES[:size2]])
    assert (tree.root(size1), tree.root(size2)) == (b64(case["root1"]), b64(case["root2"]))
    assert tree.consistency_proof(size1, size2) == [b64(h) for h in case["proof"] or []]


# --- Hashing -----------------------------------------------------------------------------------------------


def test_empty_root_is_the_sha256_of_the_empty_string() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_of([]) == CompactRange().root() == MemoryTree().root() == EMPTY_ROOT


def test_hash_leaf_is_sha256_of_0x00_then_the_data() -> None:
    assert LEAF_PREFIX == b"\x00"
    assert hash_leaf(b"data") == hashlib.sha256(b"\x00data").digest()
    assert len(hash_leaf(b"")) == HASH_SIZE == 32


def test_hash_children_is_sha256_of_0x01_then_left_then_right() -> None:
    left, right = bytes(range(32)), bytes(range(32, 64))
    assert NODE_PREFIX == b"\x01"
    assert hash_children(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


@pytest.mark.parametrize(
    ("left", "right", "message"),
    [
        (b"\x00" * 31, b"\x00" * 32, r"^left child has 31 bytes, expected 32$"),
        (b"\x00" * 32, b"\x00" * 33, r"^right child has 33 bytes, expected 32$"),
    ],
)
def test_hash_children_refuses_children_that_are_not_hashes(left: bytes, right: bytes, message: str) -> None:
    with pytest.raises(ProofError, match=message):
        hash_children(left, right)


def test_root_of_refuses_leaf_hashes_that_are_not_hashes() -> None:
    with pytest.raises(ProofError, match=r"^leaf hash 1 has 4 bytes, expected 32$"):
        root_of([LEAVES[0], b"leaf"])


# --- Perfect nodes and ranges ------------------------------------------------------------------------------


def test_a_node_covers_its_leaves_and_knows_its_parent_and_sibling() -> None:
    node = NodeID(level=2, index=3)
    assert node.coverage() == (12, 16)
    assert node.parent() == NodeID(3, 1)
    assert node.sibling() == NodeID(2, 2)
    assert NodeID(2, 2).sibling() == node
    assert sorted([NodeID(1, 5), NodeID(0, 9), NodeID(1, 0)]) == [NodeID(0, 9), NodeID(1, 0), NodeID(1, 5)]


def test_a_node_has_no_negative_level_or_index() -> None:
    with pytest.raises(ProofError, match=r"requires level >= 0 and index >= 0, got level 0, index -1$"):
        NodeID(0, -1)


@pytest.mark.parametrize(
    ("begin", "end", "nodes"),
    [
        (0, 0, []),
        (5, 5, []),
        (0, 1, [(0, 0)]),
        (0, 7, [(2, 0), (1, 2), (0, 6)]),
        (0, 8, [(3, 0)]),
        (3, 11, [(0, 3), (2, 1), (1, 4), (0, 10)]),
        (1, 15, [(0, 1), (1, 1), (2, 1), (2, 2), (1, 6), (0, 14)]),
    ],
)
def test_range_nodes_are_the_largest_perfect_subtrees_left_to_right(
    begin: int, end: int, nodes: list[tuple[int, int]]
) -> None:
    assert range_nodes(begin, end) == [NodeID(level, index) for level, index in nodes]


@PROPERTIES
@given(st.integers(0, 2**40), st.integers(0, 2**40))
def test_range_nodes_tile_the_range_exactly_with_at_most_two_nodes_per_level(a: int, b: int) -> None:
    begin, end = min(a, b), max(a, b)
    nodes = range_nodes(begin, end)
    position = begin
    for node in nodes:
        first, last = node.coverage()
        assert first == position
        position = last
    assert position == end
    levels = [node.level for node in nodes]
    assert all(levels.count(level) <= 2 for level in levels)
    # Maximal: no two neighbours could be merged into their parent.
    assert all(x.level != y.level or x.sibling() != y for x, y in pairwise(nodes))


def test_range_nodes_refuses_an_inverted_range() -> None:
    with pytest.raises(ProofError, match=r"^range_nodes requires 0 <= begin <= end, got begin 5, end 4$"):
        range_nodes(5, 4)


# --- Compact ranges ----------------------------------------------------------------------------------------


def test_a_compact_range_holds_one_hash_per_set_bit_of_its_size() -> None:
    compact = CompactRange()
    for size, leaf_hash in enumerate(LEAVES[:40], start=1):
        compact.append(leaf_hash)
        assert compact.size == size
        assert len(compact.hashes) == size.bit_count()
        assert compact.hashes == [
            root_of(LEAVES[a:b]) for a, b in (n.coverage() for n in range_nodes(0, size))
        ]


def test_append_returns_the_leaf_then_every_ancestor_it_completes_bottom_up() -> None:
    compact = CompactRange()
    assert compact.append(LEAVES[0]) == [(NodeID(0, 0), LEAVES[0])]
    compact.append(LEAVES[1])
    compact.append(LEAVES[2])
    completed = compact.append(LEAVES[3])
    assert [node for node, _ in completed] == [NodeID(0, 3), NodeID(1, 1), NodeID(2, 0)]
    assert [value for _, value in completed] == [LEAVES[3], root_of(LEAVES[2:4]), root_of(LEAVES[0:4])]
    assert compact.append(LEAVES[4]) == [(NodeID(0, 4), LEAVES[4])]


def test_compact_range_root_is_the_mth_of_every_prefix() -> None:
    compact = CompactRange()
    for size in range(1, MAX_SIZE + 1):
        compact.append(LEAVES[size - 1])
        assert compact.root() == root_at(size), f"size {size}"


def test_add_keeps_the_same_range_as_append_without_listing_nodes() -> None:
    appended, added = CompactRange(), CompactRange()
    for size in range(1, MAX_SIZE + 1):
        appended.append(LEAVES[size - 1])
        added.add(LEAVES[size - 1])
        assert (added.size, added.hashes) == (appended.size, appended.hashes), f"size {size}"
        assert added.root() == root_at(size)


def test_a_compact_range_resumes_from_its_stored_hashes() -> None:
    stored = CompactRange()
    for leaf_hash in LEAVES[:13]:
        stored.append(leaf_hash)
    resumed = CompactRange(13, stored.hashes)
    for leaf_hash in LEAVES[13:21]:
        resumed.append(leaf_hash)
    assert resumed.root() == root_at(21)


def test_a_compact_range_refuses_hashes_that_do_not_fit_its_size() -> None:
    with pytest.raises(ProofError, match=r"^compact range of size 3 has 1 hash, expected 2$"):
        CompactRange(3, [LEAVES[0]])
    with pytest.raises(ProofError, match=r"^compact range hash 0 has 3 bytes, expected 32$"):
        CompactRange(1, [b"abc"])
    with pytest.raises(ProofError, match=r"^compact range requires size >= 0, got -1$"):
        CompactRange(-1)


def test_a_compact_range_refuses_a_leaf_hash_that_is_not_a_hash() -> None:
    with pytest.raises(ProofError, match=r"^leaf hash has 4 bytes, expected 32$"):
        CompactRange().append(b"leaf")
    with pytest.raises(ProofError, match=r"^leaf hash has 4 bytes, expected 32$"):
        CompactRange().add(b"leaf")


# --- Proof plans -------------------------------------------------------------------------------------------


def test_an_inclusion_plan_folds_the_ephemeral_node_from_the_perfect_nodes_under_it() -> None:
    # Leaf 0 of 7: siblings (0,1) and (1,1), then the right half [4, 7), which is not perfect at size 7:
    # it is folded from (0,6) and (1,2), lowest level first.
    plan = inclusion_plan(0, 7)
    assert plan == ProofPlan([NodeID(0, 1), NodeID(1, 1), NodeID(0, 6), NodeID(1, 2)], begin=2, end=4)
    tree = full_tree()
    proof = plan.rehash(tree.get_nodes(plan.ids))
    assert proof == [LEAVES[1], root_of(LEAVES[2:4]), hash_children(root_of(LEAVES[4:6]), LEAVES[6])]
    assert proof == rfc_path(0, LEAVES[:7])


def test_a_plan_without_an_ephemeral_node_has_begin_and_end_zero() -> None:
    plan = inclusion_plan(5, 8)
    assert plan == ProofPlan([NodeID(0, 4), NodeID(1, 3), NodeID(2, 0)], begin=0, end=0)


def test_a_consistency_plan_leads_with_the_old_subtree_unless_size1_is_a_power_of_two() -> None:
    assert consistency_plan(6, 8).ids[0] == NodeID(1, 2)  # leaves [4, 6), the verifier's seed
    assert consistency_plan(4, 8).ids == [NodeID(2, 1)]  # the old root (2, 0) is root1 itself


def test_a_consistency_plan_is_empty_from_size_zero_and_to_the_same_size() -> None:
    assert (
        consistency_plan(0, 17) == consistency_plan(17, 17) == consistency_plan(0, 0) == ProofPlan([], 0, 0)
    )


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (lambda: inclusion_plan(3, 3), r"^inclusion proof requires 0 <= index < size, got index 3, size 3$"),
        (
            lambda: inclusion_plan(-1, 3),
            r"^inclusion proof requires 0 <= index < size, got index -1, size 3$",
        ),
        (
            lambda: consistency_plan(5, 4),
            r"^consistency proof requires 0 <= size1 <= size2, got size1 5, size2 4$",
        ),
        (lambda: ProofPlan([NodeID(0, 1)], 1, 1), r"has begin == end == 1, expected 0$"),
        (lambda: ProofPlan([NodeID(0, 1)], 0, 2), r"requires 0 <= begin <= end <= 1, got begin 0, end 2$"),
    ],
)
def test_impossible_plans_are_refused(plan: Any, message: str) -> None:
    with pytest.raises(ProofError, match=message):
        plan()


def test_rehash_refuses_the_wrong_number_of_node_hashes() -> None:
    plan = inclusion_plan(0, 7)
    with pytest.raises(ProofError, match=r"^proof plan needs 4 node hashes, got 3$"):
        plan.rehash(LEAVES[:3])
    with pytest.raises(ProofError, match=r"^hash of node \(level 0, index 1\) has 0 bytes, expected 32$"):
        plan.rehash([b"", *LEAVES[:3]])
    with pytest.raises(ProofError, match=r"^hash of node \(level 0, index 6\) has 33 bytes, expected 32$"):
        plan.rehash([*LEAVES[:2], LEAVES[2] + b"x", LEAVES[3]])


@PROPERTIES
@given(st.integers(1, 2**40).flatmap(lambda size: st.tuples(st.integers(0, size - 1), st.just(size))))
def test_plans_name_at_most_2_log2_size_plus_2_complete_nodes(index_and_size: tuple[int, int]) -> None:
    index, size = index_and_size
    for plan in (
        inclusion_plan(index, size),
        consistency_plan(index, size),
        consistency_plan(index + 1, size),
    ):
        assert len(plan.ids) <= 2 * ceil_log2(size) + 2
        assert len(set(plan.ids)) == len(plan.ids)
        assert all(node.coverage()[1] <= size for node in plan.ids)


class RecordingTree(MemoryTree):
    """A MemoryTree that records which perfect nodes were read, as a database would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[NodeID] = []

    def get_nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        self.reads.extend(ids)
        return super().get_nodes(ids)


def test_proofs_and_roots_read_only_the_nodes_of_their_plan() -> None:
    tree = RecordingTree()
    for leaf_hash in LEAVES:
        tree.append(leaf_hash)
    for index, size in [(0, 300), (137, 300), (255, 256), (6, 7)]:
        tree.reads.clear()
        tree.inclusion_proof(index, size)
        assert tree.reads == inclusion_plan(index, size).ids
    for size1, size2 in [(1, 300), (6, 8), (100, 299), (256, 300)]:
        tree.reads.clear()
        tree.consistency_proof(size1, size2)
        assert tree.reads == consistency_plan(size1, size2).ids
    tree.reads.clear()
    tree.root(299)
    assert tree.reads == range_nodes(0, 299)


# --- MemoryTree --------------------------------------------------------------------------------------------


def test_memory_tree_root_at_every_size_is_the_mth() -> None:
    tree = full_tree()
    assert tree.size == MAX_SIZE
    assert tree.root() == root_at(MAX_SIZE)
    for size in range(MAX_SIZE + 1):
        assert tree.root(size) == root_at(size), f"size {size}"


def test_memory_tree_proofs_are_the_rfcs_path_and_proof_for_every_small_tree() -> None:
    tree = full_tree()
    for size2 in range(1, 34):
        for m in range(size2):
            assert tree.inclusion_proof(m, size2) == rfc_path(m, LEAVES[:size2]), f"PATH({m}, D[{size2}])"
        for m in range(size2 + 1):
            assert tree.consistency_proof(m, size2) == rfc_proof(m, LEAVES[:size2]), f"PROOF({m}, D[{size2}])"


@pytest.mark.parametrize(
    ("request_proof", "message"),
    [
        (lambda t: t.root(9), r"^requires 0 <= size <= 8 \(the tree's size\), got 9$"),
        (lambda t: t.inclusion_proof(0, 9), r"^requires 0 <= size <= 8 \(the tree's size\), got 9$"),
        (
            lambda t: t.inclusion_proof(8, 8),
            r"^inclusion proof requires 0 <= index < size, got index 8, size 8$",
        ),
        (lambda t: t.consistency_proof(3, 9), r"^requires 0 <= size <= 8 \(the tree's size\), got 9$"),
        (
            lambda t: t.consistency_proof(5, 3),
            r"^consistency proof requires 0 <= size1 <= size2, got size1 5",
        ),
        (
            lambda t: t.get_nodes([NodeID(3, 1)]),
            r"^perfect node \(level 3, index 1\) is not in a tree of size 8$",
        ),
    ],
)
def test_memory_tree_refuses_what_it_does_not_have(request_proof: Any, message: str) -> None:
    tree = tree_of(LEAVES[:8])
    with pytest.raises(ProofError, match=message):
        request_proof(tree)


# --- Verification: every honest proof verifies -------------------------------------------------------------


@PROPERTIES
@given(st.integers(1, MAX_SIZE))
def test_every_inclusion_proof_verifies_against_the_mth(size: int) -> None:
    tree, root = full_tree(), root_at(size)
    for index in range(size):
        proof = tree.inclusion_proof(index, size)
        assert root_from_inclusion_proof(index, size, LEAVES[index], proof) == root
        verify_inclusion(index, size, LEAVES[index], proof, root)


@PROPERTIES
@given(st.integers(1, MAX_SIZE))
def test_every_consistency_proof_to_a_size_verifies_against_the_mth(size2: int) -> None:
    tree = full_tree()
    for size1 in range(size2 + 1):
        verify_consistency(size1, size2, tree.consistency_proof(size1, size2), root_at(size1), root_at(size2))


@PROPERTIES
@given(st.integers(34, MAX_SIZE).flatmap(lambda size: st.tuples(st.integers(0, size), st.just(size))))
def test_memory_tree_proofs_are_the_rfcs_path_and_proof_in_larger_trees(m_and_size: tuple[int, int]) -> None:
    m, size = m_and_size
    tree = full_tree()
    assert tree.inclusion_proof(min(m, size - 1), size) == rfc_path(min(m, size - 1), LEAVES[:size])
    assert tree.consistency_proof(m, size) == rfc_proof(m, LEAVES[:size])


def test_consistency_from_the_empty_tree_needs_an_empty_proof_and_the_empty_root() -> None:
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 5, [], EMPTY_ROOT, root_at(5))
    with pytest.raises(ProofError, match=r"^root1 mismatch: calculated e3b0c442[0-9a-f]+, expected 00"):
        verify_consistency(0, 5, [], b"\x00" * 32, root_at(5))
    with pytest.raises(ProofError, match=r"^consistency proof has 1 hash, expected 0$"):
        verify_consistency(0, 5, [root_at(5)], EMPTY_ROOT, root_at(5))


def test_consistency_between_equal_sizes_needs_an_empty_proof_and_equal_roots() -> None:
    verify_consistency(5, 5, [], root_at(5), root_at(5))
    with pytest.raises(ProofError, match=r"^root2 mismatch: calculated " + root_at(5).hex()):
        verify_consistency(5, 5, [], root_at(5), root_at(4))
    with pytest.raises(ProofError, match=r"^consistency proof has 1 hash, expected 0$"):
        verify_consistency(5, 5, [root_at(5)], root_at(5), root_at(5))


def test_consistency_between_equal_sizes_compares_the_roots_as_given() -> None:
    # The vector consistency/additional/sizes-are-equal-one-and-proof-is-empty accepts two equal 12-byte
    # "roots": between equal sizes nothing is hashed, so the only check is root2 == root1.
    verify_consistency(1, 1, [], b"don't care 2", b"don't care 2")


# --- Verification: every mutation of a proof fails, and says why ------------------------------------------

leaf_in_tree = st.integers(1, MAX_SIZE).flatmap(
    lambda size: st.tuples(st.integers(0, size - 1), st.just(size))
)
growing_sizes = st.integers(2, MAX_SIZE).flatmap(
    lambda size: st.tuples(st.integers(1, size - 1), st.just(size))
)
any_sizes = st.integers(0, MAX_SIZE).flatmap(lambda size: st.tuples(st.integers(0, size), st.just(size)))


@PROPERTIES
@given(leaf_in_tree, st.data())
def test_an_inclusion_proof_with_a_flipped_bit_fails(
    index_and_size: tuple[int, int], data: st.DataObject
) -> None:
    index, size = index_and_size
    proof, leaf = full_tree().inclusion_proof(index, size), LEAVES[index]
    at = data.draw(st.integers(0, len(proof)), label="proof hash to flip, or len(proof) for the leaf")
    bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1), label="bit")
    if at < len(proof):
        proof[at] = flip_bit(proof[at], bit)
    else:
        leaf = flip_bit(leaf, bit)
    with pytest.raises(ProofError, match="^" + ROOT_MISMATCH):
        verify_inclusion(index, size, leaf, proof, root_at(size))


@PROPERTIES
@given(leaf_in_tree, st.data())
def test_an_inclusion_proof_with_a_hash_dropped_or_appended_fails(
    index_and_size: tuple[int, int], data: st.DataObject
) -> None:
    index, size = index_and_size
    proof = full_tree().inclusion_proof(index, size)
    n = len(proof)
    longer = [*proof, data.draw(st.sampled_from([root_at(size), LEAVES[index], b"\x00" * HASH_SIZE]))]
    with pytest.raises(ProofError, match=rf"^inclusion proof has {n + 1} hash(es)?, expected {n}$"):
        verify_inclusion(index, size, LEAVES[index], longer, root_at(size))
    if n:
        shorter = list(proof)
        del shorter[data.draw(st.integers(0, n - 1))]
        with pytest.raises(ProofError, match=rf"^inclusion proof has {n - 1} hash(es)?, expected {n}$"):
            verify_inclusion(index, size, LEAVES[index], shorter, root_at(size))


@PROPERTIES
@given(leaf_in_tree)
def test_an_inclusion_proof_does_not_prove_the_next_index(index_and_size: tuple[int, int]) -> None:
    index, size = index_and_size
    proof = full_tree().inclusion_proof(index, size)
    with pytest.raises(ProofError, match=index_or_size("inclusion")):
        verify_inclusion(index + 1, size, LEAVES[index], proof, root_at(size))


@PROPERTIES
@given(growing_sizes, st.data())
def test_a_consistency_proof_with_a_flipped_bit_fails(sizes: tuple[int, int], data: st.DataObject) -> None:
    size1, size2 = sizes
    proof = full_tree().consistency_proof(size1, size2)
    at = data.draw(st.integers(0, len(proof) - 1))
    proof[at] = flip_bit(proof[at], data.draw(st.integers(0, 8 * HASH_SIZE - 1)))
    with pytest.raises(ProofError, match="^" + ROOT_MISMATCH):
        verify_consistency(size1, size2, proof, root_at(size1), root_at(size2))


@PROPERTIES
@given(any_sizes, st.data())
def test_a_consistency_proof_with_a_hash_dropped_or_appended_fails(
    sizes: tuple[int, int], data: st.DataObject
) -> None:
    size1, size2 = sizes
    proof = full_tree().consistency_proof(size1, size2)
    n = len(proof)
    longer = [*proof, data.draw(st.sampled_from([root_at(size1), root_at(size2), b"\x00" * HASH_SIZE]))]
    with pytest.raises(ProofError, match=rf"^consistency proof has {n + 1} hash(es)?, expected {n}$"):
        verify_consistency(size1, size2, longer, root_at(size1), root_at(size2))
    if n:
        shorter = list(proof)
        del shorter[data.draw(st.integers(0, n - 1))]
        with pytest.raises(ProofError, match=rf"^consistency proof has {n - 1} hash(es)?, expected {n}$"):
            verify_consistency(size1, size2, shorter, root_at(size1), root_at(size2))


@PROPERTIES
@given(any_sizes)
def test_a_consistency_proof_does_not_prove_size1_plus_one(sizes: tuple[int, int]) -> None:
    size1, size2 = sizes
    proof = full_tree().consistency_proof(size1, size2)
    with pytest.raises(ProofError, match=index_or_size("consistency")):
        verify_consistency(size1 + 1, size2, proof, root_at(size1), root_at(size2))


# --- Verification: preconditions are checked first, and named ---------------------------------------------


def test_inclusion_verification_names_what_is_wrong() -> None:
    proof = full_tree().inclusion_proof(2, 5)
    root, leaf = root_at(5), LEAVES[2]
    cases: list[tuple[Any, str]] = [
        (
            lambda: verify_inclusion(0, 0, leaf, [], EMPTY_ROOT),
            r"requires 0 <= index < size, got index 0, size 0$",
        ),
        (
            lambda: verify_inclusion(5, 5, leaf, proof, root),
            r"requires 0 <= index < size, got index 5, size 5$",
        ),
        (lambda: verify_inclusion(2, 5, leaf[:31], proof, root), r"^leaf hash has 31 bytes, expected 32$"),
        (lambda: verify_inclusion(2, 5, leaf, proof, root + b"\x00"), r"^root has 33 bytes, expected 32$"),
        (
            lambda: verify_inclusion(2, 5, leaf, proof[:2], root),
            r"^inclusion proof has 2 hashes, expected 3$",
        ),
        (
            lambda: verify_inclusion(2, 5, leaf, [proof[0], b"", proof[2]], root),
            r"^inclusion proof hash 1 has 0 bytes, expected 32$",
        ),
        (
            lambda: verify_inclusion(2, 5, LEAVES[3], proof, root),
            r"^root mismatch: calculated [0-9a-f]{64}, expected ",
        ),
    ]
    for attempt, message in cases:
        with pytest.raises(ProofError, match=message):
            attempt()


def test_consistency_verification_names_what_is_wrong() -> None:
    proof = full_tree().consistency_proof(6, 8)
    root1, root2 = root_at(6), root_at(8)
    cases: list[tuple[Any, str]] = [
        (
            lambda: verify_consistency(9, 8, proof, root1, root2),
            r"requires 0 <= size1 <= size2, got size1 9, size2 8$",
        ),
        (
            lambda: verify_consistency(6, 8, proof[1:], root1, root2),
            r"^consistency proof has 2 hashes, expected 3$",
        ),
        (lambda: verify_consistency(6, 8, proof, root1[1:], root2), r"^root1 has 31 bytes, expected 32$"),
        (lambda: verify_consistency(6, 8, proof, root1, b""), r"^root2 has 0 bytes, expected 32$"),
        (
            lambda: verify_consistency(6, 8, [proof[0], proof[1][:8], proof[2]], root1, root2),
            r"^consistency proof hash 1 has 8 bytes, expected 32$",
        ),
        (
            lambda: verify_consistency(6, 8, proof, root_at(5), root2),
            r"^root1 mismatch: calculated " + root1.hex(),
        ),
        (
            lambda: verify_consistency(6, 8, proof, root1, root_at(7)),
            r"^root2 mismatch: calculated " + root2.hex(),
        ),
    ]
    for attempt, message in cases:
        with pytest.raises(ProofError, match=message):
            attempt()
