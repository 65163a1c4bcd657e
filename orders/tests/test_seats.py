"""The seat protocol's own SQL answers exactly what the ORM would: the same rule, the same rows, the same types."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from events.availability import held_for
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import seats
from orders.models import Basket, Hold

pytestmark = pytest.mark.django_db


def test_the_count_of_held_seats_is_the_rule_the_catalog_counts_by(now):
    ticket_type = TicketTypeFactory(capacity=100)
    baskets = [Basket.objects.create() for _ in range(3)]
    for n, basket in enumerate(baskets):
        # One live hold, one hold expiring exactly now (no longer counts), one long expired, per basket.
        Hold.objects.create(
            basket=basket, ticket_type=ticket_type, quantity=n + 1, expires_at=now + timedelta(seconds=1)
        )
        other = TicketTypeFactory(event=ticket_type.event)
        Hold.objects.create(basket=basket, ticket_type=other, quantity=5, expires_at=now)
    Hold.objects.create(
        basket=Basket.objects.create(), ticket_type=ticket_type, quantity=7, expires_at=now - timedelta(hours=2)
    )

    for basket in baskets:
        mine = Hold.objects.filter(basket=basket, ticket_type=ticket_type).aggregate(n=Sum("quantity"))["n"]
        sql = seats.held_by_others(ticket_type_id=ticket_type.pk, basket_id=basket.pk, now=now)
        assert sql == held_for(ticket_type.pk, now) - mine == 6 - mine
    assert seats.held_by_others(ticket_type_id=ticket_type.pk, basket_id=0, now=now) == 6
    assert seats.held_by_others(ticket_type_id=ticket_type.pk, basket_id=0, now=now + timedelta(seconds=1)) == 0


def test_a_basket_is_read_as_the_orm_reads_it(now):
    event = EventFactory(max_tickets_per_buyer=4)
    first = TicketTypeFactory(event=event, price=Decimal("12.50"))
    second = TicketTypeFactory(price=Decimal("40.00"))
    basket = Basket.objects.create()
    for ticket_type in (first, second):
        Hold.objects.create(basket=basket, ticket_type=ticket_type, quantity=2, expires_at=now)
    expected = list(Hold.objects.filter(basket=basket).select_related("basket", "ticket_type__event").order_by("pk"))

    for read in (seats.basket_holds(token=basket.token), seats.basket_holds(basket_id=basket.pk)):
        assert [h.pk for h in read] == [h.pk for h in expected]
        for got, want in zip(read, expected, strict=True):
            for a, b in ((got, want), (got.basket, want.basket), (got.ticket_type, want.ticket_type)):
                assert {f.attname: getattr(a, f.attname) for f in a._meta.concrete_fields} == {
                    f.attname: getattr(b, f.attname) for f in b._meta.concrete_fields
                }
            event_fields = [f.attname for f in got.ticket_type.event._meta.concrete_fields]
            assert [getattr(got.ticket_type.event, f) for f in event_fields] == [
                getattr(want.ticket_type.event, f) for f in event_fields
            ]
            assert type(got.ticket_type.price) is Decimal
            assert got.expires_at.tzinfo is not None
    assert seats.basket_holds(token="no-such-basket") == []


def test_the_seats_under_the_lock_are_the_rows_numbers(now):
    ticket_type = TicketTypeFactory(capacity=9, price=Decimal("7.10"))
    type(ticket_type).objects.filter(pk=ticket_type.pk).update(sold=4)
    locked = seats.lock_ticket_type(ticket_type.pk)
    assert locked == seats.Seats(ticket_type.pk, 9, 4, Decimal("7.10"))


def test_update_writes_only_the_named_fields_as_the_orm_would(now):
    from orders.models import Payment

    payment = Payment.objects.create(
        reference="r-update", provider="test", amount="10.00", currency="EUR", created_at=now, updated_at=now
    )
    changed = Payment(pk=payment.pk, status="authorized", next_action={"type": "redirect"}, message="ignored")

    assert seats.update(changed, ["status", "next_action"]) == 1
    assert seats.update(changed, ["message"], only_if=("status", "started")) == 0  # no longer started

    stored = Payment.objects.get()
    assert (stored.status, stored.next_action, stored.message) == ("authorized", {"type": "redirect"}, "")
    assert (stored.reference, stored.amount) == ("r-update", Decimal("10.00"))
