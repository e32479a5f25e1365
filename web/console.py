"""The committee console (村两委 and grid workers, on a phone or an office PC): points, rules, the points
supermarket, village affairs, the registry and spreadsheet import. The page is a shell; every entry is
built and signed in the browser (static/session.js, static/console-*.js) and posted through the API, so
the console can do nothing the member's own key may not."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l

from api.extensions import store
from storage import reads

bp = Blueprint("console", __name__, template_folder="templates")

SECTIONS = (
    ("points", _l("Award or deduct points")),
    ("supermarket", _l("Points supermarket")),
    ("affairs", _l("Village affairs")),
    ("rules", _l("Points rules")),
    ("registry", _l("Households, grids and members")),
    ("import", _l("Import a spreadsheet")),
)


@bp.route("/v/<village>/console")
def console(village: str) -> Any:
    state = reads.village_state(store(), village)[1]
    return render_template("console.html", village=village, state=state, sections=SECTIONS)
