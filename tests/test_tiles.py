"""Specification of ``ledger.tiles``: C2SP tlog-tiles paths, which tiles a tree has, and entry bundles.
The examples are the spec's own (c2sp.org/tlog-tiles); Go's sumdb/tlog reads our served tiles in
tests/test_interop_go.py."""

from __future__ import annotations

import pytest
from ci import missing_tool
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from kit import StoredVillage
from werkzeug.test import TestResponse

from ledger import merkle
from ledger.errors import EncodingError
from ledger.tiles import (
    ENTRIES,
    MAX_BUNDLED_LEAF,
    Tile,
    entry_bundle,
    parse_tile_path,
    read_entry_bundle,
    tiles_of,
)


@pytest.mark.parametrize(("tile", "path"), [
    (Tile(0, 0), "tile/0/000"),
    (Tile(0, 1234067), "tile/0/x001/x234/067"),  # the spec's example
    (Tile(1, 5, 17), "tile/1/005.p/17"),
    (Tile(63, 1000), "tile/63/x001/000"),
    (Tile(ENTRIES, 272, 112), "tile/entries/272.p/112"),
])
def test_a_tile_has_the_path_the_spec_writes(tile: Tile, path: str) -> None:
    assert tile.path == path
    assert parse_tile_path(path) == tile


@pytest.mark.parametrize("path", [
    "tile/0/1",  # not zero-padded
    "tile/0/x000/001",  # a leading zero group
    "tile/00/000",  # level with a leading zero
    "tile/64/000",  # above level 63
    "tile/0/000.p/0",  # an empty tile is never served
    "tile/0/000.p/256",  # a full tile has no .p
    "tile/0/000.p/012",
    "tile/0/001/002",  # an inner group without x
    "tile/entries/000.p/",
    "tile/0/000/",
    "tile/8/0/000",  # Go's sumdb paths name the height; C2SP's do not
])
def test_a_path_that_is_not_canonical_is_refused(path: str) -> None:
    with pytest.raises(EncodingError):
        parse_tile_path(path)


@given(st.sampled_from([0, 1, 2, 63, ENTRIES]), st.integers(0, 10**12), st.integers(1, 256))
def test_every_tile_path_reads_back_as_its_tile(level: int | str, index: int, width: int) -> None:
    tile = Tile(level, index, width)
    assert parse_tile_path(tile.path) == tile


def test_a_tree_of_70000_has_the_tiles_the_spec_lists() -> None:
    """"a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0 tile of width
    112, one full level 1 tile, one partial level 1 tile of width 17, and one partial level 2 tile of width 1"."""
    level0, level1, level2 = tiles_of(70_000, 0), tiles_of(70_000, 1), tiles_of(70_000, 2)
    assert [t.width for t in level0] == [256] * 273 + [112]
    assert level1 == [Tile(1, 0), Tile(1, 1, 17)]
    assert level2 == [Tile(2, 0, 1)]
    assert tiles_of(70_000, 3) == []
    assert tiles_of(70_000, ENTRIES)[-1] == Tile(ENTRIES, 273, 112)


def test_a_tree_of_256_has_a_full_level_0_tile_and_a_partial_level_1_tile_of_width_1() -> None:
    assert tiles_of(256, 0) == [Tile(0, 0)]
    assert tiles_of(256, 1) == [Tile(1, 0, 1)]


def test_a_tile_is_complete_only_once_the_tree_holds_all_its_subtrees() -> None:
    assert Tile(0, 2, 188).tree_size_needed == 700
    assert Tile(1, 0, 2).tree_size_needed == 512, "two complete subtrees of 256 leaves"
    assert Tile(1, 0, 2).tree_level == 8
    assert Tile(1, 0, 2).nodes == range(2)
    assert Tile(ENTRIES, 1).nodes == range(256, 512)


def test_an_entry_bundle_reads_back_as_its_leaves() -> None:
    leaves = [b"", b"a", b"x" * 300, b"y" * MAX_BUNDLED_LEAF]
    bundle = entry_bundle(leaves)
    assert bundle[:3] == b"\x00\x00\x00" and bundle[2:5] == b"\x00\x01a", "uint16 big-endian length prefixes"
    assert read_entry_bundle(bundle) == leaves


def test_a_leaf_too_long_for_a_bundle_is_refused() -> None:
    with pytest.raises(EncodingError, match="65536 bytes does not fit an entry bundle"):
        entry_bundle([b"z" * (MAX_BUNDLED_LEAF + 1)])


@pytest.mark.parametrize(("bundle", "problem"), [
    (b"\x00", "a length prefix is cut off at byte 0"),
    (b"\x00\x01a\x00\x05abc", "the leaf at byte 3 runs 2 bytes past the end"),
])
def test_a_cut_bundle_is_refused(bundle: bytes, problem: str) -> None:
    with pytest.raises(EncodingError, match=problem):
        read_entry_bundle(bundle)


# Served: every village log under /api/v1/villages/<slug>/log/ -------------------------------------------

SIZE = 700  # two full level-0 tiles and a partial one (188), a partial level-1 tile (2)


@pytest.fixture
def grown(village: StoredVillage) -> StoredVillage:
    village.grow(SIZE)
    return village


def _get(client: FlaskClient, village: StoredVillage, path: str) -> TestResponse:
    return client.get(f"/api/v1/villages/{village.slug}/log/{path}")


def test_every_tile_holds_the_hashes_the_spec_defines(client: FlaskClient, grown: StoredVillage) -> None:
    leaves = [grown.store.leaf(grown.slug, index) for index in range(SIZE)]
    leaf_hashes = [merkle.hash_leaf(leaf) for leaf in leaves]
    subtrees = [merkle.root_of(leaf_hashes[i : i + 256]) for i in range(0, SIZE - 255, 256)]
    assert [t.path for t in tiles_of(SIZE, 0)] == ["tile/0/000", "tile/0/001", "tile/0/002.p/188"]
    for tile in tiles_of(SIZE, 0):
        assert _get(client, grown, tile.path).data == b"".join(leaf_hashes[i] for i in tile.nodes), tile.path
    assert _get(client, grown, "tile/1/000.p/2").data == b"".join(subtrees), "MTH of each full level-0 tile"
    for bundle in tiles_of(SIZE, ENTRIES):
        assert read_entry_bundle(_get(client, grown, bundle.path).data) == leaves[bundle.nodes.start : bundle.nodes.stop]


def test_a_tile_is_immutable_and_served_as_octets(client: FlaskClient, grown: StoredVillage) -> None:
    response = _get(client, grown, "tile/0/002.p/188")
    assert response.status_code == 200 and response.mimetype == "application/octet-stream"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    narrower = _get(client, grown, "tile/0/002.p/100")
    assert narrower.data == response.data[: 100 * 32], "a narrower partial tile is a prefix: it never changes"


@pytest.mark.parametrize("path", [
    "tile/0/002",  # full only at 768 entries
    "tile/0/002.p/189",  # one leaf beyond the tree
    "tile/1/000",  # full only at 65,536
    "tile/2/000.p/1",
    "tile/entries/003.p/1",
])
def test_a_tile_the_tree_does_not_hold_whole_is_not_found(client: FlaskClient, grown: StoredVillage, path: str) -> None:
    response = _get(client, grown, path)
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert f"tree of {SIZE} entries" in response.json["detail"], response.json


def test_a_path_that_is_not_a_canonical_tile_is_not_found(client: FlaskClient, grown: StoredVillage) -> None:
    response = _get(client, grown, "tile/0/2")
    assert response.status_code == 404
    assert "is not a tile path" in response.json["detail"]


def test_tlog_scales_reads_our_tiles_and_proves_what_our_api_proves(grown: StoredVillage, live_server: str) -> None:
    """tlog-scales (PyPI), a C2SP tlog-tiles client we did not write, reads a village's log over HTTP: the root
    it computes from the tiles is the checkpoint's, and its proofs and entries are our API's."""
    try:
        from tlog_scales.backend import HttpBackend
        from tlog_scales.reader import TilesReader
    except ImportError:
        missing_tool("tlog-scales interop", "tlog-scales is not installed (pip install -e '.[test]')")
    store, slug = grown.store, grown.slug
    reader = TilesReader(HttpBackend(f"{live_server}/api/v1/villages/{slug}/log"))
    checkpoint = reader.get_checkpoint()
    assert checkpoint.size == SIZE and reader.calculate_root_hash() == checkpoint.root_hash
    for index in (0, 255, 256, 511, 512, SIZE - 1):
        assert reader.get_inclusion_proof(index, SIZE).node_hashes == store.inclusion_proof(slug, index, SIZE)
        assert reader.get_entry(index) == store.leaf(slug, index)
    for old in (1, 255, 256, 513, SIZE):
        assert reader.get_consistency_proof(old, SIZE).node_hashes == store.consistency_proof(slug, old, SIZE)


def test_aics_tlog_builds_the_very_tiles_we_serve(client: FlaskClient, grown: StoredVillage) -> None:
    """aics-tlog (PyPI), a C2SP implementation we did not write, materialises every tile and entry bundle of a
    tree from its leaves: each of its paths is one we serve, with the same bytes."""
    try:
        from aics_tlog.tiles import materialise_tiles  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        missing_tool("aics-tlog interop", "aics-tlog is not installed (see the README's test command)")
    leaves = [grown.store.leaf(grown.slug, index) for index in range(SIZE)]
    theirs = materialise_tiles(leaves)
    assert len(theirs) == 7, sorted(theirs)  # 3 entry bundles, 3 hash tiles of level 0, 1 of level 1
    for path, data in sorted(theirs.items()):
        assert _get(client, grown, path).data == data, path
