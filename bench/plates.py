"""Door plates (issue 5): the A4 PDF of every household's plate, as ``villageledger plates`` writes it (QR
codes made by every core, the CJK font embedded), for the 2,000-household village — beside the ``qrcode``
package alone making the same codes, one after another in this process (the raw cost the PDF is built on)."""

from __future__ import annotations

import time
from pathlib import Path

from storage import plates

from .core import Built
from .dataset import SLUG
from .report import Figure, Peer, Report

TARGET_SECONDS = 20.0
BASE_URL = "https://bench.villageledger.example"


def _qrcode_alone(urls: list[str]) -> float:
    """Seconds the qrcode package takes for ``urls`` with the plates' settings (level M, best mask)."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    start = time.perf_counter()
    for url in urls:
        code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
        code.add_data(url)
        code.make(fit=True)
    return time.perf_counter() - start


def plate_figures(report: Report, built: Built, work: Path) -> None:
    sheet = plates.plate_sheet(built.store, SLUG)
    start = time.perf_counter()
    pages = plates.write_pdf(sheet, work / "plates.pdf", base_url=BASE_URL)
    seconds = time.perf_counter() - start
    count = len(sheet.plates)
    raw = _qrcode_alone([plates.plate_url(BASE_URL, plate.token) for plate in sheet.plates])
    report.add(
        Figure(
            "Plates",
            f"door plates PDF, {count:,} households ({pages:,} A4 pages, {(work / 'plates.pdf').stat().st_size / 1e6:.1f} MB)",
            count / seconds,
            peer=Peer(f"qrcode package alone, the same {count:,} codes, one core", count / raw),
            target=f"{count:,} in < {TARGET_SECONDS:.0f} s",
            met=seconds < TARGET_SECONDS,
            measured=f"{seconds:.1f} s ({count / seconds:,.0f} plates/s)",
        )
    )
