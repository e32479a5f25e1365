"""C2SP tlog-tiles (c2sp.org/tlog-tiles): a log served as static resources any file server, CDN or mirror can
serve. The Merkle tree is cut into tiles of height 8; a tile at level ``L`` is up to 256 consecutive hashes of
tree level ``8 * L``; entry bundles hold the leaves, each prefixed by its length.

Invariants:
- ``parse_tile_path(tile.path) == tile`` for every tile, and every accepted path is the one ``path`` writes
  (no leading zeros, no empty tile, width 1..255 only as ``.p/<W>``): one resource, one URL;
- hash ``i`` of tile (``L``, ``N``) is the RFC 9162 node at level ``8 * L``, index ``N * 256 + i``; a tile is
  served only once every hash in it is a complete subtree of the tree (``tile.tree_size_needed``), so it never
  changes afterwards;
- an entry bundle is the concatenation of ``uint16 big-endian length || leaf`` for consecutive leaves, which is
  why no leaf may exceed ``MAX_BUNDLED_LEAF`` bytes (``ledger.entries.MAX_ENTRY_BYTES`` is that).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import EncodingError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # hashes in a full tile
MAX_LEVEL = 63
MAX_BUNDLED_LEAF = 0xFFFF  # an entry bundle's length prefix is a uint16
ENTRIES = "entries"  # the level part of an entry bundle's path

_LEVEL = r"(?P<level>0|[1-9][0-9]?|entries)"
_INDEX = r"(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
_WIDTH = r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
_TILE_PATH = re.compile(rf"tile/{_LEVEL}/{_INDEX}{_WIDTH}\Z")


@dataclass(frozen=True)
class Tile:
    """Tile ``index`` of ``level`` (an int 0..63 for hashes, ``ENTRIES`` for an entry bundle), ``width``
    hashes or leaves wide (256: full; 1..255: partial)."""

    level: int | str
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if self.level != ENTRIES and not (isinstance(self.level, int) and 0 <= self.level <= MAX_LEVEL):
            raise ValueError(f"tile level {self.level!r} is not 0..{MAX_LEVEL} or {ENTRIES!r}")
        if self.index < 0 or not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(f"tile index {self.index} or width {self.width} out of range")

    @property
    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]``, ``N`` in zero-padded groups of three digits, all but the last after an x."""
        digits = str(self.index)
        digits = "0" * (-len(digits) % 3) + digits
        groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
        partial = f".p/{self.width}" if self.width < TILE_WIDTH else ""
        return f"tile/{self.level}/{'/'.join(['x' + g for g in groups[:-1]] + groups[-1:])}{partial}"

    @property
    def tree_level(self) -> int:
        """The RFC 9162 tree level its hashes are at (entry bundles: the leaves, level 0)."""
        return 0 if self.level == ENTRIES else TILE_HEIGHT * int(self.level)

    @property
    def nodes(self) -> range:
        """The indexes, at ``tree_level``, of the hashes (or leaves) the tile holds."""
        first = self.index * TILE_WIDTH
        return range(first, first + self.width)

    @property
    def tree_size_needed(self) -> int:
        """The smallest tree size in which every hash of the tile is a complete subtree."""
        return self.nodes.stop << self.tree_level


def tiles_of(size: int, level: int | str) -> list[Tile]:
    """The tiles of ``level`` a tree of ``size`` leaves has: its full tiles, then its partial one if any.
    Requires ``size >= 0``."""
    count = size >> (0 if level == ENTRIES else TILE_HEIGHT * int(level))
    full = [Tile(level, index) for index in range(count // TILE_WIDTH)]
    return full + ([Tile(level, count // TILE_WIDTH, count % TILE_WIDTH)] if count % TILE_WIDTH else [])


def parse_tile_path(path: str) -> Tile:
    """The tile a ``tile/...`` path names. Raises EncodingError for any other spelling, including a
    non-canonical one (``x000/001``, ``001`` for 1 is canonical; ``1`` is not)."""
    match = _TILE_PATH.match(path)
    if match is None:
        raise EncodingError(f"{path!r} is not a tile path tile/<L>/<N>[.p/<W>]")
    level_text, width_text = match["level"], match["width"]
    level: int | str = level_text if level_text == ENTRIES else int(level_text)
    width = int(width_text) if width_text else TILE_WIDTH
    try:
        tile = Tile(level, int(match["index"].replace("x", "").replace("/", "")), width)
    except ValueError as exc:
        raise EncodingError(f"{path!r}: {exc}") from exc
    if tile.path != path:
        raise EncodingError(f"{path!r} is not canonical; the tile's path is {tile.path!r}")
    return tile


def entry_bundle(leaves: Iterable[bytes]) -> bytes:
    """The entry bundle of ``leaves``. Raises EncodingError for a leaf longer than ``MAX_BUNDLED_LEAF``."""
    parts: list[bytes] = []
    for leaf in leaves:
        if len(leaf) > MAX_BUNDLED_LEAF:
            raise EncodingError(f"a leaf of {len(leaf)} bytes does not fit an entry bundle (at most {MAX_BUNDLED_LEAF})")
        parts += (len(leaf).to_bytes(2, "big"), leaf)
    return b"".join(parts)


def read_entry_bundle(data: bytes) -> list[bytes]:
    """The leaves of an entry bundle. Raises EncodingError if a length runs past the end."""
    leaves, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise EncodingError(f"entry bundle: a length prefix is cut off at byte {at}")
        end = at + 2 + int.from_bytes(data[at : at + 2], "big")
        if end > len(data):
            raise EncodingError(f"entry bundle: the leaf at byte {at} runs {end - len(data)} bytes past the end")
        leaves.append(data[at + 2 : end])
        at = end
    return leaves
