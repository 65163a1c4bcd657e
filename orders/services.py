"""Baskets, holds, checkout and cancellation: every write that touches seats.

The seat protocol (../shared/DESIGN.md): a writer opens a transaction, locks the ticket-type rows it
touches with SELECT … FOR UPDATE in primary-key order, recomputes availability from the database, writes,
commits. Nothing slow runs while those locks are held; the payment provider is called before them.
On SQLite (no FOR UPDATE) every write transaction starts with BEGIN IMMEDIATE, which serializes writers.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, Exists, F, Field, OuterRef
from django.utils import timezone

from aegistickets.db import insert_new, select_converted, with_prefetched
from aegistickets.errors import (
    AlreadyCheckedInError,
    BasketEmptyError,
    BasketNotFoundError,
    BuyerLimitExceededError,
    HoldExpiredError,
    IdempotencyConflictError,
    InsufficientInventoryError,
    MaxPerOrderExceededError,
    NotFoundError,
    NotOnSaleError,
    OrderNotCancellableError,
    PaymentDeclinedError,
    PriceChangedError,
    SoldOutError,
    TicketCancelledError,
    TicketNotFoundError,
    ValidationFailedError,
    WrongEventError,
)
from events.cache import catalog_cached, recently_sold_out, remember_sold_out
from events.models import Event, TicketType
from events.selectors import ticket_type_is_on_sale
from orders import metrics, outbox, selectors
from orders.models import (
    Basket,
    CheckIn,
    Hold,
    IdempotencyRecord,
    Order,
    OrderLine,
    OutboundEmail,
    Refund,
    Ticket,
    new_order_code,
)
from orders.payments import PaymentResult, payment_provider_for, payment_provider_named

ORDER_CODE_ATTEMPTS = 5


def hold_duration() -> timedelta:
    return timedelta(minutes=settings.HOLD_MINUTES)


def _lock_ticket_types(ids: Iterable[int]) -> dict[int, TicketType]:
    """Row locks on the seats' guards, always in primary-key order so two writers cannot deadlock."""
    rows = (
        TicketType.objects.select_for_update(of=("self",))
        .select_related("event")
        .filter(pk__in=sorted(set(ids)))
        .order_by("pk")
    )
    return {row.pk: row for row in rows}


def _for_update() -> str:
    """The row-lock clause of the plain-SQL locks below; SQLite has none (its writers begin IMMEDIATE)."""
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


def _lock_seats(ticket_type_id: int) -> tuple[int, Decimal]:
    """Takes the one row lock that guards a ticket type's seats; returns its unsold seats and its price as
    they are under that lock. Plain SQL: this runs in every basket add, and the hot row stays locked from
    here to commit, so nothing else runs in the request at this point but the count that follows."""
    table = TicketType._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT capacity - sold, price FROM {table} WHERE id = %s{_for_update()}", [ticket_type_id])  # noqa: S608 - model table name
        row = cursor.fetchone()
    if row is None:
        raise NotFoundError("No such ticket type.")  # deleted since the catalog cache read it
    return row[0], _money(row[1])


def _money(value: object) -> Decimal:
    """A price column read with plain SQL (SQLite hands back a float) as the Decimal the model would give."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _take_seats(*, ticket_type_id: int, quantity: int) -> Decimal:
    """Adds `quantity` to the sold counter, locking the row in the same round trip; returns the price the
    row has under that lock. Only for seats a live hold reserved, so capacity is never exceeded (the
    CHECK constraint would refuse it anyway)."""
    table = TicketType._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET sold = sold + %s WHERE id = %s RETURNING price",  # noqa: S608 - model table name
            [quantity, ticket_type_id],
        )
        (price,) = cursor.fetchone()
    return _money(price)


def _held_by_others(*, ticket_type_id: int, basket_id: int, now: datetime) -> int:
    """Seats other baskets hold right now; call it with the ticket type locked, in a statement of its own (so
    that it sees every hold committed by whoever held the lock before). Plain SQL, as `_lock_seats`."""
    table = Hold._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE(SUM(quantity), 0) FROM {table} "  # noqa: S608 - model table name
            "WHERE ticket_type_id = %s AND expires_at > %s AND basket_id <> %s",
            [ticket_type_id, connection.ops.adapt_datetimefield_value(now), basket_id],
        )
        (held,) = cursor.fetchone()
    return int(held)


def _lock_basket(basket_id: int) -> None:
    """The basket's row lock, by primary key, in plain SQL like `_lock_seats`: checkout takes it first."""
    table = Basket._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE id = %s{_for_update()}", [basket_id])  # noqa: S608 - model table name
        if cursor.fetchone() is None:
            raise BasketNotFoundError()  # deleted since order_place read its holds


def _basket_for_update(token: str) -> Basket:
    try:
        return Basket.objects.select_for_update().get(token=token)
    except Basket.DoesNotExist:
        raise BasketNotFoundError() from None


def _max_per_order_error(ticket_type: TicketType, *, already: int) -> MaxPerOrderExceededError:
    return MaxPerOrderExceededError(
        f"At most {ticket_type.max_per_order} {ticket_type.name} tickets per order"
        + (f"; your basket already holds {already}." if already else "."),
        extra={"max_per_order": ticket_type.max_per_order},
    )


def _refuse_unless_available(*, ticket_type: TicketType, wanted: int, already: int, available: int) -> None:
    if wanted > available:
        more = max(available - already, 0)
        if more == 0:
            raise SoldOutError(f"{ticket_type.name} is sold out.", extra={"available": 0})
        raise InsufficientInventoryError(
            f"Only {more} more {ticket_type.name} {'ticket is' if more == 1 else 'tickets are'} available.",
            extra={"available": more},
        )


@metrics.records_outcome("basket", lambda basket: "held")
def basket_add(*, token: str | None, ticket_type_id: int, quantity: int, now: datetime) -> Basket:
    """Holds seats for HOLD_MINUTES; never holds more than capacity − sold − other baskets' holds."""
    if quantity < 1:
        raise ValidationFailedError(errors={"quantity": ["Must be at least 1."]})
    # Every refusal that needs no lock is decided before taking one: in an on-sale rush most answers are
    # "sold out", and they must not queue for the hot row's lock. The ticket type's own fields come from
    # the catalog cache (at most CATALOG_CACHE_SECONDS old); seats are counted under the lock below.
    ticket_type = catalog_cached(
        f"tickettype:{ticket_type_id}",
        lambda: TicketType.objects.select_related("event").filter(pk=ticket_type_id).first(),
    )
    if ticket_type is None or not ticket_type.event.is_published:
        raise NotFoundError("No such ticket type.")
    if not ticket_type_is_on_sale(ticket_type, now=now):
        raise NotOnSaleError(f"{ticket_type.name} tickets are not on sale right now.")
    if quantity > ticket_type.max_per_order:
        raise _max_per_order_error(ticket_type, already=0)
    if recently_sold_out(ticket_type_id):
        raise SoldOutError(f"{ticket_type.name} is sold out.", extra={"available": 0})

    with transaction.atomic():
        # The basket row first, then the ticket type: the same order as checkout.
        if token:
            basket: Basket | None = _basket_for_update(token)
            hold = Hold.objects.filter(basket=basket, ticket_type_id=ticket_type_id).first()
        else:
            basket, hold = None, None  # created below, in this transaction
        already = hold.quantity if hold is not None else 0
        wanted = already + quantity
        if wanted > ticket_type.max_per_order:
            raise _max_per_order_error(ticket_type, already=already)

        # Write first, decide under the lock: nobody sees this hold before commit, a refusal rolls it back,
        # and the hot row stays locked for two round trips only (the lock, the count; then commit).
        expires_at = now + hold_duration()
        if basket is None:
            (basket,) = insert_new([Basket()])  # plain INSERTs, as in checkout: the ORM's compiler cost more
        if hold is None:
            (hold,) = insert_new([Hold(basket=basket, ticket_type=ticket_type, quantity=wanted, expires_at=expires_at)])
        else:
            hold.quantity, hold.expires_at = wanted, expires_at
            hold.save(update_fields=["quantity", "expires_at"])
        # The decision: lock the row, then count holds in a new statement, so the count sees every hold
        # committed by whoever held the lock before us.
        unsold, price = _lock_seats(ticket_type_id)
        available = unsold - _held_by_others(ticket_type_id=ticket_type_id, basket_id=basket.pk, now=now)
        if available <= 0:
            remember_sold_out(ticket_type_id)
        _refuse_unless_available(ticket_type=ticket_type, wanted=wanted, already=already, available=available)
    if not token:
        # A new basket holds just this: it goes back with its hold, priced as under the lock, so showing it
        # costs no query (selectors.basket_summary_of). An older basket may hold more and is read back.
        hold.ticket_type = copy.copy(ticket_type)
        hold.ticket_type.price = price
        with_prefetched(basket, holds=[hold])
    return basket


def basket_remove_item(*, token: str, hold_id: int) -> None:
    """Deletes one line of a basket; its seats are free for others at once."""
    with transaction.atomic():
        basket = _basket_for_update(token)
        deleted, _ = Hold.objects.filter(basket=basket, pk=hold_id).delete()
    if not deleted:
        raise NotFoundError("No such item in this basket.")


def checkout_fingerprint(**fields: object) -> str:
    """What a checkout request asked for; a replayed Idempotency-Key must ask for the same."""
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    created: bool


class _AlreadyPlaced(Exception):  # noqa: N818 - control flow inside order_place, never escapes
    def __init__(self, order: Order) -> None:
        self.order = order


def _idempotent_order(*, key: str, fingerprint: str) -> Order | None:
    """The order an earlier request with this key placed, if any. Every keyed checkout asks before it charges
    and nearly always finds nothing, so the look-up is one narrow read of the key's index, in plain SQL (the
    ORM's query building cost more CPU than the read); the order is read only on a replay."""
    table = IdempotencyRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT fingerprint, order_id FROM {table} WHERE "key" = %s', [key])  # noqa: S608 - model table name
        record = cursor.fetchone()
    if record is None:
        return None
    stored, order_id = record
    if stored != fingerprint:
        raise IdempotencyConflictError()
    return Order.objects.get(pk=order_id)


def _check_expired_hold(*, hold: Hold, ticket_type: TicketType, basket_id: int, now: datetime) -> None:
    """An expired hold is renewed at checkout only if its seats are still free."""
    if not ticket_type_is_on_sale(ticket_type, now=now):
        raise HoldExpiredError(f"Your reservation for {ticket_type.name} expired and it is no longer on sale.")
    free = (
        ticket_type.capacity
        - ticket_type.sold
        - _held_by_others(ticket_type_id=ticket_type.pk, basket_id=basket_id, now=now)
    )
    if hold.quantity > free:
        raise HoldExpiredError(
            f"Your reservation for {ticket_type.name} expired and only {max(free, 0)} are left.",
            extra={"ticket_type_id": ticket_type.pk, "available": max(free, 0)},
        )


def _commit_order(
    *,
    basket_id: int,
    quoted: dict[int, tuple[int, Decimal]],
    ticket_types: dict[int, TicketType],
    total: Decimal,
    code: str,
    name: str,
    email: str,
    payment_method: str,
    reference: str,
    idempotency_key: str | None,
    fingerprint: str,
    now: datetime,
) -> Order:
    """The one transaction that turns a basket's holds into an order, its lines and tickets.

    No savepoints: a rare unique-key clash (order code, idempotency key) aborts the whole transaction
    and `order_place` sorts it out. The returned order carries its lines and tickets, ready to show.
    """
    with transaction.atomic():
        _lock_basket(basket_id)
        # Under the basket lock, the holds as they are now: one narrow read, checked against the quote that was
        # charged; their ticket types and events are the ones order_place read for that quote.
        sql, fields = _current_holds_select()
        current = select_converted(sql, [basket_id], fields)
        if not current:
            if idempotency_key:
                # A concurrent duplicate waited for the basket lock above; now it sees the first one's order.
                placed = _idempotent_order(key=idempotency_key, fingerprint=fingerprint)
                if placed is not None:
                    raise _AlreadyPlaced(placed)
            raise BasketEmptyError("This basket has already been checked out or emptied.")
        if {type_id: (quantity, price) for _, type_id, quantity, _, price in current} != quoted:
            raise PriceChangedError()
        holds = [
            Hold(
                pk=pk, basket_id=basket_id, ticket_type=ticket_types[type_id], quantity=quantity, expires_at=expires_at
            )
            for pk, type_id, quantity, expires_at, _ in current
        ]
        _check_buyer_limits(holds=holds, email=email)

        # Plain INSERTs of fresh instances (aegistickets.db.insert_new): the ORM's insert compiler cost a quarter
        # of a checkout's CPU, more than the statements themselves.
        order = Order(
            code=code,
            name=name,
            email=email,
            total=total,
            currency=settings.CURRENCY,
            payment_method=payment_method,
            payment_reference=reference,
            created_at=now,
        )
        insert_new([order])
        if idempotency_key:
            insert_new([IdempotencyRecord(key=idempotency_key, fingerprint=fingerprint, order=order)])
        lines = insert_new(
            [
                OrderLine(
                    order=order, ticket_type_id=h.ticket_type_id, quantity=h.quantity, unit_price=h.ticket_type.price
                )
                for h in holds
            ]
        )
        tickets = insert_new(
            [
                Ticket(order=order, line=line, ticket_type_id=line.ticket_type_id)
                for line in lines
                for _ in range(line.quantity)
            ]
        )
        # The buyer's confirmation (tickets PDF attached) is queued with the order: it exists exactly when the
        # order does, and the worker (orders/outbox.py) builds and sends it, not this request. One INSERT, before
        # the seat rows are locked.
        outbox.outbox_enqueue(kind=OutboundEmail.Kind.ORDER_CONFIRMATION, order_id=order.pk, now=now)

        # The holds go first: invisible to others until commit, and no lock is needed for them.
        _delete_holds([hold.pk for hold in holds])
        # Lock late: the seat rows are held only for the counter update (and for the re-check of an
        # expired hold), in primary-key order (holds are sorted by ticket type).
        for hold in holds:
            ticket_type = hold.ticket_type
            if not ticket_type.event.is_published:
                raise NotOnSaleError(f"{ticket_type.event.name} has been withdrawn from sale.")
            if hold.expires_at <= now:
                # Its seats were free for others: re-count them under the lock before taking them.
                locked = _lock_ticket_types([ticket_type.pk])[ticket_type.pk]
                _check_expired_hold(hold=hold, ticket_type=locked, basket_id=basket_id, now=now)
            if _take_seats(ticket_type_id=ticket_type.pk, quantity=hold.quantity) != ticket_type.price:
                raise PriceChangedError()
        # Counted only if this commits; the callback runs after commit, never under the seat locks.
        transaction.on_commit(
            functools.partial(metrics.order_committed, holds=holds, ticket_types=ticket_types), robust=True
        )

    for line in lines:
        line.ticket_type = ticket_types[line.ticket_type_id]
    for ticket in tickets:
        ticket.ticket_type = ticket_types[ticket.ticket_type_id]
    return with_prefetched(order, lines=lines, tickets=tickets)


@functools.cache
def _current_holds_select() -> tuple[str, list[Field[Any, Any]]]:
    """`_commit_order`'s read of a basket's holds as they are under its lock, with each one's current price; plain
    SQL for the reason `selectors.basket_holds` gives."""
    quote = connection.ops.quote_name
    hold = [Hold._meta.get_field(name) for name in ("id", "ticket_type", "quantity", "expires_at")]
    sql = (
        f"SELECT h.id, h.ticket_type_id, h.quantity, h.expires_at, t.price FROM {quote(Hold._meta.db_table)} h "  # noqa: S608 - model metadata
        f"JOIN {quote(TicketType._meta.db_table)} t ON t.id = h.ticket_type_id "
        "WHERE h.basket_id = %s ORDER BY h.ticket_type_id"
    )
    return sql, [*hold, TicketType._meta.get_field("price")]  # type: ignore[list-item]  # get_field may name a relation


def _delete_holds(hold_ids: list[int]) -> None:
    """Plain SQL for what `Hold.objects.filter(pk__in=…).delete()` sends (no signal, nothing cascades from a hold)."""
    table = connection.ops.quote_name(Hold._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id IN ({', '.join(['%s'] * len(hold_ids))})", hold_ids)  # noqa: S608 - model table name


def _check_buyer_limits(*, holds: list[Hold], email: str) -> None:
    """Never lets one buyer email own more paid tickets of an event than its max_tickets_per_buyer."""
    wanted: dict[int, int] = {}
    limits: dict[int, int] = {}
    for hold in holds:
        event = hold.ticket_type.event
        if event.max_tickets_per_buyer is not None:
            wanted[event.pk] = wanted.get(event.pk, 0) + hold.quantity
            limits[event.pk] = event.max_tickets_per_buyer
    if not wanted:
        return
    buyer = email.strip().lower()
    _lock_buyer(event_ids=sorted(wanted), buyer=buyer)
    owned = dict(
        Ticket.objects.filter(
            ticket_type__event_id__in=wanted, order__email__iexact=buyer, order__status=Order.Status.PAID
        )
        .values_list("ticket_type__event_id")
        .annotate(n=Count("id"))
    )
    for event_id, quantity in wanted.items():
        already = owned.get(event_id, 0)
        if already + quantity > limits[event_id]:
            raise BuyerLimitExceededError(
                f"At most {limits[event_id]} tickets per buyer for this event; this email already has {already}.",
                extra={"max_tickets_per_buyer": limits[event_id], "already": already},
            )


def _lock_buyer(*, event_ids: list[int], buyer: str) -> None:
    """Serializes one buyer's concurrent orders per event until commit; other buyers never wait on it."""
    if connection.vendor != "postgresql":
        return  # SQLite has one writer at a time
    # Advisory transaction locks, one per (event, buyer), taken in event order so two orders cannot deadlock.
    with connection.cursor() as cursor:
        for event_id in event_ids:
            digest = hashlib.sha256(f"buyer-limit:{event_id}:{buyer}".encode()).digest()
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)])


@metrics.records_outcome("checkout", lambda result: "paid" if result.created else "replayed")
def order_place(
    *,
    token: str,
    name: str,
    email: str,
    payment_method: str,
    now: datetime,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> CheckoutResult:
    """Sells a basket's seats exactly once, priced from the database; a repeated key returns the first order."""
    if idempotency_key:
        placed = _idempotent_order(key=idempotency_key, fingerprint=fingerprint)
        if placed is not None:
            return CheckoutResult(order=placed, created=False)
    holds = selectors.basket_holds(token)
    if not holds:
        if idempotency_key:
            # A concurrent request with this key may have checked this basket out since the check above.
            placed = _idempotent_order(key=idempotency_key, fingerprint=fingerprint)
            if placed is not None:
                return CheckoutResult(order=placed, created=False)
        if not Basket.objects.filter(token=token).exists():
            raise BasketNotFoundError()
        raise BasketEmptyError()
    basket = holds[0].basket
    # Fail before charging when an expired hold cannot be renewed (re-checked under the lock later).
    for hold in holds:
        if hold.expires_at <= now:
            _check_expired_hold(hold=hold, ticket_type=hold.ticket_type, basket_id=basket.pk, now=now)
    quoted = {h.ticket_type_id: (h.quantity, h.ticket_type.price) for h in holds}
    ticket_types = {hold.ticket_type_id: hold.ticket_type for hold in holds}
    total = sum((price * quantity for quantity, price in quoted.values()), Decimal("0.00"))

    provider = payment_provider_for(method=payment_method, amount=total)
    payment = provider.charge(amount=total, currency=settings.CURRENCY, email=email, description=f"Basket {basket.pk}")
    if not payment.approved:
        raise PaymentDeclinedError(" ".join(filter(None, [payment.message, PaymentDeclinedError.default_detail])))
    code = ""
    try:
        for attempt in range(1, ORDER_CODE_ATTEMPTS + 1):
            code = new_order_code()
            try:
                order = _commit_order(
                    basket_id=basket.pk,
                    quoted=quoted,
                    ticket_types=ticket_types,
                    total=total,
                    code=code,
                    name=name,
                    email=email,
                    payment_method=provider.name,
                    reference=payment.reference,
                    idempotency_key=idempotency_key,
                    fingerprint=fingerprint,
                    now=now,
                )
                break
            except IntegrityError:
                if idempotency_key:
                    # The same key may have been committed meanwhile by a request for another basket
                    # (a different body: IdempotencyConflictError) or for this one (replay its order).
                    placed = _idempotent_order(key=idempotency_key, fingerprint=fingerprint)
                    if placed is not None:
                        raise _AlreadyPlaced(placed) from None
                if attempt == ORDER_CODE_ATTEMPTS or not Order.objects.filter(code=code).exists():
                    raise
                # Another order took this code first (1 in 387 million): try again with a new one.
    except _AlreadyPlaced as already:
        provider.refund(reference=payment.reference, amount=total, currency=settings.CURRENCY)
        return CheckoutResult(order=already.order, created=False)
    except BaseException as failure:
        if isinstance(failure, (OperationalError, InterfaceError)):
            # The connection broke during the order's transaction. If it broke after PostgreSQL committed but
            # before the acknowledgement arrived, the order exists: look on a new connection before refunding.
            committed = _order_committed_anyway(code=code, reference=payment.reference)
            if committed is not None:
                # Django ran no on-commit callbacks for a commit it saw fail: count the sale here. Its holds are
                # the order's lines, as the commit checked them against this quote.
                metrics.order_committed(holds=holds, ticket_types=ticket_types)
                return CheckoutResult(order=committed, created=True)
        # No order committed: a paid shopper is never left without tickets or their money.
        provider.refund(reference=payment.reference, amount=total, currency=settings.CURRENCY)
        raise
    return CheckoutResult(order=order, created=True)


def _order_committed_anyway(*, code: str, reference: str) -> Order | None:
    """After a connection error in the order's transaction: the order, if its commit went through anyway.

    None when it did not, and when that cannot be known: the database is still unreachable (the read waits at
    most its connect timeout), or a caller's transaction encloses ours, in which case nothing of ours committed.
    """
    if not code or connection.in_atomic_block:
        return None
    for attempt in (1, 2):
        try:
            order = selectors.order_for_staff(code=code)  # with its lines and tickets, ready to show
            return order if order.payment_reference == reference else None
        except NotFoundError:
            return None
        except DatabaseError:
            if attempt == 2:
                return None
            connection.close()  # broken: the second read opens a new connection
    return None


def order_cancel(*, order_id: int, now: datetime) -> Order:
    """Cancels a paid order: its tickets stop admitting and its seats return to sale in one transaction,
    which also records one pending refund; the provider is asked for the money only after that commits.

    Why this order of steps: refunding first and then failing to commit (a concurrent cancel, a crash)
    would return money for an order that still admits people, or return it twice. Committing first means
    the worst case is a refund left `pending`/`failed` on record, which `refund_process` retries; the
    unique refund per order and the claim in `refund_process` make a second payout impossible.
    """
    with transaction.atomic():
        try:
            order = Order.objects.select_for_update().get(pk=order_id)
        except Order.DoesNotExist:
            raise NotFoundError("No such order.") from None
        if not order.can_become(Order.Status.CANCELLED):
            raise OrderNotCancellableError(f"Order {order.code} is {order.status}; only paid orders can be cancelled.")
        # The buyer's notice is queued with the cancellation, and replaces the confirmation if that has not gone
        # out yet; the worker sends it a little later, by when the refund below has usually been answered, so the
        # email can say where the money stands.
        outbox.outbox_withdraw_confirmation(order_id=order.pk, now=now)
        outbox.outbox_enqueue(
            kind=OutboundEmail.Kind.ORDER_CANCELLATION,
            order_id=order.pk,
            now=now,
            delay=outbox.CANCELLATION_NOTICE_DELAY,
        )
        # Then, lock late: the seat rows.
        lines = list(order.lines.all())
        _lock_ticket_types(line.ticket_type_id for line in lines)
        for line in lines:
            TicketType.objects.filter(pk=line.ticket_type_id).update(sold=F("sold") - line.quantity)
        order.status = Order.Status.CANCELLED
        order.cancelled_at = now
        order.save(update_fields=["status", "cancelled_at"])
        refund = Refund.objects.create(
            order=order, amount=order.total, currency=order.currency, provider=order.payment_method, created_at=now
        )
        # After commit, outside every lock: the money.
        transaction.on_commit(functools.partial(_after_cancel, refund_id=refund.pk), robust=True)
    return order


def _after_cancel(*, refund_id: int) -> None:
    refund_process(refund_id=refund_id, now=timezone.now())


def refund_process(*, refund_id: int, now: datetime) -> Refund:
    """Asks the payment provider for a pending (or failed) refund at most once at a time; records the answer.
    Never called inside a transaction: the provider is a network call."""
    # The claim: one conditional UPDATE, so of two workers only one calls the provider.
    claimed = Refund.objects.filter(pk=refund_id, status__in=[Refund.Status.PENDING, Refund.Status.FAILED]).update(
        status=Refund.Status.PROCESSING, attempts=F("attempts") + 1
    )
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    if not claimed:
        return refund  # done already, or another worker is on it
    try:
        result = payment_provider_named(refund.provider).refund(
            reference=refund.order.payment_reference, amount=refund.amount, currency=refund.currency
        )
    except Exception as error:  # noqa: BLE001 - any provider failure is recorded and retried later
        result = PaymentResult(approved=False, reference="", message=f"{type(error).__name__}: {error}")
    refund.status = Refund.Status.SUCCEEDED if result.approved else Refund.Status.FAILED
    refund.reference = result.reference
    refund.message = result.message[:500]
    refund.completed_at = now if result.approved else None
    refund.save(update_fields=["status", "reference", "message", "completed_at"])
    return refund


@dataclass(frozen=True)
class EventCancelBatch:
    cancelled: list[str]
    skipped: list[str]
    remaining: int


def event_cancel_batch(*, event_id: int, now: datetime, batch_size: int = 100) -> EventCancelBatch:
    """Withdraws the event from sale and cancels (and refunds) the next `batch_size` paid orders holding any of
    its tickets, each order in its own transaction; re-running continues where an interrupted run stopped."""
    Event.objects.filter(pk=event_id, is_published=True).update(is_published=False)  # no new sales
    paid = Order.objects.filter(
        Exists(OrderLine.objects.filter(order=OuterRef("pk"), ticket_type__event_id=event_id)),
        status=Order.Status.PAID,
    )
    cancelled: list[str] = []
    skipped: list[str] = []
    for order_id, code in paid.order_by("pk").values_list("pk", "code")[:batch_size]:
        try:
            order_cancel(order_id=order_id, now=now)
        except OrderNotCancellableError:
            skipped.append(code)  # cancelled by someone else meanwhile
        else:
            cancelled.append(code)
    return EventCancelBatch(cancelled=cancelled, skipped=skipped, remaining=paid.count())


def event_refunds_retry(*, event_id: int, now: datetime) -> list[Refund]:
    """Asks again for every refund of this event's orders still pending or failed (e.g. after a crash)."""
    ids = Refund.objects.filter(
        Exists(OrderLine.objects.filter(order=OuterRef("order"), ticket_type__event_id=event_id)),
        status__in=[Refund.Status.PENDING, Refund.Status.FAILED],
    ).values_list("pk", flat=True)
    return [refund_process(refund_id=refund_id, now=now) for refund_id in list(ids)]


def _check_in_refusal(check_in: CheckIn) -> AlreadyCheckedInError:
    by = check_in.checked_in_by.get_username() if check_in.checked_in_by else None
    return AlreadyCheckedInError(
        f"Already checked in at {timezone.localtime(check_in.checked_in_at):%H:%M:%S}" + (f" by {by}." if by else "."),
        extra={"checked_in_at": check_in.checked_in_at.isoformat(), "checked_in_by": by},
    )


def ticket_check_in(*, secret: str, event_id: int, user: Any, now: datetime) -> CheckIn:
    """Admits a paid ticket of this event once: the unique constraint on CheckIn.ticket refuses a second
    entry, also from another door at the same instant."""
    # Looked up through the unique index on the code: no secret is compared character by character here.
    normalized = "".join(secret.split()).upper()
    ticket = Ticket.objects.select_related("order", "ticket_type__event").filter(code=normalized).first()
    if ticket is None:
        raise TicketNotFoundError()
    event = ticket.ticket_type.event
    try:
        with transaction.atomic():
            # The order row lock orders us with order_cancel: a ticket is never admitted after its
            # order's cancellation committed, nor cancelled "under" an admission in progress.
            status = Order.objects.select_for_update().values_list("status", flat=True).get(pk=ticket.order_id)
            if status != Order.Status.PAID:
                raise TicketCancelledError(extra={"order_status": status})
            if event.pk != event_id:
                raise WrongEventError(
                    f"This ticket is for {event.name} ({event.starts_at:%d %b %Y}).",
                    extra={"ticket_event_id": event.pk, "ticket_event": event.name},
                )
            check_in = CheckIn.objects.create(ticket=ticket, event=event, checked_in_at=now, checked_in_by=user)
    except IntegrityError:
        # Another door admitted it first (now, or earlier): say when and who.
        raise _check_in_refusal(CheckIn.objects.select_related("checked_in_by").get(ticket=ticket)) from None
    check_in.ticket = ticket
    return check_in


@dataclass(frozen=True)
class ReleaseResult:
    holds: int
    baskets: int


def release_expired_holds(
    *,
    now: datetime,
    grace: timedelta = timedelta(hours=1),
    basket_max_age: timedelta = timedelta(days=1),
) -> ReleaseResult:
    """Deletes holds expired for longer than `grace` and old empty baskets. Housekeeping only: an
    expired hold already counts for nothing, and within `grace` a returning shopper can still renew it
    at checkout."""
    stale_holds = Hold.objects.filter(basket=OuterRef("pk"), expires_at__lte=now - grace)
    with transaction.atomic():
        # Lock the baskets first, as every writer does; skip those a shopper is using right now.
        baskets = list(
            Basket.objects.select_for_update(skip_locked=True).filter(Exists(stale_holds)).values_list("pk", flat=True)
        )
        holds, _ = Hold.objects.filter(basket_id__in=baskets, expires_at__lte=now - grace).delete()
    with transaction.atomic():
        empty = list(
            Basket.objects.select_for_update(skip_locked=True)
            .filter(~Exists(Hold.objects.filter(basket=OuterRef("pk"))), updated_at__lt=now - basket_max_age)
            .values_list("pk", flat=True)
        )
        Basket.objects.filter(pk__in=empty).delete()
    return ReleaseResult(holds=holds, baskets=len(empty))
