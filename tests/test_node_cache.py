"""The process's node cache (``storage.nodes``), on its own: what it holds, what it reads, and when it stops.
How a Store proves with it is specified in ``test_store.py``."""

from __future__ import annotations

import threading

import pytest

from storage.nodes import NodeCache

VILLAGE = 1


def node_hash(level: int, index: int) -> bytes:
    return bytes([level]) + index.to_bytes(31, "big")


class Tree:
    """A stored tree's nodes, counting the reads the cache makes."""

    def __init__(self) -> None:
        self.reads: list[tuple[int, int, int]] = []

    def read(self, level: int, begin: int, end: int) -> bytes:
        self.reads.append((level, begin, end))
        return b"".join(node_hash(level, index) for index in range(begin, end))


def test_holds_the_prefix_of_each_level_it_read_and_nothing_else() -> None:
    cache, tree = NodeCache(), Tree()
    cache.top_up(VILLAGE, [(0, 5), (3, 1)], tree.read)
    wanted = [(0, 0), (0, 5), (0, 6), (3, 0), (3, 1), (3, 2), (1, 0)]
    assert cache.held(VILLAGE, wanted) == {node: node_hash(*node) for node in [(0, 0), (0, 5), (3, 0), (3, 1)]}
    assert cache.held(VILLAGE + 1, wanted) == {}


def test_reads_the_highest_levels_first_at_most_step_nodes_a_time_each_node_once() -> None:
    cache, tree = NodeCache(step=10), Tree()
    wanted = [(0, 11), (1, 5), (2, 2)]
    assert cache.top_up(VILLAGE, wanted, tree.read) == 10
    assert tree.reads == [(2, 0, 3), (1, 0, 6), (0, 0, 1)]
    assert cache.top_up(VILLAGE, wanted, tree.read) == 10
    assert tree.reads[3:] == [(0, 1, 11)]
    assert cache.top_up(VILLAGE, wanted, tree.read) == 1
    assert tree.reads[4:] == [(0, 11, 12)]
    assert cache.top_up(VILLAGE, wanted, tree.read) == 0
    assert len(tree.reads) == 5
    assert len(cache.held(VILLAGE, [(0, index) for index in range(20)])) == 12


def test_stops_at_its_budget_and_keeps_what_it_has() -> None:
    cache, tree = NodeCache(budget=5 * 32), Tree()
    assert cache.top_up(VILLAGE, [(1, 2), (0, 9)], tree.read) == 5
    assert cache.top_up(VILLAGE + 1, [(0, 0)], tree.read) == 0
    assert tree.reads == [(1, 0, 3), (0, 0, 2)]
    assert cache.held(VILLAGE, [(1, 2), (0, 1), (0, 2)]) == {(1, 2): node_hash(1, 2), (0, 1): node_hash(0, 1)}


def test_a_failed_read_leaves_the_cache_as_it_was() -> None:
    cache, tree = NodeCache(), Tree()

    def failing(level: int, begin: int, end: int) -> bytes:
        raise OSError("disk gone")

    cache.top_up(VILLAGE, [(0, 1)], tree.read)
    with pytest.raises(OSError, match="disk gone"):
        cache.top_up(VILLAGE, [(0, 3)], failing)
    assert cache.held(VILLAGE, [(0, index) for index in range(4)]) == {(0, 0): node_hash(0, 0), (0, 1): node_hash(0, 1)}
    cache.top_up(VILLAGE, [(0, 3)], tree.read)
    assert tree.reads == [(0, 0, 2), (0, 2, 4)]


def test_a_thread_finding_another_topping_up_goes_on_without_waiting() -> None:
    cache, tree = NodeCache(), Tree()
    inside, done = threading.Event(), threading.Event()

    def slow(level: int, begin: int, end: int) -> bytes:
        inside.set()
        assert done.wait(10)
        return tree.read(level, begin, end)

    topping_up = threading.Thread(target=cache.top_up, args=(VILLAGE, [(0, 3)], slow))
    topping_up.start()
    assert inside.wait(10)
    assert cache.top_up(VILLAGE, [(0, 1)], tree.read) == 0  # at once: the other thread holds the top-up
    assert tree.reads == [] and cache.held(VILLAGE, [(0, 0)]) == {}
    done.set()
    topping_up.join(10)
    assert tree.reads == [(0, 0, 4)]
