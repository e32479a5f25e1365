"""The export bundle: one village's whole public ledger as a stream of lines, for auditors.

A bundle is UTF-8 text, one JSON object per line (JSON Lines), so it can be written from a database
cursor and read back without holding it in memory:

1. ``{"bundle": "villageledger-bundle/v1", "village": SLUG, "origin": ORIGIN, "log_keys": [VKEY...],
   "created": TIME}``: ``log_keys`` are the log's note verifier keys as the server claims them; an auditor
   trusts only the keys it is given out of band.
2. Every entry in log order, each line exactly the entry's leaf bytes (RFC 8785 canonical JSON never
   contains a raw newline).
3. ``{"checkpoint": NOTE}`` right after the entry whose index is ``size - 1`` of that checkpoint. The
   last line before the footer is a checkpoint of the full size.
4. Footer: ``{"balances": {LEDGER: {ACCOUNT: AMOUNT}}}`` (what the server claims),
   ``{"attachments": [SHA256...]}`` (every attachment the entries reference), ``{"end": {"size": N}}``.

Personal data never appears: households are ids and salted commitments.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from .canonical import canonical_json

FORMAT = "villageledger-bundle/v1"


def header_line(*, village: str, origin: str, log_keys: Iterable[str], created: str) -> bytes:
    return canonical_json(
        {"bundle": FORMAT, "village": village, "origin": origin, "log_keys": list(log_keys), "created": created}
    ) + b"\n"


def checkpoint_line(note: str) -> bytes:
    return canonical_json({"checkpoint": note}) + b"\n"


def footer_lines(*, balances: Mapping[str, Mapping[str, int]], attachments: Iterable[str], size: int) -> Iterator[bytes]:
    yield canonical_json({"balances": {ledger: dict(accounts) for ledger, accounts in balances.items()}}) + b"\n"
    yield canonical_json({"attachments": sorted(set(attachments))}) + b"\n"
    yield canonical_json({"end": {"size": size}}) + b"\n"


def entry_line(leaf: bytes) -> bytes:
    return leaf + b"\n"
