"""The township's page (乡镇见证), served by the township node: every village log its witness cosigns, how large
and how recently, whether it keeps the ledger's rules (the monitor's finding), and its complaints in figures
(counts only: a complaint's contents never reach the township node). Public, Chinese by default."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Flask, current_app, render_template
from flask_babel import get_locale
from flask_babel import gettext as _

from storage.witness import LogOverview, Witness, overview

from . import init_translations

bp = Blueprint("township_web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/web")
BEIJING = timezone(timedelta(hours=8))


def init_app(app: Flask) -> None:
    init_translations(app)
    app.register_blueprint(bp)


@bp.route("/")
def township_page() -> Any:
    witness: Witness = current_app.extensions["villageledger.witness"]
    now = time.time()
    rows = [(log, _checked(log, now)) for log in overview(witness)]
    return render_template("township.html", rows=rows, witness_key=witness.vkey, language=str(get_locale()))


def _checked(log: LogOverview, now: float) -> str:
    """When the witness last cosigned, in Beijing time and how long ago, in plain words."""
    if not log.cosigned_at:
        return _("not yet checked")
    moment = datetime.fromtimestamp(log.cosigned_at, UTC).astimezone(BEIJING)
    minutes = max(0, int(now - log.cosigned_at) // 60)
    ago = _("%(minutes)s minutes ago", minutes=minutes) if minutes < 120 else _("%(hours)s hours ago",
                                                                                 hours=minutes // 60)
    return _("%(month)s/%(day)s %(time)s (%(ago)s)", month=moment.month, day=moment.day,
             time=moment.strftime("%H:%M"), ago=ago)
