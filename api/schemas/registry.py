"""What crosses HTTP for the household registry's personal data (``api.views.registry``): what is kept,
never on the log, and the commitment that goes on it."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ledger.formats import ID

MAX_HOUSEHOLD_MEMBERS = 30


def _text(max_length: int, *, required: bool = False, description: str | None = None) -> fields.String:
    """Text as the ledger takes it (``text(n)`` in docs/data-model.md §4.1): no control characters, not
    blank; and no lone surrogates, which have no UTF-8 bytes to commit to."""
    metadata = {"description": description} if description else {}
    return fields.String(required=required, metadata=metadata, validate=[
        validate.Length(1, max_length),
        validate.Regexp(r"^(?=[\s\S]*\S)[^\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]*\Z",
                        error="must not be blank or contain control characters or lone surrogates"),
    ])


class PersonalData(Schema):
    """A household's personal data. Unknown fields are refused, so that nothing is kept by accident."""

    head = _text(32, required=True, description="Head of household's name (the console's search finds it)")
    members = fields.List(_text(32), validate=validate.Length(max=MAX_HOUSEHOLD_MEMBERS),
                          metadata={"description": "Names of the other members of the household"})
    phone = fields.String(validate=validate.Regexp(
        r"^\+?[0-9][0-9 -]{2,19}\Z", error="must be a phone number: digits, spaces and '-', at most 20"))
    address = _text(200, description="The exact address (never public: the door plate shows the number)")


class StorePrivate(Schema):
    data = fields.Nested(PersonalData, required=True)
    grid = fields.String(validate=validate.Regexp(ID, error="must be a grid id"), metadata={
        "description": "The grid the household is being registered in or moved to. A grid worker must give "
                       "it for a household that is not registered yet."})


class Committed(Schema):
    commitment = fields.String(required=True, metadata={
        "description": "SHA-256 (hex) of domain || salt || JCS(data), for household.register or .update"})
