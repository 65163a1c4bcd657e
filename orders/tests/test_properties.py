"""Property-based (Hypothesis): any sequence of adds, removals, checkouts and clock moves keeps the books right.

Invariants checked after every step: sold + unexpired holds ≤ capacity; the selectors' `available` equals
capacity − sold − unexpired holds (never negative); every order's total is Σ quantity × unit price and it has one
ticket per seat; `sold` equals the paid tickets.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegistickets.errors import ApplicationError
from events.models import TicketType
from events.selectors import events_with_availability, ticket_types_with_availability
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, services
from orders.models import Hold, Order, Ticket

pytestmark = pytest.mark.django_db

STEP = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 1), st.integers(0, 3), st.integers(-2, 12)),
    st.tuples(st.just("checkout"), st.integers(0, 3)),
    st.tuples(st.just("remove"), st.integers(0, 3)),
    st.tuples(st.just("wait"), st.integers(1, 15)),
)


class RollbackError(Exception):
    pass


def check_books(now, event):
    for tt in ticket_types_with_availability(TicketType.objects.filter(event=event), now=now):
        held = Hold.objects.filter(ticket_type=tt, expires_at__gt=now).aggregate(n=Sum("quantity"))["n"] or 0
        assert tt.sold + held <= tt.capacity
        assert tt.available == tt.capacity - tt.sold - held >= 0
        assert tt.sold == Ticket.objects.filter(ticket_type=tt, order__status=Order.Status.PAID).count()
    annotated = events_with_availability(type(event).objects.filter(pk=event.pk), now=now).get()
    assert annotated.available == sum(
        tt.available for tt in ticket_types_with_availability(TicketType.objects.filter(event=event), now=now)
    )
    for order in Order.objects.prefetch_related("lines", "tickets"):
        assert order.total == sum((line.quantity * line.unit_price for line in order.lines.all()), Decimal(0))
        assert order.tickets.count() == sum(line.quantity for line in order.lines.all())


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    capacities=st.tuples(st.integers(0, 8), st.integers(0, 8)),
    prices=st.tuples(st.decimals("0", "250", places=2), st.decimals("0", "250", places=2)),
    steps=st.lists(STEP, max_size=25),
)
def test_any_sequence_of_shopper_actions_keeps_the_books(now, capacities, prices, steps):
    try:
        with transaction.atomic():
            event = EventFactory(starts_at=now + timedelta(days=30), ends_at=now + timedelta(days=31))
            types = [
                TicketTypeFactory(event=event, capacity=c, price=p, max_per_order=10)
                for c, p in zip(capacities, prices, strict=True)
            ]
            baskets: list[str | None] = [None] * 4
            clock = now
            refusals: list[int] = []
            for step in steps:
                try:
                    if step[0] == "add":
                        _, which, slot, quantity = step
                        basket = services.basket_add(
                            token=baskets[slot], ticket_type_id=types[which].pk, quantity=quantity, now=clock
                        )
                        baskets[slot] = basket.token
                    elif step[0] == "checkout" and baskets[step[1]]:
                        paid = "free" if all(t.price == 0 for t in types) else "test"
                        checkout.order_place(
                            token=baskets[step[1]], name="P", email="p@example.com", payment_method=paid, now=clock
                        )
                    elif step[0] == "remove" and baskets[step[1]]:
                        hold = Hold.objects.filter(basket__token=baskets[step[1]]).first()
                        if hold:
                            services.basket_remove_item(token=baskets[step[1]], hold_id=hold.pk)
                    elif step[0] == "wait":
                        clock += timedelta(minutes=step[1])
                except ApplicationError as error:
                    refusals.append(error.status)
                check_books(clock, event)
            assert all(status < 500 for status in refusals)
            raise RollbackError
    except RollbackError:
        pass
