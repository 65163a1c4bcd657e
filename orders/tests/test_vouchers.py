"""Vouchers: what they take off, what they unlock, when they are refused, and that their redemptions are counted
like seats (held by live holds, given back by expired ones and by cancellations)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from aegistickets.errors import (
    NotFoundError,
    VoucherExhaustedError,
    VoucherExpiredError,
    VoucherInvalidError,
)
from events.models import Voucher
from events.selectors import event_detail
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, VoucherFactory
from orders import checkout, selectors, services
from orders.models import Order
from orders.tests.test_pending_orders import pay

pytestmark = pytest.mark.django_db


def add(ticket_type, now, quantity=1, voucher="", token=None):
    return services.basket_add(token=token, ticket_type_id=ticket_type.pk, quantity=quantity, now=now, voucher=voucher)


def buy(token, now, **kwargs):
    return checkout.order_place(
        token=token, name="Ada", email="ada@example.com", payment_method="test", now=now, **kwargs
    )


@pytest.mark.parametrize(
    ("discount_type", "value", "unit_price"),
    [
        ("percent", "10", "22.50"),
        ("percent", "33.33", "16.67"),  # 8.3325 off, rounded half up to 8.33
        ("percent", "100", "0.00"),
        ("fixed", "5", "20.00"),
        ("fixed", "40", "0.00"),  # never below zero
        ("price", "12", "12.00"),
        ("price", "99", "25.00"),  # a set price never raises the list price
        ("none", "0", "25.00"),
    ],
)
def test_a_voucher_prices_each_seat_and_the_order_records_the_discount(now, discount_type, value, unit_price):
    ticket_type = TicketTypeFactory(price=Decimal("25.00"))
    VoucherFactory(code="SPRING", discount_type=discount_type, value=Decimal(value))

    basket = add(ticket_type, now, quantity=2, voucher="spring ")
    summary = selectors.basket_summary(token=basket.token, now=now)
    order = buy(basket.token, now).order

    (item,) = summary.items
    assert (item.unit_price, item.list_price, item.voucher) == (Decimal(unit_price), Decimal("25.00"), "SPRING")
    assert summary.total == order.total == Decimal(unit_price) * 2
    line = order.lines.get()
    assert (line.unit_price, line.discount, line.voucher.code) == (
        Decimal(unit_price),
        Decimal("25.00") - Decimal(unit_price),
        "SPRING",
    )
    assert Voucher.objects.get().redeemed == 2


def test_a_code_is_refused_with_its_reason_and_nothing_is_held(now):
    event = EventFactory()
    ticket_type = TicketTypeFactory(event=event)
    other_type = TicketTypeFactory(event=event)
    VoucherFactory(code="LATE", valid_until=now)
    VoucherFactory(code="EARLY", valid_from=now + timedelta(days=1))
    VoucherFactory(code="OTHERTYPE").ticket_types.add(other_type)
    VoucherFactory(code="ELSEWHERE", event=EventFactory())
    VoucherFactory(code="FOREIGN", organizer=OrganizerFactory())

    refusals = {}
    for code in ["NOPE", "LATE", "EARLY", "OTHERTYPE", "ELSEWHERE", "FOREIGN"]:
        with pytest.raises((VoucherInvalidError, VoucherExpiredError)) as refused:
            add(ticket_type, now, voucher=code)
        refusals[code] = refused.value.code

    assert refusals == {
        "NOPE": "voucher_invalid",
        "LATE": "voucher_expired",
        "EARLY": "voucher_expired",
        "OTHERTYPE": "voucher_invalid",
        "ELSEWHERE": "voucher_invalid",
        "FOREIGN": "voucher_invalid",  # another organizer's code: the same answer as an unknown one
    }
    assert not ticket_type.holds.exists()


def test_redemptions_are_held_like_seats_and_come_back_when_the_hold_expires(now):
    ticket_type = TicketTypeFactory(capacity=50)
    VoucherFactory(code="TWO", max_redemptions=2)
    first = add(ticket_type, now, quantity=2, voucher="TWO")

    with pytest.raises(VoucherExhaustedError) as refused:
        add(ticket_type, now, voucher="TWO")
    later = now + timedelta(minutes=16)  # the first basket's hold has expired
    second = add(ticket_type, later, quantity=2, voucher="TWO")

    assert (refused.value.code, refused.value.status, refused.value.extra) == (
        "voucher_exhausted",
        409,
        {"available": 0},
    )
    assert second.just_held.voucher.code == "TWO"
    with pytest.raises(VoucherExhaustedError):  # the first basket's expired hold can't be renewed with the voucher
        buy(first.token, later)
    assert buy(second.token, later).order.total == Decimal("45.00")
    assert Voucher.objects.get().redeemed == 2


def test_more_seats_than_redemptions_left_are_refused_with_how_many_are(now):
    ticket_type = TicketTypeFactory(capacity=50)
    VoucherFactory(code="THREE", max_redemptions=3)
    add(ticket_type, now, quantity=2, voucher="THREE")

    with pytest.raises(VoucherExhaustedError) as refused:
        add(ticket_type, now, quantity=2, voucher="THREE")

    assert refused.value.extra == {"available": 1}
    assert "only 1 more ticket" in refused.value.detail


def test_a_hold_keeps_its_voucher_when_seats_are_added_without_one(now):
    ticket_type = TicketTypeFactory(price=Decimal("20.00"))
    VoucherFactory(code="HALF", value=Decimal("50"))
    basket = add(ticket_type, now, voucher="HALF")

    add(ticket_type, now, token=basket.token)

    assert buy(basket.token, now).order.total == Decimal("20.00")


def test_a_voucher_given_at_checkout_prices_the_seats_it_covers(now):
    event = EventFactory()
    covered = TicketTypeFactory(event=event, price=Decimal("30.00"))
    not_covered = TicketTypeFactory(event=event, price=Decimal("10.00"))
    VoucherFactory(code="TEN", discount_type="fixed", value=Decimal("10")).ticket_types.add(covered)
    basket = add(covered, now, quantity=2)
    add(not_covered, now, token=basket.token)

    order = buy(basket.token, now, voucher="ten").order

    assert order.total == Decimal("50.00")
    assert Voucher.objects.get().redeemed == 2


def test_a_voucher_covering_nothing_in_the_basket_is_refused_at_checkout_and_nothing_is_sold(now):
    ticket_type = TicketTypeFactory()
    VoucherFactory(code="ELSEWHERE", event=EventFactory())
    basket = add(ticket_type, now)

    with pytest.raises(VoucherInvalidError):
        buy(basket.token, now, voucher="ELSEWHERE")

    assert not Order.objects.exists()


def test_a_voucher_that_ran_out_of_time_in_the_basket_is_refused_at_checkout(now):
    ticket_type = TicketTypeFactory()
    VoucherFactory(code="TODAY", valid_until=now + timedelta(minutes=5))
    basket = add(ticket_type, now, voucher="TODAY")

    with pytest.raises(VoucherExpiredError):
        buy(basket.token, now + timedelta(minutes=6))

    assert not Order.objects.exists()


def test_a_hidden_ticket_type_is_listed_and_sold_only_with_a_voucher_that_names_it(now):
    event = EventFactory()
    public = TicketTypeFactory(event=event, price=Decimal("40.00"))
    press = TicketTypeFactory(event=event, price=Decimal("40.00"), requires_voucher=True, name="Press")
    VoucherFactory(code="ANYTHING", value=Decimal("10"))  # names no ticket type: unlocks nothing
    press_pass = VoucherFactory(code="PRESS", discount_type="price", value=Decimal("0"))
    press_pass.ticket_types.add(press)

    with pytest.raises(NotFoundError):
        add(press, now)
    with pytest.raises(VoucherInvalidError):
        add(press, now, voucher="ANYTHING")
    basket = add(press, now, voucher="press")
    add(press, now, token=basket.token)  # more of it: the hold's voucher still unlocks it

    assert [t.pk for t in event_detail(pk=event.pk, now=now).ticket_types.all()] == [public.pk]
    shown = event_detail(pk=event.pk, now=now, voucher=press_pass).ticket_types.all()
    assert [(t.pk, getattr(t, "voucher_price", None)) for t in shown] == [
        (public.pk, None),
        (press.pk, Decimal("0.00")),
    ]
    assert buy(basket.token, now).order.total == Decimal("0.00")


def test_cancelling_tickets_gives_their_redemptions_back(now):
    ticket_type = TicketTypeFactory(capacity=50)
    VoucherFactory(code="FEW", max_redemptions=3)
    order = buy(add(ticket_type, now, quantity=3, voucher="FEW").token, now).order
    first, *_ = order.tickets.order_by("pk")

    services.tickets_cancel(order_id=order.pk, codes=[first.code], note="", now=now)
    after_one = Voucher.objects.get().redeemed
    services.order_cancel(order_id=order.pk, now=now)

    assert (after_one, Voucher.objects.get().redeemed) == (2, 0)
    assert buy(add(ticket_type, now, quantity=3, voucher="FEW").token, now).order.total == Decimal("67.50")


def test_an_order_without_vouchers_costs_no_voucher_query(now, django_assert_num_queries):
    ticket_type = TicketTypeFactory()
    VoucherFactory(code="UNUSED")
    with_voucher = add(ticket_type, now, voucher="UNUSED").token
    plain = add(ticket_type, now).token

    with django_assert_num_queries(1):
        selectors.basket_summary(token=plain, now=now)
    with django_assert_num_queries(2):  # the holds, then their vouchers
        selectors.basket_summary(token=with_voucher, now=now)


def test_a_pending_order_keeps_its_redemptions_until_paid_or_expired(stripe_shop, now):
    """Paid in time: redeemed. Not paid: they return to the pool at the deadline, and a payment after someone else
    used them is voided, as a payment after its seats were sold is."""
    ticket_type = TicketTypeFactory(capacity=50)
    VoucherFactory(code="PAIR", max_redemptions=2)
    basket = add(ticket_type, now, quantity=2, voucher="PAIR")
    pending = checkout.order_place(
        token=basket.token, name="Ada", email="ada@example.com", payment_method="stripe", now=now
    )

    with pytest.raises(VoucherExhaustedError):  # the pending order keeps both
        add(ticket_type, now + timedelta(minutes=14), voucher="PAIR")
    later = now + timedelta(minutes=16)  # its payment window is over
    other = add(ticket_type, later, quantity=2, voucher="PAIR")
    buy(other.token, later)
    pay(pending.payment)
    settled = checkout.payment_settle(payment=pending.payment, now=later)

    assert (pending.order.status, pending.order.total) == ("pending", Decimal("45.00"))
    assert settled.outcome == "not_completed"
    assert Order.objects.get(pk=pending.order.pk).status == "expired"
    assert Voucher.objects.get().redeemed == 2


def test_a_pending_order_paid_in_time_redeems_its_voucher(stripe_shop, now):
    ticket_type = TicketTypeFactory(capacity=50)
    VoucherFactory(code="PAIR", max_redemptions=2)
    basket = add(ticket_type, now, quantity=2, voucher="PAIR")
    pending = checkout.order_place(
        token=basket.token, name="Ada", email="ada@example.com", payment_method="stripe", now=now
    )
    redeemed_while_pending = Voucher.objects.get().redeemed

    pay(pending.payment)
    settled = checkout.payment_settle(payment=pending.payment, now=now + timedelta(minutes=5))

    assert (redeemed_while_pending, settled.outcome, Voucher.objects.get().redeemed) == (0, "paid", 2)
    assert Order.objects.get().lines.get().voucher.code == "PAIR"
