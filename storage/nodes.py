"""A process's copy of its villages' Merkle tree nodes, so that proofs of a big log cost no database reads.

A page of twenty entries of a log of a million needs the hashes of about four hundred tree nodes. Read
from the database, they were the largest single part of the household page's time. Yet they never
change: the hash of a perfect subtree is fixed once committed, and each level of the tree is stored left
to right. So the cache keeps, per village and level, the hashes of that level's nodes ``0 .. k-1`` in one
byte string (32 bytes a node: a log of a million entries in 64 MB; a dict of the same nodes takes about
210 bytes a node), a prefix that only grows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

from ledger.merkle import HASH_SIZE

NODE_CACHE_BYTES = 64 << 20  # per process: every node of a log of one million entries
TOP_UP_NODES = 32_768  # nodes read into the cache at most per proof (about 40 ms): a cold start costs
# no one request more than that; a log of a million entries is all in after about sixty proofs

Node = tuple[int, int]  # (level, index)
ReadLevel = Callable[[int, int, int], bytes]  # (level, begin, end) -> hashes of those nodes, concatenated


class NodeCache:
    """Hashes of committed tree nodes, by village. Thread-safe: one thread tops the cache up at a time,
    and readers never wait for it (a node the cache does not hold yet is read from the database).

    Invariants: ``_levels[village, level]`` holds the hashes of nodes ``0 .. len // HASH_SIZE - 1`` of
    that level, each as committed; it only grows; all of them together hold at most ``budget`` bytes.
    """

    def __init__(self, budget: int = NODE_CACHE_BYTES, step: int = TOP_UP_NODES) -> None:
        self.budget = budget
        self._step = step
        self._used = 0
        self._levels: dict[tuple[int, int], bytearray] = {}
        self._topping_up = threading.Lock()

    def held(self, village: int, nodes: Iterable[Node]) -> dict[Node, bytes]:
        """The hashes of those of ``nodes`` that the cache holds."""
        found: dict[Node, bytes] = {}
        empty = bytearray()
        for level, index in nodes:
            prefix = self._levels.get((village, level), empty)
            start = index * HASH_SIZE
            if start < len(prefix):
                found[level, index] = bytes(prefix[start : start + HASH_SIZE])
        return found

    def top_up(self, village: int, nodes: Sequence[Node], read: ReadLevel) -> int:
        """Extend the cache towards holding ``nodes``: committed nodes (``read`` reads committed rows only).
        Reads at most ``step`` nodes, the highest levels first (they serve every proof); stops at the
        budget. Returns how many nodes it read: none if another thread is topping up."""
        if not self._topping_up.acquire(blocking=False):
            return 0
        try:
            ends: dict[int, int] = {}
            for level, index in nodes:
                ends[level] = max(ends.get(level, 0), index + 1)
            allowance = step = min(self._step, (self.budget - self._used) // HASH_SIZE)
            for level in sorted(ends, reverse=True):
                prefix = self._levels.setdefault((village, level), bytearray())
                have = len(prefix) // HASH_SIZE
                take = min(ends[level] - have, allowance)
                if take > 0:
                    prefix += read(level, have, have + take)
                    self._used += take * HASH_SIZE
                    allowance -= take
            return step - allowance
        finally:
            self._topping_up.release()
