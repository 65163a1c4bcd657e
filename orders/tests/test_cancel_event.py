"""`manage.py cancel_event`: every paid order of an event cancelled and refunded, in batches, resumable, idempotent."""

from __future__ import annotations

import io

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import services
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
