"""The seat protocol and checkout rules, on the database, with the clock passed in."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.db.models import F

from aegistickets.errors import (
    BasketEmptyError,
    BasketNotFoundError,
    HoldExpiredError,
    IdempotencyConflictError,
    InsufficientInventoryError,
    MaxPerOrderExceededError,
    NotFoundError,
    NotOnSaleError,
    OrderNotCancellableError,
    PaymentDeclinedError,
    PriceChangedError,
    SoldOutError,
    ValidationFailedError,
)
from events.models import TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, seats, services
from orders.models import Basket, Hold, IdempotencyRecord, Order, Payment, Ticket
from orders.payments import TEST_DECLINE_EMAIL

pytestmark = pytest.mark.django_db

HOLD = timedelta(minutes=10)


def add(ticket_type, quantity, now, token=None):
    return services.basket_add(token=token, ticket_type_id=ticket_type.pk, quantity=quantity, now=now)


def place(basket, now, **kwargs):
    defaults = {"name": "Ada Lovelace", "email": "ada@example.com", "payment_method": "test"}
    return checkout.order_place(token=basket.token, now=now, **{**defaults, **kwargs})


def available(ticket_type, now):
    from events.selectors import ticket_types_with_availability

    return ticket_types_with_availability(TicketType.objects.filter(pk=ticket_type.pk), now=now).get().available


# --- basket_add ---------------------------------------------------------------------------------------


def test_add_creates_basket_and_hold_for_hold_minutes(ticket_type, now):
    basket = add(ticket_type, 3, now)
    hold = Hold.objects.get(basket=basket)
    assert (hold.quantity, hold.expires_at) == (3, now + HOLD)
    assert available(ticket_type, now) == 7


def test_add_to_existing_basket_merges_the_line_and_renews_the_hold(ticket_type, now):
    basket = add(ticket_type, 2, now)
    later = now + timedelta(minutes=4)
    add(ticket_type, 3, later, token=basket.token)
    hold = Hold.objects.get(basket=basket)
    assert (hold.quantity, hold.expires_at) == (5, later + HOLD)


def test_add_beyond_max_per_order_counts_what_the_basket_holds(ticket_type, now):
    basket = add(ticket_type, 8, now)
    with pytest.raises(MaxPerOrderExceededError, match="already holds 8"):
        add(ticket_type, 3, now, token=basket.token)
    assert Hold.objects.get(basket=basket).quantity == 8


def test_add_more_than_available_is_insufficient_inventory_and_changes_nothing(ticket_type, now):
    add(ticket_type, 8, now)
    with pytest.raises(InsufficientInventoryError) as caught:
        add(ticket_type, 3, now)
    assert caught.value.extra["available"] == 2
    assert Hold.objects.count() == 1
    assert Basket.objects.count() == 1  # the failed add created no basket


def test_add_when_nothing_is_left_is_sold_out(ticket_type, now):
    add(ticket_type, 10, now)
    with pytest.raises(SoldOutError):
        add(ticket_type, 1, now)


def test_expired_holds_stop_counting_without_any_cleanup(ticket_type, now):
    add(ticket_type, 10, now)
    assert available(ticket_type, now + HOLD - timedelta(seconds=1)) == 0
    assert available(ticket_type, now + HOLD) == 10
    add(ticket_type, 10, now + HOLD)  # another shopper gets them
    assert Hold.objects.count() == 2


def test_sold_seats_count_against_availability(ticket_type, now):
    place(add(ticket_type, 6, now), now)
    assert available(ticket_type, now) == 4
    with pytest.raises(InsufficientInventoryError):
        add(ticket_type, 5, now)


@pytest.mark.parametrize(
    ("starts", "ends"),
    [(timedelta(hours=1), None), (None, -timedelta(minutes=1)), (-timedelta(days=2), -timedelta(days=1))],
)
def test_add_outside_the_sale_window_is_not_on_sale(ticket_type, now, starts, ends):
    TicketType.objects.filter(pk=ticket_type.pk).update(
        sale_starts_at=now + starts if starts is not None else None,
        sale_ends_at=now + ends if ends is not None else None,
    )
    with pytest.raises(NotOnSaleError):
        add(ticket_type, 1, now)


def test_add_for_an_event_that_ended_is_not_on_sale(now):
    event = EventFactory(starts_at=now - timedelta(days=1), ends_at=now - timedelta(hours=1))
    with pytest.raises(NotOnSaleError):
        add(TicketTypeFactory(event=event), 1, now)


def test_add_for_unpublished_event_or_unknown_type_is_not_found(now):
    hidden = TicketTypeFactory(event=EventFactory(is_published=False))
    with pytest.raises(NotFoundError):
        add(hidden, 1, now)
    with pytest.raises(NotFoundError):
        services.basket_add(token=None, ticket_type_id=999_999, quantity=1, now=now)
    assert Basket.objects.count() == 0


def test_add_to_unknown_basket_is_not_found(ticket_type, now):
    with pytest.raises(BasketNotFoundError):
        add(ticket_type, 1, now, token="no-such-basket")


def test_add_zero_is_a_validation_error(ticket_type, now):
    with pytest.raises(ValidationFailedError):
        add(ticket_type, 0, now)


def test_remove_item_frees_its_seats(ticket_type, now):
    basket = add(ticket_type, 10, now)
    hold = Hold.objects.get()
    services.basket_remove_item(token=basket.token, hold_id=hold.pk)
    assert available(ticket_type, now) == 10
    with pytest.raises(NotFoundError):
        services.basket_remove_item(token=basket.token, hold_id=hold.pk)


def test_remove_item_of_another_basket_is_not_found(ticket_type, now):
    mine = add(ticket_type, 1, now)
    theirs = add(ticket_type, 1, now)
    with pytest.raises(NotFoundError):
        services.basket_remove_item(token=mine.token, hold_id=Hold.objects.get(basket=theirs).pk)
    assert Hold.objects.count() == 2


# --- order_place --------------------------------------------------------------------------------------


def test_checkout_sells_the_held_seats_in_one_order(now):
    concert = TicketTypeFactory(price=Decimal("25.00"), capacity=10)
    vip = TicketTypeFactory(price=Decimal("99.50"), capacity=5)
    basket = add(concert, 2, now)
    add(vip, 1, now, token=basket.token)

    result = place(basket, now)

    order = result.order
    assert result.created
    assert order.status == Order.Status.PAID
    assert order.total == Decimal("149.50")
    assert order.created_at == now
    assert sorted((line.ticket_type_id, line.quantity, line.unit_price) for line in order.lines.all()) == sorted(
        [(concert.pk, 2, Decimal("25.00")), (vip.pk, 1, Decimal("99.50"))]
    )
    assert order.tickets.count() == 3
    assert len({t.code for t in order.tickets.all()}) == 3
    concert.refresh_from_db()
    vip.refresh_from_db()
    assert (concert.sold, vip.sold) == (2, 1)
    assert not Hold.objects.exists()
    assert order.code.startswith("AT-")
    assert len(order.code) == 9


def test_order_total_equals_its_lines_and_prices_come_from_the_database(ticket_type, now):
    basket = add(ticket_type, 3, now)
    order = place(basket, now).order
    assert order.total == sum(line.line_total for line in order.lines.all())
    TicketType.objects.filter(pk=ticket_type.pk).update(price=Decimal("1.00"))
    order.refresh_from_db()
    assert order.lines.get().unit_price == Decimal("25.00")  # snapshot, not a reference


def test_ticket_codes_are_long_unguessable_and_unique(ticket_type, now):
    order = place(add(ticket_type, 5, now), now).order
    codes = list(Ticket.objects.filter(order=order).values_list("code", flat=True))
    assert all(len(code) == 26 for code in codes)
    assert len(set(codes)) == 5


def test_checkout_of_empty_basket_is_basket_empty(ticket_type, now):
    basket = add(ticket_type, 1, now)
    Hold.objects.all().delete()
    with pytest.raises(BasketEmptyError):
        place(basket, now)
    assert not Order.objects.exists()


def test_checkout_twice_without_a_key_never_sells_twice(ticket_type, now):
    basket = add(ticket_type, 2, now)
    place(basket, now)
    with pytest.raises(BasketEmptyError):
        place(basket, now)
    assert Order.objects.count() == 1
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 2


def test_declined_payment_creates_no_order_and_keeps_the_holds(ticket_type, now):
    basket = add(ticket_type, 2, now)
    with pytest.raises(PaymentDeclinedError):
        place(basket, now, email=TEST_DECLINE_EMAIL)
    assert not Order.objects.exists()
    assert Hold.objects.get(basket=basket).quantity == 2
    # ... so the shopper can retry with another card
    assert place(basket, now).created


def test_expired_hold_is_re_reserved_at_checkout_when_seats_are_free(ticket_type, now):
    basket = add(ticket_type, 2, now)
    order = place(basket, now + HOLD + timedelta(minutes=5)).order
    assert order.tickets.count() == 2


def test_expired_hold_whose_seats_were_taken_is_hold_expired(ticket_type, now):
    basket = add(ticket_type, 4, now)
    later = now + HOLD + timedelta(seconds=1)
    add(ticket_type, 8, later)  # someone else took the freed seats
    with pytest.raises(HoldExpiredError) as caught:
        place(basket, later)
    assert caught.value.extra["available"] == 2
    assert Order.objects.count() == 0
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 0


def test_an_event_withdrawn_from_sale_sells_no_more_even_to_held_baskets(ticket_type, now):
    basket = add(ticket_type, 2, now)
    type(ticket_type.event).objects.filter(pk=ticket_type.event_id).update(is_published=False)
    with pytest.raises(NotOnSaleError):
        place(basket, now)
    assert not Order.objects.exists()


def test_free_orders_go_through_the_free_provider(now):
    free = TicketTypeFactory(price=Decimal("0.00"))
    order = place(add(free, 2, now), now).order
    assert (order.total, order.payment_method, order.payment_reference) == (Decimal("0.00"), "free", "free")


def test_free_method_cannot_pay_a_priced_order(ticket_type, now):
    with pytest.raises(ValidationFailedError) as caught:
        place(add(ticket_type, 1, now), now, payment_method="free")
    assert "payment_method" in caught.value.errors


def test_unknown_payment_method_is_a_validation_error(ticket_type, now):
    with pytest.raises(ValidationFailedError):
        place(add(ticket_type, 1, now), now, payment_method="bitcoin")


def test_unknown_basket_is_not_found(now):
    with pytest.raises(NotFoundError):
        checkout.order_place(token="nope", name="A", email="a@example.com", payment_method="test", now=now)


def test_price_change_between_quote_and_lock_refunds_and_refuses(ticket_type, now, monkeypatch, provider):
    basket = add(ticket_type, 1, now)
    real_take = checkout._take_seats

    def organizer_changes_price_meanwhile(*args, **kwargs):
        TicketType.objects.filter(pk=ticket_type.pk).update(price=F("price") + 1)
        return real_take(*args, **kwargs)

    monkeypatch.setattr(checkout, "_take_seats", organizer_changes_price_meanwhile)
    with pytest.raises(PriceChangedError):
        place(basket, now)
    assert not Order.objects.exists()
    assert provider.authorized == [(Decimal("25.00"), provider.voided[0])]
    assert provider.captured == []
    assert Hold.objects.filter(basket=basket).exists()


def test_seats_gone_after_authorization_release_the_payment(ticket_type, now, monkeypatch, provider):
    """A buyer is never left without either tickets or their money: nothing was captured, the authorization is
    voided."""
    basket = add(ticket_type, 4, now)
    later = now + HOLD + timedelta(seconds=1)
    real_lock = seats.lock_ticket_type

    def rush_takes_the_seats_meanwhile(ticket_type_id):
        TicketType.objects.filter(pk=ticket_type.pk).update(sold=8)
        return real_lock(ticket_type_id)

    monkeypatch.setattr(seats, "lock_ticket_type", rush_takes_the_seats_meanwhile)
    with pytest.raises(HoldExpiredError):
        place(basket, later)
    assert not Order.objects.exists()
    assert [payment_id for _, payment_id in provider.authorized] == provider.voided
    assert provider.captured == []
    assert Payment.objects.get().status == Payment.Status.VOIDED


def test_successful_checkout_is_captured_once_after_the_commit(ticket_type, now, provider):
    order = place(add(ticket_type, 2, now), now).order
    assert provider.authorized == provider.captured == [(Decimal("50.00"), order.payment_reference)]
    assert provider.voided == provider.refunds == []
    payment = Payment.objects.get()
    assert (payment.order, payment.status, payment.amount) == (order, Payment.Status.CAPTURED, Decimal("50.00"))


def test_an_order_code_clash_is_retried_with_a_new_code(ticket_type, now, monkeypatch, provider):
    taken = place(add(ticket_type, 1, now), now).order.code
    codes = iter([taken, "AT-NEW777"])
    monkeypatch.setattr(checkout, "new_order_code", lambda: next(codes))
    order = place(add(ticket_type, 1, now), now).order
    assert order.code == "AT-NEW777"
    assert Order.objects.count() == 2
    assert len(provider.captured) == 2
    assert provider.voided == []


def test_a_fresh_order_is_shown_without_another_query(ticket_type, now, django_assert_num_queries):
    detail = place(add(ticket_type, 2, now), now).detail
    with django_assert_num_queries(0):
        assert [t.ticket_type.event.name for t in detail.tickets] == [ticket_type.event.name] * 2
        assert [line.line_total for line in detail.lines] == [Decimal("50.00")]


# --- idempotency --------------------------------------------------------------------------------------


def test_same_key_and_body_returns_the_same_order(ticket_type, now):
    basket = add(ticket_type, 2, now)
    first = place(basket, now, idempotency_key="key-1", fingerprint="body-a")
    again = place(basket, now, idempotency_key="key-1", fingerprint="body-a")
    assert first.created
    assert not again.created
    assert again.order.pk == first.order.pk
    assert Order.objects.count() == 1
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 2


def test_same_key_with_another_body_is_a_conflict(ticket_type, now):
    basket = add(ticket_type, 2, now)
    place(basket, now, idempotency_key="key-1", fingerprint="body-a")
    other = add(ticket_type, 1, now)
    with pytest.raises(IdempotencyConflictError):
        place(other, now, idempotency_key="key-1", fingerprint="body-b")
    assert Order.objects.count() == 1
    assert Hold.objects.filter(basket=other).exists()


def test_failed_checkout_leaves_the_key_free_for_a_retry(ticket_type, now):
    basket = add(ticket_type, 1, now)
    with pytest.raises(PaymentDeclinedError):
        place(basket, now, email=TEST_DECLINE_EMAIL, idempotency_key="k", fingerprint="declined")
    assert not IdempotencyRecord.objects.exists()
    assert place(basket, now, idempotency_key="k", fingerprint="approved").created


def test_fingerprint_is_stable_and_sensitive_to_every_field():
    base = {"basket": "b", "name": "n", "email": "e@example.com", "payment_method": "test"}
    assert checkout.checkout_fingerprint(**base) == checkout.checkout_fingerprint(**dict(reversed(base.items())))
    for field in base:
        assert checkout.checkout_fingerprint(**{**base, field: "other"}) != checkout.checkout_fingerprint(**base)


# --- cancellation and housekeeping --------------------------------------------------------------------


def test_cancel_returns_the_seats_to_sale(ticket_type, now):
    order = place(add(ticket_type, 10, now), now).order
    assert available(ticket_type, now) == 0
    cancelled = services.order_cancel(order_id=order.pk, now=now)
    assert (cancelled.status, cancelled.cancelled_at) == (Order.Status.CANCELLED, now)
    assert available(ticket_type, now) == 10


def test_cancel_twice_is_an_error_and_returns_nothing_twice(ticket_type, now):
    order = place(add(ticket_type, 3, now), now).order
    services.order_cancel(order_id=order.pk, now=now)
    with pytest.raises(OrderNotCancellableError):
        services.order_cancel(order_id=order.pk, now=now)
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 0


def test_database_refuses_to_sell_beyond_capacity_even_without_the_service(ticket_type):
    with pytest.raises(IntegrityError):
        TicketType.objects.filter(pk=ticket_type.pk).update(sold=F("capacity") + 1)


def test_release_expired_holds_deletes_long_expired_holds_and_old_empty_baskets(ticket_type, now):
    fresh = add(ticket_type, 1, now)
    recently_expired = add(ticket_type, 1, now - HOLD - timedelta(minutes=5))
    stale = add(ticket_type, 1, now - HOLD - timedelta(hours=2))
    Basket.objects.filter(pk=stale.pk).update(updated_at=now - timedelta(days=2))

    result = seats.release_expired(now=now)

    assert (result.holds, result.baskets) == (1, 1)
    assert sorted(Hold.objects.values_list("basket_id", flat=True)) == [fresh.pk, recently_expired.pk]
    assert not Basket.objects.filter(pk=stale.pk).exists()
    assert available(ticket_type, now) == 9


def test_a_recently_expired_hold_survives_cleanup_so_checkout_can_renew_it(ticket_type, now):
    basket = add(ticket_type, 2, now)
    later = now + HOLD + timedelta(minutes=10)
    seats.release_expired(now=later)
    assert place(basket, later).order.tickets.count() == 2
