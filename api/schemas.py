"""What crosses HTTP: marshmallow schemas for every request and response (the OpenAPI document is
generated from these). Table models stay in ``storage``; entry bodies are validated by ``ledger.entries``."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ledger.entries import SignatureSchema as LedgerSignature
from ledger.formats import ID, TIME
from ledger.kinds import KIND_NAMES, LEDGERS

B64_HASH = {"description": "base64 SHA-256 hash (32 bytes)"}
MAX_SIZE = 2**31 - 1  # entries a village log can hold (the index column is a 32-bit integer)
MAX_BATCH = 1000


class VillageSchema(Schema):
    slug = fields.String(required=True)
    name = fields.String(allow_none=True)
    name_en = fields.String(allow_none=True)
    township = fields.String(allow_none=True)
    county = fields.String(allow_none=True)
    origin = fields.String(required=True, metadata={"description": "The checkpoint origin line of the village log"})
    size = fields.Integer(required=True, metadata={"description": "Number of entries in the log"})
    log_keys = fields.List(fields.String(), required=True, metadata={"description": "Note verifier keys, current last"})
    green_card_threshold = fields.Integer(allow_none=True)


class VillageList(Schema):
    villages = fields.List(fields.Nested(VillageSchema), required=True)


class InclusionQuery(Schema):
    index = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_SIZE - 1))
    tree_size = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SIZE))


class ConsistencyQuery(Schema):
    first = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SIZE))
    second = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SIZE))


class ProofSchema(Schema):
    hashes = fields.List(fields.String(metadata=B64_HASH), required=True)


class SignedEntry(Schema):
    """A signed entry as in ``docs/data-model.md``; its body is validated by the ledger per kind."""

    entry = fields.Dict(required=True, metadata={"description": "The unsigned entry: v, kind, village, id, time, author, [cosigner], body"})
    signatures = fields.List(fields.Nested(LedgerSignature), required=True, validate=validate.Length(1, 2))


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
    leaf_hash = fields.String(required=True, metadata=B64_HASH)
    inclusion_proof = fields.List(fields.String(metadata=B64_HASH), required=True,
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
    leaf_hash = fields.String(required=True, metadata=B64_HASH)
    signed = fields.Dict(required=True, metadata={"description": "The signed entry; its canonical JSON is the leaf"})


class EntryPage(Schema):
    items = fields.List(fields.Nested(EntryItem), required=True)
    next = fields.Integer(allow_none=True, metadata={"description": "pass as `after` for the next page; null at the end"})


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
    salt = fields.String(required=True)
    commitment = fields.String(required=True)
    matches_log = fields.Boolean(required=True, metadata={"description": "The data and salt open the commitment on the log"})


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
    month = fields.String(validate=validate.Regexp(r"^[0-9]{4}-(0[1-9]|1[0-2])\Z"))
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
    month = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{4}-(0[1-9]|1[0-2])\Z"))
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


class CheckFailure(Schema):
    index = fields.Integer(allow_none=True, metadata={"description": "The first bad entry (or checkpoint size)"})
    kind = fields.String(allow_none=True)
    message = fields.String(required=True)


class CheckReport(Schema):
    ok = fields.Boolean(required=True)
    size = fields.Integer(allow_none=True)
    root = fields.String(allow_none=True, metadata=B64_HASH)
    checkpoints = fields.Integer(allow_none=True)
    failure = fields.Nested(CheckFailure, allow_none=True)


# --- the complaint channel -----------------------------------------------------------------------------

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
    photos = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}), metadata={"description": "Up to 4 JPEG, PNG or WebP photos"})




class ComplaintReceiptSchema(Schema):
    receipt = fields.String(required=True)
    tracking_code = fields.String(required=True, metadata=TRACKING_CODE)
    index = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    checkpoint = fields.String(required=True)
    inclusion_proof = fields.List(fields.String(metadata=B64_HASH), required=True)
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
    key = fields.String(required=True, metadata={"description": "base64 Ed25519 public key of the complaint desk"})
    registered = fields.Boolean(required=True, metadata={"description": "Whether the ledger has it as an active intake member key"})
