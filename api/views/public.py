"""Public village information: the points rules, village affairs, the monthly ranking and the export."""

from __future__ import annotations

from typing import Any

from flask import Response, stream_with_context

from storage import reads

from ..extensions import Blueprint, store
from ..schemas.common import BINARY
from ..schemas.public import AffairList, AffairQuery, Ranking, RankingQuery, RuleList, RuleQuery

blp = Blueprint("public", __name__, url_prefix="/api/v1/villages", description="Rules, affairs, ranking, export")


@blp.route("/<village>/rules")
@blp.arguments(RuleQuery, location="query")
@blp.response(200, RuleList)
def list_rules(query: dict[str, Any], village: str) -> dict[str, Any]:
    """The points rules catalogue: the latest version of each rule in force, and with ``include_retired``
    the retired ones too."""
    return {"rules": reads.rules(store(), village, include_retired=query["include_retired"])}


@blp.route("/<village>/affairs")
@blp.arguments(AffairQuery, location="query")
@blp.response(200, AffairList)
def list_affairs(query: dict[str, Any], village: str) -> dict[str, Any]:
    """Public village affairs (finance, projects, decisions), newest first, by month and category."""
    return {"affairs": reads.affairs(store(), village, month=query.get("month"), category=query.get("category"))}


@blp.route("/<village>/ranking")
@blp.arguments(RankingQuery, location="query")
@blp.response(200, Ranking)
def ranking(query: dict[str, Any], village: str) -> dict[str, Any]:
    """The monthly red list: households by net points gained in the month."""
    items = reads.ranking(store(), village, month=query["month"], ledger=query["ledger"], limit=query["limit"])
    return {"month": query["month"], "ledger": query["ledger"], "ranking": items}


@blp.route("/<village>/export")
@blp.response(200, BINARY, content_type="application/x-ndjson",
              description="The audit bundle (JSON Lines), streamed: verify it with `villageledger verify`")
def export(village: str) -> Response:
    """The village's self-contained audit bundle, streamed from the database."""
    lines = store().export(village)
    first = next(lines)  # raises NotFound before any byte is sent

    def stream() -> Any:
        yield first
        yield from lines

    return Response(stream_with_context(stream()), mimetype="application/x-ndjson",
                    headers={"Content-Disposition": f'attachment; filename="{village}.vlbundle"'})
