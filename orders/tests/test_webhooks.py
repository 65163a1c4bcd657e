"""`POST /payments/stripe/webhook`: events signed with Stripe's scheme (a secret of the test's own), about payments
at localstripe. An event is handled once by its id; what it says is read back from Stripe, so duplicates, events
out of order and events racing the buyer's return all end the same; disputes flag the order for staff."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from orders import checkout
from orders.models import Order, Payment, WebhookDelivery
from orders.tests.test_pending_orders import pay, pending_order
from orders.tests.test_stripe import signed

pytestmark = pytest.mark.django_db

URL = "/payments/stripe/webhook"


def deliver(client, settings, kind, payment_id, *, event_id="evt_1", secret=None):
    obj = {"id": payment_id, "object": "payment_intent"}
    if kind.startswith("charge."):
        obj = {"id": "ch_1", "object": "dispute" if "dispute" in kind else "charge", "payment_intent": payment_id}
    body = json.dumps({"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}).encode()
    headers = signed(body, secret or settings.STRIPE_WEBHOOK_SECRET)
    return client.post(URL, body, content_type="application/json", headers=headers)


@pytest.fixture
def pending(stripe_shop, ticket_type):
    return pending_order(ticket_type, timezone.now())


def test_an_authorized_payment_is_paid_and_captured_once_whatever_arrives_twice(client, settings, pending):
    pay(pending.payment)
    payment_id = pending.payment.payment_id

    first = deliver(client, settings, "payment_intent.amount_capturable_updated", payment_id, event_id="evt_a")
    duplicate = deliver(client, settings, "payment_intent.amount_capturable_updated", payment_id, event_id="evt_a")
    # Stripe's next event about the same payment, after the capture: nothing left to do.
    succeeded = deliver(client, settings, "payment_intent.succeeded", payment_id, event_id="evt_b")

    assert (first.status_code, first.json()["result"]) == (200, "handled")
    assert (duplicate.status_code, duplicate.json()["result"]) == (200, "duplicate")
    assert (succeeded.status_code, succeeded.json()["result"]) == (200, "handled")
    order = Order.objects.get()
    assert (order.status, order.tickets.count()) == ("paid", 2)
    assert Payment.objects.get().status == "captured"
    assert WebhookDelivery.objects.count() == 2


def test_a_webhook_before_the_buyers_return_leaves_the_return_nothing_to_do(client, settings, pending):
    pay(pending.payment)
    deliver(client, settings, "payment_intent.amount_capturable_updated", pending.payment.payment_id)
    back = checkout.payment_settle(payment=Payment.objects.get(), now=timezone.now())
    assert (back.outcome, back.order.status) == ("unchanged", "paid")


def test_events_out_of_order_settle_from_what_stripe_says_now(client, settings, pending):
    # A stale "requires action" event arrives after the payment was authorized: the order is paid regardless.
    pay(pending.payment)
    deliver(client, settings, "payment_intent.requires_action", pending.payment.payment_id, event_id="evt_late")
    assert Order.objects.get().status == "paid"


def test_a_payment_that_never_came_expires_when_stripe_says_it_was_cancelled(client, settings, pending, stripe_shop):
    stripe_shop.void(payment_id=pending.payment.payment_id)  # cancelled in Stripe's dashboard, say
    deliver(client, settings, "payment_intent.canceled", pending.payment.payment_id)
    order = Order.objects.get()
    assert (order.status, order.basket_id) == ("failed", None)


@pytest.mark.parametrize("kind", ["charge.dispute.created", "charge.refunded"])
def test_disputes_and_refunds_outside_the_shop_flag_the_order_once(client, settings, pending, kind):
    pay(pending.payment)
    checkout.payment_settle(payment=pending.payment, now=timezone.now())
    for _ in range(2):
        answer = deliver(client, settings, kind, pending.payment.payment_id, event_id="evt_flag")
        assert answer.status_code == 200
    order = Order.objects.get()
    assert order.flagged
    assert order.payment_note.count("provider") == 1  # noted once, though delivered twice


def test_an_event_about_a_payment_that_is_not_ours_is_acknowledged_and_ignored(client, settings, stripe_shop):
    answer = deliver(client, settings, "payment_intent.succeeded", "pi_someone_elses")
    assert (answer.status_code, answer.json()["result"]) == (200, "ignored")


def test_an_unsigned_or_forged_event_is_refused_and_changes_nothing(client, settings, pending):
    pay(pending.payment)
    forged = deliver(client, settings, "payment_intent.succeeded", pending.payment.payment_id, secret="whsec_other")
    assert forged.status_code == 400
    assert forged["Content-Type"] == "application/problem+json"
    assert forged.json()["code"] == "webhook_rejected"
    assert Order.objects.get().status == "pending"
    assert not WebhookDelivery.objects.exists()


def test_stripe_unreachable_while_handling_is_a_503_and_the_retry_is_handled(client, settings, pending):
    pay(pending.payment)
    base = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    refused = deliver(client, settings, "payment_intent.amount_capturable_updated", pending.payment.payment_id)
    assert refused.status_code == 503
    assert refused.json()["code"] == "payment_unavailable"
    assert "Retry-After" in refused
    assert not WebhookDelivery.objects.exists()

    settings.STRIPE_API_BASE = base
    retried = deliver(client, settings, "payment_intent.amount_capturable_updated", pending.payment.payment_id)
    assert (retried.status_code, retried.json()["result"]) == (200, "handled")
    assert Order.objects.get().status == "paid"


def test_an_unknown_provider_is_404_and_a_get_is_405(client, stripe_shop):
    assert client.post("/payments/paypal/webhook", b"{}", content_type="application/json").status_code == 404
    assert client.get(URL).status_code == 405


def test_reconciliation_settles_what_the_lost_webhook_would_have(pending):
    pay(pending.payment)
    late = timezone.now() + checkout.payment_window() + timedelta(minutes=3)
    assert checkout.payments_reconcile(now=late).settled["paid"] == 1
