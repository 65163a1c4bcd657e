"""The seat protocol: how the shop sells a scarce seat exactly once, whatever the concurrency.

Availability of a ticket type is `capacity − sold − seats held by unexpired holds`, counted in the database at the
moment of a decision, never taken from a cache. An expired hold stops counting the moment it expires; no job has to
run for that (`release_expired` only tidies rows).

**One lock primitive: the row lock** that PostgreSQL's `UPDATE` takes (FOR NO KEY UPDATE), held until the
transaction ends. Where a decision is read under it, it is taken first with `select_for_update(no_key=True)` (the
`lock_*` functions); where the write itself is the decision (taking a hold's seats, giving seats back) the UPDATE
takes it. FOR NO KEY UPDATE, not FOR UPDATE: inserting a row that merely refers to a locked one (a hold of that
ticket type, an order line) never waits for it. SQLite has no row locks: there every write transaction begins
IMMEDIATE (settings), which serializes all writers, so the same code is correct on both.

**One lock order**, for every writer: the basket, then orders, then events, then ticket types, each kind in
primary-key order. Two writers therefore never wait for each other in a circle: no deadlock. The ticket types are
the hot rows of an on-sale rush, so they are locked last and held for as little as possible; nothing slow (an email,
a template, a payment call) ever runs in these transactions.

Every statement goes through the ORM's public API. Reads without a decision (pages, listings) never lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Sum
from django.db.models.functions import Coalesce

from aegistickets.errors import BasketNotFoundError, IdempotencyConflictError, NotFoundError, PriceChangedError
from events.models import Event, TicketType
from orders.models import Basket, Hold, IdempotencyRecord, Order, OrderLine

# --- counting -------------------------------------------------------------------------------------------------


def held_seats(now: datetime) -> QuerySet[Hold]:
    """The holds that keep seats from sale at `now`: the one definition, which the catalog's availability uses too
    (registered with events.availability when the orders app starts)."""
    return Hold.objects.filter(expires_at__gt=now)


def held_by_others(*, ticket_type_id: int, basket_id: int, now: datetime) -> int:
    """Seats of a ticket type that other baskets hold at `now`. Call it with the ticket type locked, in a statement
    of its own after the lock: then it sees every hold committed by whoever held the lock before."""
    others = held_seats(now).filter(ticket_type_id=ticket_type_id).exclude(basket_id=basket_id)
    return int(others.aggregate(seats=Coalesce(Sum("quantity"), 0))["seats"])


def free_seats(*, ticket_type: TicketType, basket_id: int, now: datetime) -> int:
    """Seats a basket could still hold: capacity − sold − other baskets' holds. `ticket_type` as read under its lock."""
    others = held_by_others(ticket_type_id=ticket_type.pk, basket_id=basket_id, now=now)
    return ticket_type.capacity - ticket_type.sold - others


# --- locks ----------------------------------------------------------------------------------------------------


def lock_basket(*, token: str | None = None, pk: int | None = None) -> Basket:
    """The basket's row lock: first in the lock order. One of `token` or `pk`."""
    lookup = {"token": token} if token is not None else {"pk": pk}
    basket = Basket.objects.select_for_update(no_key=True).filter(**lookup).first()
    if basket is None:
        raise BasketNotFoundError()
    return basket


def lock_order(order_id: int) -> Order:
    """An order's row lock: orders its cancellation with its check-ins and with a second cancellation."""
    order = Order.objects.select_for_update(no_key=True).filter(pk=order_id).first()
    if order is None:
        raise NotFoundError("No such order.")
    return order


def lock_events(ids: Iterable[int]) -> None:
    """Event row locks, in primary-key order: they serialize the orders that count against an event's limit of
    tickets per buyer."""
    list(Event.objects.select_for_update(no_key=True).filter(pk__in=set(ids)).order_by("pk").values_list("pk"))


def lock_ticket_types(ids: Iterable[int]) -> dict[int, TicketType]:
    """Ticket-type row locks, in primary-key order (last in the lock order); the rows as they are under them."""
    rows = TicketType.objects.select_for_update(no_key=True).filter(pk__in=set(ids)).order_by("pk")
    return {row.pk: row for row in rows}


def lock_ticket_type(ticket_type_id: int) -> TicketType:
    locked = lock_ticket_types([ticket_type_id]).get(ticket_type_id)
    if locked is None:
        raise NotFoundError("No such ticket type.")  # deleted since the catalog cache read it
    return locked


# --- holding, taking, releasing -------------------------------------------------------------------------------


def hold(*, basket: Basket, ticket_type: TicketType, held: Hold | None, quantity: int, expires_at: datetime) -> Hold:
    """Writes a basket's hold of `quantity` seats: a new one, or `held` (its hold of this ticket type) changed. Nobody
    sees it before commit: call `free_seats` under the ticket type's lock next, and refuse (roll back) if it went
    too far."""
    if held is None:
        return Hold.objects.create(basket=basket, ticket_type=ticket_type, quantity=quantity, expires_at=expires_at)
    held.quantity, held.expires_at = quantity, expires_at
    held.save(update_fields=["quantity", "expires_at"])
    return held


def take(holds: list[Hold], *, prices: dict[int, Decimal]) -> None:
    """Turns held seats into sold ones, in ticket-type order, each at the price it was quoted: the UPDATE locks the
    row and, when an organizer changed the price since, changes nothing (PriceChangedError rolls the sale back).
    Only for seats a live hold reserved, or that `free_seats` found free under the lock, so capacity is never
    exceeded (the CHECK constraint on the row would refuse it anyway)."""
    for hold_ in sorted(holds, key=lambda h: h.ticket_type_id):
        rows = TicketType.objects.filter(pk=hold_.ticket_type_id, price=prices[hold_.ticket_type_id])
        if not rows.update(sold=F("sold") + hold_.quantity):
            raise PriceChangedError()


def release(lines: Iterable[OrderLine]) -> None:
    """Gives an order's seats back to sale, in ticket-type order."""
    for line in sorted(lines, key=lambda line: line.ticket_type_id):
        TicketType.objects.filter(pk=line.ticket_type_id).update(sold=F("sold") - line.quantity)


def release_holds(basket_id: int, *, hold_ids: Iterable[int] | None = None) -> int:
    """Deletes a basket's holds (or some of them): their seats are free for others once this commits."""
    holds = Hold.objects.filter(basket_id=basket_id)
    if hold_ids is not None:
        holds = holds.filter(pk__in=list(hold_ids))
    deleted, _ = holds.delete()
    return deleted


# --- idempotency ----------------------------------------------------------------------------------------------


def placed_order(*, key: str | None, fingerprint: str | None) -> Order | None:
    """The order a checkout with this Idempotency-Key already placed, if any. A key reused for a different request
    (another `fingerprint`) is refused with IdempotencyConflictError; `fingerprint=None` accepts any. The record
    commits in the order's own transaction, so an order is found here exactly when it exists."""
    if not key:
        return None
    record = IdempotencyRecord.objects.filter(key=key).select_related("order").first()
    if record is None:
        return None
    if fingerprint is not None and record.fingerprint != fingerprint:
        raise IdempotencyConflictError()
    return record.order


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
