"""Buyers cancel their own tickets from the private order page, where the event allows it and until its deadline:
with a confirmation step, their price refunded through the order's provider, the seats back on sale."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client

from aegistickets.errors import CancellationClosedError, TicketNotCancellableError
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import services
from orders.models import CheckIn, Order, Refund
from orders.tests.test_cancellations import paid_order, send_queued_emails

pytestmark = pytest.mark.django_db


@pytest.fixture
def cancellable(now):  # type: ignore[no-untyped-def]
    """A ticket type of an event whose buyers may cancel for another day."""
    event = EventFactory(starts_at=now + timedelta(days=10), buyer_cancellation_until=now + timedelta(days=1))
    return TicketTypeFactory(event=event, capacity=10, price=Decimal("25.00"))


def page(order: Order, suffix: str = "") -> str:
    return f"/orders/{order.code}/{order.secret}/{suffix}"


def test_the_buyer_cancels_one_ticket_and_is_refunded_its_price(
    cancellable, provider, now, django_capture_on_commit_callbacks
):  # noqa: E501
    order = paid_order(cancellable)
    first, second = order.tickets.order_by("pk")

    with django_capture_on_commit_callbacks(execute=True):
        refund = services.tickets_cancel_by_buyer(order_id=order.pk, codes=[first.code], now=now)

    refund.refresh_from_db()
    assert (refund.reason, refund.amount, refund.status, refund.note) == (
        "tickets",
        Decimal("25.00"),
        "succeeded",
        "Cancelled by the buyer.",
    )
    assert provider.refunds == [(Decimal("25.00"), order.payment_reference)]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.cancelled_at is not None, second.cancelled_at) == (True, None)
    cancellable.refresh_from_db()
    assert cancellable.sold == 1


@pytest.mark.parametrize(
    "deadline",
    [None, timedelta(seconds=0), timedelta(hours=-1)],
    ids=["event does not allow it", "deadline now", "deadline passed"],
)
def test_outside_the_events_window_nothing_is_cancelled(provider, now, deadline):
    event = EventFactory(
        starts_at=now + timedelta(days=3), buyer_cancellation_until=None if deadline is None else now + deadline
    )
    order = paid_order(TicketTypeFactory(event=event, capacity=10))
    ticket = order.tickets.first()

    with pytest.raises(CancellationClosedError) as refused:
        services.tickets_cancel_by_buyer(order_id=order.pk, codes=[ticket.code], now=now)

    assert refused.value.extra == {"tickets": [ticket.code]}
    assert not Refund.objects.exists()
    assert not order.tickets.filter(cancelled_at__isnull=False).exists()


def test_an_admitted_ticket_cannot_be_cancelled_by_its_buyer(cancellable, provider, now):
    order = paid_order(cancellable)
    ticket = order.tickets.first()
    CheckIn.objects.create(ticket=ticket, event=cancellable.event, checked_in_at=now)
    with pytest.raises(TicketNotCancellableError):
        services.tickets_cancel_by_buyer(order_id=order.pk, codes=[ticket.code], now=now)


def test_after_a_goodwill_refund_the_buyer_gets_at_most_what_is_left(cancellable, provider, now):
    order = paid_order(cancellable)  # 2 x 25.00
    services.refund_part(order_id=order.pk, amount=Decimal("40.00"), note="goodwill", now=now)
    refund = services.tickets_cancel_by_buyer(order_id=order.pk, codes=[order.tickets.first().code], now=now)
    assert refund.amount == Decimal("10.00")


# --- the order page -------------------------------------------------------------------------------------------


def cancel_form_codes(html: str) -> list[str]:
    return re.findall(r'name="tickets" value="([0-9A-Z]+)"', html)


def test_the_order_page_offers_the_tickets_the_buyer_may_cancel_and_until_when(client, cancellable, provider):
    order = paid_order(cancellable)
    html = client.get(page(order)).content.decode()
    assert sorted(cancel_form_codes(html)) == sorted(order.tickets.values_list("code", flat=True))
    assert "You can cancel tickets until" in html


def test_the_order_page_offers_nothing_where_the_event_does_not_allow_it(client, provider):
    order = paid_order(TicketTypeFactory(capacity=10))
    assert cancel_form_codes(client.get(page(order)).content.decode()) == []


def test_the_buyer_confirms_then_the_tickets_are_cancelled_and_the_page_says_so(client, cancellable, provider):
    order = paid_order(cancellable)
    first, second = order.tickets.order_by("pk")
    send_queued_emails()
    mail.outbox.clear()

    review = client.post(page(order, "cancel/"), {"tickets": [first.code]})
    assert review.status_code == 200
    html = review.content.decode()
    assert "Cancel 1 ticket?" in html
    assert "€25.00 will be refunded" in html
    assert not Refund.objects.exists()  # nothing done before the confirmation

    done = client.post(page(order, "cancel/"), {"tickets": [first.code], "confirmed": "yes"}, follow=True)

    assert done.redirect_chain[-1][0] == page(order)
    html = done.content.decode()
    assert "1 ticket cancelled" in html
    assert html.count("cancelled and refunded") == 1
    assert cancel_form_codes(html) == [second.code]
    send_queued_emails()
    (message,) = mail.outbox
    assert first.code in message.body


def test_a_wrong_secret_is_404_and_changes_nothing(client, cancellable, provider):
    order = paid_order(cancellable)
    ticket = order.tickets.first()
    url = f"/orders/{order.code}/{'x' * len(order.secret)}/cancel/"
    assert client.post(url, {"tickets": [ticket.code], "confirmed": "yes"}).status_code == 404
    assert not Refund.objects.exists()


def test_no_ticket_chosen_or_a_closed_window_is_said_on_the_page(client, cancellable, provider, now):
    order = paid_order(cancellable)
    nothing = client.post(page(order, "cancel/"), {"confirmed": "yes"})
    assert nothing.status_code == 400
    assert "Choose the tickets to cancel." in nothing.content.decode()

    type(cancellable.event).objects.filter(pk=cancellable.event_id).update(buyer_cancellation_until=now)
    closed = client.post(page(order, "cancel/"), {"tickets": [order.tickets.first().code], "confirmed": "yes"})
    assert closed.status_code == 409
    assert "can no longer be cancelled" in closed.content.decode()
    assert not Refund.objects.exists()


def test_the_cancel_form_is_protected_against_cross_site_posts(cancellable, provider):
    order = paid_order(cancellable)
    forged = Client(enforce_csrf_checks=True).post(
        page(order, "cancel/"), {"tickets": [order.tickets.first().code], "confirmed": "yes"}
    )
    assert forged.status_code == 403
    assert not Refund.objects.exists()
