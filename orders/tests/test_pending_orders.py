"""Orders that wait for the buyer to pay (Stripe, against localstripe): the seats stay taken for the payment window
and no longer; whichever of the webhook, the return page or reconciliation settles the payment first, the order is
paid once and captured once; a payment that comes after its seats were sold is voided and the buyer told."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone
from stripe import StripeClient

from events.models import TicketType
from events.selectors import ticket_types_with_availability
from events.tests.factories import TicketTypeFactory
from orders import checkout, outbox, services
from orders.metrics import PaymentsCollector
from orders.models import Basket, Hold, Order, OutboundEmail, Payment, Ticket
from orders.stripe_provider import client
from orders.tests.test_concurrency import assert_books_balance
from orders.tests.test_metrics import gauges

pytestmark = pytest.mark.django_db

WINDOW = timedelta(minutes=15)


def available(ticket_type, now) -> int:
    return ticket_types_with_availability(TicketType.objects.filter(pk=ticket_type.pk), now=now).get().available


def pending_order(ticket_type, now, quantity=2, email="ada@example.com") -> checkout.CheckoutResult:
    basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=now)
    return checkout.order_place(token=basket.token, name="Ada", email=email, payment_method="stripe", now=now)


def pay(payment: Payment, card: str = "pm_card_visa") -> None:
    """The buyer enters a card and confirms, as stripe.js does in the browser."""
    stripe: StripeClient = client()
    stripe.v1.payment_intents.update(payment.payment_id, {"payment_method": card})
    stripe.v1.payment_intents.confirm(payment.payment_id)


def test_a_stripe_checkout_leaves_the_order_pending_with_its_seats_held(stripe_shop, ticket_type, now):
    result = pending_order(ticket_type, now)
    order, payment = result.order, result.payment
    assert (order.status, order.payment_deadline) == ("pending", now + WINDOW)
    assert (payment.provider, payment.status, payment.order_id) == ("stripe", "requires_action", order.pk)
    assert payment.client_secret.startswith(payment.payment_id)
    assert not Ticket.objects.exists()
    # The buyer's basket is empty; the order's own basket holds the seats until the deadline, and not a moment more.
    assert Hold.objects.get().basket_id == order.basket_id
    assert available(ticket_type, now) == ticket_type.capacity - 2
    assert available(ticket_type, now + WINDOW) == ticket_type.capacity
    assert mail.outbox == []
    assert not OutboundEmail.objects.exists()


def test_settling_an_authorized_payment_pays_issues_captures_once(stripe_shop, ticket_type, now):
    result = pending_order(ticket_type, now)
    pay(result.payment)

    first = checkout.payment_settle(payment=result.payment, now=now + timedelta(minutes=1))
    again = checkout.payment_settle(payment=Payment.objects.get(), now=now + timedelta(minutes=2))

    assert (first.outcome, again.outcome) == ("paid", "unchanged")
    order = Order.objects.get()
    assert (order.status, order.basket_id, order.tickets.count()) == ("paid", None, 2)
    assert Payment.objects.get().status == "captured"
    assert stripe_shop.status(payment_id=result.payment.payment_id).state == "captured"
    ticket_type.refresh_from_db()
    assert (ticket_type.sold, Hold.objects.count()) == (2, 0)
    assert list(OutboundEmail.objects.values_list("kind", flat=True)) == ["order_confirmation"]
    assert_books_balance(now + timedelta(minutes=2))


def test_a_payment_still_awaited_leaves_the_order_pending_until_its_deadline(stripe_shop, ticket_type, now):
    result = pending_order(ticket_type, now)
    assert checkout.payment_settle(payment=result.payment, now=now + timedelta(minutes=5)).outcome == "waiting"
    late = checkout.payment_settle(payment=result.payment, now=now + WINDOW + timedelta(seconds=1))
    assert late.outcome == "expired"
    order = Order.objects.get()
    assert (order.status, order.basket_id) == ("expired", None)
    assert Payment.objects.get().status == "voided"
    # Cancelled at Stripe, so the buyer can no longer pay for seats the shop gave back.
    assert stripe_shop.status(payment_id=result.payment.payment_id).state == "canceled"
    assert available(ticket_type, now) == ticket_type.capacity


def test_a_payment_after_the_deadline_gets_the_seats_when_they_are_still_free(stripe_shop, ticket_type, now):
    result = pending_order(ticket_type, now)
    pay(result.payment)
    later = now + WINDOW + timedelta(minutes=5)
    Basket.objects.filter(pk=result.order.basket_id).delete()  # the hold tidy-up ran meanwhile

    assert checkout.payment_settle(payment=result.payment, now=later).outcome == "paid"
    assert Order.objects.get().status == "paid"
    assert Payment.objects.get().status == "captured"
    assert_books_balance(later)


def test_a_payment_after_its_seats_were_sold_is_voided_and_the_buyer_told(stripe_shop, settings, now):
    ticket_type = TicketTypeFactory(capacity=2)
    result = pending_order(ticket_type, now, quantity=2)
    pay(result.payment)
    later = now + WINDOW + timedelta(minutes=1)
    # The seats came back on sale at the deadline and someone else bought them.
    other = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=later)
    settings.PAYMENT_METHODS = ["test", "free"]
    checkout.order_place(token=other.token, name="Bo", email="bo@example.com", payment_method="test", now=later)

    settlement = checkout.payment_settle(payment=result.payment, now=later)

    assert settlement.outcome == "not_completed"
    order = Order.objects.get(pk=result.order.pk)
    assert (order.status, order.tickets.count()) == ("expired", 0)
    assert "sold" in order.payment_note
    assert Payment.objects.get(pk=result.payment.pk).status == "voided"
    assert stripe_shop.status(payment_id=result.payment.payment_id).state == "canceled"
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 1
    outbox.outbox_send_due(now=later, limit=10)
    told = [message for message in mail.outbox if message.to == ["ada@example.com"]]
    assert len(told) == 1
    assert order.code in told[0].body
    assert_books_balance(later)


def test_reconciliation_settles_what_no_webhook_did(stripe_shop, ticket_type, now):
    waiting = pending_order(ticket_type, now, quantity=1, email="wait@example.com")
    paid = pending_order(ticket_type, now, quantity=1, email="paid@example.com")
    pay(paid.payment)

    within_window = checkout.payments_reconcile(now=now + timedelta(minutes=3))
    assert within_window.settled == Counter()  # the webhook and the return page settle these
    run = checkout.payments_reconcile(now=now + WINDOW + timedelta(minutes=3))
    assert run.settled == Counter({"paid": 1, "expired": 1})
    assert run.errors == 0
    assert checkout.payments_reconcile(now=now + WINDOW + timedelta(minutes=6)).settled == Counter()
    statuses = dict(Order.objects.values_list("email", "status"))
    assert statuses == {"wait@example.com": "expired", "paid@example.com": "paid"}
    assert waiting.order.pk != paid.order.pk


# --- through the API ------------------------------------------------------------------------------------------


def api_checkout(api, ticket_type, **fields):
    token = api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1}, format="json").json()["token"]
    body = {"basket": token, "name": "Ada", "email": "ada@example.com", "payment_method": "stripe", **fields}
    return api.post("/api/checkout", body, format="json", HTTP_IDEMPOTENCY_KEY=f"key-{token[:12]}")


def test_the_api_answers_202_with_what_the_client_needs_to_pay(api, staff_api, stripe_shop, ticket_type):
    response = api_checkout(api, ticket_type)
    assert response.status_code == 202, response.content
    order = response.json()["order"]
    payment = order["payment"]
    assert (order["status"], order["tickets"], order["payment_deadline"] is not None) == ("pending", [], True)
    assert (payment["provider"], payment["status"]) == ("stripe", "requires_action")
    assert payment["id"].startswith("pi_")
    assert payment["client_secret"].startswith(payment["id"] + "_secret_")

    pay(Payment.objects.get())
    checkout.payment_settle(payment=Payment.objects.get(), now=timezone.now())
    shown = staff_api.get(f"/api/orders/{order['code']}").json()["order"]
    assert (shown["status"], shown["payment"]["status"], len(shown["tickets"])) == ("paid", "captured", 1)
    assert "client_secret" not in shown["payment"]


def test_an_api_client_confirming_with_a_card_gets_its_order_paid_at_once(api, stripe_shop, ticket_type):
    response = api_checkout(api, ticket_type, payment_token="pm_card_visa")
    assert response.status_code == 201, response.content
    order = response.json()["order"]
    assert (order["status"], order["payment"]["status"], len(order["tickets"])) == ("paid", "captured", 1)
    assert stripe_shop.status(payment_id=order["payment"]["id"]).state == "captured"


def test_a_declined_card_is_402_and_changes_nothing(api, stripe_shop, ticket_type):
    response = api_checkout(api, ticket_type, payment_token="pm_card_chargeCustomerFail")
    assert response.status_code == 402
    assert response.json()["code"] == "payment_declined"
    assert not Order.objects.exists()
    assert Payment.objects.get().status == "failed"


def test_a_replayed_pending_checkout_returns_the_same_order_and_payment(api, stripe_shop, ticket_type):
    token = api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1}, format="json").json()["token"]
    body = {"basket": token, "name": "Ada", "email": "ada@example.com", "payment_method": "stripe"}
    first = api.post("/api/checkout", body, format="json", HTTP_IDEMPOTENCY_KEY="pending-1")
    again = api.post("/api/checkout", body, format="json", HTTP_IDEMPOTENCY_KEY="pending-1")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["order"]["payment"]["client_secret"] == first.json()["order"]["payment"]["client_secret"]
    assert Order.objects.count() == Payment.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"payment_token": "pm card"}, "payment_token"), ({"return_url": "javascript:alert(1)"}, "return_url")],
)
def test_bad_payment_fields_are_400_naming_the_field(api, stripe_shop, ticket_type, fields, field):
    response = api_checkout(api, ticket_type, **fields)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Payment.objects.exists()


# --- operations -----------------------------------------------------------------------------------------------


def test_reconcile_payments_command_reports_what_it_settled(stripe_shop, ticket_type, now):
    result = pending_order(ticket_type, now - WINDOW - timedelta(minutes=5))
    pay(result.payment)
    out = StringIO()
    call_command("reconcile_payments", stdout=out)
    assert out.getvalue().strip() == "Settled: paid 1. Provider errors: 0."
    assert Order.objects.get().status == "paid"


def test_reconcile_payments_fails_visibly_when_the_provider_does_not_answer(stripe_shop, ticket_type, now, settings):
    pending_order(ticket_type, now - WINDOW - timedelta(minutes=5))
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match="1 payments could not be settled"):
        call_command("reconcile_payments", stdout=StringIO())
    assert Order.objects.get().status == "pending"


def test_payment_gauges_show_overdue_orders_and_unsettled_payments(stripe_shop, ticket_type):
    real_now = timezone.now()
    pending_order(ticket_type, real_now - WINDOW - timedelta(minutes=10), quantity=1)  # 10 minutes overdue
    pending_order(ticket_type, real_now, quantity=1)
    Payment.objects.filter(order__payment_deadline__gt=real_now).update(
        status=Payment.Status.AUTHORIZED, updated_at=real_now - timedelta(minutes=7)
    )
    values = gauges(PaymentsCollector())
    assert values[("aegistickets_orders_pending", (("window", "open"),))] == 1
    assert values[("aegistickets_orders_pending", (("window", "closed"),))] == 1
    assert 600 <= values[("aegistickets_orders_pending_overdue_seconds", ())] < 660
    assert 420 <= values[("aegistickets_payments_unsettled_oldest_seconds", ())] < 480


def test_an_authorization_lost_before_its_capture_flags_the_paid_order(ticket_type, now, monkeypatch):
    from orders import payments
    from orders.payments import PaymentUnavailableError, TestPaymentProvider

    test = TestPaymentProvider()
    monkeypatch.setattr(test, "capture", lambda **kwargs: (_ for _ in ()).throw(PaymentUnavailableError()))
    monkeypatch.setattr(payments, "providers", lambda: {"test": test})
    basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now)
    order = checkout.order_place(token=basket.token, name="Ada", email="a@example.com", payment_method="test", now=now)
    payment = Payment.objects.get()
    assert (order.order.status, payment.status) == ("paid", "authorized")  # the capture is left for later
    test.void(payment_id=payment.payment_id)  # the authorization expired at the provider meanwhile

    settled = checkout.payment_settle(payment=payment, now=now + timedelta(days=8))

    assert settled.outcome == "flagged"
    flagged = Order.objects.get()
    assert (flagged.status, flagged.flagged) == ("paid", True)
    assert "not paid for" in flagged.payment_note
    assert Payment.objects.get().status == "failed"
    assert checkout.payments_reconcile(now=now + timedelta(days=9)).settled == Counter()  # settled for good


def test_a_worker_lost_after_the_provider_authorized_leaves_nothing_reserved(now):
    """The process died between recording the payment and hearing the provider's answer (killed, say): the provider
    holds an authorization the shop never saw. Reconciliation asks again with the same reference, which the provider
    answers with the same payment (Stripe: the idempotency key), and voids it: it has no order."""
    from orders.models import TestProviderPayment
    from orders.payments import TestPaymentProvider

    reference = "lost-worker"
    Payment.objects.create(
        reference=reference, provider="test", amount="25.00", currency="EUR", created_at=now, updated_at=now
    )
    TestPaymentProvider().authorize(
        amount=Decimal("25.00"), currency="EUR", email="a@example.com", description="", reference=reference
    )

    run = checkout.payments_reconcile(now=now + timedelta(minutes=3))

    assert run.settled == Counter({"voided": 1})
    assert Payment.objects.get().status == "voided"
    assert TestProviderPayment.objects.get().state == "canceled"


def test_one_payment_the_provider_will_not_discuss_does_not_stop_reconciling_the_others(now, monkeypatch):
    """Whatever a provider raises for one payment (Stripe: an error about the request itself), the run counts it and
    settles the rest; the next run tries it again."""
    from orders.models import TestProviderPayment
    from orders.payments import TestPaymentProvider

    for reference in ("refused", "fine"):
        Payment.objects.create(
            reference=reference, provider="test", amount="25.00", currency="EUR", created_at=now, updated_at=now
        )
        TestPaymentProvider().authorize(
            amount=Decimal("25.00"), currency="EUR", email="a@example.com", description="", reference=reference
        )
    authorize = TestPaymentProvider.authorize

    def refusing(self, **request):
        if request["reference"] == "refused":
            raise RuntimeError("Keys for idempotent requests can only be used with the same parameters")
        return authorize(self, **request)

    monkeypatch.setattr(TestPaymentProvider, "authorize", refusing)

    run = checkout.payments_reconcile(now=now + timedelta(minutes=3))

    assert (run.settled, run.errors) == (Counter({"voided": 1}), 1)
    assert dict(Payment.objects.values_list("reference", "status")) == {"refused": "started", "fine": "voided"}
    assert TestProviderPayment.objects.get(payment_id="test_fine").state == "canceled"
