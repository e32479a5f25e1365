"""Door plates for the committee to print (the PDF `villageledger plates` writes), and plate reissue."""

from __future__ import annotations

import io
from typing import Any

from flask import Response, current_app

from storage import plates

from ..auth import Caller, require_caller
from ..extensions import Blueprint, store, witnesses
from ..problems import Problem
from ..schemas.common import BINARY
from ..schemas.plates import PlatesQuery, Reissued

blp = Blueprint("plates", __name__, url_prefix="/api/v1/villages", description="Door plates (committee)")


def _committee(village: str) -> Caller:
    caller = require_caller(village)
    if "committee" not in caller.roles:
        raise Problem(403, "forbidden", "Forbidden", "door plates are printed and reissued by the village committee")
    return caller


def _base_url() -> str:
    """Where the plates' QR codes point: ``PUBLIC_URL`` (``VILLAGELEDGER_PUBLIC_URL``), else the CLI's
    default; never the request's Host header, which any client chooses."""
    return str(current_app.config.get("PUBLIC_URL") or plates.public_url()).rstrip("/")


def _pins() -> list[str]:
    """The township witnesses the plates pin (``WITNESSES``)."""
    return plates.witness_pins(witnesses())


@blp.route("/<village>/plates.pdf")
@blp.arguments(PlatesQuery, location="query")
@blp.response(200, BINARY, content_type="application/pdf",
              description="A4 sheets of door plates with QR codes")
@blp.doc(security=[{"bearer": []}])
def print_plates(query: dict[str, Any], village: str) -> Response:
    """Door plates of all (or the chosen) households, ready to print; each QR code opens /h/<token>."""
    _committee(village)
    sheet = plates.plate_sheet(store(), village, query.get("household"))
    pdf = io.BytesIO()
    plates.write_pdf(sheet, pdf, base_url=_base_url(), pins=_pins(), workers=0)
    return Response(pdf.getvalue(), mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{village}-plates.pdf"'})


@blp.route("/<village>/households/<household>/plate", methods=["POST"])
@blp.response(200, Reissued)
@blp.doc(security=[{"bearer": []}])
def reissue_plate(village: str, household: str) -> dict[str, str]:
    """Replace a lost or damaged plate: the new URL works at once, the old one says it was replaced."""
    _committee(village)
    token = plates.reissue(store(), village, household)
    return {"household": household, "url": plates.plate_url(_base_url(), token, _pins())}
