"""What crosses HTTP for door plates (``api.views.plates``): which to print, and a reissued plate."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class PlatesQuery(Schema):
    household = fields.List(fields.String(validate=validate.Length(1, 64)),
                            metadata={"description": "Households to print (repeat); default: all"})


class Reissued(Schema):
    household = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "The new plate's URL; the old plate stops working"})
