"""Reads of baskets and orders, each in a fixed number of queries."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce

from aegistickets.db import Joined, joined, select_converted, with_prefetched
from aegistickets.errors import BasketNotFoundError, NotFoundError
from events.models import Event, TicketType
from orders.models import Basket, CheckIn, Hold, IdempotencyRecord, Order, OrderLine, Refund, Ticket

_Row = TypeVar("_Row", OrderLine, Ticket)


@dataclass(frozen=True)
class BasketItem:
    id: int
    ticket_type_id: int
    event_id: int
    event_name: str
    event_slug: str
    event_starts_at: datetime
    ticket_type_name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal
    expires_at: datetime
    expired: bool


@dataclass(frozen=True)
class BasketSummary:
    token: str
    items: list[BasketItem]
    total: Decimal
    currency: str
    # When the first of its holds runs out; None for an empty basket.
    expires_at: datetime | None

    @property
    def is_empty(self) -> bool:
        return not self.items

    @property
    def has_expired_items(self) -> bool:
        return any(item.expired for item in self.items)


def basket_summary(*, token: str, now: datetime) -> BasketSummary:
    """A basket with its lines priced from the database (one query; two for an empty basket)."""
    holds = basket_holds(token)
    basket = holds[0].basket if holds else Basket.objects.filter(token=token).first()
    if basket is None:
        raise BasketNotFoundError()
    return _summary(basket, holds, now=now)


def basket_holds(token: str) -> list[Hold]:
    """A basket's holds, oldest first, with their basket, ticket types and events, as fresh as the database (never
    the catalog cache): what checkout prices and sells, and what the basket pages show. One join in plain SQL: with
    `select_related` the ORM's query building was a fifth of a checkout's CPU (docs/performance.md)."""
    sql, read = _basket_holds_select()
    holds = []
    for row in select_converted(sql, [token], read.fields):
        hold = read.load(Hold, row)
        hold.basket = read.load(Basket, row)
        hold.ticket_type = read.load(TicketType, row)
        hold.ticket_type.event = read.load(Event, row)
        holds.append(hold)
    return holds


@functools.cache
def _basket_holds_select() -> tuple[str, Joined]:
    quote = connection.ops.quote_name
    read = joined((Hold, "h"), (Basket, "b"), (TicketType, "t"), (Event, "e"))
    sql = (
        f"SELECT {read.select} FROM {quote(Hold._meta.db_table)} h "  # noqa: S608 - model metadata
        f"JOIN {quote(Basket._meta.db_table)} b ON b.id = h.basket_id "
        f"JOIN {quote(TicketType._meta.db_table)} t ON t.id = h.ticket_type_id "
        f"JOIN {quote(Event._meta.db_table)} e ON e.id = t.event_id "
        "WHERE b.token = %s ORDER BY h.id"
    )
    return sql, read


def basket_summary_of(basket: Basket, *, now: datetime) -> BasketSummary:
    """The summary of a basket a service just wrote: no query when the service handed its holds back with it
    (a new basket, priced under the seat lock); read from the database otherwise."""
    if "holds" in getattr(basket, "_prefetched_objects_cache", {}):
        return _summary(basket, list(basket.holds.all()), now=now)
    return basket_summary(token=basket.token, now=now)


def _summary(basket: Basket, holds: list[Hold], *, now: datetime) -> BasketSummary:
    items = [
        BasketItem(
            id=hold.pk,
            ticket_type_id=hold.ticket_type_id,
            event_id=hold.ticket_type.event_id,
            event_name=hold.ticket_type.event.name,
            event_slug=hold.ticket_type.event.slug,
            event_starts_at=hold.ticket_type.event.starts_at,
            ticket_type_name=hold.ticket_type.name,
            quantity=hold.quantity,
            unit_price=hold.ticket_type.price,
            line_total=hold.ticket_type.price * hold.quantity,
            expires_at=hold.expires_at,
            expired=hold.expires_at <= now,
        )
        for hold in holds
    ]
    return BasketSummary(
        token=basket.token,
        items=items,
        total=sum((item.line_total for item in items), Decimal("0.00")),
        currency=settings.CURRENCY,
        expires_at=min((item.expires_at for item in items), default=None),
    )


def _order_details() -> tuple[Prefetch[Any, Any, Any], ...]:
    return (
        Prefetch("lines", queryset=OrderLine.objects.select_related("ticket_type__event")),
        Prefetch("tickets", queryset=Ticket.objects.select_related("ticket_type__event")),
    )


def _orders_with_details() -> QuerySet[Order]:
    return Order.objects.prefetch_related(*_order_details())


def order_for_shopper(*, code: str, secret: str) -> Order:
    """The order behind a private link, only for its secret: found by the public code, then the secret compared in
    constant time; its details are read only after that, so a wrong secret costs what an unknown code costs."""
    order = Order.objects.filter(code=code).first()
    if order is None or not hmac.compare_digest(order.secret.encode(), secret.encode()):
        raise NotFoundError("No such order.")
    return with_prefetched(order, lines=_of_order(OrderLine, order.pk), tickets=_of_order(Ticket, order.pk))


def _of_order(model: type[_Row], order_id: int) -> list[_Row]:
    """An order's lines or tickets, in key order, each with its ticket type and event: what
    `prefetch_related(*_order_details())` reads, in one plain-SQL join (the order page is the last step of every
    purchase; the ORM's query building for the two prefetches cost more CPU than their statements)."""
    sql, read = _of_order_select(model)
    rows = []
    for values in select_converted(sql, [order_id], read.fields):
        row = read.load(model, values)
        row.ticket_type = read.load(TicketType, values)
        row.ticket_type.event = read.load(Event, values)
        rows.append(row)
    return rows


@functools.cache
def _of_order_select(model: type[OrderLine | Ticket]) -> tuple[str, Joined]:
    quote = connection.ops.quote_name
    read = joined((model, "x"), (TicketType, "t"), (Event, "e"))
    sql = (
        f"SELECT {read.select} FROM {quote(model._meta.db_table)} x "  # noqa: S608 - model metadata
        f"JOIN {quote(TicketType._meta.db_table)} t ON t.id = x.ticket_type_id "
        f"JOIN {quote(Event._meta.db_table)} e ON e.id = t.event_id "
        "WHERE x.order_id = %s ORDER BY x.id"
    )
    return sql, read


def order_for_staff(*, code: str) -> Order:
    order = _orders_with_details().filter(code=code).first()
    if order is None:
        raise NotFoundError("No such order.")
    return order


def order_for_staff_by_id(*, order_id: int) -> Order:
    """One order with its lines and tickets (three queries), for emails and staff actions."""
    order = _orders_with_details().filter(pk=order_id).first()
    if order is None:
        raise NotFoundError("No such order.")
    return order


def order_refund(*, order_id: int) -> Refund:
    refund = Refund.objects.filter(order_id=order_id).first()
    if refund is None:
        raise NotFoundError("This order has no refund.")
    return refund


def orders_list(*, event_id: int | None = None, status: str | None = None) -> QuerySet[Order]:
    """Orders newest first, optionally of one event and/or one status (three queries a page)."""
    queryset = _orders_with_details()
    if status:
        queryset = queryset.filter(status=status)
    if event_id is not None:
        queryset = queryset.filter(
            Exists(OrderLine.objects.filter(order=OuterRef("pk"), ticket_type__event_id=event_id))
        )
    return queryset.order_by("-created_at", "-id")


def order_for_idempotency_key(*, key: str) -> Order | None:
    """The order a checkout with this key already placed, if any."""
    record = IdempotencyRecord.objects.select_related("order").filter(key=key).first()
    return record.order if record is not None else None


# --- check-in -----------------------------------------------------------------------------------------

DOOR_STAFF_GROUP = "door staff"


def can_check_in(user: Any) -> bool:
    """Staff, or members of the "door staff" group (created by the orders migration 0002)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_staff or user.groups.filter(name=DOOR_STAFF_GROUP).exists())


@dataclass(frozen=True)
class DoorCount:
    event: Event
    checked_in: int
    sold: int


def door_counts(*, now: datetime, event_id: int | None = None) -> list[DoorCount]:
    """Checked in / sold per event still running (or one event); one query whatever the number of events."""
    events = Event.objects.annotate(
        sold_seats=Coalesce(
            Subquery(
                TicketType.objects.filter(event=OuterRef("pk"))
                .values("event")
                .annotate(total=Sum("sold"))
                .values("total")
            ),
            0,
        ),
        checked_in=Coalesce(
            Subquery(CheckIn.objects.filter(event=OuterRef("pk")).values("event").annotate(n=Count("pk")).values("n")),
            0,
        ),
    ).order_by("starts_at", "id")
    events = events.filter(pk=event_id) if event_id is not None else events.filter(ends_at__gt=now)
    return [DoorCount(event=event, checked_in=event.checked_in, sold=event.sold_seats) for event in events]


# --- organizer exports --------------------------------------------------------------------------------

EXPORT_CHUNK = 2000


def event_orders_export(*, event_id: int) -> Iterator[tuple[Any, ...]]:
    """One row per order holding tickets of the event (its tickets and amount for this event), oldest first.
    Streams from the database in chunks: memory stays flat whatever the event's size."""
    refund_status = Refund.objects.filter(order=OuterRef("order")).values("status")[:1]
    rows = (
        OrderLine.objects.filter(ticket_type__event_id=event_id)
        .values("order_id")
        .annotate(
            ticket_count=Sum("quantity"),
            amount=Sum(F("quantity") * F("unit_price"), output_field=DecimalField(max_digits=12, decimal_places=2)),
            refund=Subquery(refund_status),
        )
        .values_list(
            "order__code",
            "order__status",
            "order__created_at",
            "order__name",
            "order__email",
            "ticket_count",
            "amount",
            "order__currency",
            "order__payment_method",
            "refund",
        )
        .order_by("order_id")
    )
    return rows.iterator(chunk_size=EXPORT_CHUNK)


def event_attendees_export(*, event_id: int) -> Iterator[tuple[Any, ...]]:
    """One row per valid ticket of the event (paid orders), with its check-in time; never the ticket secret."""
    checked_in_at = CheckIn.objects.filter(ticket=OuterRef("pk")).values("checked_in_at")[:1]
    rows = (
        Ticket.objects.filter(ticket_type__event_id=event_id, order__status=Order.Status.PAID)
        .annotate(checked_in_at=Subquery(checked_in_at))
        .values_list("pk", "order__code", "order__name", "order__email", "ticket_type__name", "checked_in_at")
        .order_by("pk")
    )
    return rows.iterator(chunk_size=EXPORT_CHUNK)
