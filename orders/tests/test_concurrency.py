"""Many buyers, the last seats, real threads, real PostgreSQL row locks.

Each test releases all threads at once through a barrier, then checks the books: sold never exceeds
capacity, every loser got a clean 409 with a stable code, nothing answered 5xx, no deadlock. The control
case removes the lock and shows these same checks catch the oversell it causes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.db.models import Count, Q, Sum
from django.utils import timezone
from rest_framework.test import APIClient

from aegistickets.errors import HoldExpiredError, SoldOutError
from events.models import TicketType
from events.tests.factories import TicketTypeFactory
from orders import checkout, services
from orders import seats as seat_protocol
from orders.models import Hold, Order, Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 24


def run_at_once(count, work):
    """Runs work(i) in `count` threads released together; returns each result or exception."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def worker(i):
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which asserts on it
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a buyer is stuck: deadlock or lock wait"
    return results


def assert_books_balance(now):
    """Invariant 1 and 3: sold + unexpired holds ≤ capacity; sold equals the paid tickets."""
    for ticket_type in TicketType.objects.annotate(
        held=Sum("holds__quantity", filter=Q(holds__expires_at__gt=now)),
    ):
        paid_tickets = Ticket.objects.filter(ticket_type=ticket_type, order__status=Order.Status.PAID).count()
        assert ticket_type.sold == paid_tickets, ticket_type
        assert ticket_type.sold + (ticket_type.held or 0) <= ticket_type.capacity, (
            f"oversold {ticket_type}: sold {ticket_type.sold} + held {ticket_type.held} > {ticket_type.capacity}"
        )
    unpaid = {Order.Status.PENDING, Order.Status.EXPIRED, Order.Status.FAILED}
    for order in Order.objects.annotate(n=Count("tickets", distinct=True)):
        seats = sum(line.quantity for line in order.lines.all())
        assert order.n == (0 if order.status in unpaid else seats), order


def buy_one(ticket_type_id):
    """A shopper through the public API: add one ticket, check out. Returns (step, status, code)."""
    client = APIClient()
    added = client.post("/api/basket", {"ticket_type_id": ticket_type_id, "quantity": 1}, format="json")
    if added.status_code != 201:
        return ("basket", added.status_code, added.json().get("code"))
    paid = client.post(
        "/api/checkout",
        {"basket": added.json()["token"], "name": "Rush Buyer", "email": "rush@example.com", "payment_method": "test"},
        format="json",
    )
    return ("checkout", paid.status_code, paid.json().get("code") if paid.status_code != 201 else None)


def test_many_buyers_for_the_last_seats_never_oversell():
    seats = 5
    ticket_type = TicketTypeFactory(capacity=seats)

    started = time.perf_counter()
    results = run_at_once(THREADS, lambda i: buy_one(ticket_type.pk))
    elapsed = time.perf_counter() - started

    assert not [r for r in results if isinstance(r, Exception)], results
    outcomes = Counter(results)
    print(f"\n{THREADS} buyers for {seats} seats in {elapsed:.2f}s: {dict(outcomes)}")
    assert outcomes[("checkout", 201, None)] == seats
    assert outcomes[("basket", 409, "sold_out")] == THREADS - seats
    ticket_type.refresh_from_db()
    assert ticket_type.sold == seats
    assert Order.objects.count() == seats
    assert_books_balance(timezone.now())


def test_checkouts_racing_to_renew_expired_holds_never_oversell(now):
    """Holds expired, seats back on sale: every basket tries to re-reserve at checkout at once."""
    seats = 4
    ticket_type = TicketTypeFactory(capacity=seats)
    long_ago = now - timedelta(hours=1)
    baskets = []
    for _ in range(THREADS):
        basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=long_ago)
        Hold.objects.filter(basket=basket).update(expires_at=long_ago)  # old enough to free the seat
        baskets.append(basket)

    def check_out(i):
        try:
            checkout.order_place(
                token=baskets[i].token, name="Late", email="late@example.com", payment_method="test", now=now
            )
        except HoldExpiredError as error:
            return error.code
        return "paid"

    outcomes = Counter(run_at_once(THREADS, check_out))
    assert outcomes == {"paid": seats, "hold_expired": THREADS - seats}
    ticket_type.refresh_from_db()
    assert ticket_type.sold == seats
    assert_books_balance(now)


def test_baskets_locking_two_ticket_types_in_opposite_orders_do_not_deadlock(now):
    """Half the buyers add A then B, half B then A; checkout locks both. Locks in pk order: no deadlock."""
    a = TicketTypeFactory(capacity=THREADS)
    b = TicketTypeFactory(capacity=THREADS)

    def buy_both(i):
        first, second = (a, b) if i % 2 else (b, a)
        basket = services.basket_add(token=None, ticket_type_id=first.pk, quantity=1, now=now)
        services.basket_add(token=basket.token, ticket_type_id=second.pk, quantity=1, now=now)
        return checkout.order_place(
            token=basket.token, name="Both", email="both@example.com", payment_method="test", now=now
        ).created

    results = run_at_once(THREADS, buy_both)
    assert results == [True] * THREADS, [r for r in results if r is not True]
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.sold, b.sold) == (THREADS, THREADS)
    assert_books_balance(now)


def test_concurrent_replays_of_one_idempotency_key_make_one_order(now):
    ticket_type = TicketTypeFactory(capacity=10)
    basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=2, now=now)
    body = {"basket": basket.token, "name": "Retry", "email": "retry@example.com", "payment_method": "test"}

    def send(i):
        response = APIClient().post("/api/checkout", body, format="json", headers={"Idempotency-Key": "same-key"})
        return response.status_code, response.json()["order"]["code"]

    results = run_at_once(8, send)
    assert {status for status, _ in results} == {201}
    assert len({code for _, code in results}) == 1
    assert Order.objects.count() == 1
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 2


def test_one_key_racing_for_two_baskets_makes_one_order_and_one_conflict(now):
    """Different bodies, same key, at once: the unique key decides; the loser is refunded and told 422."""
    ticket_type = TicketTypeFactory(capacity=10)
    baskets = [services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now) for _ in range(2)]

    def send(i):
        body = {"basket": baskets[i].token, "name": f"Buyer {i}", "email": "k@example.com", "payment_method": "test"}
        response = APIClient().post("/api/checkout", body, format="json", headers={"Idempotency-Key": "shared"})
        return response.status_code, response.json().get("code")

    results = sorted(run_at_once(2, send), key=str)
    assert results == [(201, None), (422, "idempotency_conflict")]
    assert Order.objects.count() == 1
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 1
    assert_books_balance(now)


@pytest.mark.parametrize("locked", [True, False], ids=["with-lock", "control-without-lock"])
def test_control_the_race_is_real_and_the_lock_is_what_prevents_it(monkeypatch, now, locked):
    """Widen the window between reading availability and writing the hold. With the row lock, buyers
    queue and the books balance; without it (the control), they all read the same number and oversell,
    and the same checks see it: proof this suite would catch a missing lock. In the control a barrier makes every
    buyer read before any writes, so the race shows every run, however the threads are scheduled."""
    seats = 3
    ticket_type = TicketTypeFactory(capacity=seats)
    real_held = seat_protocol.held_by_others
    everyone_read = threading.Barrier(8, timeout=20)

    def slow_read(**kwargs):
        held = real_held(**kwargs)
        if locked:
            time.sleep(0.2)  # the window, which the lock must keep closed
        else:
            everyone_read.wait()
        return held

    monkeypatch.setattr(seat_protocol, "held_by_others", slow_read)
    if not locked:

        def read_without_lock(ticket_type_id):
            row = TicketType.objects.get(pk=ticket_type_id)  # the same read as lock_ticket_type, minus the lock
            return seat_protocol.Seats(row.pk, row.capacity, row.sold, row.price)

        monkeypatch.setattr(seat_protocol, "lock_ticket_type", read_without_lock)

    def reserve(i):
        try:
            services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now)
        except SoldOutError:
            return "sold_out"
        return "held"

    outcomes = Counter(run_at_once(8, reserve))
    held = Hold.objects.filter(ticket_type=ticket_type).aggregate(n=Sum("quantity"))["n"]
    if locked:
        assert outcomes == {"held": seats, "sold_out": 8 - seats}
        assert_books_balance(now)
    else:
        assert held > seats
        with pytest.raises(AssertionError, match="oversold"):
            assert_books_balance(now)


def test_postgres_is_really_in_use():
    assert connection.vendor == "postgresql"
