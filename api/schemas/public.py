"""What crosses HTTP for public village information (``api.views.public``): the points rules, village
affairs and the monthly ranking."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ledger.kinds import LEDGERS

from .common import MONTH


class RuleSchema(Schema):
    code = fields.String(required=True)
    version = fields.Integer(required=True)
    title_zh = fields.String(required=True)
    title_en = fields.String(required=True)
    ledger = fields.String(required=True)
    direction = fields.String(required=True)
    amount = fields.Integer(allow_none=True)
    min = fields.Integer(allow_none=True)
    max = fields.Integer(allow_none=True)
    evidence_required = fields.Boolean(required=True)
    description = fields.String(allow_none=True)
    published_at = fields.Integer(required=True)
    retired_at = fields.Integer(allow_none=True)


class RuleQuery(Schema):
    include_retired = fields.Boolean(load_default=False, metadata={
        "description": "Also list retired rules (with their retired_at log index), e.g. to read old entries"})


class RuleList(Schema):
    rules = fields.List(fields.Nested(RuleSchema), required=True)


class AffairQuery(Schema):
    month = fields.String(validate=validate.Regexp(MONTH))
    category = fields.String(validate=validate.OneOf(("finance", "project", "decision")))


class AffairSchema(Schema):
    index = fields.Integer(required=True)
    time = fields.String(required=True)
    affair = fields.String(required=True)
    category = fields.String(required=True)
    title = fields.String(required=True)
    text = fields.String(required=True)
    date = fields.String(required=True)
    finance = fields.Dict()
    project = fields.Dict()
    decision = fields.Dict()
    attachments = fields.List(fields.Dict())


class AffairList(Schema):
    affairs = fields.List(fields.Nested(AffairSchema), required=True)


class RankingQuery(Schema):
    month = fields.String(required=True, validate=validate.Regexp(MONTH))
    ledger = fields.String(load_default="morality", validate=validate.OneOf(LEDGERS))
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 200))


class RankingItem(Schema):
    household = fields.String(required=True)
    label = fields.String(allow_none=True)
    points = fields.Integer(required=True)


class Ranking(Schema):
    month = fields.String(required=True)
    ledger = fields.String(required=True)
    ranking = fields.List(fields.Nested(RankingItem), required=True)
