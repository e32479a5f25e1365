"""What crosses HTTP for member login (``api.views.auth``): the challenge and the token it is exchanged for."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class Challenge(Schema):
    challenge = fields.String(required=True)
    message = fields.String(required=True, metadata={"description": "The exact text to sign (UTF-8) with the member key"})
    expires_in = fields.Integer(required=True)


class TokenRequest(Schema):
    key = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9+/]{43}=\Z"))
    challenge = fields.String(required=True, validate=validate.Length(1, 500))
    signature = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9+/]{86}==\Z"))


class Token(Schema):
    token = fields.String(required=True)
    member = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    expires_in = fields.Integer(required=True)
