"""Reading an uploaded sheet (an old ledger to import) into a table: CSV in the encodings Excel writes, or
an XLSX workbook's first worksheet; and the column each import field is probably in. Parsing file formats
is the API's business: storage's import preview (``storage.imports``) takes the rows already read.

Every refusal is a ``ConsoleError`` naming ``file``: a file too big, unreadable, or with too many rows or
columns is refused whole, and reading one stops as soon as it is known to be too much.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from time import monotonic
from typing import Any, Final

import openpyxl

from storage.console import ConsoleError
from storage.imports import IMPORT_FIELDS, Table
from storage.search import folded

OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls
ZIP_MAGIC: Final = b"PK\x03\x04"  # an .xlsx is a zip archive
MAX_IMPORT_BYTES: Final = 5 * 1024 * 1024
MAX_IMPORT_ROWS: Final = 1000
MAX_IMPORT_LINES: Final = 2 * MAX_IMPORT_ROWS  # blank ones included: a sheet of a million blank rows is refused
IMPORT_SECONDS: Final = 10.0  # reading a file takes at most this long
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


def read_table(raw: bytes) -> Table:
    """The table of a CSV (UTF-8, with or without BOM, UTF-16 with BOM, or
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
    keys = [re.sub(r"[\s_\-]", "", folded(column)) for column in columns]
    chosen: dict[str, str | None] = {}
    for name in IMPORT_FIELDS:
        found = next((i for i, key in enumerate(keys) if key in SYNONYMS[name] and columns[i] not in chosen.values()), None)
        chosen[name] = columns[found] if found is not None else None
    return chosen


def _table(lines: Iterable[Sequence[str]]) -> Table:
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
    return Table(header, data)


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


def _xlsx_table(raw: bytes) -> Table:
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

