"""A checkout whose database connection breaks around its commit: the buyer's payment is captured exactly when an order
exists, and voided exactly when none does. The order's transaction is real; what is simulated is the connection
dying after PostgreSQL (or SQLite) committed and before the acknowledgement reached the app, which Django reports as
an OperationalError."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError, connection
from prometheus_client import REGISTRY

from orders import checkout, payments, selectors
from orders.models import Hold, Order, Payment, Ticket
from orders.tests.test_services import add, place

# The check for a committed order runs only outside any transaction, as in a request: no test transaction here.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_broken_connection_left(transactional_db):
    yield
    connection.close()  # before the database is flushed for the next test


def connection_dies(*, after_commit):
    """A stand-in for `checkout._commit` whose connection dies, either before its transaction commits, or in the
    COMMIT itself once the database has committed, as when the acknowledgement is lost on the way back: Django's
    `transaction.atomic` then sees the commit fail, tries to roll back, and drops the on-commit callbacks."""
    if after_commit and connection.vendor != "postgresql":
        pytest.skip("SQLite has no connection that could fail after its commit")
    real_commit = checkout._commit

    def lose_the_connection():
        if connection.vendor == "postgresql":
            connection.connection.close()  # the socket is gone; Django's wrapper does not know yet
        # (SQLite has no socket to lose, and closing the test run's in-memory database would drop it.)
        raise OperationalError("server closed the connection unexpectedly")

    def commit(*args, **kwargs):
        if not after_commit:
            lose_the_connection()
        connection.ensure_connection()
        driver = connection.connection  # psycopg's connection, whose commit() Django calls at the end of atomic()
        committed = driver.commit

        def commit_then_lose_the_connection():
            committed()
            lose_the_connection()

        driver.commit = commit_then_lose_the_connection
        return real_commit(*args, **kwargs)

    return commit


def test_a_commit_whose_acknowledgement_is_lost_keeps_the_order_and_the_payment(
    ticket_type, now, monkeypatch, provider
):
    basket = add(ticket_type, 2, now)
    monkeypatch.setattr(checkout, "_commit", connection_dies(after_commit=True))

    result = place(basket, now)

    assert result.created
    order = Order.objects.get()
    assert result.order.code == order.code
    assert provider.authorized == provider.captured == [(Decimal("50.00"), order.payment_reference)]
    assert provider.voided == []
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 2
    assert Ticket.objects.filter(order=order).count() == 2


def test_an_order_found_after_a_lost_acknowledgement_is_counted_like_any_other(ticket_type, now, monkeypatch, provider):
    """The sales counters run after a commit Django saw; this one it did not, so they are counted by hand."""

    def sold():
        return (
            REGISTRY.get_sample_value("aegistickets_orders_placed_total") or 0.0,
            REGISTRY.get_sample_value("aegistickets_tickets_sold_total", {"event": ticket_type.event.slug}) or 0.0,
        )

    before = sold()
    monkeypatch.setattr(checkout, "_commit", connection_dies(after_commit=True))
    place(add(ticket_type, 2, now), now)
    assert sold() == (before[0] + 1, before[1] + 2)


def test_the_order_found_after_a_lost_acknowledgement_is_ready_to_show(
    ticket_type, now, monkeypatch, provider, django_assert_num_queries
):
    monkeypatch.setattr(checkout, "_commit", connection_dies(after_commit=True))
    order = place(add(ticket_type, 2, now), now).order
    with django_assert_num_queries(0):
        assert [line.line_total for line in order.lines.all()] == [Decimal("50.00")]
        assert len(order.tickets.all()) == 2


def test_a_connection_lost_before_the_commit_voids_and_says_so(ticket_type, now, monkeypatch, provider):
    basket = add(ticket_type, 2, now)
    monkeypatch.setattr(checkout, "_commit", connection_dies(after_commit=False))

    with pytest.raises(OperationalError):
        place(basket, now)
    connection.close()  # the test's own reads below on a new connection, as the next request's would be

    assert not Order.objects.exists()
    assert [payment_id for _, payment_id in provider.authorized] == provider.voided
    assert provider.captured == []
    assert Hold.objects.filter(basket=basket).count() == 1  # the basket is intact: the buyer can try again


def test_a_connection_lost_before_the_commit_voids_at_once_even_when_the_database_stays_unreachable(
    ticket_type, now, monkeypatch, provider
):
    """The transaction never reached its COMMIT, so no order can exist: nothing has to be read back to know that, and
    the buyer's money is released now, not at the next reconciliation."""
    basket = add(ticket_type, 2, now)
    monkeypatch.setattr(checkout, "_commit", connection_dies(after_commit=False))

    def unreachable(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(selectors, "order_for_staff", unreachable)

    with pytest.raises(OperationalError):
        place(basket, now)
    connection.close()

    assert not Order.objects.exists()
    assert [payment_id for _, payment_id in provider.authorized] == provider.voided
    assert provider.captured == []


def test_when_the_database_stays_unreachable_the_payment_waits_for_reconciliation(
    ticket_type, now, monkeypatch, provider
):
    """The limit of what the app can know: the order committed, but no read can tell it. It neither captures nor
    voids, and answers an error (a 503 in a request); reconciliation then finds the order and captures, and the
    client's retry with its key finds the order (docs/reliability.md)."""
    basket = add(ticket_type, 2, now)
    monkeypatch.setattr(checkout, "_commit", connection_dies(after_commit=True))

    def unreachable(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(selectors, "order_for_staff", unreachable)

    with pytest.raises(OperationalError):
        place(basket, now)
    connection.close()  # the test's own reads below on a new connection, as the next request's would be

    order = Order.objects.get()
    assert (order.status, provider.captured, provider.voided) == (Order.Status.PAID, [], [])
    monkeypatch.undo()
    monkeypatch.setattr(payments, "providers", lambda: {"test": provider})

    settled = checkout.payments_reconcile(now=now + timedelta(minutes=5))

    assert settled.settled == {"unchanged": 1}
    assert provider.captured == [(Decimal("50.00"), order.payment_reference)]
    assert Payment.objects.get().status == Payment.Status.CAPTURED


def test_an_order_of_the_same_code_but_another_payment_is_not_taken_for_ours(ticket_type, now, monkeypatch, provider):
    first = place(add(ticket_type, 1, now), now).order
    basket = add(ticket_type, 1, now)
    monkeypatch.setattr(checkout, "new_order_code", lambda: first.code)
    monkeypatch.setattr(checkout, "_commit", connection_dies(after_commit=False))

    with pytest.raises(OperationalError):
        place(basket, now)
    connection.close()  # the test's own reads below on a new connection, as the next request's would be

    assert provider.voided == [provider.authorized[1][1]]
    assert provider.captured == [provider.authorized[0]]


def test_the_api_answers_201_with_the_order_when_the_acknowledgement_was_lost(api, ticket_type, monkeypatch, provider):
    token = api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 2}, format="json").json()["token"]
    monkeypatch.setattr(checkout, "_commit", connection_dies(after_commit=True))
    body = {"basket": token, "name": "Grace Hopper", "email": "grace@example.com", "payment_method": "test"}

    response = api.post("/api/checkout", body, format="json", HTTP_IDEMPOTENCY_KEY="lost-ack-1")

    assert response.status_code == 201, response.content
    order = response.json()["order"]
    assert order["code"] == Order.objects.get().code
    assert len(order["tickets"]) == 2
    assert provider.voided == []
    monkeypatch.undo()
    monkeypatch.setattr(payments, "providers", lambda: {"test": provider})
    replay = api.post("/api/checkout", body, format="json", HTTP_IDEMPOTENCY_KEY="lost-ack-1")
    assert (replay.status_code, replay.json()["order"]["code"]) == (201, order["code"])
    assert len(provider.captured) == 1
