"""Importing an old ledger: the preview. Its rows, already read from the uploaded sheet (``api.sheets``),
go one by one through the ledger's own ``apply`` on a throw-away copy of the village state, as the entries
the member would sign for them; nothing is written. The browser then signs one entry per valid row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ledger.canonical import b64encode
from ledger.entries import Entry, make_unsigned, parse_entry
from ledger.errors import EntryError, MalformedEntry, NotAuthorised
from ledger.state import MemoryIndex, State, apply

from .console import ConsoleError
from .search import folded
from .store import Store

IMPORT_KINDS: Final = ("points.award", "points.deduct")
IMPORT_FIELDS: Final = ("household", "rule", "amount", "reason")
# A cell whose text starts so is a formula to a spreadsheet (=HYPERLINK(...), @SUM(...)): refused in
# imported text, so that nothing imported can run when a sheet made from the ledger is opened.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
# The import row's field to blame for each field the ledger refuses a candidate entry for.
ROW_FIELD_OF: Final = {
    "entry.body.household": "household",
    "entry.body.rule": "rule",
    "entry.body.evidence": "rule",
    "entry.body.amount": "amount",
    "entry.body.reason": "reason",
    "entry.cosigner": "household",
}



@dataclass(frozen=True)
class Table:
    """A sheet as read: its column headers, and its non-blank rows after the header, each numbered
    (1-based, blank rows counted) and as wide as the header."""

    columns: list[str]
    rows: list[tuple[int, list[str]]]


@dataclass(frozen=True)
class ImportRow:
    row: int  # 1-based, counting the rows after the header (blank rows are counted, and skipped)
    household: str | None  # the id, found by id or by number
    number: str | None  # as written
    rule: str | None
    amount: int | None
    reason: str | None
    errors: list[dict[str, str]] = field(default_factory=list)  # [{"field", "problem"}]


@dataclass(frozen=True)
class ImportPreview:
    columns: list[str]
    mapping: dict[str, str | None]  # field -> column header (None: no column)
    rows: list[ImportRow]

    @property
    def valid(self) -> int:
        return sum(1 for row in self.rows if not row.errors)

    @property
    def invalid(self) -> int:
        return len(self.rows) - self.valid

def preview_import(store: Store, slug: str, table: Table, *, kind: str, member: str,
                   suggested: Mapping[str, str | None],
                   mapping: Mapping[str, str | None] | None = None) -> ImportPreview:
    """Check an old ledger's rows as the ledger would check the entries ``member`` would sign for them, one
    ``kind`` entry a row; write nothing.

    (1) the mapping of fields to columns: ``suggested`` (from the headers), overridden by ``mapping``;
    (2) each row becomes a candidate entry: the household found by id or by number (as on the plate),
        the body checked by the ledger's schema, then the entry applied to a copy of the village state as
        ``member`` would sign it (rule in force, direction, bounds, evidence, grid, conflicts of
        interest), rows one after another as the batch will be. The copy is thrown away.
    Raises ConsoleError naming ``kind`` or ``mapping.<field>``."""
    if kind not in IMPORT_KINDS:
        raise ConsoleError(f"must be one of {', '.join(IMPORT_KINDS)}", field="kind")
    columns = table.columns
    # (1)
    chosen = dict(suggested)
    for name, column in (mapping or {}).items():
        if name not in IMPORT_FIELDS:
            raise ConsoleError(f"is not one of {', '.join(IMPORT_FIELDS)}", field=f"mapping.{name}")
        if column is not None and column not in columns:
            raise ConsoleError(f"the file has no column {column!r}", field=f"mapping.{name}")
        chosen[name] = column
    # (2)
    state = store.state(slug)
    state.index = MemoryIndex()  # candidates have fresh ids: no replay to look up in the log
    author = _active_key(state, member)
    finder = _HouseholdFinder(state)
    position = {name: columns.index(column) for name, column in chosen.items() if column is not None}
    rows = [_check_row(state, slug, kind, author, finder, number, cells, position) for number, cells in table.rows]
    return ImportPreview(columns, chosen, rows)


def _active_key(state: State, member: str) -> bytes:
    """One of the member's unrevoked keys: whichever signs, the ledger authorises the member."""
    for record in state.keys.values():
        if record.member == member and record.revoked_at is None:
            return record.public
    raise NotAuthorised(f"member {member!r} has no active key", field="Authorization")


class _HouseholdFinder:
    """A household by its id or, failing that, by its number (as on the door plate), as typed."""

    def __init__(self, state: State) -> None:
        self.ids = {folded(h): h for h in state.households}
        self.numbers: dict[str, list[str]] = {}
        for household in state.households.values():
            self.numbers.setdefault(folded(household.number), []).append(household.id)

    def find(self, written: str) -> str:
        """The household's id. Raises ValueError saying why there is none."""
        key = folded(written)
        if key in self.ids:
            return self.ids[key]
        found = self.numbers.get(key, [])
        if len(found) > 1:
            raise ValueError(f"number {written!r} is shared by households {', '.join(sorted(found))}: give the id")
        if not found:
            raise ValueError(f"no household has the id or number {written!r}")
        return found[0]


def _check_row(state: State, slug: str, kind: str, author: bytes, finder: _HouseholdFinder, number: int,
               cells: list[str], position: Mapping[str, int]) -> ImportRow:
    """One row as the entry the browser would sign for it, checked by the ledger's schema then by ``apply``."""
    value = {name: cells[index] for name, index in position.items()}
    errors = {name: f"no column is mapped to {name}" for name in IMPORT_FIELDS if name not in position}
    errors.update({name: "is empty" for name, text in value.items() if not text})
    errors.update({name: "looks like a spreadsheet formula (it starts with =, +, -, @ or a tab): write it as plain text"
                   for name in ("household", "reason") if value.get(name, "").startswith(FORMULA_STARTS)})
    household = None
    if value.get("household"):
        try:
            household = finder.find(value["household"])
        except ValueError as exc:
            errors["household"] = str(exc)
    rule = folded(value.get("rule")).upper() or None
    written_amount = unicodedata.normalize("NFKC", value.get("amount", "")).strip()
    amount = int(written_amount) if re.fullmatch(r"[+-]?[0-9]{1,12}", written_amount) else None
    reason = value.get("reason") or None
    body: dict[str, Any] = {"household": household, "rule": rule, "amount": amount if amount is not None else written_amount,
                            "reason": reason}
    body = {name: given for name, given in body.items() if given not in (None, "")}
    try:
        entry = parse_entry({"entry": make_unsigned(kind=kind, village=slug, body=body, author=author),
                             "signatures": [{"key": b64encode(author), "sig": b64encode(bytes(64))}]})
    except MalformedEntry as exc:
        for name, reasons in exc.problems.items():
            errors.setdefault(ROW_FIELD_OF.get(name, "row"), reasons[0])
    else:
        if not errors:
            _apply_candidate(state, entry, errors)
    return ImportRow(number, household, value.get("household") or None, rule, amount, reason,
                     [{"field": name, "problem": problem} for name, problem in errors.items()])


def _apply_candidate(state: State, entry: Entry, errors: dict[str, str]) -> None:
    """``apply`` the candidate (signatures are not its business: the browser signs later); on refusal,
    record why under the row's field, and leave the state as it was (``apply`` changes nothing then)."""
    try:
        apply(state, entry)
    except EntryError as exc:
        name = ROW_FIELD_OF.get(exc.field or "", "row")
        problem = str(exc)
        if exc.field == "entry.body.evidence":
            problem += "; an import carries no evidence: post this one from the console with its photo"
        errors[name] = problem
