"""Reads of baskets and orders, each in a fixed number of queries."""

from __future__ import annotations

import hmac
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
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

from aegistickets.errors import BasketNotFoundError, NotFoundError
from events.models import Event, TicketType
from events.selectors import buyer_may_cancel
from orders import seats
from orders.models import Basket, CheckIn, Hold, Order, OrderLine, Payment, Refund, Ticket
from orders.payments import payment_provider_named


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
    # What checkout asks about each seat's holder (Event.attendee_data), and the event's terms to accept.
    attendee_data: str = Event.AttendeeData.NONE
    event_terms: str = ""
    event_terms_version: int = 0
    event_has_questions: bool = False


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
    holds = seats.basket_holds(token=token)
    basket = holds[0].basket if holds else Basket.objects.filter(token=token).first()
    if basket is None:
        raise BasketNotFoundError()
    return basket_summary_of(basket, holds, now=now)


def basket_summary_of(basket: Basket, holds: list[Hold], *, now: datetime) -> BasketSummary:
    """The summary of a basket whose holds (each with its ticket type and event) are in hand."""
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
            attendee_data=hold.ticket_type.event.attendee_data,
            event_terms=hold.ticket_type.event.terms,
            event_terms_version=hold.ticket_type.event.terms_version,
            event_has_questions=hold.ticket_type.event.has_questions,
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


@dataclass(frozen=True)
class OrderDetail:
    """An order with its lines and tickets, each with its ticket type and event: what the API shows of an order."""

    order: Order
    lines: list[OrderLine]
    tickets: list[Ticket]
    payment: Payment | None = None  # the latest attempt to pay for it
    refunds: tuple[Refund, ...] = ()  # oldest first; read only where the caller asks for them


def order_detail(order: Order) -> OrderDetail:
    """An order read by the selectors below, which prefetch its lines, tickets and payments: no query."""
    payments = list(order.payments.all())
    return OrderDetail(
        order=order,
        lines=list(order.lines.all()),
        tickets=list(order.tickets.all()),
        payment=payments[0] if payments else None,
    )


def _order_details() -> tuple[Prefetch[Any, Any, Any], ...]:
    return (
        Prefetch("lines", queryset=OrderLine.objects.select_related("ticket_type__event")),
        Prefetch("tickets", queryset=Ticket.objects.select_related("ticket_type__event")),
        Prefetch("payments", queryset=Payment.objects.order_by("-id")),
    )


def _orders_with_details() -> QuerySet[Order]:
    return Order.objects.prefetch_related(*_order_details())


def order_for_shopper(*, code: str, secret: str, with_refunds: bool = False) -> OrderDetail:
    """The order behind a private link, only for its secret (compared in constant time), with its lines and tickets:
    one query for an order with tickets (they, with their order, line, ticket type and event: every line has a ticket
    per seat); three for one without (awaiting payment, expired, failed). `with_refunds` adds the order's refunds,
    read by a second query only if that first one found any (most orders have none)."""
    found = Ticket.objects.filter(order__code=code).select_related("order", "line", "ticket_type__event")
    if with_refunds:
        found = found.annotate(order_refunded=Exists(Refund.objects.filter(order_id=OuterRef("order_id"))))
    tickets = list(found.order_by("pk"))
    if not tickets or not hmac.compare_digest(tickets[0].order.secret.encode(), secret.encode()):
        # Every wrong link, to an order with tickets or not, or to none, ends here after the same two queries.
        return _order_without_tickets(code=code, secret=secret)
    lines: dict[int, OrderLine] = {}
    for ticket in tickets:
        line = lines.setdefault(ticket.line_id, ticket.line)
        line.ticket_type = ticket.ticket_type
    order = tickets[0].order
    refunded = with_refunds and tickets[0].order_refunded  # type: ignore[attr-defined]
    return OrderDetail(
        order=order,
        lines=sorted(lines.values(), key=lambda line: line.pk),
        tickets=tickets,
        refunds=tuple(order.refunds.order_by("created_at", "id")) if refunded else (),
    )


def order_refundable(order: Order) -> Decimal:
    """What is left to refund of an order: its total less its refunds, done or still to do (a failed one is
    retried, so it counts). One query."""
    return order.total - (order.refunds.aggregate(total=Sum("amount"))["total"] or Decimal("0.00"))


def tickets_price(tickets: Iterable[Ticket]) -> Decimal:
    """What these tickets cost, each at its line's price (tickets loaded with their line)."""
    return sum((ticket.line.unit_price for ticket in tickets), Decimal("0.00"))


@dataclass(frozen=True)
class BuyerCancellation:
    """The tickets of an order its buyer may cancel now, and until when each of their events allows it."""

    tickets: list[Ticket]
    deadlines: list[tuple[Event, datetime]]  # each event once, in the order of its first ticket


def buyer_cancellable(detail: OrderDetail, *, now: datetime) -> BuyerCancellation:
    """Read from the order's tickets as `order_for_shopper` loads them (with their events): no query."""
    if detail.order.status != Order.Status.PAID:
        return BuyerCancellation(tickets=[], deadlines=[])
    tickets = [t for t in detail.tickets if not t.cancelled_at and buyer_may_cancel(t.ticket_type.event, now=now)]
    events = {ticket.ticket_type.event_id: ticket.ticket_type.event for ticket in tickets}
    deadlines = [(event, until) for event in events.values() if (until := event.buyer_cancellation_until)]
    return BuyerCancellation(tickets=tickets, deadlines=deadlines)


def buyer_cancellation_quote(
    detail: OrderDetail, codes: Collection[str], *, now: datetime
) -> tuple[list[Ticket], Decimal]:
    """The tickets among `codes` the buyer may cancel now, and what cancelling them refunds: their prices, at most
    what is left of the order to refund (as `tickets_cancel_by_buyer` decides again under the lock). One query."""
    chosen = [ticket for ticket in buyer_cancellable(detail, now=now).tickets if ticket.code in codes]
    return chosen, min(tickets_price(chosen), order_refundable(detail.order))


def _order_without_tickets(*, code: str, secret: str) -> OrderDetail:
    order = Order.objects.filter(code=code, tickets__isnull=True).first()
    if order is None or not hmac.compare_digest(order.secret.encode(), secret.encode()):
        raise NotFoundError("No such order.")
    lines = list(order.lines.select_related("ticket_type__event").order_by("pk"))
    return OrderDetail(order=order, lines=lines, tickets=[])


@dataclass(frozen=True)
class OrderToPay:
    """A shopper's order on its pay page."""

    detail: OrderDetail
    # Awaiting payment and within its payment window: the page offers the card form.
    payable: bool
    # What the buyer's browser needs to pay with the order's provider, and the sources the page's CSP adds for it.
    client_config: dict[str, str]
    content_security_policy: dict[str, list[str]]

    @property
    def order(self) -> Order:
        return self.detail.order


def order_to_pay(*, code: str, secret: str, now: datetime) -> OrderToPay:
    """The order behind a private link as its pay page shows it: four queries (two for an order with tickets)."""
    detail = order_for_shopper(code=code, secret=secret)
    payment = latest_payment(detail.order)
    if payment is None or not detail.order.awaits_payment(now):
        return OrderToPay(detail=detail, payable=False, client_config={}, content_security_policy={})
    provider = payment_provider_named(payment.provider)
    return OrderToPay(
        detail=detail,
        payable=True,
        client_config=provider.client_config(amount=payment.amount, currency=payment.currency),
        content_security_policy=provider.content_security_policy(),
    )


def latest_payment(order: Order) -> Payment | None:
    """The order's latest attempt to pay for it (an order is paid through one payment; a retry makes another)."""
    return order.payments.order_by("-id").first()


def order_for_staff(*, code: str) -> Order:
    order = _orders_with_details().filter(code=code).first()
    if order is None:
        raise NotFoundError("No such order.")
    return order


def order_for_staff_by_id(*, order_id: int) -> Order:
    """One order with its lines, tickets and payments (four queries), for emails and staff actions."""
    order = _orders_with_details().filter(pk=order_id).first()
    if order is None:
        raise NotFoundError("No such order.")
    return order


def order_refund(*, order_id: int) -> Refund:
    """The refund of the order's cancellation."""
    refund = Refund.objects.filter(order_id=order_id, reason=Refund.Reason.CANCELLATION).first()
    if refund is None:
        raise NotFoundError("This order has no refund.")
    return refund


def orders_list(*, event_id: int | None = None, status: str | None = None) -> QuerySet[Order]:
    """Orders newest first, optionally of one event and/or one status (four queries a page)."""
    queryset = _orders_with_details()
    if status:
        queryset = queryset.filter(status=status)
    if event_id is not None:
        queryset = queryset.filter(
            Exists(OrderLine.objects.filter(order=OuterRef("pk"), ticket_type__event_id=event_id))
        )
    return queryset.order_by("-created_at", "-id")


def tickets_per_event_of_buyer(*, email: str, event_ids: list[int]) -> dict[int, int]:
    """Paid tickets one buyer email (any case) owns per event."""
    owned = (
        Ticket.objects.filter(
            ticket_type__event_id__in=event_ids, order__email__iexact=email.strip(), order__status=Order.Status.PAID
        )
        .values_list("ticket_type__event_id")
        .annotate(n=Count("id"))
    )
    return dict(owned)


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


def event_exists(*, event_id: int) -> bool:
    return Event.objects.filter(pk=event_id).exists()


def _valid_tickets_of_event(event_id: int) -> QuerySet[Ticket]:
    """The event's tickets not cancelled on their own (their order's status decides the rest)."""
    return Ticket.objects.filter(ticket_type__event_id=event_id, cancelled_at__isnull=True)


def paid_orders_of_event(*, event_id: int) -> QuerySet[Order]:
    """Paid orders holding valid tickets of the event."""
    return Order.objects.filter(
        Exists(_valid_tickets_of_event(event_id).filter(order=OuterRef("pk"))), status=Order.Status.PAID
    )


@dataclass(frozen=True)
class EventCancellation:
    """What cancelling an event would cancel now: its valid tickets in paid orders, and what they cost."""

    orders: int
    tickets: int
    amount: Decimal


def event_cancellation_preview(*, event_id: int) -> EventCancellation:
    """Two queries, whatever the number of orders."""
    valid = _valid_tickets_of_event(event_id).filter(order__status=Order.Status.PAID)
    totals = valid.aggregate(tickets=Count("pk"), amount=Coalesce(Sum("line__unit_price"), Decimal("0.00")))
    return EventCancellation(
        orders=paid_orders_of_event(event_id=event_id).count(), tickets=totals["tickets"], amount=totals["amount"]
    )


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
    """One row per valid ticket of the event (paid orders), with its check-in time and, last, its answers; never the
    ticket secret."""
    checked_in_at = CheckIn.objects.filter(ticket=OuterRef("pk")).values("checked_in_at")[:1]
    rows = (
        _valid_tickets_of_event(event_id)
        .filter(order__status=Order.Status.PAID)
        .annotate(checked_in_at=Subquery(checked_in_at))
        .values_list(
            "pk",
            "order__code",
            "order__name",
            "order__email",
            "ticket_type__name",
            "checked_in_at",
            "attendee_name",
            "attendee_email",
            "answers",
        )
        .order_by("pk")
    )
    return rows.iterator(chunk_size=EXPORT_CHUNK)
