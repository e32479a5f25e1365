"""Door plates (门牌二维码): the secret tokens in the households' QR codes, and the A4 sheets to print.

A plate's QR code holds ``<public url>/h/<token>``, with 128 random bits from ``secrets.token_urlsafe``:
never derived from the household id, so nobody can walk through the village's households by guessing
URLs. Tokens are operational data (table ``door_tokens``), not log entries, because a plate must be
revocable: reissuing a lost or damaged plate revokes its token at once, and the old token's page can
say that the plate was replaced (``resolve`` raises ``PlateReplaced``, distinct from ``UnknownPlate``).

Printing plan (``write_pdf`` over ``plate_sheet``):
  (1) in one transaction with the village row locked, issue a token to every chosen household that has
      no active one (printing again gives the same plates until one is reissued);
  (2) encode the URLs as QR matrices (the qrcode package, error correction M), in worker processes
      when the sheet is large: choosing the mask is most of the cost;
  (3) draw six plates per A4 page with reportlab: village name, household number and public label,
      the QR code as vector rectangles, two lines in Chinese, in an embedded CJK TrueType font.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import multiprocessing
import os
import re
import secrets
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from sqlalchemy import bindparam, select, update
from sqlmodel import Session

from ledger.entries import utc_now

from . import models as m
from .cosigning import WitnessEndpoint
from .db import read_session, write_session
from .errors import NotFound, StorageError
from .store import Store

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

TOKEN_BYTES = 16  # 128 bits: unguessable, and short enough for a version 4 QR code at level M
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{22,64}")
PUBLIC_URL_ENV = "VILLAGELEDGER_PUBLIC_URL"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"

FONT_ENV = "VILLAGELEDGER_PLATE_FONT"
# Debian's fonts-wqy-microhei (5 MB): TrueType outlines, which reportlab can subset and embed. The
# Noto CJK fonts are CFF (OpenType/PostScript) outlines, which reportlab cannot embed.
FONT_FILES = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",)
FONT_NAME = "WenQuanYiMicroHei"

SCAN_LINES = ("扫码查看本户积分记录和村务公开", "有问题可扫码投诉，由村监会受理")


class PlateError(StorageError):
    """A door plate cannot be made (no CJK font, a malformed public URL...)."""


class UnknownPlate(PlateError, NotFound):
    """No door plate ever had this token."""


class PlateReplaced(PlateError, NotFound):
    """The token was on a plate that has since been reissued. The page says so; it must not lead to the
    household's new token (whoever found a lost plate is not its household)."""

    def __init__(self, message: str, *, slug: str, household: str, revoked: str) -> None:
        super().__init__(message)
        self.slug, self.household, self.revoked = slug, household, revoked


# --- tokens --------------------------------------------------------------------------------------------


def token_for(store: Store, slug: str, household: str) -> str:
    """The household's active plate token, issued now if it has none. Raises NotFound for an unknown
    village or household."""
    with write_session(store.engine) as session:
        village = store.village_row(session, slug, lock=True)
        assert village.id is not None
        _require_households(session, village.id, [household])
        return _active_tokens(session, village.id, [household])[household]


def reissue(store: Store, slug: str, household: str) -> str:
    """Revoke the household's active token (its plate was lost or damaged) and issue a new one, which
    works at once. Returns the new token."""
    with write_session(store.engine) as session:
        village = store.village_row(session, slug, lock=True)
        assert village.id is not None
        _require_households(session, village.id, [household])
        session.execute(
            update(m.DoorToken)
            .where(m.DoorToken.village_id == village.id, m.DoorToken.household_id == household,  # type: ignore[arg-type]
                   m.DoorToken.revoked.is_(None))  # type: ignore[union-attr]
            .values(revoked=utc_now())
        )
        return _issue(session, village.id, [household])[household]


_PLATE = (
    select(m.Village.slug, m.DoorToken.household_id, m.DoorToken.revoked)  # type: ignore[call-overload]
    .join(m.Village, m.Village.id == m.DoorToken.village_id)
    .where(m.DoorToken.token == bindparam("token"))
)


def resolve(store: Store, token: str) -> tuple[str, str]:
    """(village slug, household id) of an active token. Raises UnknownPlate for a token never issued
    (or malformed), PlateReplaced for a token whose plate was reissued."""
    with read_session(store.engine) as session:
        return active(session.execute(_PLATE, {"token": token}).one_or_none() if well_formed(token) else None)


def well_formed(token: str) -> bool:
    """Whether ``token`` could have been issued (a malformed one needs no question to the database)."""
    return _TOKEN_SHAPE.fullmatch(token) is not None


def active(found: tuple[str, str, str | None] | None) -> tuple[str, str]:
    """(village slug, household id) of a token's row (slug, household id, revoked), or None for no row.
    Raises UnknownPlate for no row, PlateReplaced for a revoked token."""
    if found is None:
        raise UnknownPlate("no door plate has this code")
    slug, household, revoked = found
    if revoked is not None:
        raise PlateReplaced(f"this door plate was replaced on {revoked[:10]}; the village committee has the new one",
                            slug=slug, household=household, revoked=revoked)
    return slug, household


def plate_url(base_url: str, token: str, pins: Sequence[str] = ()) -> str:
    """``<base_url>/h/<token>``, and ``#w=<pin>,…`` for the township witnesses the phone is to trust (``pins``,
    see ``witness_pin``): a fragment, which no browser sends to a server. Requires an absolute http(s) URL
    without query or fragment."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise PlateError(f"the public URL must be http(s)://host[/path] without query or fragment, not {base_url!r}")
    return f"{base_url.rstrip('/')}/h/{token}" + (f"#w={','.join(pins)}" if pins else "")


def witness_pins(witnesses: Sequence[WitnessEndpoint]) -> list[str]:
    """The pins of ``witnesses`` a plate carries."""
    return [witness_pin(witness.vkey) for witness in witnesses]


def witness_pin(vkey: str) -> str:
    """What a door plate pins of a township witness: the first 16 bytes of SHA-256 of its verifier key text,
    base64url without padding (22 characters). The witness, not the log key: a plate printed before a log-key
    rotation keeps working, since the witness cosigns only checkpoints of keys the township registered."""
    return base64.urlsafe_b64encode(hashlib.sha256(vkey.encode()).digest()[:16]).decode().rstrip("=")


def public_url() -> str:
    """Where the households' pages are served: ``VILLAGELEDGER_PUBLIC_URL``, else the development server."""
    return os.environ.get(PUBLIC_URL_ENV) or DEFAULT_PUBLIC_URL


def _require_households(session: Session, village_id: int, households: Sequence[str]) -> None:
    known = set(session.execute(
        select(m.HouseholdRow.household_id).where(  # type: ignore[call-overload]
            m.HouseholdRow.village_id == village_id, m.HouseholdRow.household_id.in_(households))  # type: ignore[attr-defined]
    ).scalars())
    missing = [h for h in households if h not in known]
    if missing:
        raise NotFound(f"no household {', '.join(map(repr, missing))} in this village")


def _active_tokens(session: Session, village_id: int, households: Sequence[str]) -> dict[str, str]:
    """The active token of each household, issuing those missing. Requires the village row locked and
    the households to exist."""
    active: dict[str, str] = dict(session.execute(  # the whole village's: a few thousand rows at most
        select(m.DoorToken.household_id, m.DoorToken.token).where(  # type: ignore[call-overload]
            m.DoorToken.village_id == village_id, m.DoorToken.revoked.is_(None))  # type: ignore[union-attr]
    ).all())
    issued = _issue(session, village_id, [h for h in households if h not in active])
    return {h: issued.get(h) or active[h] for h in households}


def _issue(session: Session, village_id: int, households: Sequence[str]) -> dict[str, str]:
    """New tokens for households that have no active one (the partial unique index enforces that)."""
    issued, now = {h: secrets.token_urlsafe(TOKEN_BYTES) for h in households}, utc_now()
    if issued:
        session.execute(m.DoorToken.__table__.insert(), [  # type: ignore[attr-defined]
            {"village_id": village_id, "household_id": h, "token": token, "issued": now} for h, token in issued.items()
        ])
    return issued


# --- the sheet -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plate:
    household: str
    number: str  # as registered on the log
    label: str | None  # the public label as registered (e.g. 王家); never the erasable personal data
    token: str


@dataclass(frozen=True)
class PlateSheet:
    village: str  # the village's Chinese name
    plates: list[Plate]


def plate_sheet(store: Store, slug: str, households: Sequence[str] | None = None) -> PlateSheet:
    """The plates of ``households`` (default: every household), ordered by grid and number, each with
    its active token (issued now where missing)."""
    # (1)
    with write_session(store.engine) as session:
        village = store.village_row(session, slug, lock=True)
        assert village.id is not None
        state = session.get(m.VillageState, village.id)
        query = select(m.HouseholdRow).where(m.HouseholdRow.village_id == village.id)  # type: ignore[arg-type]
        if households is not None:
            households = list(dict.fromkeys(households))
            _require_households(session, village.id, households)
            query = query.where(m.HouseholdRow.household_id.in_(households))  # type: ignore[attr-defined]
        rows = list(session.execute(
            query.order_by(m.HouseholdRow.grid, m.HouseholdRow.number, m.HouseholdRow.household_id)
        ).scalars())
        tokens = _active_tokens(session, village.id, [row.household_id for row in rows])
    return PlateSheet(
        village=(state.name if state and state.name else slug),
        plates=[Plate(row.household_id, row.number, _label(row), tokens[row.household_id]) for row in rows],
    )


def _label(row: m.HouseholdRow) -> str | None:
    label = row.public.get("label")
    return label if isinstance(label, str) and label else None


# --- QR codes --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QRSymbol:
    """A QR code without its quiet zone: ``size`` modules a side; ``runs`` are its dark modules as PDF
    path operators, one rectangle per horizontal run, in module units from the top-left corner (x right,
    y down), ready to fill under a transformation that scales a module to its printed size."""

    size: int
    runs: str


def qr_symbol(data: str) -> QRSymbol:
    """The QR code of ``data``: error correction M, the smallest version that fits, the mask the qrcode
    package judges best. (Level M over Q: fewer, so larger, modules at the same printed width.)"""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    runs = []
    for row, modules in enumerate(matrix):
        column = 0
        while column < len(modules):
            if modules[column]:
                start = column
                while column < len(modules) and modules[column]:
                    column += 1
                runs.append(f"{start} {row} {column - start} 1 re")
            else:
                column += 1
    return QRSymbol(len(matrix), "\n".join(runs))


def _qr_chunk(urls: list[str]) -> list[QRSymbol]:
    return [qr_symbol(url) for url in urls]


WORKERS_FROM = 60  # plates; for fewer, starting worker processes costs more than it saves


def qr_symbols(urls: list[str], workers: int | None) -> Iterator[QRSymbol]:
    """QR codes of ``urls`` in order; from ``WORKERS_FROM`` codes on, made by ``workers`` processes
    (default: every core; 0: all in this process)."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers == 0 or len(urls) < WORKERS_FROM:
        yield from map(qr_symbol, urls)
        return
    step = 48  # 8 pages: small enough that drawing starts soon and the workers finish together
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))
    try:
        for chunk in pool.map(_qr_chunk, [urls[i:i + step] for i in range(0, len(urls), step)]):
            yield from chunk
    finally:  # also when drawing failed half way: drop the codes not yet made
        pool.shutdown(cancel_futures=True)


# --- the PDF ---------------------------------------------------------------------------------------------

MM = 72 / 25.4
PAGE_WIDTH, PAGE_HEIGHT = 210 * MM, 297 * MM  # A4 portrait
MARGIN = 6 * MM  # inside what office printers can reach; the cutting lines sit here
COLUMNS, ROWS = 2, 3
CELL_WIDTH, CELL_HEIGHT = (PAGE_WIDTH - 2 * MARGIN) / COLUMNS, (PAGE_HEIGHT - 2 * MARGIN) / ROWS
QR_WIDTH = 54 * MM  # the symbol without its quiet zone: as wide as the plate allows, for scanning at a metre
QUIET_MODULES = 4  # ISO/IEC 18004's quiet zone, kept free of text and lines
VILLAGE_SIZE, HOUSEHOLD_SIZE, SCAN_SIZE = 13, 18, 11.5  # points
TEXT_PADDING = 4 * MM  # between a line of text and the cutting line, left and right


@functools.cache
def cjk_font() -> str:
    """Register the CJK TrueType font with reportlab once per process; returns its reportlab name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    given = os.environ.get(FONT_ENV)
    candidates = [given] if given else list(FONT_FILES)
    path = next((Path(c) for c in candidates if Path(c).is_file()), None)
    if path is None:
        raise PlateError(f"no CJK font at {', '.join(candidates)}: apt-get install fonts-wqy-microhei, "
                         f"or set {FONT_ENV} to a TrueType font with Chinese glyphs")
    try:
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
    except TTFError as exc:
        raise PlateError(f"{path} cannot be embedded: {exc}") from exc
    return FONT_NAME


def write_pdf(sheet: PlateSheet, output: Path | BinaryIO, *, base_url: str, pins: Sequence[str] = (),
              workers: int | None = None) -> int:
    """Draw ``sheet`` as A4 pages of ``COLUMNS`` x ``ROWS`` plates into ``output``; returns the page count.
    Requires at least one plate. ``pins``: the witnesses the plates pin (``plate_url``). ``workers``: processes
    encoding QR codes (default: every core; 0: here)."""
    from reportlab.pdfgen.canvas import Canvas

    if not sheet.plates:
        raise PlateError("no households to print plates for")
    font = cjk_font()
    # (2)
    urls = [plate_url(base_url, plate.token, pins) for plate in sheet.plates]
    codes = qr_symbols(urls, workers)
    # (3)
    canvas = Canvas(str(output) if isinstance(output, Path) else output, pagesize=(PAGE_WIDTH, PAGE_HEIGHT),
                    pageCompression=1, initialFontName=font,  # type: ignore[arg-type]  # types-reportlab: a number
                    initialFontSize=SCAN_SIZE)
    canvas.setTitle(f"{sheet.village} 门牌二维码")
    canvas.setSubject(f"{len(sheet.plates)} door plates")
    canvas.setCreator("villageledger")
    per_page = COLUMNS * ROWS
    pages = -(-len(sheet.plates) // per_page)
    for page in range(pages):
        for slot, plate in enumerate(sheet.plates[page * per_page:(page + 1) * per_page]):
            column, row = slot % COLUMNS, slot // COLUMNS
            left = MARGIN + column * CELL_WIDTH
            top = PAGE_HEIGHT - MARGIN - row * CELL_HEIGHT
            _draw_plate(canvas, font, sheet.village, plate, next(codes), left, top)
        canvas.setFont(font, 7)
        canvas.setFillGray(0.4)
        canvas.drawCentredString(PAGE_WIDTH / 2, MARGIN / 2 - 1, f"{sheet.village} 门牌二维码 第 {page + 1}/{pages} 页")
        canvas.showPage()
    canvas.save()
    return pages


def _fitting(text: str, font: str, size: float) -> float:
    """``size``, or smaller for a text too long for the plate (a long label), so it never overflows."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    room = CELL_WIDTH - 2 * TEXT_PADDING
    width = stringWidth(text, font, size)
    return size if width <= room else size * room / width


def _draw_plate(canvas: Canvas, font: str, village: str, plate: Plate, code: QRSymbol, left: float, top: float) -> None:
    """One plate in the cell whose top-left corner is (left, top): a dashed cutting line round the cell;
    centred in it, from the top, the village name, the household's number and label, the QR code with
    its quiet zone clear of text, and the two lines telling what scanning does."""
    module = QR_WIDTH / code.size
    quiet = QUIET_MODULES * module
    # Offsets down from the top of the content; the content is then centred in the cell.
    village_baseline = VILLAGE_SIZE * 0.8
    household_baseline = village_baseline + HOUSEHOLD_SIZE * 1.15
    qr_top = household_baseline + HOUSEHOLD_SIZE * 0.25 + quiet
    scan_baselines = [qr_top + QR_WIDTH + quiet + SCAN_SIZE * (0.85 + 1.3 * n) for n in range(len(SCAN_LINES))]
    height = scan_baselines[-1] + SCAN_SIZE * 0.2
    y = top - (CELL_HEIGHT - height) / 2  # the content's top
    centre = left + CELL_WIDTH / 2

    canvas.setStrokeGray(0.6)
    canvas.setLineWidth(0.5)
    canvas.setDash(3, 3)
    canvas.rect(left, top - CELL_HEIGHT, CELL_WIDTH, CELL_HEIGHT, stroke=1, fill=0)
    canvas.setDash()
    canvas.setFillGray(0)
    household = f"{plate.number}\u3000{plate.label}" if plate.label else plate.number
    for text, size, baseline in ((village, VILLAGE_SIZE, village_baseline), (household, HOUSEHOLD_SIZE, household_baseline)):
        canvas.setFont(font, _fitting(text, font, size))
        canvas.drawCentredString(centre, y - baseline, text)
    # Raw operators: reportlab's path objects format every coordinate in Python, 30 times slower.
    canvas.addLiteral(f"q 0 g {module:.4f} 0 0 {-module:.4f} {centre - QR_WIDTH / 2:.3f} {y - qr_top:.3f} cm\n"
                      f"{code.runs}\nf Q")
    canvas.setFont(font, SCAN_SIZE)
    for line, baseline in zip(SCAN_LINES, scan_baselines):
        canvas.drawCentredString(centre, y - baseline, line)
