"""The seat protocol: how the shop sells a scarce seat exactly once, whatever the concurrency.

Availability of a ticket type is `capacity − sold − seats held by unexpired holds`, counted in the database at the
moment of a decision, never taken from a cache. An expired hold stops counting the moment it expires; no job has to
run for that (`release_expired` only tidies rows).

**One lock primitive: the row lock** that PostgreSQL's `UPDATE` takes (FOR NO KEY UPDATE), held until the
transaction ends. Where a decision is read under it, it is taken first with `SELECT … FOR NO KEY UPDATE` (the
`lock_*` functions); where the write itself is the decision (taking a hold's seats, giving seats back) the UPDATE
takes it. FOR NO KEY UPDATE, not FOR UPDATE: inserting a row that merely refers to a locked one (a hold of that
ticket type, an order line) never waits for it. SQLite has no row locks: there every write transaction begins
IMMEDIATE (settings), which serializes all writers, so the same code is correct on both.

**One lock order**, for every writer: the basket, then orders, then events, then waiting-list entries, then vouchers,
then ticket types, each kind in primary-key order. Two writers therefore never wait for each other in a circle: no
deadlock. The ticket types are the hot rows of an on-sale rush, so they are locked last and held for as little as
possible; nothing slow (an email, a template, a payment call) ever runs in these transactions.

**Voucher redemptions are seats of another kind**: `max_redemptions − redeemed − redemptions of unexpired holds
carrying the voucher`, counted under the voucher's row lock, and `redeemed` grows in the transaction that sells the
seats. A hold that expires (an abandoned basket, a pending order never paid) gives its redemptions back as it gives
its seats back: by no longer counting.

**The waiting list comes before the public.** A ticket type's `waiting` counts the seats its waiting list wants
(confirmed entries not yet offered any), and a basket add may hold only what is free beyond them: `capacity − sold −
held − waiting`. So a seat freed while someone waits, by a cancellation or by a hold or pending order that simply
expired (no write at all), can't be taken by the public; the waiting list's sweep (orders/waiting_list.py) offers it
to the next in line by holding it in a basket of their own, moving it from `waiting` to a hold under the same lock.

**SQL of its own.** This is the one module allowed to write SQL, and it does so only for the statements every basket
add and checkout runs, where building the statement through the ORM cost several times more CPU than the database
took to answer it (figures: docs/performance.md, "The seat protocol's statements"). Each says so; everything else
goes through the ORM.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import Exists, F, Field, Model, OuterRef, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext

from aegistickets.errors import BasketNotFoundError, IdempotencyConflictError, NotFoundError, PriceChangedError
from events.models import Event, TicketType, Voucher
from orders.models import Basket, Hold, IdempotencyRecord, Order, Ticket, new_basket_token

_Model = TypeVar("_Model", bound=Model)

# --- what is held ---------------------------------------------------------------------------------------------


def held_seats(now: datetime) -> QuerySet[Hold]:
    """The holds that keep seats from sale at `now`, as the catalog counts them (registered with
    events.availability when the orders app starts). `held_by_others` is the same rule in SQL; a test holds the two
    to the same answers."""
    return Hold.objects.filter(expires_at__gt=now)


def held_by_others(*, ticket_type_id: int, basket_id: int, now: datetime) -> int:
    """Seats of a ticket type that other baskets hold at `now`. Call it with the ticket type locked, in a statement
    of its own after the lock: then it sees every hold committed by whoever held the lock before.

    SQL of its own: the ORM's aggregate cost ~3 times the CPU of this statement, in every basket add."""
    sql = (
        f"SELECT COALESCE(SUM(quantity), 0) FROM {_table(Hold)} "  # noqa: S608 - model metadata
        "WHERE ticket_type_id = %s AND expires_at > %s AND basket_id <> %s"
    )
    ((held,),) = _rows(sql, [ticket_type_id, connection.ops.adapt_datetimefield_value(now), basket_id])
    return int(held)


@dataclass(frozen=True)
class Seats:
    """A ticket type's seat counters and price, as read under its lock."""

    ticket_type_id: int
    capacity: int
    sold: int
    price: Decimal
    waiting: int = 0  # seats the waiting list wants


def free_seats(*, seats: Seats, basket_id: int, now: datetime) -> int:
    """Seats a basket could still hold: capacity − sold − other baskets' holds − what the waiting list wants."""
    held = held_by_others(ticket_type_id=seats.ticket_type_id, basket_id=basket_id, now=now)
    return seats.capacity - seats.sold - held - seats.waiting


def free_for_waiting_list(*, seats: Seats, now: datetime) -> int:
    """Seats nobody holds or bought: what the waiting list may be offered (its own wants are not subtracted)."""
    return seats.capacity - seats.sold - held_by_others(ticket_type_id=seats.ticket_type_id, basket_id=0, now=now)


def wait(counts: Mapping[int, int]) -> None:
    """Counts seats (by ticket type) as wanted by the waiting list, or no longer (a negative count), in ticket-type
    order. Call it with the ticket types locked."""
    for ticket_type_id, count in sorted(counts.items()):
        if count:
            TicketType.objects.filter(pk=ticket_type_id).update(waiting=F("waiting") + count)


def basket_holds(*, token: str | None = None, basket_id: int | None = None) -> list[Hold]:
    """A basket's holds (by its token or id), oldest first, each with its basket, ticket type and event, as fresh as
    the database (never the catalog cache): what checkout prices and sells, and what the basket pages show.

    SQL of its own: with select_related the ORM's building of this four-table join cost ~4 times the CPU of the
    statement, and it runs for every basket answer and three times in every checkout."""
    read = _basket_holds_read("b.token" if token is not None else "b.id")
    holds = []
    for row in _converted_rows(read.sql, [token if token is not None else basket_id], read.fields):
        hold = read.load(Hold, row)
        hold.basket = read.load(Basket, row)
        hold.ticket_type = read.load(TicketType, row)
        hold.ticket_type.event = read.load(Event, row)
        holds.append(hold)
    _attach_vouchers(holds)
    return holds


def _attach_vouchers(holds: list[Hold]) -> None:
    """Each hold's voucher, in one query, and none for a basket without vouchers (nearly every one)."""
    ids = {hold.voucher_id for hold in holds if hold.voucher_id is not None}
    if ids:
        vouchers = Voucher.objects.in_bulk(ids)
        for hold in holds:
            if hold.voucher_id is not None:
                hold.voucher = vouchers[hold.voucher_id]


def basket_lines(basket_id: int) -> dict[int, tuple[int, Decimal, int | None]]:
    """A basket's holds as they are now: quantity, current list price and voucher by ticket type. Read by checkout
    under the basket's lock, to sell exactly what it charged for (a hold renewed since has a new quantity too).

    SQL of its own: the narrow read checkout needs under its lock; the ORM's cost ~4 times its CPU."""
    sql = (
        f"SELECT h.ticket_type_id, h.quantity, t.price, h.voucher_id FROM {_table(Hold)} h "  # noqa: S608 - model metadata
        f"JOIN {_table(TicketType)} t ON t.id = h.ticket_type_id WHERE h.basket_id = %s"
    )
    rows = _rows(sql, [basket_id])
    return {type_id: (quantity, _money(price), voucher_id) for type_id, quantity, price, voucher_id in rows}


# --- locks ----------------------------------------------------------------------------------------------------


def lock_basket(*, token: str | None = None, pk: int | None = None) -> Basket:
    """The basket's row lock: first in the lock order. One of `token` or `pk`.

    SQL of its own: the ORM's SELECT … FOR NO KEY UPDATE cost ~3 times the CPU of this one, in every basket add to an
    existing basket and every checkout."""
    column, value = ("token", token) if token is not None else ("id", pk)
    sql = f"SELECT id, token, for_offer FROM {_table(Basket)} WHERE {column} = %s{_lock_clause()}"  # noqa: S608 - model metadata, fixed column names
    rows = _rows(sql, [value])
    if not rows:
        raise BasketNotFoundError()
    pk, token_, for_offer = rows[0]
    return Basket.from_db(connection.alias, ["id", "token", "for_offer"], [pk, token_, bool(for_offer)])


def lock_order(order_id: int) -> Order:
    """An order's row lock: orders its cancellation with its check-ins and with a second cancellation."""
    order = Order.objects.select_for_update(no_key=True).filter(pk=order_id).first()
    if order is None:
        raise NotFoundError(gettext("No such order."))
    return order


def lock_events(ids: Iterable[int]) -> None:
    """Event row locks, in primary-key order: they serialize the orders that count against an event's limit of
    tickets per buyer."""
    list(Event.objects.select_for_update(no_key=True).filter(pk__in=set(ids)).order_by("pk").values_list("pk"))


def lock_vouchers(ids: Iterable[int]) -> dict[int, Voucher]:
    """Voucher row locks, in primary-key order (after the events', before the ticket types'), and the vouchers as
    they are under them."""
    locked = Voucher.objects.select_for_update(no_key=True).filter(pk__in=set(ids)).order_by("pk")
    return {voucher.pk: voucher for voucher in locked}


def lock_ticket_type(ticket_type_id: int) -> Seats:
    """A ticket type's row lock (last in the lock order) and its seats as they are under it.

    SQL of its own: the ORM's SELECT … FOR NO KEY UPDATE cost ~4 times the CPU of this one, and it runs in every
    basket add while the hot row is locked."""
    sql = f"SELECT capacity, sold, price, waiting FROM {_table(TicketType)} WHERE id = %s{_lock_clause()}"  # noqa: S608 - model metadata
    rows = _rows(sql, [ticket_type_id])
    if not rows:
        raise NotFoundError(gettext("No such ticket type."))  # deleted since the catalog cache read it
    capacity, sold, price, waiting = rows[0]
    return Seats(ticket_type_id=ticket_type_id, capacity=capacity, sold=sold, price=_money(price), waiting=waiting)


# --- holding, taking, releasing -------------------------------------------------------------------------------


def new_basket() -> Basket:
    """A new, empty basket, for a first basket add (in its transaction).

    SQL of its own, with `hold`: written by the ORM (create(), update()) these two made a basket add 18 % dearer in
    CPU (15 % more Python calls; docs/performance.md), and a first basket add is most of an on-sale rush."""
    token, now = new_basket_token(), timezone.now()
    sql = f"INSERT INTO {_table(Basket)} (token, created_at, updated_at) VALUES (%s, %s, %s) RETURNING id"  # noqa: S608 - model metadata
    stamp = connection.ops.adapt_datetimefield_value(now)
    ((pk,),) = _rows(sql, [token, stamp, stamp])
    fields = ["id", "token", "created_at", "updated_at", "for_offer"]
    return Basket.from_db(connection.alias, fields, [pk, token, now, now, False])


def hold(
    *,
    basket: Basket,
    ticket_type_id: int,
    held: Hold | None,
    quantity: int,
    expires_at: datetime,
    voucher_id: int | None = None,
) -> Hold:
    """Writes a basket's hold of `quantity` seats, each priced with the voucher: a new one, or `held` (its hold of
    this ticket type) changed. Nobody sees it before commit: call `free_seats` under the ticket type's lock next (and
    `free_redemptions` under the voucher's before), and refuse (roll back) if it went too far.

    SQL of its own: see `new_basket`."""
    until = connection.ops.adapt_datetimefield_value(expires_at)
    if held is not None:
        sql = f"UPDATE {_table(Hold)} SET quantity = %s, expires_at = %s, voucher_id = %s WHERE id = %s"  # noqa: S608 - model metadata
        _write(sql, [quantity, until, voucher_id, held.pk])
        held.quantity, held.expires_at, held.voucher_id = quantity, expires_at, voucher_id
        return held
    now = timezone.now()
    sql = (
        f"INSERT INTO {_table(Hold)} (basket_id, ticket_type_id, quantity, expires_at, created_at, voucher_id) "  # noqa: S608 - model metadata
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
    )
    stamp = connection.ops.adapt_datetimefield_value(now)
    ((pk,),) = _rows(sql, [basket.pk, ticket_type_id, quantity, until, stamp, voucher_id])
    fields = ["id", "basket_id", "ticket_type_id", "quantity", "expires_at", "created_at", "voucher_id"]
    values = [pk, basket.pk, ticket_type_id, quantity, expires_at, now, voucher_id]
    created = Hold.from_db(connection.alias, fields, values)
    created.basket = basket
    return created


def take(holds: list[Hold], *, prices: dict[int, Decimal] | None) -> None:
    """Turns held seats into sold ones, in ticket-type order, each at the price it was quoted: the UPDATE locks the
    row and, when an organizer changed the price since, changes nothing (PriceChangedError rolls the sale back).
    `prices=None` sells whatever the price is now: a pending order's price was fixed when it was placed.
    Only for seats a live hold reserved, or that `free_seats` found free under the lock, so capacity is never
    exceeded (the CHECK constraint on the row would refuse it anyway).

    SQL of its own: the ORM's UPDATE cost ~2.5 times the CPU of this one, in every checkout, and it is the statement
    that takes the hot row's lock."""
    sql = f"UPDATE {_table(TicketType)} SET sold = sold + %s WHERE id = %s"  # noqa: S608 - model metadata
    for held in sorted(holds, key=lambda h: h.ticket_type_id):
        if prices is None:
            _write(sql, [held.quantity, held.ticket_type_id])
            continue
        price = connection.ops.adapt_decimalfield_value(prices[held.ticket_type_id], 10, 2)
        if not _write(sql + " AND price = %s", [held.quantity, held.ticket_type_id, price]):
            raise PriceChangedError()


def free_redemptions(*, voucher: Voucher, basket_id: int, now: datetime) -> int:
    """Redemptions a basket could still hold: max − redeemed − other baskets' unexpired holds carrying the voucher.
    Call it with the voucher locked (`lock_vouchers`), in a statement after the lock, as `free_seats`."""
    others = Hold.objects.filter(voucher_id=voucher.pk, expires_at__gt=now).exclude(basket_id=basket_id)
    held = others.aggregate(held=Coalesce(Sum("quantity"), 0))["held"]
    return voucher.max_redemptions - voucher.redeemed - int(held)


def redeem(counts: Mapping[int, int]) -> None:
    """Counts redemptions (tickets, by voucher) as used, in voucher order: with the seats they priced, sold; a
    negative count gives them back (their tickets were cancelled). Only for redemptions a live hold kept or
    `free_redemptions` found free under the lock; the row's CHECK constraint refuses more than the maximum anyway."""
    for voucher_id, count in sorted(counts.items()):
        if count:
            Voucher.objects.filter(pk=voucher_id).update(redeemed=F("redeemed") + count)


def move_holds(*, from_basket_id: int, to_basket_id: int, until: datetime | None) -> int:
    """Gives a basket's holds to another basket (a pending order's own), to last until `until`. Both baskets must be
    locked by the caller; the seats they hold stay taken throughout."""
    return Hold.objects.filter(basket_id=from_basket_id).update(basket_id=to_basket_id, expires_at=until)


def release(seats: Mapping[int, int]) -> None:
    """Gives sold seats (a count by ticket type) back to sale, in ticket-type order."""
    for ticket_type_id, count in sorted(seats.items()):
        if count:
            TicketType.objects.filter(pk=ticket_type_id).update(sold=F("sold") - count)


def valid_seats(order_id: int) -> Counter[int]:
    """The seats an order's valid tickets take, by ticket type: what its cancellation gives back (a ticket cancelled
    on its own gave its seat back already)."""
    tickets = Ticket.objects.filter(order_id=order_id, cancelled_at__isnull=True)
    return Counter(tickets.values_list("ticket_type_id", flat=True))


@dataclass(frozen=True)
class Taken:
    """What some tickets took: seats by ticket type, voucher redemptions by voucher."""

    seats: Counter[int]
    redemptions: Counter[int]


def taken_by(tickets: QuerySet[Ticket]) -> Taken:
    """What the valid ones of these tickets took, read before they are voided."""
    valid = list(tickets.filter(cancelled_at__isnull=True).values_list("ticket_type_id", "line__voucher_id"))
    return Taken(
        seats=Counter(ticket_type_id for ticket_type_id, _ in valid),
        redemptions=Counter(voucher_id for _, voucher_id in valid if voucher_id is not None),
    )


def give_back(taken: Taken) -> None:
    """Gives voided tickets' voucher redemptions, then their seats, back (vouchers before ticket types, as the lock
    order has them); the seat rows are locked here, so call it last."""
    redeem({voucher_id: -count for voucher_id, count in taken.redemptions.items()})
    release(taken.seats)


def release_holds(basket_id: int, *, hold_ids: Iterable[int] | None = None) -> int:
    """Deletes a basket's holds (or some of them): their seats are free for others once this commits.

    SQL of its own: the ORM's delete (its collector, then the DELETE) cost ~4 times the CPU of this statement, in
    every checkout."""
    sql, params = f"DELETE FROM {_table(Hold)} WHERE basket_id = %s", [basket_id]  # noqa: S608 - model metadata
    if hold_ids is not None:
        ids = list(hold_ids)
        sql += f" AND id IN ({', '.join(['%s'] * len(ids))})" if ids else " AND 1 = 0"
        params += ids
    return _write(sql, params)


def insert(objs: Sequence[_Model]) -> list[_Model]:
    """Writes new instances of one model in one INSERT … RETURNING id and returns them as the ORM loads them
    (Model.from_db): the order, its lines and tickets, as checkout writes them. Each value is prepared as the ORM's
    own insert prepares it (Field.pre_save, then get_db_prep_save). No signal is sent, as with bulk_create.

    SQL of its own: with bulk_create for these four rows a checkout cost 18 % more CPU (14 % more Python calls;
    docs/performance.md)."""
    if not objs:
        return []
    sql, fields = _insert_statement(type(objs[0]), len(objs))
    values = [[field.pre_save(obj, add=True) for field in fields] for obj in objs]
    params = [
        field.get_db_prep_save(value, connection) for row in values for field, value in zip(fields, row, strict=True)
    ]
    ids = [pk for (pk,) in _rows(sql, params)]
    names = ["id", *(field.attname for field in fields)]
    return [
        type(obj).from_db(connection.alias, names, [pk, *row]) for obj, pk, row in zip(objs, ids, values, strict=True)
    ]


def insert_new(obj: Model) -> bool:
    """Writes a new instance whose primary key the caller chose, unless a row with that key exists: whether it was
    written. One statement, which neither fails nor ends the caller's transaction on a clash (no savepoint).

    SQL of its own: with the ORM's create in a savepoint, the clash caught, and the ORM's update for the `test`
    provider's books, an API checkout made 8 % more Python calls (9 176 against 8 456; docs/performance.md)."""
    sql, fields = _insert_new_statement(type(obj))
    params = [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields]
    return _write(sql, params) == 1


@functools.cache
def _insert_new_statement(model: type[Model]) -> tuple[str, tuple[Field[Any, Any], ...]]:
    fields = tuple(model._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(str(field.column)) for field in fields)
    values = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {_table(model)} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING"  # noqa: S608 - model metadata
    return sql, fields


@functools.cache
def _insert_statement(model: type[Model], rows: int) -> tuple[str, tuple[Field[Any, Any], ...]]:
    fields = tuple(field for field in model._meta.concrete_fields if not field.primary_key)
    columns = ", ".join(connection.ops.quote_name(str(field.column)) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = f"INSERT INTO {_table(model)} ({columns}) VALUES {', '.join([row] * rows)} RETURNING id"  # noqa: S608 - model metadata
    return sql, fields


def update(obj: Model, fields: Sequence[str], *, only_if: tuple[str, object] | None = None) -> int:
    """Writes these fields of a saved instance in one UPDATE by primary key (and, with `only_if`, only while another
    field still holds a value); the number of rows written. Values are prepared as the ORM's own save prepares them.

    SQL of its own: with the ORM's save and update for the payment's bookkeeping writes an API checkout cost 4 %
    more CPU than with this and `insert` (docs/performance.md)."""
    model = type(obj)
    sql, columns = _update_statement(model, tuple(fields), only_if[0] if only_if else None)
    params: list[Any] = [field.get_db_prep_save(field.pre_save(obj, add=False), connection) for field in columns]
    params.append(obj.pk)
    if only_if is not None:
        params.append(_concrete_field(model, only_if[0]).get_db_prep_save(only_if[1], connection))
    return _write(sql, params)


@functools.cache
def _update_statement(
    model: type[Model], names: tuple[str, ...], condition: str | None
) -> tuple[str, tuple[Field[Any, Any], ...]]:
    fields = tuple(_concrete_field(model, name) for name in names)
    assignments = ", ".join(f"{connection.ops.quote_name(str(field.column))} = %s" for field in fields)
    key = connection.ops.quote_name(str(model._meta.pk.column))
    sql = f"UPDATE {_table(model)} SET {assignments} WHERE {key} = %s"  # noqa: S608 - model metadata
    if condition is not None:
        sql += f" AND {connection.ops.quote_name(str(_concrete_field(model, condition).column))} = %s"
    return sql, fields


def _concrete_field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.concrete:
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return field


# --- idempotency ----------------------------------------------------------------------------------------------


def placed_order(*, key: str | None, fingerprint: str | None) -> Order | None:
    """The order a checkout with this Idempotency-Key already placed, if any. A key reused for a different request
    (another `fingerprint`) is refused with IdempotencyConflictError; `fingerprint=None` accepts any. The record
    commits in the order's own transaction, so an order is found here exactly when it exists.

    SQL of its own for the look-up: every keyed checkout asks, nearly always to find nothing, and the ORM's query
    cost ~5 times the CPU of this narrow read of the key's index. A replay then reads its order through the ORM."""
    if not key:
        return None
    rows = _rows(f'SELECT fingerprint, order_id FROM {_table(IdempotencyRecord)} WHERE "key" = %s', [key])  # noqa: S608 - model metadata
    if not rows:
        return None
    stored, order_id = rows[0]
    if fingerprint is not None and stored != fingerprint:
        raise IdempotencyConflictError()
    return Order.objects.get(pk=order_id)


# --- housekeeping ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseResult:
    holds: int
    baskets: int


def release_expired(
    *, now: datetime, grace: timedelta = timedelta(hours=1), basket_max_age: timedelta = timedelta(days=1)
) -> ReleaseResult:
    """Deletes holds expired for longer than `grace` and old empty baskets. Housekeeping only: an expired hold
    already counts for nothing, and within `grace` a returning shopper can still renew it at checkout."""
    stale_holds = Hold.objects.filter(basket=OuterRef("pk"), expires_at__lte=now - grace)
    with transaction.atomic():
        # The baskets' locks first, as every writer takes them; those a shopper is using right now are skipped.
        baskets = list(
            Basket.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(Exists(stale_holds))
            .values_list("pk", flat=True)
        )
        holds, _ = Hold.objects.filter(basket_id__in=baskets, expires_at__lte=now - grace).delete()
    with transaction.atomic():
        empty = list(
            Basket.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(~Exists(Hold.objects.filter(basket=OuterRef("pk"))), updated_at__lt=now - basket_max_age)
            .values_list("pk", flat=True)
        )
        Basket.objects.filter(pk__in=empty).delete()
    return ReleaseResult(holds=holds, baskets=len(empty))


# --- the SQL helpers of this module ---------------------------------------------------------------------------


@functools.cache
def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _lock_clause() -> str:
    """The row lock of the protocol; SQLite has none (its writers begin IMMEDIATE)."""
    return " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""


def _rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _write(sql: str, params: Sequence[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _money(value: object) -> Decimal:
    """A price read with SQL of our own (SQLite hands back a float) as the Decimal the model would give."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class _Join:
    """A join's SQL, the fields of its select list in order, and where each model's columns lie in a row."""

    sql: str
    fields: tuple[Field[Any, Any], ...]
    slices: dict[type[Model], slice]

    def load(self, model: type[_Model], row: Sequence[Any]) -> _Model:
        """The instance of `model` in a row, as the ORM loads one (Model.from_db)."""
        part = self.slices[model]
        return model.from_db(connection.alias, [f.attname for f in self.fields[part]], row[part])


@functools.cache
def _basket_holds_read(column: str) -> _Join:
    tables: tuple[tuple[type[Model], str], ...] = ((Hold, "h"), (Basket, "b"), (TicketType, "t"), (Event, "e"))
    selects: list[str] = []
    fields: list[Field[Any, Any]] = []
    slices: dict[type[Model], slice] = {}
    for model, alias in tables:
        concrete = list(model._meta.concrete_fields)
        selects += [f"{alias}.{connection.ops.quote_name(str(f.column))}" for f in concrete]
        slices[model] = slice(len(fields), len(fields) + len(concrete))
        fields += concrete
    sql = (
        f"SELECT {', '.join(selects)} FROM {_table(Hold)} h "  # noqa: S608 - model metadata
        f"JOIN {_table(Basket)} b ON b.id = h.basket_id "
        f"JOIN {_table(TicketType)} t ON t.id = h.ticket_type_id "
        f"JOIN {_table(Event)} e ON e.id = t.event_id "
        f"WHERE {column} = %s ORDER BY h.id"
    )
    return _Join(sql=sql, fields=tuple(fields), slices=slices)


def _converted_rows(sql: str, params: Sequence[Any], fields: Sequence[Field[Any, Any]]) -> list[list[Any]]:
    """The rows of a SELECT whose columns are `fields`, each value converted as the ORM converts what it reads (the
    backend's converters, then the field's own): Decimals, aware datetimes and booleans on every database."""
    converters = _converters(tuple(fields))
    rows = [list(row) for row in _rows(sql, params)]
    for row in rows:
        for index, column, functions in converters:
            for convert in functions:
                row[index] = convert(row[index], column, connection)
    return rows


@functools.lru_cache(maxsize=8)
def _converters(fields: tuple[Field[Any, Any], ...]) -> list[tuple[int, Any, list[Callable[..., Any]]]]:
    """Which columns need converting and how, worked out once per process (what the ORM's compiler works out for
    each query); PostgreSQL needs none for these fields, SQLite needs them for decimals, datetimes and booleans."""
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(field.model._meta.db_table)
        functions = [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]
        if functions:
            converters.append((index, column, functions))
    return converters
