"""The server audits itself: re-derive the tree and every balance from the stored entries, compare each
stored row with the tree and every signed checkpoint, and name the first bad entry if any."""

from __future__ import annotations

from typing import Any

from ledger.errors import VerificationError

from ..auth import require_caller
from ..extensions import Blueprint, store
from ..schemas.check import CheckReport

blp = Blueprint("check", __name__, url_prefix="/api/v1/villages", description="Self-check")


@blp.route("/<village>/check")
@blp.response(200, CheckReport)
@blp.doc(security=[{"bearer": []}])
def check(village: str) -> dict[str, Any]:
    """Replay and compare the whole log (any member; it is expensive). ``ok`` false names the first bad entry."""
    require_caller(village)
    try:
        report = store().check(village)
    except VerificationError as exc:
        return {"ok": False, "size": None, "root": None, "checkpoints": None,
                "failure": {"index": exc.index, "kind": exc.kind, "message": str(exc)}}
    return {"ok": True, "size": report.size, "root": report.root, "checkpoints": report.checkpoints,
            "failure": None}
