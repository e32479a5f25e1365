"""Entries: signed writes (one or a batch, all or nothing, idempotent) and filtered, paged reads."""

from __future__ import annotations

from typing import Any

from ledger.entries import Entry, open_leaf, parse_entry
from ledger.errors import EntryError, MalformedEntry
from storage import Appended, reads
from storage.reads import EntryFilter

from ..extensions import Blueprint, store
from ..schemas.entries import EntryPage, EntryQuery, PostEntries, PostResult

blp = Blueprint("entries", __name__, url_prefix="/api/v1/villages", description="Signed entries")


def _signed_entries(village: str, payload: dict[str, Any]) -> list[Entry]:
    raw = payload["entries"] if "entries" in payload else [{"entry": payload["entry"], "signatures": payload["signatures"]}]
    entries = []
    for position, item in enumerate(raw):
        try:
            entry = parse_entry(item)
            if entry.village != village:
                raise MalformedEntry(f"entry.village: is {entry.village!r}, posted to {village!r}", field="entry.village")
        except EntryError as exc:
            if "entries" in payload:
                exc.position = position
            raise
        entries.append(entry)
    return entries


@blp.route("/<village>/entries", methods=["POST"])
@blp.arguments(PostEntries)
@blp.response(201, PostResult)
def post_entries(payload: dict[str, Any], village: str) -> dict[str, Any]:
    """Append one signed entry, or a batch of up to 1,000 (all or nothing).

    Authorisation is the entries' own signatures checked against the ledger's roles, by the same code
    the auditor's verifier runs. Posting an entry that is already in the log returns its first result
    and writes nothing.
    """
    appended: list[Appended] = store().append(village, _signed_entries(village, payload), prove=True)
    # A batch lands whole, under one checkpoint; each result carries its proof (``prove=True``).
    return {"tree_size": appended[0].tree_size, "checkpoint": appended[0].checkpoint, "appended": appended}


def entry_item(row: Any) -> dict[str, Any]:
    return {
        "index": row.idx, "entry_id": row.entry_id, "kind": row.kind, "time": row.time, "household": row.household,
        "ledger": row.ledger, "amount": row.amount, "debit": row.debit, "credit": row.credit,
        "leaf_hash": row.leaf_hash, "signed": open_leaf(row.leaf),
    }


@blp.route("/<village>/entries")
@blp.arguments(EntryQuery, location="query")
@blp.response(200, EntryPage)
def list_entries(query: dict[str, Any], village: str) -> dict[str, Any]:
    """Entries in log order, filtered by household, kind, ledger and time; page with ``after``."""
    rows = reads.entries(store(), village, EntryFilter(**query))
    return {"items": [entry_item(r) for r in rows], "next": rows[-1].idx if len(rows) == query["limit"] else None}
