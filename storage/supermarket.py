"""The points supermarket (积分超市): its goods (price and stock: the shop's, not the ledger's), redemptions
(a member's own signed ``points.redeem``, appended with the stock lowered in the same transaction) and the
month's report of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session

from ledger.entries import leaf_body, parse_entry, utc_now
from ledger.errors import EntryError, MalformedEntry, NotAuthorised

from . import models as m
from .appending import Appended
from .console import ConsoleError
from .db import read_session, write_session
from .reads import _next_month
from .store import Store


@dataclass(frozen=True)
class Good:
    item: str
    name: str
    price: int  # morality points
    stock: int


@dataclass(frozen=True)
class Redeemed:
    appended: Appended
    stock: int  # of the item, after the redemption


def goods(store: Store, slug: str) -> list[Good]:
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        rows = session.execute(select(m.GoodRow).where(m.GoodRow.village_id == village.id).order_by(m.GoodRow.item))  # type: ignore[arg-type]
        return [_good(row) for row in rows.scalars()]


def put_good(store: Store, slug: str, item: str, *, name: str, price: int, stock: int) -> Good:
    """Create or change an item. Requires price >= 1 and stock >= 0; two items may not share a name (a
    redemption names its item by name). Raises ConsoleError naming the field."""
    if price < 1:
        raise ConsoleError("must be at least 1 point", field="price")
    if stock < 0:
        raise ConsoleError("must not be negative", field="stock")
    try:
        with write_session(store.engine) as session:
            village = store.village_row(session, slug)
            assert village.id is not None
            taken = session.execute(select(m.GoodRow.item).where(  # type: ignore[call-overload]
                m.GoodRow.village_id == village.id, m.GoodRow.name == name, m.GoodRow.item != item
            )).scalar_one_or_none()
            if taken is not None:
                raise ConsoleError(f"item {taken!r} already has the name {name!r}", field="name")
            # A table model is not validated when made (SQLModel); its other fields are set on the next line.
            row = session.get(m.GoodRow, (village.id, item)) or m.GoodRow(village_id=village.id, item=item)  # type: ignore[call-arg]
            row.name, row.price, row.stock, row.updated = name, price, stock, utc_now()
            session.add(row)
            session.flush()
            return _good(row)
    except IntegrityError as exc:  # the same name given to two items at once (PostgreSQL)
        raise ConsoleError(f"another item already has the name {name!r}", field="name") from exc


def redeem(store: Store, slug: str, *, member: str, item: str, signed: Mapping[str, Any]) -> Redeemed:
    """Append a member's own signed ``points.redeem`` of ``item`` and lower its stock, in one transaction.
    Fields are named as in the request ``{"item", "entry": <signed>}``. Any refusal changes nothing.

    (1) ``signed`` is a valid ``points.redeem`` whose author key is one of ``member``'s keys;
    (2) append it; once the ledger has accepted it (the balance, the grid worker's grid, a cosigner for
        one's own household), in the same transaction: the item exists, the entry names it, pays
        price x quantity, and the stock covers the quantity; then lower the stock;
    (3) an entry already in the log is answered with its first result and lowers no stock again."""
    # (1)
    entry = _nested_errors("entry", parse_entry, signed)
    if entry.kind != "points.redeem":
        raise ConsoleError(f"must be a points.redeem entry, not {entry.kind}", field="entry.entry.kind")
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        key = session.get(m.MemberKeyRow, (village.id, entry.author))
    if key is None or key.member_id != member:
        raise NotAuthorised("the entry must be signed with your own member key", field="entry.entry.author")
    # (2)
    lowered: list[int] = []

    def lower_stock(session: Session, village_id: int) -> None:
        row = session.get(m.GoodRow, (village_id, item), with_for_update=True)
        body = entry.body
        if row is None:
            raise ConsoleError(f"the supermarket has no item {item!r}", field="item")
        if body["item"] != row.name:
            raise ConsoleError(f"the entry redeems {body['item']!r}; item {item!r} is {row.name!r}",
                               field="entry.entry.body.item")
        if body["amount"] != row.price * body["quantity"]:
            raise ConsoleError(f"{body['quantity']} x {row.name} costs {row.price * body['quantity']} points, "
                               f"not {body['amount']}", field="entry.entry.body.amount")
        if body["quantity"] > row.stock:
            raise ConsoleError(f"only {row.stock} of {row.name} in stock", field="entry.entry.body.quantity")
        row.stock -= body["quantity"]
        row.updated = utc_now()
        session.add(row)
        lowered.append(row.stock)

    (appended,) = _nested_errors("entry", store.append, slug, [entry], alongside=lower_stock)
    if lowered:
        return Redeemed(appended, lowered[0])
    # (3)
    current = {good.item: good.stock for good in goods(store, slug)}
    if item not in current:
        raise ConsoleError(f"the supermarket has no item {item!r}", field="item")
    return Redeemed(appended, current[item])


def _good(row: m.GoodRow) -> Good:
    return Good(row.item, row.name, row.price, row.stock)


def _nested_errors(under: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, an EntryError's fields put under ``under`` (where the signed entry
    sits in the request body)."""
    try:
        return function(*args, **kwargs)
    except EntryError as exc:
        exc.field = f"{under}.{exc.field or 'entry'}"
        if isinstance(exc, MalformedEntry):
            exc.problems = {f"{under}.{name}": reasons for name, reasons in exc.problems.items()}
        raise


@dataclass(frozen=True)
class Redemption:
    index: int
    time: str
    household: str
    item: str
    quantity: int
    amount: int
    reversed: bool  # a points.reverse undid it (points refunded): left out of the totals


@dataclass(frozen=True)
class RedemptionReport:
    items: list[Redemption]
    totals: dict[str, dict[str, int]]  # item name -> {"quantity", "amount"}, of the redemptions not reversed


def redemptions(store: Store, slug: str, month: str) -> RedemptionReport:
    """The month's redemptions (``points.redeem`` entries dated in ``month``, YYYY-MM), in log order, and
    the quantity and points per item."""
    reversal = aliased(m.EntryRow)
    with read_session(store.engine) as session:
        village = store.village_row(session, slug)
        rows = session.execute(
            select(m.EntryRow.idx, m.EntryRow.time, m.EntryRow.household, m.EntryRow.leaf, reversal.idx)  # type: ignore[call-overload]
            .join(reversal, and_(reversal.village_id == m.EntryRow.village_id, reversal.kind == "points.reverse",  # type: ignore[arg-type]
                                 reversal.ref == m.EntryRow.entry_id), isouter=True)  # type: ignore[arg-type]
            .where(m.EntryRow.village_id == village.id, m.EntryRow.kind == "points.redeem",
                   m.EntryRow.time >= f"{month}-01", m.EntryRow.time < _next_month(month))
            .order_by(m.EntryRow.idx)
        ).all()
    items: list[Redemption] = []
    totals: dict[str, dict[str, int]] = {}
    for idx, time_, household, leaf, reversed_at in rows:
        body = leaf_body(leaf)
        redemption = Redemption(idx, time_, household, body["item"], body["quantity"], body["amount"], reversed_at is not None)
        items.append(redemption)
        if not redemption.reversed:
            total = totals.setdefault(redemption.item, {"quantity": 0, "amount": 0})
            total["quantity"] += redemption.quantity
            total["amount"] += redemption.amount
    return RedemptionReport(items, totals)

