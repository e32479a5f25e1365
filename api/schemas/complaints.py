"""What crosses HTTP for the complaint channel (``api.views.complaints``; the pages' forms in
``web.complaints`` load the villager's requests with the same schemas)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ledger.formats import ID

from .common import BINARY, Base64Bytes, SignedEntry, sha256_hash

COMPLAINT_CATEGORIES = ("finances", "projects", "cadre_conduct", "points_appeal", "environment",
                        "neighbour_dispute", "suggestion", "other")
TRACKING_CODE = {"description": "The villager's tracking code (e.g. ABCD-EFGH-JKLM-NPQR); it alone opens the case"}


class FileComplaint(Schema):
    """A complaint, as a form (``multipart/form-data``, so that photos can come with it)."""

    category = fields.String(required=True, validate=validate.OneOf(COMPLAINT_CATEGORIES))
    text = fields.String(required=True, validate=validate.Length(1, 2000))
    anonymous = fields.Boolean(load_default=False, metadata={"description": "Store no household (and never an IP address)"})
    plate = fields.String(validate=validate.Length(1, 64), metadata={"description": "The door plate's token: files for that household"})
    household = fields.String(validate=validate.Regexp(ID), metadata={"description": "Assisted filing: a member (bearer token) files for this household"})
    appeal_of = fields.String(validate=validate.Regexp(r"^[0-9a-f]{32}\Z"), metadata={"description": "The deduction (entry id) appealed"})
    photos = fields.List(fields.Raw(metadata=BINARY), metadata={"description": "Up to 4 JPEG, PNG or WebP photos"})


class ComplaintReceiptSchema(Schema):
    receipt = fields.String(required=True)
    tracking_code = fields.String(required=True, metadata=TRACKING_CODE)
    index = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    checkpoint = fields.String(required=True)
    inclusion_proof = fields.List(sha256_hash(), required=True)
    salt = fields.String(required=True, metadata={"description": "base64: opens the receipt's commitment with ``content``"})
    content = fields.Dict(required=True)


class TrackingCode(Schema):
    code = fields.String(required=True, validate=validate.Length(1, 40), metadata=TRACKING_CODE)


class VillagerAnswer(TrackingCode):
    text = fields.String(required=True, validate=validate.Length(1, 2000))


class VillagerRating(TrackingCode):
    rating = fields.String(required=True, validate=validate.OneOf(("satisfied", "basically_satisfied", "unsatisfied")))
    resolved = fields.Boolean(required=True, metadata={"description": "Has the problem been resolved?"})


class CaseSchema(Schema):
    receipt = fields.String(required=True)
    route = fields.String(required=True)
    grid = fields.String(allow_none=True)
    status = fields.String(required=True)
    filed = fields.String(required=True)
    accepted = fields.String(allow_none=True)
    replied = fields.String(allow_none=True)
    closed = fields.String(allow_none=True)
    rating = fields.String(allow_none=True)
    resolved = fields.Boolean(allow_none=True)
    reopened = fields.Boolean(required=True)
    escalated = fields.Boolean(required=True)


class CaseList(Schema):
    items = fields.List(fields.Nested(CaseSchema), required=True)


class ProtectedDeduction(Schema):
    entry_id = fields.String(required=True)
    index = fields.Integer(required=True)
    time = fields.String(required=True)
    household = fields.String(required=True)
    amount = fields.Integer(required=True)
    supervisor_cosigned = fields.Boolean(required=True)


class ProtectedDeductionList(Schema):
    items = fields.List(fields.Nested(ProtectedDeduction), required=True)


class StepSchema(Schema):
    entry_id = fields.String(required=True)
    step = fields.String(required=True)
    time = fields.String(required=True)
    by = fields.String(required=True)
    text = fields.String(allow_none=True)
    salt = fields.String(required=True)
    commitment = fields.String(allow_none=True, metadata={"description": "The step's commitment on the log; null if it commits to no text"})


class CaseViewSchema(Schema):
    case = fields.Nested(CaseSchema, required=True)
    content = fields.Dict(required=True)
    salt = fields.String(required=True)
    commitment = fields.String(required=True)
    receipt_index = fields.Integer(required=True)
    steps = fields.List(fields.Nested(StepSchema), required=True)
    photos = fields.List(fields.String(), required=True)


class HandlerStep(Schema):
    entry = fields.Nested(SignedEntry, required=True, metadata={"description": "The handler's signed complaint.step"})
    text = fields.String(validate=validate.Length(1, 2000), metadata={"description": "The reply, opened by salt against the commitment"})
    salt = fields.String(validate=validate.Length(1, 100), metadata={"description": "base64, at least 16 bytes"})


class StepResult(Schema):
    index = fields.Integer(required=True)
    entry_id = fields.String(required=True)
    tree_size = fields.Integer(required=True)
    checkpoint = fields.String(required=True)
    case = fields.Nested(CaseSchema, required=True)


class ComplaintSettings(Schema):
    routes = fields.Dict(keys=fields.String(validate=validate.OneOf(COMPLAINT_CATEGORIES)),
                         values=fields.String(validate=validate.OneOf(("supervision", "jury", "committee", "grid"))), required=True)
    respond_days = fields.Integer(required=True, validate=validate.Range(1, 90))
    resolve_days = fields.Integer(required=True, validate=validate.Range(1, 90))


class MonthFiguresSchema(Schema):
    month = fields.String(required=True)
    filed = fields.Integer(required=True)
    closed = fields.Integer(required=True)
    resolved = fields.Integer(required=True)
    rated = fields.Integer(required=True)
    satisfied = fields.Integer(required=True)
    on_time = fields.Integer(required=True)
    resolution_rate = fields.Float(allow_none=True, metadata={"description": "percent of filed cases closed and not declared unresolved"})
    satisfaction_rate = fields.Float(allow_none=True, metadata={"description": "percent of rated cases satisfied or basically satisfied"})
    on_time_rate = fields.Float(allow_none=True, metadata={"description": "percent of closed cases accepted and closed within the deadlines"})
    median_hours_to_reply = fields.Float(allow_none=True)


class ComplaintFigures(Schema):
    months = fields.List(fields.Nested(MonthFiguresSchema), required=True)


class DeskKeySchema(Schema):
    key = Base64Bytes(required=True, metadata={"description": "base64 Ed25519 public key of the complaint desk"})
    registered = fields.Boolean(required=True, metadata={"description": "Whether the ledger has it as an active intake member key"})
