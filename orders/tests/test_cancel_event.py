"""`manage.py cancel_event`: every paid order of an event cancelled and refunded, in batches, resumable, idempotent;
an order that also holds tickets of other events keeps those, and only the event's tickets are refunded."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from aegistickets.tests.test_organizer_access import refunding_staff, staff_with, token_client
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory, main_organizer
from orders import checkout, services
from orders.models import Order, Refund
from orders.tests.test_cancellations import (  # noqa: F401 - provider is a fixture
    RecordingProvider,
    paid_order,
    provider,
    send_queued_emails,
)

# The command commits each order itself, so these tests use real transactions (on_commit runs for real).
pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("cancel_event", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def sold_event():  # type: ignore[no-untyped-def]
    event = EventFactory(name="Open Air")
    ticket_type = TicketTypeFactory(event=event, capacity=50)
    orders = [paid_order(ticket_type, 1, email=f"buyer{i}@example.com") for i in range(5)]
    other = paid_order(TicketTypeFactory(event=EventFactory(), capacity=5), 1, email="other@example.com")
    send_queued_emails()  # the confirmations
    mail.outbox.clear()
    return event, ticket_type, orders, other


def test_without_yes_changes_nothing(sold_event, provider: RecordingProvider):  # noqa: F811
    event, _, orders, _ = sold_event

    assert "run again with --yes" in run(str(event.pk))

    assert Order.objects.filter(status=Order.Status.PAID).count() == 6
    assert Event.objects.get(pk=event.pk).is_published


def test_cancels_and_refunds_every_paid_order_in_batches_with_progress(sold_event, provider):  # noqa: F811
    event, ticket_type, orders, other = sold_event

    output = run(event.slug, "--batch-size", "2", "--yes")

    assert "batch 1: cancelled 2, already cancelled 0; 2 done, 3 paid orders left" in output
    assert "batch 3: cancelled 1, already cancelled 0; 5 done, 0 paid orders left" in output
    assert "Done: 5 order(s) cancelled in this run." in output
    assert set(Order.objects.filter(status=Order.Status.CANCELLED)) == set(orders)
    assert Order.objects.get(pk=other.pk).status == Order.Status.PAID  # another event's order is untouched
    assert Refund.objects.filter(status=Refund.Status.SUCCEEDED).count() == 5
    assert len(provider.refunds) == 5
    send_queued_emails()
    assert sorted(m.to[0] for m in mail.outbox) == [f"buyer{i}@example.com" for i in range(5)]
    assert all(m.subject.startswith("Cancelled: Open Air") for m in mail.outbox)
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 0
    assert not Event.objects.get(pk=event.pk).is_published  # no new sales


def test_interrupted_run_resumes_and_a_rerun_refunds_nothing_twice(sold_event, provider, monkeypatch):  # noqa: F811
    event, _, orders, _ = sold_event
    real_cancel = services.order_cancel
    calls = {"n": 0}

    def crash_on_third(**kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the operator's Ctrl-C, or a killed pod
        return real_cancel(**kwargs)

    monkeypatch.setattr(services, "order_cancel", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run(str(event.pk), "--batch-size", "2", "--yes")
    assert Order.objects.filter(status=Order.Status.CANCELLED).count() == 2
    monkeypatch.setattr(services, "order_cancel", real_cancel)

    output = run(str(event.pk), "--batch-size", "2", "--yes")
    again = run(str(event.pk), "--yes")

    assert "Done: 3 order(s) cancelled in this run." in output
    assert "Done: 0 order(s) cancelled in this run." in again
    assert Order.objects.filter(pk__in=[o.pk for o in orders], status=Order.Status.CANCELLED).count() == 5
    assert Refund.objects.count() == 5
    assert len(provider.refunds) == 5


def test_refunds_the_provider_failed_are_retried_by_the_next_run(sold_event, provider):  # noqa: F811
    event, _, orders, _ = sold_event
    provider.fail = "raise"
    with pytest.raises(CommandError, match="5 refund"):
        run(str(event.pk), "--yes")
    assert set(Refund.objects.values_list("status", flat=True)) == {Refund.Status.FAILED}
    provider.fail = None

    output = run(str(event.pk), "--yes")

    assert "Retried 5 unfinished refund(s); 0 still not done." in output
    assert set(Refund.objects.values_list("status", flat=True)) == {Refund.Status.SUCCEEDED}


def test_unknown_event_is_an_error():
    with pytest.raises(CommandError, match="No event"):
        run("no-such-event", "--yes")


def two_event_order(ticket_type, other_type):  # type: ignore[no-untyped-def]
    """One order of 2 tickets of `ticket_type` and 1 of `other_type` (another event)."""
    now = timezone.now()
    token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=2, now=now).token
    services.basket_add(token=token, ticket_type_id=other_type.pk, quantity=1, now=now)
    order = checkout.order_place(token=token, name="Ada", email="ada@example.com", payment_method="test", now=now).order
    send_queued_emails()
    mail.outbox.clear()
    return order


def test_an_order_keeps_its_tickets_for_other_events_and_the_buyer_is_told_once(provider):  # noqa: F811
    event = EventFactory(name="Open Air")
    ticket_type = TicketTypeFactory(event=event, capacity=10, price=Decimal("30.00"))
    other_type = TicketTypeFactory(event=EventFactory(name="Jazz Night"), capacity=10, price=Decimal("20.00"))
    order = two_event_order(ticket_type, other_type)

    run(str(event.pk), "--yes")
    again = run(str(event.pk), "--yes")

    assert "Done: 0 order(s) cancelled in this run." in again
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    valid = order.tickets.filter(cancelled_at__isnull=True)
    assert [ticket.ticket_type_id for ticket in valid] == [other_type.pk]
    (refund,) = Refund.objects.all()
    assert (refund.reason, refund.amount, refund.status) == ("event_cancelled", Decimal("60.00"), "succeeded")
    assert provider.refunds == [(Decimal("60.00"), order.payment_reference)]
    ticket_type.refresh_from_db()
    other_type.refresh_from_db()
    assert (ticket_type.sold, other_type.sold) == (0, 1)
    send_queued_emails()
    (message,) = mail.outbox
    assert message.subject.startswith("Tickets cancelled: Open Air, Jazz Night")
    assert "Open Air has been cancelled" in message.body
    assert "Your other tickets remain valid" in message.body
    assert "We have refunded €60.00" in message.body


def test_the_refund_is_at_most_what_is_left_of_the_order(provider):  # noqa: F811
    event = EventFactory()
    ticket_type = TicketTypeFactory(event=event, capacity=10, price=Decimal("30.00"))
    order = two_event_order(ticket_type, TicketTypeFactory(capacity=10, price=Decimal("20.00")))
    services.refund_part(order_id=order.pk, amount=Decimal("70.00"), note="goodwill", now=timezone.now())

    run(str(event.pk), "--yes")

    assert Refund.objects.get(reason="event_cancelled").amount == Decimal("10.00")
    assert order.tickets.filter(cancelled_at__isnull=True).count() == 1


# --- the same from the API and the admin -------------------------------------------------------------------


def test_the_api_cancels_in_batches_until_nothing_remains(sold_event, provider):  # noqa: F811
    event, ticket_type, orders, other = sold_event
    api = token_client(refunding_staff())

    first = api.post(f"/api/events/{event.pk}/cancel", {"batch_size": 3}, format="json")
    second = api.post(f"/api/events/{event.pk}/cancel", {}, format="json")
    third = api.post(f"/api/events/{event.pk}/cancel", {}, format="json")

    assert (first.status_code, len(first.json()["cancelled"]), first.json()["remaining"]) == (200, 3, 2)
    assert (len(second.json()["cancelled"]), second.json()["remaining"]) == (2, 0)
    assert third.json() == {"event_id": event.pk, "cancelled": [], "skipped": [], "remaining": 0}
    assert set(Order.objects.filter(status=Order.Status.CANCELLED)) == set(orders)
    assert Order.objects.get(pk=other.pk).status == Order.Status.PAID
    assert len(provider.refunds) == 5
    assert not Event.objects.get(pk=event.pk).is_published


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [({"batch_size": 0}, 400, "validation_error"), ({"batch_size": "5"}, 400, "validation_error")],
)
def test_the_api_refuses_bad_input_and_changes_nothing(sold_event, provider, body, status, code):  # noqa: F811
    event = sold_event[0]
    response = token_client(refunding_staff()).post(f"/api/events/{event.pk}/cancel", body, format="json")
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert Event.objects.get(pk=event.pk).is_published
    assert not Refund.objects.exists()


def test_the_api_answers_404_for_an_unknown_event(provider):  # noqa: F811
    response = token_client(refunding_staff()).post("/api/events/999999/cancel", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_refund_rights_alone_do_not_cancel_an_event(sold_event, provider):  # noqa: F811
    """Cancelling an event changes it too: the admin's change right on events, as well as the refund right."""
    event = sold_event[0]
    user = staff_with("refund_order")
    response = token_client(user).post(f"/api/events/{event.pk}/cancel", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert Event.objects.get(pk=event.pk).is_published


def test_the_admin_asks_first_then_cancels_the_event(client, sold_event, provider):  # noqa: F811
    event, _, orders, other = sold_event
    staff = refunding_staff()
    staff.save()  # the factory's password, stored: an admin session checks it
    client.force_login(staff)
    url = "/admin/events/event/"
    action = {"action": "cancel_event", "_selected_action": [event.pk]}

    asked = client.post(url, action)
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "5 ticket(s) in 5 paid order(s), €125.00" in page
    assert Event.objects.get(pk=event.pk).is_published  # nothing done yet

    done = client.post(url, {**action, "confirmed": "yes"}, follow=True)
    assert "Open Air is cancelled: 5 order(s) cancelled and refunded." in done.content.decode()
    assert set(Order.objects.filter(status=Order.Status.CANCELLED)) == set(orders)
    assert Order.objects.get(pk=other.pk).status == Order.Status.PAID


def test_the_admin_offers_the_action_only_with_the_refund_permission(client, sold_event, provider):  # noqa: F811
    editor = UserFactory(is_staff=True)
    editor.save()
    main_organizer().members.add(editor)
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["view_event", "change_event"]))
    client.force_login(editor)
    assert 'value="cancel_event"' not in client.get("/admin/events/event/").content.decode()

    editor.user_permissions.add(Permission.objects.get(codename="refund_order"))
    client.force_login(type(editor).objects.get(pk=editor.pk))  # permissions are cached on the user object
    assert 'value="cancel_event"' in client.get("/admin/events/event/").content.decode()


def test_nothing_left_to_refund_is_recorded_as_done_without_asking_the_provider(provider):  # noqa: F811
    """Goodwill returned the money of the event's ticket already: the ticket is cancelled, and a refund of 0 is on
    record as done, never sent to the provider (Stripe refuses an amount of 0, which would fail it forever)."""
    event = EventFactory()
    ticket_type = TicketTypeFactory(event=event, capacity=10, price=Decimal("30.00"))
    order = two_event_order(ticket_type, TicketTypeFactory(capacity=10, price=Decimal("20.00")))  # 2 x 30 + 20
    now = timezone.now()
    services.refund_part(order_id=order.pk, amount=Decimal("60.00"), note="goodwill", now=now)
    other = order.tickets.exclude(ticket_type=ticket_type).get()
    services.tickets_cancel(order_id=order.pk, codes=[other.code], note="", now=now)  # the last 20.00
    provider.refunds.clear()

    run(str(event.pk), "--yes")

    refund = Refund.objects.get(reason="cancellation")  # the event's tickets were all that was left
    assert (refund.amount, refund.status, refund.message) == (Decimal("0.00"), "succeeded", "Nothing left to refund.")
    assert provider.refunds == []
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    send_queued_emails()
    notice = mail.outbox[-1]
    assert "All of its money had been refunded already." in notice.body
    assert "€0.00" not in notice.body
