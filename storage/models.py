"""Tables. The log tables (entries, tree_nodes, checkpoints) are append-only, enforced by triggers; the
derived tables are caches that ``rebuild`` recomputes from the entries; ``household_private`` holds the
only personal data and may be erased; ``door_tokens`` is operational data (the door plates' QR codes),
outside the signed log because a plate must be revocable.

These are storage models only: what crosses HTTP is declared by marshmallow schemas in ``api/``.

Typing: SQLModel gives a column's class attribute its field's Python type, so to mypy ``m.EntryRow.idx < n``
is a bool and ``select(m.EntryRow.idx, m.EntryRow.leaf)`` matches none of SQLAlchemy's ``select`` overloads.
The queries mark exactly those lines ``# type: ignore[arg-type]`` / ``[call-overload]`` (``.in_()``,
``.desc()``, ``.is_(None)``: ``[attr-defined]`` / ``[union-attr]``), and SQLModel declares no ``__table__``.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class Village(SQLModel, table=True):
    __tablename__ = "villages"
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=40)
    origin: str = Field(max_length=200)
    created: str = Field(max_length=20)


class LogKey(SQLModel, table=True):
    """A village's checkpoint-signing key. The private key is stored only as encrypted PKCS#8; a key known
    only by its public half (an old key of a restored village) has no ``encrypted_pem`` and is retired."""

    __tablename__ = "log_keys"
    id: int | None = Field(default=None, primary_key=True)
    village_id: int = Field(foreign_key="villages.id", index=True)
    name: str = Field(max_length=200)
    public: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    encrypted_pem: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created: str = Field(max_length=20)
    retired: str | None = Field(default=None, max_length=20)


class EntryRow(SQLModel, table=True):
    """One leaf of a village's log. ``leaf`` is the exact canonical bytes; the other columns are facts
    read off the entry when it was appended, kept for queries (an auditor recomputes them all)."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("village_id", "entry_id", name="uq_entries_entry_id"),
        UniqueConstraint("village_id", "kind", "ref", name="uq_entries_kind_ref"),
        # Covers a household's chart (net points per month) and kind filter: no entry row is read for them.
        Index("ix_entries_household", "village_id", "household", "idx", "kind", "time", "ledger", "credit", "amount"),
        Index("ix_entries_kind", "village_id", "kind", "idx"),
        Index("ix_entries_time", "village_id", "time"),
    )
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    idx: int = Field(primary_key=True)
    entry_id: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    time: str = Field(max_length=20)
    author: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    household: str | None = Field(default=None, max_length=64)
    ledger: str | None = Field(default=None, max_length=16)
    amount: int | None = None
    debit: str | None = Field(default=None, max_length=80)
    credit: str | None = Field(default=None, max_length=80)
    ref: str | None = Field(default=None, max_length=32)


class TreeNode(SQLModel, table=True):
    """A perfect subtree of the Merkle tree: level 0 are leaf hashes."""

    __tablename__ = "tree_nodes"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    level: int = Field(primary_key=True)
    idx: int = Field(primary_key=True)
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CheckpointRow(SQLModel, table=True):
    __tablename__ = "checkpoints"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    size: int = Field(primary_key=True)
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str
    created: str = Field(max_length=20)


# --- derived tables: caches rebuilt from the entries ------------------------------------------------


class VillageState(SQLModel, table=True):
    """The village as of ``size`` entries: the derived tables below reflect exactly that prefix."""

    __tablename__ = "village_state"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    size: int
    name: str | None = None
    name_en: str | None = None
    township: str | None = None
    county: str | None = None
    origin: str | None = None
    green_card_threshold: int | None = None
    rules: int = 1  # the rules the log is written under (its genesis names them)
    latest_time: str | None = Field(default=None, max_length=20)  # the latest entry time in the log


class MemberRow(SQLModel, table=True):
    __tablename__ = "members"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    member_id: str = Field(primary_key=True, max_length=64)
    name: str
    roles: str  # space-separated, sorted
    grid: str | None = None
    household: str | None = None
    added_at: int
    appointed_by: str | None = Field(default=None, max_length=64)


class MemberKeyRow(SQLModel, table=True):
    __tablename__ = "member_keys"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    public: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    member_id: str = Field(max_length=64)
    added_at: int
    revoked_at: int | None = None
    added_by: str | None = Field(default=None, max_length=64)


class GridRow(SQLModel, table=True):
    __tablename__ = "grids"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    grid_id: str = Field(primary_key=True, max_length=64)
    name: str
    name_en: str | None = None
    defined_at: int


class HouseholdRow(SQLModel, table=True):
    __tablename__ = "households"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    household_id: str = Field(primary_key=True, max_length=64)
    grid: str = Field(max_length=64)
    number: str
    public: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))
    commitment: str = Field(max_length=64)
    registered_at: int
    updated_at: int


class RuleRow(SQLModel, table=True):
    __tablename__ = "rules"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    code: str = Field(primary_key=True, max_length=32)
    version: int
    title_zh: str
    title_en: str
    ledger: str = Field(max_length=16)
    direction: str = Field(max_length=8)
    amount: int | None = None
    min: int | None = None
    max: int | None = None
    evidence_required: bool
    description: str | None = None
    published_at: int
    retired_at: int | None = None


class BalanceRow(SQLModel, table=True):
    __tablename__ = "balances"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    account: str = Field(primary_key=True, max_length=80)
    ledger: str = Field(primary_key=True, max_length=16)
    amount: int


class CaseRow(SQLModel, table=True):
    """A complaint's public handling record, as the log states it (no content: see ``ComplaintRow``)."""

    __tablename__ = "complaint_cases"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    receipt: str = Field(primary_key=True, max_length=32)
    route: str = Field(max_length=16)
    grid: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=16)
    filed_at: int
    filed: str = Field(max_length=20)
    accepted: str | None = Field(default=None, max_length=20)
    replied: str | None = Field(default=None, max_length=20)
    closed: str | None = Field(default=None, max_length=20)
    rating: str | None = Field(default=None, max_length=24)
    resolved: bool | None = None
    reopened: bool
    escalated: bool
    updated_at: int


# --- personal data: the only erasable table ---------------------------------------------------------


class HouseholdPrivate(SQLModel, table=True):
    """Personal data of a household (PIPL): names, members, ID numbers, phone, address. Never on the log;
    the log holds only ``commitment = SHA-256(domain || salt || JCS(data))``. Erasure deletes the row."""

    __tablename__ = "household_private"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    household_id: str = Field(primary_key=True, max_length=64)
    salt: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    data: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))


# --- operational data: neither on the log nor derived from it ----------------------------------------


class DoorToken(SQLModel, table=True):
    """The secret in a household's door-plate QR code (``<public url>/h/<token>``). Random, never derived
    from the household id, so nobody can walk the village's households by guessing URLs. A household has
    at most one active token (the partial unique index); reissuing a lost plate revokes the active token
    (``revoked`` set, the row kept so the old plate can say it was replaced) and adds a new one.

    ``household_id`` has no foreign key: ``households`` is a derived table that ``rebuild`` empties and
    refills, and households are never deleted from the log."""

    __tablename__ = "door_tokens"
    __table_args__ = (
        Index("uq_door_tokens_active", "village_id", "household_id", unique=True,
              sqlite_where=text("revoked IS NULL"), postgresql_where=text("revoked IS NULL")),
    )
    id: int | None = Field(default=None, primary_key=True)
    village_id: int = Field(foreign_key="villages.id")
    token: str = Field(unique=True, max_length=64)
    household_id: str = Field(max_length=64)
    issued: str = Field(max_length=20)
    revoked: str | None = Field(default=None, max_length=20)


class ComplaintRow(SQLModel, table=True):
    """What a villager filed (personal data: erasable). The log holds only ``commitment`` =
    SHA-256(domain || salt || JCS(content)); the tracking code is kept only as its SHA-256."""

    __tablename__ = "complaints"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    receipt: str = Field(primary_key=True, max_length=32)
    tracking_hash: str = Field(unique=True, max_length=64)
    salt: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))


class ComplaintMessageRow(SQLModel, table=True):
    """A step's private text (a reply, a villager's answer), opened by ``salt`` against the step's commitment."""

    __tablename__ = "complaint_messages"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    entry_id: str = Field(primary_key=True, max_length=32)
    receipt: str = Field(max_length=32, index=True)
    salt: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))


class ComplaintPhotoRow(SQLModel, table=True):
    """A photo attached to a complaint, re-encoded with no metadata; named by the SHA-256 of its bytes."""

    __tablename__ = "complaint_photos"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    receipt: str = Field(primary_key=True, max_length=32)
    sha256: str = Field(primary_key=True, max_length=64)
    media_type: str = Field(max_length=32)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ComplaintSettingsRow(SQLModel, table=True):
    """A village's complaint routing and deadlines (defaults apply while there is no row)."""

    __tablename__ = "complaint_settings"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    routes: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))
    respond_days: int
    resolve_days: int


class DeskKey(SQLModel, table=True):
    """The complaint desk's signing key, held by the server (encrypted like the log keys): villagers have
    no keys, so the desk signs their receipts, answers and ratings, and the deadline escalations. The
    township registers its public key in the ledger as a member with the ``intake`` role. A village may
    hold several: a replacement is made before the township registers it, so the desk never stops."""

    __tablename__ = "desk_keys"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    public: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    encrypted_pem: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created: str = Field(max_length=20)


class AttachmentRow(SQLModel, table=True):
    """A file that entries name by its SHA-256 (evidence for points, an affair's receipts and minutes):
    a photo re-encoded from its pixels (``storage.images.clean_image``: no EXIF, no GPS), or a PDF as
    uploaded. Public, like the entries that name it; the hash on the log binds the bytes."""

    __tablename__ = "attachments"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    sha256: str = Field(primary_key=True, max_length=64)
    media_type: str = Field(max_length=32)
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    uploaded: str = Field(max_length=20)


class GoodRow(SQLModel, table=True):
    """An item of the points supermarket (积分超市): its price in morality points and its stock. The log
    records each redemption (``points.redeem`` names the item by ``name``); prices and stock are the
    shop's, changed by the committee, and a redemption lowers the stock in the transaction that appends it."""

    __tablename__ = "goods"
    __table_args__ = (
        UniqueConstraint("village_id", "name", name="uq_goods_name"),
        CheckConstraint("price >= 1", name="ck_goods_price"),
        CheckConstraint("stock >= 0", name="ck_goods_stock"),
    )
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    item: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=64)
    price: int
    stock: int
    updated: str = Field(max_length=20)


LOG_TABLES = ("entries", "tree_nodes", "checkpoints")


class UsedChallenge(SQLModel, table=True):
    """A login challenge already exchanged for a token (each is used once, whichever worker sees it). Kept
    until it expires; then it is refused as expired anyway and its row is deleted."""

    __tablename__ = "used_challenges"
    nonce: str = Field(primary_key=True, max_length=64)
    expires: str = Field(max_length=20, index=True)


# --- cosignatures: the village server's copy of what its township's witness cosigned ----------------


class CosignatureRow(SQLModel, table=True):
    """A witness's cosignature (C2SP tlog-cosignature) of the village's checkpoint of ``size``: its signature
    line, verified when stored, and its time (POSIX seconds). Append-only."""

    __tablename__ = "cosignatures"
    village_id: int = Field(foreign_key="villages.id", primary_key=True)
    witness: str = Field(primary_key=True, max_length=200)  # the cosigner's key name
    size: int = Field(primary_key=True)
    line: str
    cosigned_at: int = Field(sa_column=Column(BigInteger, nullable=False))


# --- the township node (its own database, same schema): the witness's memory of each village log -------


class WitnessedLog(SQLModel, table=True):
    """A village log the township's witness cosigns: the log keys it trusts for it (verifier keys, one per
    line) and the latest checkpoint it cosigned (size 0 and no note if none yet), with the cosignature's time.
    One row per origin, checked and updated under a row lock (tlog-witness: atomic check-and-persist)."""

    __tablename__ = "witnessed_logs"
    origin: str = Field(primary_key=True, max_length=200)
    origin_hash: str = Field(unique=True, max_length=64)  # SHA-256 of the origin, hex: the monitoring path
    log_keys: str
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    root: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    note: str | None = None  # the checkpoint as cosigned: the log's signature lines and the witness's
    cosigned_at: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # Monitoring: the village's slug and the prefix its tiles are served under (C2SP tlog-tiles); with them the
    # witness mirrors the log and replays it before cosigning. ``problem``: why it last refused, naming the entry.
    village: str | None = Field(default=None, max_length=40)
    tiles_url: str | None = Field(default=None, max_length=500)
    problem: str | None = None


class WitnessEvidence(SQLModel, table=True):
    """A checkpoint signed by a log's key that the witness refused as inconsistent with what it cosigned (a
    fork, a rollback): the request as received, kept as proof of the log's misbehaviour. Append-only."""

    __tablename__ = "witness_evidence"
    id: int | None = Field(default=None, primary_key=True)
    origin: str = Field(max_length=200, index=True)
    received: str = Field(max_length=20)
    status: int
    reason: str
    request: str
