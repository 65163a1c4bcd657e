"""Tickets cancelled on their own: the rest of the order stays valid; each cancelled ticket stops admitting, its seat
returns to sale and its price is refunded once; the order's later cancellation or refund counts only what is left."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.db import IntegrityError
from django.utils import timezone

from aegistickets.errors import (
    OrderNotRefundableError,
    RefundTooLargeError,
    TicketNotCancellableError,
    ValidationFailedError,
)
from aegistickets.tests.test_organizer_access import staff_with
from events.models import TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import selectors, services
from orders.models import Order, Refund, Ticket
from orders.tests.test_cancellations import paid_order, send_queued_emails
from orders.tests.test_check_in import URL as CHECK_IN
from orders.tests.test_check_in import door_user, token_client
from orders.tests.test_concurrency import run_at_once

pytestmark = pytest.mark.django_db


@pytest.fixture
def cancel(django_capture_on_commit_callbacks):
    """tickets_cancel as a caller sees it: the provider is asked once the transaction commits."""

    def tickets_cancel(order, *tickets, note="cannot come"):
        codes = [ticket.code for ticket in tickets]
        with django_capture_on_commit_callbacks(execute=True):
            made = services.tickets_cancel(order_id=order.pk, codes=codes, note=note, now=timezone.now())
        made.refresh_from_db()
        return made

    return tickets_cancel


def test_one_ticket_is_cancelled_and_refunded_and_the_rest_stays_valid(ticket_type, provider, cancel):
    order = paid_order(ticket_type)  # 2 x 25.00
    first, second = order.tickets.all()

    refund = cancel(order, first)

    assert (refund.reason, refund.status, refund.amount, refund.note) == (
        "tickets",
        "succeeded",
        Decimal("25.00"),
        "cannot come",
    )
    assert provider.refunds == [(Decimal("25.00"), order.payment_reference)]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.cancelled_at is not None, first.refund_id) == (True, refund.pk)
    assert (second.cancelled_at, second.refund_id) == (None, None)
    order.refresh_from_db()
    assert order.status == "paid"
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 1


def test_the_buyer_is_told_which_tickets_were_cancelled_and_where_the_money_stands(ticket_type, provider, cancel):
    order = paid_order(ticket_type)
    first, second = order.tickets.all()
    send_queued_emails()  # the confirmation
    mail.outbox.clear()

    cancel(order, first)
    send_queued_emails()

    (message,) = mail.outbox
    assert (message.to, message.subject) == (
        [order.email],
        f"Tickets cancelled: {ticket_type.event.name} - order {order.code}",
    )
    assert first.code in message.body
    assert second.code not in message.body
    assert "We have refunded €25.00" in message.body
    assert "Your other tickets remain valid" in message.body


def test_cancelling_the_last_valid_ticket_cancels_the_order(ticket_type, provider, cancel):
    order = paid_order(ticket_type)
    first, second = order.tickets.all()
    cancel(order, first)
    cancel(order, second)

    order.refresh_from_db()
    assert (order.status, order.cancelled_at is not None) == ("cancelled", True)
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 0
    assert sum(amount for amount, _ in provider.refunds) == order.total


def test_the_orders_cancellation_afterwards_gives_back_only_the_valid_seats_and_the_rest_of_the_money(
    ticket_type, provider, cancel, django_capture_on_commit_callbacks
):
    order = paid_order(ticket_type, quantity=3)  # 75.00
    cancel(order, order.tickets.first())

    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order_id=order.pk, now=timezone.now())

    ticket_type.refresh_from_db()
    assert ticket_type.sold == 0  # 3 sold, 1 back with its ticket, 2 with the order: never below zero
    assert sorted(Refund.objects.values_list("reason", "amount")) == [
        ("cancellation", Decimal("50.00")),
        ("tickets", Decimal("25.00")),
    ]


def test_refunding_the_rest_afterwards_frees_only_the_valid_seats(ticket_type, provider, cancel):
    order = paid_order(ticket_type)
    cancel(order, order.tickets.first())
    services.refund_part(order_id=order.pk, amount=Decimal("25.00"), note="", now=timezone.now())
    order.refresh_from_db()
    ticket_type.refresh_from_db()
    assert (order.status, ticket_type.sold) == ("refunded", 0)


def test_a_ticket_admitted_at_the_door_or_cancelled_already_is_refused_and_nothing_changes(
    ticket_type, provider, cancel
):
    order = paid_order(ticket_type)
    first, second = order.tickets.all()
    services.ticket_check_in(secret=first.code, event_id=ticket_type.event_id, user=door_user(), now=timezone.now())
    cancel(order, second)

    with pytest.raises(TicketNotCancellableError) as refused:
        cancel(order, first, second)

    assert refused.value.extra == {
        "tickets": {first.code: "admitted at the door already", second.code: "cancelled already"}
    }
    assert Refund.objects.count() == 1
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 1


def test_codes_of_another_order_or_none_at_all_are_refused(ticket_type, provider, cancel):
    order, other = paid_order(ticket_type), paid_order(ticket_type)
    with pytest.raises(ValidationFailedError):
        cancel(order, other.tickets.first())
    with pytest.raises(ValidationFailedError):
        cancel(order)
    assert not Refund.objects.exists()
    assert not Ticket.objects.filter(cancelled_at__isnull=False).exists()


def test_tickets_costing_more_than_is_left_to_refund_are_refused(ticket_type, provider, cancel):
    order = paid_order(ticket_type)
    services.refund_part(order_id=order.pk, amount=Decimal("40.00"), note="", now=timezone.now())
    with pytest.raises(RefundTooLargeError) as refused:
        cancel(order, order.tickets.first())
    assert refused.value.extra == {"refundable": "10.00", "amount": "25.00"}
    assert not Ticket.objects.filter(cancelled_at__isnull=False).exists()


def test_only_a_paid_orders_tickets_are_cancelled(ticket_type, provider, cancel):
    order = paid_order(ticket_type)
    services.order_cancel(order_id=order.pk, now=timezone.now())
    with pytest.raises(OrderNotRefundableError):
        cancel(order, order.tickets.first())


def test_a_cancelled_ticket_is_refused_at_the_door_and_its_neighbour_admitted(ticket_type, provider, cancel):
    order = paid_order(ticket_type)
    first, second = order.tickets.all()
    cancel(order, first)
    door = token_client(door_user())

    refused = door.post(CHECK_IN, {"secret": first.code, "event_id": ticket_type.event_id}, format="json")
    admitted = door.post(CHECK_IN, {"secret": second.code, "event_id": ticket_type.event_id}, format="json")

    assert (refused.status_code, refused.json()["code"]) == (409, "ticket_cancelled")
    assert admitted.status_code == 201, admitted.content


class TestApi:
    @pytest.mark.django_db(transaction=True)  # the refund's commit is real, so the provider is asked before the answer
    def test_cancels_tickets_and_answers_with_the_order_and_the_refund(self, refunding_api, ticket_type, provider):
        order = paid_order(ticket_type)
        first = order.tickets.first()

        response = refunding_api.post(
            f"/api/orders/{order.code}/refunds", {"tickets": [first.code.lower()], "note": "ill"}, format="json"
        )

        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["refund"]["reason"], body["refund"]["amount"], body["refund"]["status"]) == (
            "tickets",
            "25.00",
            "succeeded",
        )
        cancelled = {ticket["code"]: ticket["cancelled_at"] is not None for ticket in body["order"]["tickets"]}
        assert cancelled == {ticket.code: ticket.pk == first.pk for ticket in order.tickets.all()}
        assert body["order"]["status"] == "paid"

    @pytest.mark.parametrize(
        "body",
        [{"tickets": []}, {"tickets": "ABC"}, {"tickets": ["NOPE"]}, {"amount": "1.00", "tickets": ["X"]}],
        ids=["empty", "not a list", "unknown code", "both"],
    )
    def test_bad_requests_are_refused_with_a_code_and_change_nothing(self, refunding_api, ticket_type, provider, body):
        order = paid_order(ticket_type)
        response = refunding_api.post(f"/api/orders/{order.code}/refunds", body, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "validation_error")
        assert not Refund.objects.exists()

    def test_bad_items_of_the_list_are_named_in_flat_messages_as_the_problem_schema_says(
        self, refunding_api, ticket_type, provider
    ):
        order = paid_order(ticket_type)
        response = refunding_api.post(
            f"/api/orders/{order.code}/refunds", {"tickets": ["X", True, None, [1]]}, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (400, "validation_error")
        messages = response.json()["errors"]["tickets"]
        assert all(isinstance(message, str) for message in messages), messages
        assert [message.split(":")[0] for message in messages] == ["1", "2", "3"]

    def test_an_admitted_ticket_is_409(self, refunding_api, ticket_type, provider):
        order = paid_order(ticket_type)
        ticket = order.tickets.first()
        services.ticket_check_in(
            secret=ticket.code, event_id=ticket_type.event_id, user=door_user(), now=timezone.now()
        )
        response = refunding_api.post(f"/api/orders/{order.code}/refunds", {"tickets": [ticket.code]}, format="json")
        assert (response.status_code, response.json()["code"]) == (409, "ticket_not_cancellable")

    def test_staff_without_the_refund_permission_cannot(self, ticket_type, provider):
        order = paid_order(ticket_type)
        client = token_client(staff_with("view_order", "change_order"))
        response = client.post(
            f"/api/orders/{order.code}/refunds", {"tickets": [order.tickets.first().code]}, format="json"
        )
        assert response.status_code == 403
        assert not Ticket.objects.filter(cancelled_at__isnull=False).exists()


@pytest.mark.django_db(transaction=True)  # the refund's commit is real: the provider is asked before the message
def test_the_admin_cancels_chosen_tickets_through_the_refund_page(client, provider):
    ticket_type = TicketTypeFactory(event=EventFactory(), capacity=10, price=Decimal("25.00"))
    order = paid_order(ticket_type)
    first = order.tickets.first()
    client.force_login(staff_with("view_order", "change_order", "refund_order"))
    action = {"action": "refund_part", "_selected_action": [order.pk]}

    asked = client.post("/admin/orders/order/", action)
    assert first.code in asked.content.decode()  # offered as a checkbox
    both = client.post(
        "/admin/orders/order/", {**action, "confirmed": "yes", "amount": "1.00", "tickets": [first.code]}
    )
    assert "Give either an amount or the tickets to cancel." in both.content.decode()

    done = client.post("/admin/orders/order/", {**action, "confirmed": "yes", "tickets": [first.code]}, follow=True)

    assert "Refund of 25.00 EUR" in done.content.decode()
    first.refresh_from_db()
    assert first.cancelled_at is not None
    assert provider.refunds == [(Decimal("25.00"), order.payment_reference)]


def test_the_order_page_marks_a_cancelled_ticket_and_shows_no_code_to_scan(client, ticket_type, provider, cancel):
    order = paid_order(ticket_type)
    first, second = order.tickets.all()
    cancel(order, first)

    page = client.get(f"/orders/{order.code}/{order.secret}/").content.decode()

    assert page.count("cancelled and refunded") == 1
    assert f"QR code of ticket {second.code}" in page
    assert f"QR code of ticket {first.code}" not in page


def test_the_attendee_list_leaves_out_cancelled_tickets(ticket_type, provider, cancel):
    order = paid_order(ticket_type)
    first, second = order.tickets.all()
    cancel(order, first)
    assert [row[0] for row in selectors.event_attendees_export(event_id=ticket_type.event_id)] == [second.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("locked", [True, False], ids=["with the order lock", "control: without it"])
def test_the_same_ticket_cancelled_at_once_from_several_places_is_refunded_once(provider, monkeypatch, locked):
    ticket_type = TicketTypeFactory(event=EventFactory(), capacity=10)
    order = paid_order(TicketType.objects.get(pk=ticket_type.pk), quantity=2)
    code = order.tickets.first().code
    if not locked:
        monkeypatch.setattr(services.seats, "lock_order", lambda order_id: Order.objects.get(pk=order_id))
        # Without the lock, every caller reads the ticket as valid before any cancels it: the race, every time.
        everyone_read = threading.Barrier(6, timeout=20)
        read_tickets = services._cancellable_tickets

        def tickets_then_wait(order, codes):
            tickets = read_tickets(order, codes)
            everyone_read.wait()
            return tickets

        monkeypatch.setattr(services, "_cancellable_tickets", tickets_then_wait)

    def cancel_it(_):
        try:
            services.tickets_cancel(order_id=order.pk, codes=[code], note="", now=timezone.now())
        except TicketNotCancellableError:
            return "refused"
        except IntegrityError:  # the control: the seat counter's check refuses going below zero
            return "failed"
        return "cancelled"

    outcomes = sorted(run_at_once(6, cancel_it))
    ticket_type.refresh_from_db()
    if locked:
        assert outcomes == ["cancelled"] + ["refused"] * 5
        assert (Refund.objects.count(), ticket_type.sold) == (1, 1)
    else:
        assert Refund.objects.count() > 1  # the race the lock prevents: the same ticket refunded again
