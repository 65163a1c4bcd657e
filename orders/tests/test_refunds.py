"""Partial refunds: part of a paid order's money back on staff's word, never more in all than the order's total,
each asked of the provider once after its commit; the last part makes the order `refunded`; a cancellation then
returns only what is left."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from aegistickets.errors import OrderNotRefundableError, RefundTooLargeError
from aegistickets.tests.test_organizer_access import staff_with
from events.models import TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import services
from orders.models import Order, Refund
from orders.tests.test_cancellations import paid_order, send_queued_emails
from orders.tests.test_concurrency import run_at_once

pytestmark = pytest.mark.django_db


@pytest.fixture
def refund(django_capture_on_commit_callbacks):
    """refund_part as a caller sees it: the provider is asked once the refund's transaction commits."""

    def refund_part(order, amount, note="goodwill"):
        with django_capture_on_commit_callbacks(execute=True):
            made = services.refund_part(order_id=order.pk, amount=Decimal(amount), note=note, now=timezone.now())
        made.refresh_from_db()
        return made

    return refund_part


def test_parts_are_refunded_once_each_and_the_tickets_stay_valid(ticket_type, provider, refund):
    order = paid_order(ticket_type)  # 2 x 25.00

    first = refund(order, "10.00", note="late start")
    second = refund(order, "5.50")

    assert [(r.reason, r.status, r.amount) for r in (first, second)] == [
        ("partial", "succeeded", Decimal("10.00")),
        ("partial", "succeeded", Decimal("5.50")),
    ]
    assert provider.refunds == [(Decimal("10.00"), order.payment_reference), (Decimal("5.50"), order.payment_reference)]
    order.refresh_from_db()
    assert (order.status, order.tickets.count()) == ("paid", 2)
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 2


def test_the_buyer_is_told_of_each_part_and_where_the_money_stands(ticket_type, provider, refund):
    order = paid_order(ticket_type)
    send_queued_emails()  # the confirmation
    mail.outbox.clear()

    refund(order, "10.00", note="staff only: complained at the desk")
    send_queued_emails()

    (message,) = mail.outbox
    assert (message.to, message.subject) == ([order.email], f"Refund: {ticket_type.event.name} - order {order.code}")
    assert "We have refunded €10.00" in message.body
    assert "Your tickets remain valid" in message.body
    assert "complained" not in message.body  # the note is for the records, not the buyer
    assert "€10.00" in message.alternatives[0][0]


def test_the_last_part_tells_the_buyer_the_tickets_are_void(ticket_type, provider, refund):
    order = paid_order(ticket_type)
    refund(order, "20.00")
    send_queued_emails()
    mail.outbox.clear()

    # The provider not asked yet (its step runs after commit, skipped here): the part is still on its way.
    services.refund_part(order_id=order.pk, amount=Decimal("30.00"), note="", now=timezone.now())
    send_queued_emails()

    (message,) = mail.outbox
    # Every part so far, each with where its money stands, as the cancellation notices do.
    assert "We have refunded €20.00" in message.body
    assert "Your refund of €30.00 is being processed" in message.body
    assert "no longer valid" in message.body


def test_more_than_is_left_is_refused_and_changes_nothing(ticket_type, provider, refund):
    order = paid_order(ticket_type)
    refund(order, "45.00")
    with pytest.raises(RefundTooLargeError) as refused:
        refund(order, "5.01")
    assert refused.value.extra == {"refundable": "5.00"}
    assert Refund.objects.count() == 1
    assert len(provider.refunds) == 1


def test_refunding_the_rest_makes_the_order_refunded_and_frees_its_seats(ticket_type, provider, refund):
    order = paid_order(ticket_type)
    refund(order, "20.00")
    refund(order, "30.00")
    order.refresh_from_db()
    assert order.status == "refunded"
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 0
    with pytest.raises(OrderNotRefundableError):
        refund(order, "0.01")


def test_a_cancellation_after_a_partial_refund_returns_only_the_rest(
    ticket_type, provider, refund, django_capture_on_commit_callbacks
):
    order = paid_order(ticket_type)
    refund(order, "12.00")
    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order_id=order.pk, now=timezone.now())
    amounts = sorted(Refund.objects.values_list("reason", "amount"))
    assert amounts == [("cancellation", Decimal("38.00")), ("partial", Decimal("12.00"))]
    assert sum(amount for amount, _ in provider.refunds) == order.total


def test_only_paid_orders_are_refunded(ticket_type, provider, refund):
    order = paid_order(ticket_type)
    services.order_cancel(order_id=order.pk, now=timezone.now())
    with pytest.raises(OrderNotRefundableError):
        refund(order, "1.00")


class TestRefundApi:
    @pytest.mark.django_db(transaction=True)  # the refund's commit is real, so the provider is asked before the answer
    def test_refunds_a_part_and_answers_with_the_order_and_the_refund(self, refunding_api, ticket_type, provider):
        order = paid_order(ticket_type)
        response = refunding_api.post(
            f"/api/orders/{order.code}/refunds", {"amount": "7.25", "note": "no view"}, format="json"
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["order"]["status"], body["refund"]["amount"], body["refund"]["status"]) == (
            "paid",
            "7.25",
            "succeeded",
        )
        assert (body["refund"]["reason"], body["refund"]["note"]) == ("partial", "no view")

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            ({"amount": "0"}, 400, "validation_error"),
            ({"amount": "-1"}, 400, "validation_error"),
            ({"amount": "1.001"}, 400, "validation_error"),
            ({}, 400, "validation_error"),
            ({"amount": "50.01"}, 422, "refund_too_large"),
        ],
    )
    def test_bad_amounts_are_refused_with_a_code(self, refunding_api, ticket_type, provider, body, status, code):
        order = paid_order(ticket_type)
        response = refunding_api.post(f"/api/orders/{order.code}/refunds", body, format="json")
        assert (response.status_code, response.json()["code"]) == (status, code)
        assert not Refund.objects.exists()
        assert provider.refunds == []

    def test_a_pending_order_is_409(self, refunding_api, ticket_type, provider):
        order = paid_order(ticket_type)
        Order.objects.filter(pk=order.pk).update(status="cancelled")
        response = refunding_api.post(f"/api/orders/{order.code}/refunds", {"amount": "1.00"}, format="json")
        assert (response.status_code, response.json()["code"]) == (409, "order_not_refundable")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("locked", [True, False], ids=["with the order lock", "control: without it"])
def test_parts_racing_never_refund_more_than_the_total(provider, monkeypatch, locked):
    ticket_type = TicketTypeFactory(event=EventFactory(), capacity=10)
    order = paid_order(TicketType.objects.get(pk=ticket_type.pk), quantity=2)  # 50.00
    if not locked:
        monkeypatch.setattr(services.seats, "lock_order", lambda order_id: Order.objects.get(pk=order_id))
        # Without the lock, every refund reads what is left before any writes its own: the race, every time.
        everyone_read = threading.Barrier(8, timeout=20)
        read_left = services.order_refundable

        def left_then_wait(order):
            left = read_left(order)
            everyone_read.wait()
            return left

        monkeypatch.setattr(services, "order_refundable", left_then_wait)

    def refund_30(_):
        try:
            services.refund_part(order_id=order.pk, amount=Decimal("30.00"), note="", now=timezone.now())
        except RefundTooLargeError:
            return "refused"
        return "refunded"

    outcomes = sorted(run_at_once(8, refund_30))
    refunded = sum(Refund.objects.values_list("amount", flat=True))
    if locked:
        assert outcomes == ["refunded"] + ["refused"] * 7
        assert refunded == Decimal("30.00")
    else:
        assert refunded > order.total  # the race the lock prevents


@pytest.mark.parametrize(("perms", "offered"), [(("view_order", "change_order"), False), (("refund_order",), True)])
def test_the_admin_offers_cancel_and_refund_actions_only_with_the_refund_permission(
    client, ticket_type, provider, perms, offered
):
    paid_order(ticket_type)  # the admin shows actions only above a list that has rows
    user = staff_with("view_order", "change_order", *perms)
    client.force_login(user)
    page = client.get("/admin/orders/order/")
    assert page.status_code == 200
    assert ('value="cancel_orders"' in page.content.decode()) is offered
    assert ('value="retry_refunds"' in page.content.decode()) is offered


@pytest.mark.django_db(transaction=True)  # the refund's commit is real: the provider is asked before the message
def test_the_admin_refunds_part_of_one_order_through_an_intermediate_page(client, provider):
    ticket_type = TicketTypeFactory(event=EventFactory(), capacity=10)
    order = paid_order(ticket_type)
    client.force_login(staff_with("view_order", "change_order", "refund_order"))
    action = {"action": "refund_part", "_selected_action": [order.pk]}

    asked = client.post("/admin/orders/order/", action)
    assert asked.status_code == 200
    assert "50.00 EUR" in asked.content.decode()  # what can still be refunded
    too_much = client.post("/admin/orders/order/", {**action, "confirmed": "yes", "amount": "60.00"})
    assert "At most €50.00" in too_much.content.decode()
    assert not Refund.objects.exists()

    done = client.post(
        "/admin/orders/order/", {**action, "confirmed": "yes", "amount": "20.00", "note": "late"}, follow=True
    )

    assert "Refund of 20.00 EUR" in done.content.decode()
    assert "succeeded" in done.content.decode()
    assert provider.refunds == [(Decimal("20.00"), order.payment_reference)]
    assert Order.objects.get().status == "paid"


def test_the_order_page_lists_each_refund_and_where_its_money_stands(
    client, ticket_type, provider, refund, django_assert_num_queries
):
    order = paid_order(ticket_type)
    url = f"/orders/{order.code}/{order.secret}/"
    with django_assert_num_queries(1):  # no refund: the page's one query tells so (tests/test_pages.py)
        assert "Refunds" not in client.get(url).content.decode()

    refund(order, "10.00")
    services.refund_part(order_id=order.pk, amount=Decimal("5.00"), note="staff only", now=timezone.now())
    with django_assert_num_queries(2):
        page = client.get(url).content.decode()

    table = page.split('id="refunds-heading"')[1]
    rows = [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
    assert [row.split(" ", 5)[-1] for row in rows[1:]] == [
        "Partial refund Refunded €10.00",
        "Partial refund Being processed €5.00",
    ]
    assert "staff only" not in page
