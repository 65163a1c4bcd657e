"""Per-event limit of tickets per buyer email (Event.max_tickets_per_buyer), enforced at commit under a lock."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db.models import Sum

from aegistickets.errors import BuyerLimitExceededError
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, seats, selectors, services
from orders.models import Hold, Order, Ticket
from orders.tests.test_concurrency import run_at_once


def place(ticket_type, quantity, email, now, *, other=None):
    basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=now)
    if other is not None:
        services.basket_add(token=basket.token, ticket_type_id=other.pk, quantity=1, now=now)
    return checkout.order_place(token=basket.token, name="Buyer", email=email, payment_method="test", now=now)


@pytest.fixture
def limited(db):
    event = EventFactory(max_tickets_per_buyer=4)
    return TicketTypeFactory(event=event, capacity=50), TicketTypeFactory(event=event, capacity=50)


def test_a_buyer_may_not_pass_the_event_limit_across_orders_and_ticket_types(limited, now):
    standard, vip = limited
    place(standard, 3, "ada@example.com", now)
    with pytest.raises(BuyerLimitExceededError) as refused:
        place(vip, 2, "ADA@example.com ", now)  # case and whitespace do not make a new buyer
    assert refused.value.extra == {"max_tickets_per_buyer": 4, "already": 3}
    assert Order.objects.count() == 1
    assert Ticket.objects.count() == 3
    vip.refresh_from_db()
    assert vip.sold == 0  # nothing taken; the basket keeps its hold
    assert Hold.objects.filter(ticket_type=vip).count() == 1
    place(vip, 1, "ada@example.com", now)  # up to the limit exactly
    assert Ticket.objects.filter(order__email__iexact="ada@example.com").count() == 4


def test_other_buyers_and_other_events_are_not_affected(limited, now):
    standard, _ = limited
    place(standard, 4, "ada@example.com", now)
    place(standard, 4, "grace@example.com", now)
    unlimited = TicketTypeFactory(capacity=50)
    place(unlimited, 10, "ada@example.com", now)
    assert Order.objects.count() == 3


def test_cancelled_orders_do_not_count(limited, now):
    standard, _ = limited
    order = place(standard, 4, "ada@example.com", now).order
    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)
    place(standard, 4, "ada@example.com", now)


def test_api_answers_409_buyer_limit_exceeded_and_refunds(api, limited, now):
    standard, _ = limited
    place(standard, 4, "ada@example.com", now)
    token = api.post("/api/basket", {"ticket_type_id": standard.pk, "quantity": 1}, format="json").json()["token"]
    body = {"basket": token, "name": "Ada", "email": "ada@example.com", "payment_method": "test"}
    response = api.post("/api/checkout", body, format="json")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "buyer_limit_exceeded"
    assert response.json()["max_tickets_per_buyer"] == 4
    assert Order.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("locked", [True, False])
def test_concurrent_orders_of_one_buyer_never_pass_the_limit(monkeypatch, now, locked):
    """Six orders of 2 by one buyer at once, limit 4, on two ticket types (no shared seat row): exactly two win.
    The control drops the buyer lock, and a barrier makes every order count the buyer's tickets before any writes
    its own: the same checks then see the limit broken, every run."""
    event = EventFactory(max_tickets_per_buyer=4)
    types = [TicketTypeFactory(event=event, capacity=50) for _ in range(2)]
    if not locked:
        monkeypatch.setattr(seats, "lock_events", lambda ids: None)
        everyone_counted = threading.Barrier(6, timeout=20)
        count = selectors.tickets_per_event_of_buyer

        def count_then_wait(**kwargs):
            owned = count(**kwargs)
            everyone_counted.wait()
            return owned

        monkeypatch.setattr(selectors, "tickets_per_event_of_buyer", count_then_wait)
    baskets = [
        services.basket_add(token=None, ticket_type_id=types[i % 2].pk, quantity=2, now=now).token for i in range(6)
    ]

    def buy(i):
        try:
            checkout.order_place(
                token=baskets[i], name="Scalper", email="bot@example.com", payment_method="test", now=now
            )
        except BuyerLimitExceededError:
            return "refused"
        return "bought"

    outcomes = Counter(run_at_once(6, buy))
    bought = Ticket.objects.filter(order__email="bot@example.com").count()
    sold = sum(t.sold for t in type(types[0]).objects.filter(event=event))
    assert sold == bought
    if locked:
        assert outcomes == {"bought": 2, "refused": 4}
        assert bought == 4
    else:
        assert bought > 4
    assert (Hold.objects.aggregate(n=Sum("quantity"))["n"] or 0) == 2 * outcomes["refused"]
