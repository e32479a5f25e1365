"""What crosses HTTP for signed entries (``api.views.entries``): posting one or a batch, and paged reads."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ledger.formats import ID, TIME
from ledger.kinds import KIND_NAMES, LEDGERS

from .common import MAX_SIZE, sha256_hash

MAX_BATCH = 1000


class PostEntries(Schema):
    """Either one signed entry (``entry`` + ``signatures``) or a batch (``entries``), never both."""

    entry = fields.Dict()
    signatures = fields.List(fields.Dict())
    entries = fields.List(fields.Dict(), validate=validate.Length(1, MAX_BATCH),
                          metadata={"description": f"A batch of up to {MAX_BATCH} signed entries, appended all or nothing"})

    @validates_schema
    def _one_form(self, data: dict[str, object], **_: object) -> None:
        single = "entry" in data or "signatures" in data
        if single == ("entries" in data):
            raise ValidationError("give either entry and signatures, or entries", "entries")
        if single and not ("entry" in data and "signatures" in data):
            raise ValidationError("entry and signatures go together", "signatures" if "entry" in data else "entry")


class AppendedSchema(Schema):
    index = fields.Integer(required=True)
    entry_id = fields.String(required=True)
    leaf_hash = sha256_hash(required=True)
    inclusion_proof = fields.List(sha256_hash(), required=True,
                                  metadata={"description": "RFC 9162 inclusion proof into the tree of tree_size"})


class PostResult(Schema):
    tree_size = fields.Integer(required=True)
    checkpoint = fields.String(required=True, metadata={"description": "C2SP signed checkpoint of tree_size"})
    appended = fields.List(fields.Nested(AppendedSchema), required=True)


class EntryQuery(Schema):
    household = fields.String(validate=validate.Regexp(ID))
    kind = fields.String(validate=validate.OneOf(KIND_NAMES))
    ledger = fields.String(validate=validate.OneOf(LEDGERS))
    since = fields.String(validate=validate.Regexp(TIME), metadata={"description": "inclusive, YYYY-MM-DDTHH:MM:SSZ"})
    until = fields.String(validate=validate.Regexp(TIME), metadata={"description": "exclusive, YYYY-MM-DDTHH:MM:SSZ"})
    after = fields.Integer(validate=validate.Range(min=-1, max=MAX_SIZE), metadata={"description": "cursor: entries after this index"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class EntryItem(Schema):
    index = fields.Integer(required=True)
    entry_id = fields.String(required=True)
    kind = fields.String(required=True)
    time = fields.String(required=True)
    household = fields.String(allow_none=True)
    ledger = fields.String(allow_none=True)
    amount = fields.Integer(allow_none=True)
    debit = fields.String(allow_none=True)
    credit = fields.String(allow_none=True)
    leaf_hash = sha256_hash(required=True)
    signed = fields.Dict(required=True, metadata={"description": "The signed entry; its canonical JSON is the leaf"})


class EntryPage(Schema):
    items = fields.List(fields.Nested(EntryItem), required=True)
    next = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page; null at the end"})
