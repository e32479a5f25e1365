"""What the committee console needs besides signing: the village's members and grids, a household search
that reaches the personal data, attachments stored by SHA-256, the points supermarket (积分超市) and the
preview of an old ledger's import.

Members sign every entry in their browser; nothing here signs for them. What is kept here is off the log:
attachments (the log holds their hashes, which bind the bytes) and the supermarket's goods (price and
stock: the shop's, not the ledger's). A redemption is the member's own signed ``points.redeem``, appended
with the stock lowered in the same transaction; the import preview runs every row through the ledger's
own ``apply`` on a throw-away copy of the village state and writes nothing.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from time import monotonic
from typing import Any, Final

import openpyxl
from sqlalchemy import and_, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session

from ledger.canonical import b64encode
from ledger.entries import Entry, leaf_body, make_unsigned, parse_entry, utc_now
from ledger.errors import EntryError, MalformedEntry, NotAuthorised
from ledger.state import MemoryIndex, State, apply

from . import models as m
from .appending import Appended
from .db import read_session, write_session
from .errors import NotFound, StorageError
from .images import ImageRejected, clean_image
from .reads import _next_month
from .store import Store

MEDIA_TYPES: Final = ("image/jpeg", "image/png", "application/pdf")  # what attachments are stored as
PDF_MAGIC: Final = b"%PDF-"
MAX_PDF_BYTES: Final = 20 * 1024 * 1024
OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls
ZIP_MAGIC: Final = b"PK\x03\x04"  # an .xlsx is a zip archive

IMPORT_KINDS: Final = ("points.award", "points.deduct")
IMPORT_FIELDS: Final = ("household", "rule", "amount", "reason")
MAX_IMPORT_BYTES: Final = 5 * 1024 * 1024
MAX_IMPORT_ROWS: Final = 1000
MAX_IMPORT_LINES: Final = 2 * MAX_IMPORT_ROWS  # blank ones included: a sheet of a million blank rows is refused
IMPORT_SECONDS: Final = 10.0  # reading a file takes at most this long
# A cell whose text starts so is a formula to a spreadsheet (=HYPERLINK(...), @SUM(...)): refused in
# imported text, so that nothing imported can run when a sheet made from the ledger is opened.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
MAX_IMPORT_COLUMNS: Final = 200
MAX_XLSX_EXPANDED: Final = 64 * 1024 * 1024  # what the workbook's parts may inflate to: no zip bombs
CSV_DELIMITERS: Final = (",", "\t", ";")
# Column headers that name each field, compared after NFKC, casefolding and dropping spaces, "_" and "-".
SYNONYMS: Final = {
    "household": ("户号", "门牌号", "门牌", "户编号", "household", "householdid", "number"),
    "rule": ("规则", "规则编号", "规则代码", "细则编号", "rule", "rulecode", "code"),
    "amount": ("分值", "积分", "分数", "amount", "points"),
    "reason": ("事由", "原因", "理由", "reason"),
}
# The import row's field to blame for each field the ledger refuses a candidate entry for.
ROW_FIELD_OF: Final = {
    "entry.body.household": "household",
    "entry.body.rule": "rule",
    "entry.body.evidence": "rule",
    "entry.body.amount": "amount",
    "entry.body.reason": "reason",
    "entry.cosigner": "household",
}


class ConsoleError(StorageError):
    """A console request refused; ``field`` names the offending input (a form field, a body path)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# --- members and grids (public: cadres are public under 三务公开) ------------------------------------


@dataclass(frozen=True)
class MemberKey:
    key: str  # base64
    added_at: int  # log indexes
    revoked_at: int | None


@dataclass(frozen=True)
class MemberListing:
    member: str
    name: str
    roles: list[str]
    grid: str | None
    household: str | None
    keys: list[MemberKey]


def members(store: Store, slug: str) -> list[MemberListing]:
    """Every member with their roles and every key they ever had, by member id."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        keys: dict[str, list[MemberKey]] = {}
        for row in session.execute(select(m.MemberKeyRow).where(m.MemberKeyRow.village_id == village.id)  # type: ignore[arg-type]
                                   .order_by(m.MemberKeyRow.added_at)).scalars():  # type: ignore[arg-type]
            keys.setdefault(row.member_id, []).append(MemberKey(b64encode(row.public), row.added_at, row.revoked_at))
        rows = session.execute(select(m.MemberRow).where(m.MemberRow.village_id == village.id)  # type: ignore[arg-type]
                               .order_by(m.MemberRow.member_id)).scalars()
        return [MemberListing(r.member_id, r.name, r.roles.split(), r.grid, r.household, keys.get(r.member_id, []))
                for r in rows]


def grids(store: Store, slug: str) -> list[m.GridRow]:
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        return list(session.execute(select(m.GridRow).where(m.GridRow.village_id == village.id)  # type: ignore[arg-type]
                                    .order_by(m.GridRow.grid_id)).scalars())


# --- finding a household ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HouseholdMatch:
    household: str
    number: str
    label: str | None
    grid: str
    name: str | None  # the head of household, from the personal data (erasable), if recorded


def search_households(store: Store, slug: str, *, q: str = "", grid: str | None = None,
                      limit: int = 50, with_names: bool = True) -> list[HouseholdMatch]:
    """Households (of ``grid``, if given) whose number, public label or (``with_names``) head-of-household
    name contains ``q``, ignoring case; an exact number first, then by id; at most ``limit``. Without
    ``with_names`` no name is read, matched or returned. Requires limit >= 1.

    Matched here rather than in SQL: the name sits in a JSON column, which SQLite and PostgreSQL search
    differently, and a village has at most a few thousand households."""
    if limit < 1:
        raise ConsoleError("must be at least 1", field="limit")
    needle = _folded(q)
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        conditions = [m.HouseholdRow.village_id == village.id]
        if grid is not None:
            conditions.append(m.HouseholdRow.grid == grid)
        rows = session.execute(
            select(m.HouseholdRow, m.HouseholdPrivate.data)  # type: ignore[call-overload]
            .join(m.HouseholdPrivate, and_(m.HouseholdPrivate.village_id == m.HouseholdRow.village_id,  # type: ignore[arg-type]
                                           m.HouseholdPrivate.household_id == m.HouseholdRow.household_id), isouter=True)  # type: ignore[arg-type]
            .where(*conditions)
            .order_by(m.HouseholdRow.household_id)
        ).all()
    found = []
    for row, private in rows:
        label = row.public.get("label")
        head = (private or {}).get("head") if with_names else None
        match = HouseholdMatch(row.household_id, row.number, label if isinstance(label, str) else None, row.grid,
                               head if isinstance(head, str) else None)
        if any(needle in _folded(text) for text in (match.number, match.label, match.name) if text):
            found.append(match)
    found.sort(key=lambda match: (_folded(match.number) != needle, match.household))
    return found[:limit]


def _folded(text: str | None) -> str:
    """``text`` compared as a person types it: full-width forms as ASCII (NFKC), case ignored, trimmed."""
    return unicodedata.normalize("NFKC", text or "").casefold().strip()


# --- attachments -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAttachment:
    sha256: str
    media_type: str
    size: int
    name: str  # a file name entries may carry (``ledger.entries.SAFE_FILENAME``), from the client's


def store_attachment(store: Store, slug: str, raw: bytes, *, filename: str = "") -> StoredAttachment:
    """Keep an uploaded file and name it by its SHA-256; storing the same file again changes nothing.

    (1) a PDF (it starts with ``%PDF-``) of at most MAX_PDF_BYTES is kept as uploaded;
    (2) anything else must be a JPEG, PNG or WebP photo: only its re-encoded pixels are kept
        (``clean_image``), and the hash is that of the cleaned bytes;
    (3) insert it unless the village already has it. Raises ConsoleError naming ``file``."""
    # (1)
    if raw.startswith(PDF_MAGIC):
        if len(raw) > MAX_PDF_BYTES:
            raise ConsoleError(f"the PDF is {len(raw):,} bytes; at most {MAX_PDF_BYTES:,} are allowed", field="file")
        data, media_type, extension = raw, "application/pdf", ".pdf"
    # (2)
    else:
        try:
            photo = clean_image(raw, name=filename, field="file")
        except ImageRejected as exc:
            message = str(exc) + (" nor a PDF" if exc.code == "not_an_image" else "")
            raise ConsoleError(message, field="file") from exc
        data, media_type = photo.data, photo.media_type
        extension = ".png" if media_type == "image/png" else ".jpg"
    sha256 = hashlib.sha256(data).hexdigest()
    # (3)
    with write_session(store.engine) as session:
        village = store.village_row(session, slug)
        row = {"village_id": village.id, "sha256": sha256, "media_type": media_type, "size": len(data),
               "data": data, "uploaded": utc_now()}
        dialect = sqlite_dialect if session.get_bind().dialect.name == "sqlite" else pg_dialect
        session.execute(dialect.insert(m.AttachmentRow).values(row).on_conflict_do_nothing())
    return StoredAttachment(sha256, media_type, len(data), _file_name(filename, extension, sha256))


def attachment(store: Store, slug: str, sha256: str) -> tuple[str, bytes]:
    """(media type, bytes) of the village's attachment ``sha256``. Raises NotFound."""
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        row = session.get(m.AttachmentRow, (village.id, sha256))
        if row is None:
            raise NotFound(f"village {slug!r} has no attachment {sha256}")
        return row.media_type, bytes(row.data)


def _file_name(filename: str, extension: str, sha256: str) -> str:
    """The client's file name without folders, control characters or leading dots, at most 128
    characters, ending in ``extension`` (a WebP photo is kept as JPEG: ``.jpg``); else a name from the hash."""
    base = re.split(r"[/\\]", filename)[-1]
    base = re.sub(r"[\x00-\x1f\x7f-\x9f]", "", base).strip().lstrip(".").strip()
    stem = base.rsplit(".", 1)[0].strip() if "." in base else base
    return f"{stem[: 128 - len(extension)] or sha256[:16]}{extension}"


# --- the points supermarket (积分超市) --------------------------------------------------------------


@dataclass(frozen=True)
class Good:
    item: str
    name: str
    price: int  # morality points
    stock: int


@dataclass(frozen=True)
class Redeemed:
    appended: Appended
    stock: int  # of the item, after the redemption


def goods(store: Store, slug: str) -> list[Good]:
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        rows = session.execute(select(m.GoodRow).where(m.GoodRow.village_id == village.id).order_by(m.GoodRow.item))  # type: ignore[arg-type]
        return [_good(row) for row in rows.scalars()]


def put_good(store: Store, slug: str, item: str, *, name: str, price: int, stock: int) -> Good:
    """Create or change an item. Requires price >= 1 and stock >= 0; two items may not share a name (a
    redemption names its item by name). Raises ConsoleError naming the field."""
    if price < 1:
        raise ConsoleError("must be at least 1 point", field="price")
    if stock < 0:
        raise ConsoleError("must not be negative", field="stock")
    try:
        with write_session(store.engine) as session:
            village = store.village_row(session, slug)
            assert village.id is not None
            taken = session.execute(select(m.GoodRow.item).where(  # type: ignore[call-overload]
                m.GoodRow.village_id == village.id, m.GoodRow.name == name, m.GoodRow.item != item
            )).scalar_one_or_none()
            if taken is not None:
                raise ConsoleError(f"item {taken!r} already has the name {name!r}", field="name")
            # A table model is not validated when made (SQLModel); its other fields are set on the next line.
            row = session.get(m.GoodRow, (village.id, item)) or m.GoodRow(village_id=village.id, item=item)  # type: ignore[call-arg]
            row.name, row.price, row.stock, row.updated = name, price, stock, utc_now()
            session.add(row)
            session.flush()
            return _good(row)
    except IntegrityError as exc:  # the same name given to two items at once (PostgreSQL)
        raise ConsoleError(f"another item already has the name {name!r}", field="name") from exc


def redeem(store: Store, slug: str, *, member: str, item: str, signed: Mapping[str, Any]) -> Redeemed:
    """Append a member's own signed ``points.redeem`` of ``item`` and lower its stock, in one transaction.
    Fields are named as in the request ``{"item", "entry": <signed>}``. Any refusal changes nothing.

    (1) ``signed`` is a valid ``points.redeem`` whose author key is one of ``member``'s keys;
    (2) append it; once the ledger has accepted it (the balance, the grid worker's grid, a cosigner for
        one's own household), in the same transaction: the item exists, the entry names it, pays
        price x quantity, and the stock covers the quantity; then lower the stock;
    (3) an entry already in the log is answered with its first result and lowers no stock again."""
    # (1)
    entry = _nested_errors("entry", parse_entry, signed)
    if entry.kind != "points.redeem":
        raise ConsoleError(f"must be a points.redeem entry, not {entry.kind}", field="entry.entry.kind")
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        key = session.get(m.MemberKeyRow, (village.id, entry.author))
    if key is None or key.member_id != member:
        raise NotAuthorised("the entry must be signed with your own member key", field="entry.entry.author")
    # (2)
    lowered: list[int] = []

    def lower_stock(session: Session, village_id: int) -> None:
        row = session.get(m.GoodRow, (village_id, item), with_for_update=True)
        body = entry.body
        if row is None:
            raise ConsoleError(f"the supermarket has no item {item!r}", field="item")
        if body["item"] != row.name:
            raise ConsoleError(f"the entry redeems {body['item']!r}; item {item!r} is {row.name!r}",
                               field="entry.entry.body.item")
        if body["amount"] != row.price * body["quantity"]:
            raise ConsoleError(f"{body['quantity']} x {row.name} costs {row.price * body['quantity']} points, "
                               f"not {body['amount']}", field="entry.entry.body.amount")
        if body["quantity"] > row.stock:
            raise ConsoleError(f"only {row.stock} of {row.name} in stock", field="entry.entry.body.quantity")
        row.stock -= body["quantity"]
        row.updated = utc_now()
        session.add(row)
        lowered.append(row.stock)

    (appended,) = _nested_errors("entry", store.append, slug, [entry], alongside=lower_stock)
    if lowered:
        return Redeemed(appended, lowered[0])
    # (3)
    current = {good.item: good.stock for good in goods(store, slug)}
    if item not in current:
        raise ConsoleError(f"the supermarket has no item {item!r}", field="item")
    return Redeemed(appended, current[item])


def _good(row: m.GoodRow) -> Good:
    return Good(row.item, row.name, row.price, row.stock)


def _nested_errors(under: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, an EntryError's fields put under ``under`` (where the signed entry
    sits in the request body)."""
    try:
        return function(*args, **kwargs)
    except EntryError as exc:
        exc.field = f"{under}.{exc.field or 'entry'}"
        if isinstance(exc, MalformedEntry):
            exc.problems = {f"{under}.{name}": reasons for name, reasons in exc.problems.items()}
        raise


@dataclass(frozen=True)
class Redemption:
    index: int
    time: str
    household: str
    item: str
    quantity: int
    amount: int
    reversed: bool  # a points.reverse undid it (points refunded): left out of the totals


@dataclass(frozen=True)
class RedemptionReport:
    items: list[Redemption]
    totals: dict[str, dict[str, int]]  # item name -> {"quantity", "amount"}, of the redemptions not reversed


def redemptions(store: Store, slug: str, month: str) -> RedemptionReport:
    """The month's redemptions (``points.redeem`` entries dated in ``month``, YYYY-MM), in log order, and
    the quantity and points per item."""
    reversal = aliased(m.EntryRow)
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        rows = session.execute(
            select(m.EntryRow.idx, m.EntryRow.time, m.EntryRow.household, m.EntryRow.leaf, reversal.idx)  # type: ignore[call-overload]
            .join(reversal, and_(reversal.village_id == m.EntryRow.village_id, reversal.kind == "points.reverse",  # type: ignore[arg-type]
                                 reversal.ref == m.EntryRow.entry_id), isouter=True)  # type: ignore[arg-type]
            .where(m.EntryRow.village_id == village.id, m.EntryRow.kind == "points.redeem",
                   m.EntryRow.time >= f"{month}-01", m.EntryRow.time < _next_month(month))
            .order_by(m.EntryRow.idx)
        ).all()
    items: list[Redemption] = []
    totals: dict[str, dict[str, int]] = {}
    for idx, time_, household, leaf, reversed_at in rows:
        body = leaf_body(leaf)
        redemption = Redemption(idx, time_, household, body["item"], body["quantity"], body["amount"], reversed_at is not None)
        items.append(redemption)
        if not redemption.reversed:
            total = totals.setdefault(redemption.item, {"quantity": 0, "amount": 0})
            total["quantity"] += redemption.quantity
            total["amount"] += redemption.amount
    return RedemptionReport(items, totals)


# --- importing an old ledger: the preview ------------------------------------------------------------


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


def preview_import(store: Store, slug: str, raw: bytes, *, kind: str, member: str,
                   mapping: Mapping[str, str | None] | None = None) -> ImportPreview:
    """Check an old ledger's rows (CSV or XLSX) as the ledger would check the entries ``member`` would sign
    for them, one ``kind`` entry a row; write nothing. The browser then signs one entry per valid row.

    (1) read the table: its first non-blank row is the header; at most MAX_IMPORT_ROWS data rows;
    (2) the mapping of fields to columns: suggested from the headers, overridden by ``mapping``;
    (3) each row becomes a candidate entry: the household found by id or by number (as on the plate),
        the body checked by the ledger's schema, then the entry applied to a copy of the village state as
        ``member`` would sign it (rule in force, direction, bounds, evidence, grid, conflicts of
        interest), rows one after another as the batch will be. The copy is thrown away.
    Raises ConsoleError naming ``file``, ``kind`` or ``mapping.<field>``."""
    if kind not in IMPORT_KINDS:
        raise ConsoleError(f"must be one of {', '.join(IMPORT_KINDS)}", field="kind")
    # (1)
    columns, data = read_table(raw)
    # (2)
    chosen = suggest_mapping(columns)
    for name, column in (mapping or {}).items():
        if name not in IMPORT_FIELDS:
            raise ConsoleError(f"is not one of {', '.join(IMPORT_FIELDS)}", field=f"mapping.{name}")
        if column is not None and column not in columns:
            raise ConsoleError(f"the file has no column {column!r}", field=f"mapping.{name}")
        chosen[name] = column
    # (3)
    state = store.state(slug)
    state.index = MemoryIndex()  # candidates have fresh ids: no replay to look up in the log
    author = _active_key(state, member)
    finder = _HouseholdFinder(state)
    position = {name: columns.index(column) for name, column in chosen.items() if column is not None}
    rows = [_check_row(state, slug, kind, author, finder, number, cells, position) for number, cells in data]
    return ImportPreview(columns, chosen, rows)


def read_table(raw: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(column headers, [(row number, cells)]) of a CSV (UTF-8, with or without BOM, UTF-16 with BOM, or
    GB18030) or an XLSX file (its first worksheet). Blank rows are skipped. Raises ConsoleError naming
    ``file`` for a file over MAX_IMPORT_BYTES, unreadable, or over MAX_IMPORT_ROWS data rows or
    MAX_IMPORT_COLUMNS columns."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise ConsoleError(f"the file is {len(raw):,} bytes; at most {MAX_IMPORT_BYTES:,} are allowed", field="file")
    if raw.startswith(OLE2_MAGIC):
        raise ConsoleError("is an old .xls workbook: save it as .xlsx or CSV", field="file")
    if raw.startswith(ZIP_MAGIC):
        return _xlsx_table(raw)
    text = _text(raw)
    first = text.split("\n", 1)[0]
    delimiter = max(CSV_DELIMITERS, key=first.count) if any(d in first for d in CSV_DELIMITERS) else ","
    try:
        return _table(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise ConsoleError(f"is not readable CSV: {exc}", field="file") from exc


def suggest_mapping(columns: Sequence[str]) -> dict[str, str | None]:
    """The column each field is probably in, from the headers' Chinese or English names; None if none."""
    keys = [re.sub(r"[\s_\-]", "", _folded(column)) for column in columns]
    chosen: dict[str, str | None] = {}
    for name in IMPORT_FIELDS:
        found = next((i for i, key in enumerate(keys) if key in SYNONYMS[name] and columns[i] not in chosen.values()), None)
        chosen[name] = columns[found] if found is not None else None
    return chosen


def _table(lines: Iterable[Sequence[str]]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header (the first non-blank line) and the numbered non-blank lines after it, cells trimmed and
    padded or cut to the header's width. Stops reading as soon as there are too many."""
    header: list[str] | None = None
    data: list[tuple[int, list[str]]] = []
    number = 0
    deadline = monotonic() + IMPORT_SECONDS
    for count, line in enumerate(lines, start=1):
        if count > MAX_IMPORT_LINES:
            raise ConsoleError(f"has more than {MAX_IMPORT_LINES} lines (blank ones included): remove the empty rows "
                               "or split it into several files", field="file")
        if monotonic() > deadline:
            raise ConsoleError(f"took more than {IMPORT_SECONDS:g} seconds to read: split it into several files", field="file")
        cells = [cell.strip() for cell in line[: MAX_IMPORT_COLUMNS + 1]]
        while cells and not cells[-1]:
            cells.pop()
        if header is None:
            if len(cells) > MAX_IMPORT_COLUMNS:
                raise ConsoleError(f"has more than {MAX_IMPORT_COLUMNS} columns", field="file")
            header = cells or None
            continue
        number += 1
        if not cells:
            continue
        if len(data) == MAX_IMPORT_ROWS:
            raise ConsoleError(f"has more than {MAX_IMPORT_ROWS} rows: split it into several files", field="file")
        data.append((number, cells[: len(header)] + [""] * (len(header) - len(cells))))
    if header is None:
        raise ConsoleError("is empty: no header row", field="file")
    return header, data


def _text(raw: bytes) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        encodings: tuple[str, ...] = ("utf-8-sig",)
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)  # Excel's "Unicode text"
    else:
        encodings = ("utf-8", "gb18030")  # GB18030 covers GBK and GB2312: Excel's CSV on a Chinese Windows
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ConsoleError("is neither an XLSX workbook nor CSV text in UTF-8 or GB18030", field="file")


def _xlsx_table(raw: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """``_table`` of the workbook's first worksheet, its cells' values (not formulas) as text."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ConsoleError(f"is not a readable XLSX workbook: {exc}", field="file") from exc
    if expanded > MAX_XLSX_EXPANDED:
        raise ConsoleError(f"expands to {expanded:,} bytes; at most {MAX_XLSX_EXPANDED:,} are allowed", field="file")
    try:
        with warnings.catch_warnings():
            # openpyxl warns about parts it skips (styles, data validation, extensions): only values are read.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")
            workbook = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
            try:
                if not workbook.worksheets:
                    raise ConsoleError("has no worksheet", field="file")
                rows = workbook.worksheets[0].iter_rows(values_only=True)
                return _table([_cell_text(value) for value in values[: MAX_IMPORT_COLUMNS + 1]] for values in rows)
            finally:
                workbook.close()
    except ConsoleError:
        raise
    except Exception as exc:  # openpyxl reports a malformed workbook with whatever its parsers raise
        raise ConsoleError(f"is not a readable XLSX workbook: {type(exc).__name__}: {exc}", field="file") from exc


def _cell_text(value: Any) -> str:
    """A cell as its text: a whole number without ".0" (Excel stores every number as a float)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


def _active_key(state: State, member: str) -> bytes:
    """One of the member's unrevoked keys: whichever signs, the ledger authorises the member."""
    for record in state.keys.values():
        if record.member == member and record.revoked_at is None:
            return record.public
    raise NotAuthorised(f"member {member!r} has no active key", field="Authorization")


class _HouseholdFinder:
    """A household by its id or, failing that, by its number (as on the door plate), as typed."""

    def __init__(self, state: State) -> None:
        self.ids = {_folded(h): h for h in state.households}
        self.numbers: dict[str, list[str]] = {}
        for household in state.households.values():
            self.numbers.setdefault(_folded(household.number), []).append(household.id)

    def find(self, written: str) -> str:
        """The household's id. Raises ValueError saying why there is none."""
        key = _folded(written)
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
    rule = _folded(value.get("rule")).upper() or None
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
