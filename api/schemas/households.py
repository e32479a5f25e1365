"""What crosses HTTP for households (``api.views.households``): public fields and balances, and the
personal data behind a member token."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ledger.formats import ID

from .common import Base64Bytes


class Balances(Schema):
    morality = fields.Integer(required=True)
    credit = fields.Integer(required=True)


class HouseholdSchema(Schema):
    household = fields.String(required=True)
    grid = fields.String(required=True)
    number = fields.String(required=True)
    public = fields.Dict(required=True, metadata={"description": "Only the fields the household record marks public"})
    commitment = fields.String(required=True, metadata={"description": "Salted SHA-256 commitment to the personal data"})
    balances = fields.Nested(Balances, required=True)
    green_card = fields.Boolean(required=True)


class HouseholdQuery(Schema):
    grid = fields.String(validate=validate.Regexp(ID))
    after = fields.String(validate=validate.Regexp(ID))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class HouseholdPage(Schema):
    items = fields.List(fields.Nested(HouseholdSchema), required=True)
    next = fields.String(allow_none=True)


class PrivateHousehold(Schema):
    household = fields.String(required=True)
    data = fields.Dict(required=True)
    salt = Base64Bytes(required=True)
    commitment = fields.String(required=True)
    matches_log = fields.Boolean(required=True, metadata={"description": "The data and salt open the commitment on the log"})
