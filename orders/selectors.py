"""Reads of baskets and orders, each in a fixed number of queries."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from aegistickets.errors import BasketNotFoundError, NotFoundError
from orders.models import Basket, Hold, IdempotencyRecord, Order, OrderLine, Ticket


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
    holds = list(Hold.objects.filter(basket__token=token).select_related("basket", "ticket_type__event").order_by("id"))
    basket = holds[0].basket if holds else Basket.objects.filter(token=token).first()
    if basket is None:
        raise BasketNotFoundError()
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


def _orders_with_details() -> QuerySet[Order]:
    return Order.objects.prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("ticket_type__event")),
        Prefetch("tickets", queryset=Ticket.objects.select_related("ticket_type__event")),
    )


def order_for_shopper(*, code: str, secret: str) -> Order:
    """The order behind a private link; the secret is compared in constant time."""
    order = _orders_with_details().filter(code=code).first()
    if order is None or not hmac.compare_digest(order.secret.encode(), secret.encode()):
        raise NotFoundError("No such order.")
    return order


def order_for_staff(*, code: str) -> Order:
    order = _orders_with_details().filter(code=code).first()
    if order is None:
        raise NotFoundError("No such order.")
    return order


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
