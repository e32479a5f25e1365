"""RFC 9162 (RFC 6962) Merkle tree hashing, compact ranges, and inclusion and consistency proofs.

The tree is the one of RFC 9162 section 2.1.1: ``MTH({}) = SHA-256()``, ``MTH({d0}) = hash_leaf(d0)``, and
for n > 1, with k the largest power of two smaller than n,
``MTH(D[n]) = hash_children(MTH(D[0:k]), MTH(D[k:n]))``.

Vocabulary (after transparency-dev/merkle ``docs/data_model.md``):

- A *perfect node* ``NodeID(level, index)`` is the root of a perfect subtree of ``2**level`` leaves covering
  ``[index << level, (index + 1) << level)``. Once the log has that many leaves its hash never changes, so
  perfect nodes are what a store persists, keyed by ``(level, index)``.
- An *ephemeral node* is a node on the right border of a tree whose size is not a power of two: its hash
  depends on the tree size, so it is never stored but recomputed from the perfect nodes under it.
- The *compact range* ``[0, size)`` is the list of perfect nodes returned by ``range_nodes(0, size)``: at most
  one per level, ``size.bit_count()`` of them, and enough to compute the root and to append.

A proof reads only the O(log n) perfect nodes named by its ``ProofPlan``, never the whole log.

Verification raises ``ProofError`` and never returns a bool: it computes the root a proof implies, then
compares it once with the root it was given.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Self

from .errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "CompactRange",
    "MemoryTree",
    "NodeID",
    "ProofPlan",
    "consistency_plan",
    "hash_children",
    "hash_leaf",
    "inclusion_plan",
    "range_nodes",
    "root_from_inclusion_proof",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

LEAF_PREFIX = b"\x00"
"""RFC 9162 section 2.1.1: prepended to leaf data before hashing, so a leaf is never taken for a node."""

NODE_PREFIX = b"\x01"
"""RFC 9162 section 2.1.1: prepended to the two child hashes of an interior node before hashing."""

HASH_SIZE = 32
"""Size in bytes of a SHA-256 hash, and so of every leaf hash, node hash, proof hash and root."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""``MTH({})``: the root of the empty tree, the SHA-256 hash of the empty string."""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}es"


def _require_hash(name: str, value: bytes) -> None:
    """Require ``value`` to be a hash: exactly HASH_SIZE bytes."""
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} has {len(value)} bytes, expected {HASH_SIZE}")


def _require_proof_hashes(kind: str, proof: Sequence[bytes], expected: int) -> None:
    """Require a proof of exactly ``expected`` hashes, each HASH_SIZE bytes."""
    if len(proof) != expected:
        raise ProofError(f"{kind} proof has {_plural(len(proof), 'hash')}, expected {expected}")
    if set(map(len, proof)) - {HASH_SIZE}:  # the check, at C speed; the loop names the culprit
        for i, value in enumerate(proof):
            _require_hash(f"{kind} proof hash {i}", value)


def _require_leaf_in_tree(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ProofError(f"inclusion proof requires 0 <= index < size, got index {index}, size {size}")


def _require_match(name: str, *, calculated: bytes, expected: bytes) -> None:
    """The one comparison that ends every verification."""
    if calculated != expected:
        raise ProofError(f"{name} mismatch: calculated {calculated.hex()}, expected {expected.hex()}")


def hash_leaf(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of a leaf whose entry is ``data`` (any length)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node. Requires HASH_SIZE-byte children."""
    _require_hash("left child", left)
    _require_hash("right child", right)
    return _hash_node(left, right)


def _hash_node(left: bytes, right: bytes) -> bytes:
    """``hash_children`` for children already known to be HASH_SIZE bytes: proof hashes and seeds checked
    once on entry, and digests computed here. A verifier's inner loop (a page's twenty proofs are four
    hundred of these) spends most of its time on the checks otherwise."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _fold_right_to_left(hashes: Sequence[bytes]) -> bytes:
    """The root over perfect subtrees ordered left to right with sizes strictly decreasing.

    Hashing them together from the right is exactly the RFC's split at the largest power of two, since
    each subtree is the left part of the split of everything from it to the end. EMPTY_ROOT if none.
    """
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = hash_children(left, root)
    return root


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH`` of the leaves whose hashes are ``leaf_hashes``, by the recursive definition of RFC 9162 2.1.1.

    The reference against which everything else is checked: it reads every leaf, so use it for tests
    and cross-checks, not to serve a log. Requires every leaf hash to be HASH_SIZE bytes.
    """
    for i, leaf_hash in enumerate(leaf_hashes):
        _require_hash(f"leaf hash {i}", leaf_hash)

    def mth(begin: int, end: int) -> bytes:
        n = end - begin
        if n == 0:
            return EMPTY_ROOT
        if n == 1:
            return leaf_hashes[begin]
        k = 1 << ((n - 1).bit_length() - 1)  # the largest power of two smaller than n
        return hash_children(mth(begin, begin + k), mth(begin + k, end))

    return mth(0, len(leaf_hashes))


class _Node(NamedTuple):
    level: int
    index: int  # type: ignore[assignment]  # the field shadows tuple.index, which nothing here calls


class NodeID(_Node):
    """The perfect subtree at ``level`` (0 for leaves) and ``index`` (0 for the leftmost on its level).

    Invariant: ``level >= 0`` and ``index >= 0``; the node covers leaves
    ``[index << level, (index + 1) << level)``. Ordered by level, then index. (A tuple: proofs of a page
    of entries sort and deduplicate thousands of them, which a dataclass makes the slowest part.)
    """

    __slots__ = ()

    def __new__(cls, level: int, index: int) -> Self:
        if level < 0 or index < 0:
            raise ProofError(f"NodeID requires level >= 0 and index >= 0, got level {level}, index {index}")
        return super().__new__(cls, level, index)

    def coverage(self) -> tuple[int, int]:
        """The half-open range ``[begin, end)`` of leaf indices under this node."""
        return self.index << self.level, (self.index + 1) << self.level

    def parent(self) -> NodeID:
        """The node one level up whose subtree contains this one."""
        return _derived_node(self.level + 1, self.index >> 1)

    def sibling(self) -> NodeID:
        """The other child of this node's parent."""
        return _derived_node(self.level, self.index ^ 1)


def _derived_node(level: int, index: int) -> NodeID:
    """``NodeID(level, index)`` for a node computed from valid ones, whose invariant holds by construction
    (shifts, xor with 1 and additions of non-negative numbers): the check is skipped on this hot path."""
    return tuple.__new__(NodeID, (level, index))


def _trailing_zeros(value: int) -> int:
    """The number of trailing zero bits of ``value``. Requires value > 0."""
    return (value & -value).bit_length() - 1


def _decompose(begin: int, end: int) -> tuple[int, int]:
    """Split ``[begin, end)`` into its left and right borders, as bit masks of perfect subtree sizes.

    Bit ``l`` of ``left`` is set if the range has a left-border perfect subtree of ``2**l`` leaves (taken
    in increasing size from ``begin``), and of ``right`` if it has a right-border one (in decreasing size
    towards ``end``). Requires 0 <= begin <= end.
    """
    if begin == 0:
        return 0, end
    before = begin - 1
    # Paths to leaves begin-1 and end diverge at this level; only nodes strictly below it are in range.
    diverge = (before ^ end).bit_length() - 1
    mask = (1 << diverge) - 1
    return ~before & mask, end & mask


def range_nodes(begin: int, end: int) -> list[NodeID]:
    """The perfect subtrees that exactly cover ``[begin, end)``, left to right, each as large as possible.

    Requires 0 <= begin <= end. At most two per level: the left border rises in level, the right border
    falls. ``range_nodes(0, size)`` is the compact range of a tree of ``size`` leaves.
    """
    if not 0 <= begin <= end:
        raise ProofError(f"range_nodes requires 0 <= begin <= end, got begin {begin}, end {end}")
    left, right = _decompose(begin, end)
    ids: list[NodeID] = []
    position = begin
    while left:
        level = _trailing_zeros(left)
        ids.append(_derived_node(level, position >> level))
        position += 1 << level
        left ^= 1 << level
    while right:
        level = right.bit_length() - 1
        ids.append(_derived_node(level, position >> level))
        position += 1 << level
        right ^= 1 << level
    return ids


class CompactRange:
    """The compact range ``[0, size)``: the hashes of ``range_nodes(0, size)``, left to right.

    Invariant: ``len(hashes) == size.bit_count()``, one hash per set bit of ``size``, largest subtree
    first, each HASH_SIZE bytes. It is enough to compute the root of the first ``size`` leaves and to
    append the next leaf.
    """

    size: int
    hashes: list[bytes]

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Requires ``size >= 0`` and ``hashes`` to be the hashes of ``range_nodes(0, size)`` in order."""
        if size < 0:
            raise ProofError(f"compact range requires size >= 0, got {size}")
        expected = len(range_nodes(0, size))
        if len(hashes) != expected:
            raise ProofError(
                f"compact range of size {size} has {_plural(len(hashes), 'hash')}, expected {expected}"
            )
        for i, value in enumerate(hashes):
            _require_hash(f"compact range hash {i}", value)
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[NodeID, bytes]]:
        """Append the leaf ``leaf_hash`` at index ``size``, and return every perfect node it completes.

        The leaf itself (level 0) comes first, then each completed ancestor bottom-up: the leaf merges
        with the rightmost hash of the range once per trailing one bit of the old size. These are exactly
        the nodes a store must persist, and each is persisted once. Requires a HASH_SIZE-byte leaf hash.
        """
        index = self.size
        return [(NodeID(level, index >> level), value) for level, value in enumerate(self._merge(leaf_hash))]

    def add(self, leaf_hash: bytes) -> None:
        """``append`` for a caller that keeps only the range (the verifier): no list of nodes is built."""
        self._merge(leaf_hash)

    def _merge(self, leaf_hash: bytes) -> list[bytes]:
        """Append ``leaf_hash``; the hashes of the nodes it completes, level 0 first."""
        _require_hash("leaf hash", leaf_hash)
        value, carry = leaf_hash, self.size
        completed = [value]
        while carry & 1:
            value = _hash_node(self.hashes.pop(), value)
            completed.append(value)
            carry >>= 1
        self.hashes.append(value)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """``MTH`` of the first ``size`` leaves; EMPTY_ROOT when ``size == 0``."""
        return _fold_right_to_left(self.hashes)


@dataclass(frozen=True)
class ProofPlan:
    """Which stored perfect nodes a proof needs, and how to fold them into the proof's hashes.

    ``ids`` lists perfect nodes in proof order. ``ids[begin:end]`` together make up one ephemeral node:
    they cover, lowest level first, the part of the tree to the right of the path that the tree's size
    has not yet completed, and are folded into a single proof hash. ``begin == end == 0`` if there is
    no such node. Invariant: ``0 <= begin <= end <= len(ids)``.
    """

    ids: list[NodeID]
    begin: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.begin <= self.end <= len(self.ids):
            raise ProofError(
                f"proof plan requires 0 <= begin <= end <= {len(self.ids)}, got begin {self.begin}, "
                f"end {self.end}"
            )
        if self.begin == self.end and self.begin != 0:
            raise ProofError(
                f"proof plan without an ephemeral node has begin == end == {self.begin}, expected 0"
            )

    def rehash(self, hashes: Sequence[bytes]) -> list[bytes]:
        """The proof's hashes, given ``hashes[i]``, the stored hash of ``ids[i]`` (each HASH_SIZE bytes)."""
        if len(hashes) != len(self.ids):
            raise ProofError(f"proof plan needs {len(self.ids)} node hashes, got {len(hashes)}")
        if set(map(len, hashes)) - {HASH_SIZE}:  # the check, at C speed; the loop names the culprit
            for node, value in zip(self.ids, hashes, strict=True):
                _require_hash(f"hash of node (level {node.level}, index {node.index})", value)
        proof = list(hashes[: self.begin])
        if self.begin < self.end:
            ephemeral = hashes[self.begin]
            for left in hashes[self.begin + 1 : self.end]:  # each lies to the left of, and above, the last
                ephemeral = _hash_node(left, ephemeral)
            proof.append(ephemeral)
        proof.extend(hashes[self.end :])
        return proof


def _plan_from(node: NodeID, size: int, *, lead: bool) -> ProofPlan:
    """The plan for the audit path of perfect node ``node`` in the tree of ``size`` leaves, led by ``node``
    itself if ``lead``.

    Requires ``node`` to lie within the first ``size`` leaves. Plan:
    (1) find the fork: the ancestor of ``node`` whose sibling holds leaf ``size`` (or lies beyond it);
    (2) the siblings of the path from ``node`` up to the fork, bottom-up;
    (3) the perfect nodes under the fork's sibling that the tree has, folded into one ephemeral node;
    (4) the perfect nodes left of the fork, bottom-up.
    """
    level, index = node
    # (1)
    inner = (index ^ (size >> level)).bit_length() - 1
    # (2)
    ids = [node] if lead else []
    ids += [_derived_node(level + step, (index >> step) ^ 1) for step in range(inner)]
    # (3), (4)
    ephemeral, left = _fork_borders(_derived_node(level + inner, index >> inner), size)
    begin = len(ids)
    ids += ephemeral
    end = len(ids)
    ids += left
    if begin == end:
        begin = end = 0
    return ProofPlan(ids, begin, end)


@functools.lru_cache(maxsize=256)
def _fork_borders(fork: NodeID, size: int) -> tuple[tuple[NodeID, ...], tuple[NodeID, ...]]:
    """Steps (3) and (4) of ``_plan_from``, which depend on the fork and the size alone: a tree of ``size``
    leaves has one fork per level, so the proofs of a page of entries share a handful of them."""
    fork_begin, fork_end = fork.coverage()
    return tuple(reversed(range_nodes(fork_end, size))), tuple(reversed(range_nodes(0, fork_begin)))


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """The plan of the inclusion proof (RFC 9162 2.1.3.1 ``PATH``) for leaf ``index`` in a tree of ``size``.

    Requires 0 <= index < size. Reads at most ``2 * ceil(log2(size))`` nodes.
    """
    _require_leaf_in_tree(index, size)
    return _plan_from(NodeID(0, index), size, lead=False)


def consistency_plan(size1: int, size2: int) -> ProofPlan:
    """The plan of the consistency proof (RFC 9162 2.1.4.1 ``PROOF``) between sizes ``size1`` and ``size2``.

    Requires 0 <= size1 <= size2. The plan is empty when ``size1`` is 0 or ``size2``. Otherwise it is the
    audit path, in the tree of ``size2``, of the largest perfect subtree ending at leaf ``size1``, led by
    that subtree's own hash unless ``size1`` is a power of two (then it is the old root, which the
    verifier has).
    """
    if not 0 <= size1 <= size2:
        raise ProofError(f"consistency proof requires 0 <= size1 <= size2, got size1 {size1}, size2 {size2}")
    if size1 in (0, size2):
        return ProofPlan([], 0, 0)
    level = _trailing_zeros(size1)
    node = NodeID(level, (size1 - 1) >> level)
    return _plan_from(node, size2, lead=node.index != 0)


def _inclusion_decomposition(index: int, size: int) -> tuple[int, int]:
    """Split the inclusion proof of ``index`` in a tree of ``size`` into (inner, border) lengths.

    ``inner`` hashes lie below the level where the paths to leaves ``index`` and ``size - 1`` diverge,
    ``border`` hashes are left siblings on the tree's right border above it. Requires 0 <= index < size.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Hash ``seed`` up through ``proof``; bit ``i`` of ``index`` is set where ``seed`` is a right child."""
    for i, sibling in enumerate(proof):
        seed = _hash_node(sibling, seed) if (index >> i) & 1 else _hash_node(seed, sibling)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like ``_chain_inner``, but only with left siblings: the hash of the same subtree at an older size."""
    for i, sibling in enumerate(proof):
        if (index >> i) & 1:
            seed = _hash_node(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Hash ``seed`` up the right border of the tree, where every sibling is on the left."""
    for sibling in proof:
        seed = _hash_node(sibling, seed)
    return seed


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root of a tree of ``size`` leaves implied by ``leaf_hash`` at ``index`` and its inclusion proof.

    Requires 0 <= index < size, a HASH_SIZE-byte ``leaf_hash``, and a proof of exactly the length the
    RFC 9162 2.1.3.2 algorithm consumes for ``(index, size)``, each hash HASH_SIZE bytes.
    """
    _require_leaf_in_tree(index, size)
    _require_hash("leaf hash", leaf_hash)
    inner, border = _inclusion_decomposition(index, size)
    _require_proof_hashes("inclusion", proof, inner + border)
    return _chain_border_right(_chain_inner(leaf_hash, proof[:inner], index), proof[inner:])


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that leaf ``leaf_hash`` is at ``index`` in the tree of ``size`` leaves whose root is ``root``.

    Requires what ``root_from_inclusion_proof`` requires and a HASH_SIZE-byte ``root``. Raises ProofError
    on any failure; returns None only if the calculated root equals ``root``.
    """
    _require_leaf_in_tree(index, size)
    _require_hash("root", root)
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof)
    _require_match("root", calculated=calculated, expected=root)


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size2`` leaves with ``root2`` extends the tree of ``size1`` with ``root1``.

    Requires 0 <= size1 <= size2 and a proof of exactly the length RFC 9162 2.1.4.2 consumes. Raises
    ProofError on any failure. Edge cases (following the transparency-dev/merkle vectors):

    - ``size1 == 0``: the proof must be empty and ``root1`` must be EMPTY_ROOT, the root of the empty
      tree; every tree extends it, so ``root2`` need only be a HASH_SIZE-byte hash (EMPTY_ROOT too if
      ``size2 == 0``).
    - ``0 < size1 == size2``: the proof must be empty and ``root2`` must equal ``root1`` byte for byte; no
      hash is computed, so the roots' lengths are not checked.
    - otherwise both roots and every proof hash must be HASH_SIZE bytes; the proof must yield ``root1``
      and then ``root2``.

    Plan:
    (1) the sizes must be in order;
    (2) the edge cases above, whose proof is empty;
    (3) check the proof's length and every hash's size, then choose the seed: ``root1`` if ``size1`` is a
        power of two, else the proof's first hash;
    (4) compute the root at ``size1`` from the seed and the proof's left siblings, compare with ``root1``;
    (5) compute the root at ``size2`` from the seed and all of the proof, compare with ``root2``.
    """
    # (1)
    if not 0 <= size1 <= size2:
        raise ProofError(f"consistency proof requires 0 <= size1 <= size2, got size1 {size1}, size2 {size2}")
    # (2)
    if size1 in (0, size2):
        _require_proof_hashes("consistency", proof, 0)
    if size1 == 0:
        _require_match("root1", calculated=EMPTY_ROOT, expected=root1)
        if size2 == 0:
            _require_match("root2", calculated=EMPTY_ROOT, expected=root2)
        else:
            _require_hash("root2", root2)
        return
    if size1 == size2:
        _require_match("root2", calculated=root1, expected=root2)
        return
    # (3)
    inner, border = _inclusion_decomposition(size1 - 1, size2)
    shift = _trailing_zeros(size1)  # the proof starts at the level of the largest subtree ending at size1
    inner -= shift
    power_of_two = size1 == 1 << shift
    _require_proof_hashes("consistency", proof, (0 if power_of_two else 1) + inner + border)
    _require_hash("root1", root1)
    _require_hash("root2", root2)
    seed, path = (root1, proof) if power_of_two else (proof[0], proof[1:])
    mask = (size1 - 1) >> shift
    # (4)
    calculated1 = _chain_border_right(_chain_inner_right(seed, path[:inner], mask), path[inner:])
    _require_match("root1", calculated=calculated1, expected=root1)
    # (5)
    calculated2 = _chain_border_right(_chain_inner(seed, path[:inner], mask), path[inner:])
    _require_match("root2", calculated=calculated2, expected=root2)


class MemoryTree:
    """An in-memory log: a compact range for appending plus a store of every perfect node, by NodeID.

    Invariant: the store holds exactly the perfect nodes of the first ``size`` leaves, each written
    once when ``append`` completed it. Roots and proofs at any size up to ``size`` read only the nodes
    of their plan, through ``get_nodes``, as a database-backed store does.
    """

    def __init__(self) -> None:
        self._range = CompactRange()
        self._nodes: dict[NodeID, bytes] = {}

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._range.size

    def append(self, leaf_hash: bytes) -> None:
        """Append the leaf ``leaf_hash`` (HASH_SIZE bytes) at index ``size``."""
        for node, value in self._range.append(leaf_hash):
            self._nodes[node] = value

    def get_nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        """The stored hashes of the perfect nodes ``ids``, in order. Requires each to be complete."""
        missing = [node for node in ids if node not in self._nodes]
        if missing:
            raise ProofError(
                f"perfect node (level {missing[0].level}, index {missing[0].index}) is not in a tree "
                f"of size {self.size}"
            )
        return [self._nodes[node] for node in ids]

    def _require_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ProofError(f"requires 0 <= size <= {self.size} (the tree's size), got {size}")

    def root(self, size: int | None = None) -> bytes:
        """``MTH`` of the first ``size`` leaves (default: all of them). Requires 0 <= size <= self.size."""
        if size is None:
            size = self.size
        self._require_size(size)
        return _fold_right_to_left(self.get_nodes(range_nodes(0, size)))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The inclusion proof of leaf ``index`` at ``size``. Requires 0 <= index < size <= self.size."""
        self._require_size(size)
        plan = inclusion_plan(index, size)
        return plan.rehash(self.get_nodes(plan.ids))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """The consistency proof from ``size1`` to ``size2``. Requires 0 <= size1 <= size2 <= self.size."""
        self._require_size(size2)
        plan = consistency_plan(size1, size2)
        return plan.rehash(self.get_nodes(plan.ids))
