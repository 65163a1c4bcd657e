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
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, Lower
from django.utils.translation import gettext as _

from aegistickets.errors import BasketNotFoundError, NotFoundError, OtherOrganizersOrderError, ValidationFailedError
from events.models import Event, TicketType, Voucher
from events.selectors import buyer_may_cancel, events_of, in_organizer_scope, organizers_of
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
    unit_price: Decimal  # after the voucher
    line_total: Decimal
    expires_at: datetime
    expired: bool
    list_price: Decimal = Decimal("0.00")  # before the voucher
    voucher: str = ""  # the code its seats are priced with
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
            unit_price=hold.unit_price,
            line_total=hold.unit_price * hold.quantity,
            list_price=hold.ticket_type.price,
            voucher=hold.voucher.code if hold.voucher is not None else "",
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


def _order_details(user: Any = None) -> tuple[Prefetch[Any, Any, Any], ...]:
    """With a user: only the lines and tickets of their events (a ticket's code admits at its event's door)."""
    lines = OrderLine.objects.select_related("ticket_type__event", "voucher")
    tickets = Ticket.objects.select_related("ticket_type__event")
    if user is not None:
        lines = in_organizer_scope(lines, user=user, path=TO_ORGANIZER)
        tickets = in_organizer_scope(tickets, user=user, path=TO_ORGANIZER)
    return (
        Prefetch("lines", queryset=lines),
        Prefetch("tickets", queryset=tickets),
        Prefetch("payments", queryset=Payment.objects.order_by("-id")),
    )


def _orders_with_details() -> QuerySet[Order]:
    return Order.objects.prefetch_related(*_order_details())


# --- what staff of an organizer see and change ----------------------------------------------------------------

# From an order line, a ticket or a hold to the organizer of its event; from an order, through any of its lines.
TO_ORGANIZER = "ticket_type__event__organizer"
ORDER_TO_ORGANIZER = f"lines__{TO_ORGANIZER}"


def orders_of(user: Any) -> QuerySet[Order]:
    """The orders staff see: those with a line for one of their events (a basket may mix organizers); all for a
    superuser."""
    return in_organizer_scope(Order.objects.all(), user=user, path=ORDER_TO_ORGANIZER)


def orders_wholly_of(user: Any) -> QuerySet[Order]:
    """The orders staff may cancel or refund as a whole: every line for one of their events."""
    if user.is_superuser:
        return Order.objects.all()
    foreign = OrderLine.objects.filter(order=OuterRef("pk")).exclude(
        ticket_type__event__organizer__in=organizers_of(user).values("pk")
    )
    return orders_of(user).exclude(Exists(foreign))


def tickets_of(user: Any) -> QuerySet[Ticket]:
    """The tickets of the user's events."""
    return in_organizer_scope(Ticket.objects.all(), user=user, path=TO_ORGANIZER)


def check_ins_of(user: Any) -> QuerySet[CheckIn]:
    """The check-ins at the doors of the user's events."""
    return in_organizer_scope(CheckIn.objects.all(), user=user, path="event__organizer")


def order_for_organizer(*, code: str, user: Any) -> Order:
    """An order staff see, with their events' lines and tickets only, and its payments (four queries); another
    organizer's is as unknown as a made-up code."""
    order = orders_of(user).prefetch_related(*_order_details(user)).filter(code=code).first()
    if order is None:
        raise NotFoundError(_("No such order."))
    return order


def order_to_change(*, code: str, user: Any, codes: Collection[str] | None = None) -> Order:
    """An order staff may write to: cancelling or refunding it as a whole needs every event of it to be theirs;
    cancelling tickets (`codes`) needs only those tickets' events to be. Another organizer's order is unknown (404);
    a ticket of another organizer's event is named as not of this order, as a made-up code is."""
    order = orders_of(user).filter(code=code).first()
    if order is None:
        raise NotFoundError(_("No such order."))
    if codes is None:
        if not orders_wholly_of(user).filter(pk=order.pk).exists():
            raise OtherOrganizersOrderError()
        return order
    wanted = {"".join(code.split()).upper() for code in codes}
    theirs = order.tickets.filter(code__in=wanted).exclude(pk__in=tickets_of(user).values("pk"))
    foreign = sorted(theirs.values_list("code", flat=True))
    if foreign:
        raise ValidationFailedError(errors={"tickets": [f"Not tickets of order {order.code}: {', '.join(foreign)}."]})
    return order


def order_for_shopper(*, code: str, secret: str, with_refunds: bool = False) -> OrderDetail:
    """The order behind a private link, only for its secret (compared in constant time), with its lines and tickets:
    one query for an order with tickets (they, with their order, line, ticket type and event: every line has a ticket
    per seat); three for one without (awaiting payment, expired, failed). `with_refunds` adds the order's refunds,
    read by a second query only if that first one found any (most orders have none)."""
    found = Ticket.objects.filter(order__code=code).select_related("order", "line__voucher", "ticket_type__event")
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


# The orders "find my orders" lists (orders/selfservice.py): those with tickets or on their way to them, and cancelled
# ones (their page says where the refund stands). Expired and failed orders never had tickets.
LOOKUP_STATUSES = (Order.Status.PAID, Order.Status.PENDING, Order.Status.CANCELLED)
LOOKUP_MAX_ORDERS = 20


def lookup_address(email: str) -> str:
    """An address as orders are found by it: any case, no surrounding space."""
    return email.strip().lower()


def address_orders(email: str) -> QuerySet[Order]:
    """An address's orders whose private page is worth sending, newest first, at most LOOKUP_MAX_ORDERS: read through
    the index on (lower(email), created_at)."""
    return (
        Order.objects.alias(email_lower=Lower("email"))
        .filter(email_lower=lookup_address(email), status__in=LOOKUP_STATUSES)
        .order_by("-created_at", "-id")[:LOOKUP_MAX_ORDERS]
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
        raise NotFoundError(_("No such order."))
    lines = list(order.lines.select_related("ticket_type__event", "voucher").order_by("pk"))
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
        raise NotFoundError(_("No such order."))
    return order


def order_for_staff_by_id(*, order_id: int) -> Order:
    """One order with its lines, tickets and payments (four queries), for emails and staff actions."""
    order = _orders_with_details().filter(pk=order_id).first()
    if order is None:
        raise NotFoundError(_("No such order."))
    return order


def order_refund(*, order_id: int) -> Refund:
    """The refund of the order's cancellation."""
    refund = Refund.objects.filter(order_id=order_id, reason=Refund.Reason.CANCELLATION).first()
    if refund is None:
        raise NotFoundError(_("This order has no refund."))
    return refund


def orders_list(*, user: Any, event_id: int | None = None, status: str | None = None) -> QuerySet[Order]:
    """The orders staff see (`orders_of`, with their events' lines and tickets only), newest first, optionally of one
    event and/or one status (four queries a page)."""
    queryset = orders_of(user).prefetch_related(*_order_details(user))
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


def door_counts(*, user: Any, now: datetime, event_id: int | None = None) -> list[DoorCount]:
    """Checked in / sold per event of the user's still running (or one of them); one query whatever the number of
    events."""
    events = (
        events_of(user)
        .annotate(
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
                Subquery(
                    CheckIn.objects.filter(event=OuterRef("pk")).values("event").annotate(n=Count("pk")).values("n")
                ),
                0,
            ),
        )
        .order_by("starts_at", "id")
    )
    events = events.filter(pk=event_id) if event_id is not None else events.filter(ends_at__gt=now)
    return [DoorCount(event=event, checked_in=event.checked_in, sold=event.sold_seats) for event in events]


# --- organizer exports --------------------------------------------------------------------------------

EXPORT_CHUNK = 2000


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


# --- vouchers -------------------------------------------------------------------------------------------------


def _redeemed_tickets() -> QuerySet[Ticket]:
    """Tickets that count for their voucher's use and revenue: valid, of paid orders."""
    return Ticket.objects.filter(
        line__voucher__isnull=False, cancelled_at__isnull=True, order__status=Order.Status.PAID
    )


def vouchers_with_usage(queryset: QuerySet[Voucher], *, now: datetime) -> QuerySet[Voucher]:
    """Annotates what staff judge a voucher by: `held` (redemptions live baskets and pending orders keep), `revenue`
    (what its valid tickets of paid orders brought) and `order_count`; one query whatever the number of vouchers."""
    held = (
        Hold.objects.filter(voucher=OuterRef("pk"), expires_at__gt=now)
        .order_by()
        .values("voucher")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    sold = _redeemed_tickets().filter(line__voucher=OuterRef("pk")).order_by()
    revenue = sold.values("line__voucher").annotate(total=Sum("line__unit_price")).values("total")
    orders = sold.values("line__voucher").annotate(total=Count("order", distinct=True)).values("total")
    money = DecimalField(max_digits=12, decimal_places=2)
    return queryset.annotate(
        held=Coalesce(Subquery(held), 0),
        revenue=Coalesce(Subquery(revenue, output_field=money), Decimal("0.00"), output_field=money),
        order_count=Coalesce(Subquery(orders), 0),
    )


def event_vouchers(*, event: Event, now: datetime) -> list[Voucher]:
    """The vouchers good for an event (its own and its organizer's for all events), newest first, with their usage
    and the ticket types they name (two queries)."""
    vouchers = Voucher.objects.filter(organizer_id=event.organizer_id).filter(
        Q(event_id=event.pk) | Q(event__isnull=True)
    )
    return list(vouchers_with_usage(vouchers.prefetch_related("ticket_types"), now=now))


def voucher_redemptions(voucher_ids: Collection[int]) -> dict[int, list[str]]:
    """Each voucher's paid orders, as "AT-XXXXXX ×2" (order code, valid tickets bought with it), in one query."""
    rows = (
        _redeemed_tickets()
        .filter(line__voucher_id__in=voucher_ids)
        .values_list("line__voucher_id", "order__code")
        .annotate(tickets=Count("pk"))
        .order_by("line__voucher_id", "order__code")
    )
    found: dict[int, list[str]] = {}
    for voucher_id, code, tickets in rows:
        found.setdefault(voucher_id, []).append(f"{code} ×{tickets}")
    return found


def vouchers_by_id(ids: Collection[int], *, now: datetime) -> list[Voucher]:
    """These vouchers as `event_vouchers` shows them."""
    vouchers = Voucher.objects.filter(pk__in=ids).prefetch_related("ticket_types").order_by("pk")
    return list(vouchers_with_usage(vouchers, now=now))
