"""The Stripe provider through the official SDK against localstripe, a stateful Stripe stand-in on 127.0.0.1 (no
mocks): PaymentIntents with manual capture, 3-D Secure, declines, refunds in parts, an unreachable Stripe, and
webhooks signed with Stripe's scheme and a secret of the test's own."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
import requests

from orders.payments import PaymentUnavailableError, WebhookRejectedError
from orders.stripe_provider import major_units, minor_units
from scripts.lib.localstripe import SECRET_KEY, running_localstripe

pytestmark = pytest.mark.django_db

# localstripe's test cards: 3155 asks for 3-D Secure; "chargeCustomerFail" (0341) is declined when authorized.
CARD = "pm_card_visa"
DECLINED = "pm_card_chargeCustomerFail"
THREE_D_SECURE = "4000002500003155"


def authorize(provider, *, reference, amount="25.00", payment_method=""):
    return provider.authorize(
        amount=Decimal(amount),
        currency="EUR",
        email="ada@example.com",
        description="Basket 1",
        reference=reference,
        payment_method=payment_method,
    )


def card(base: str, number: str) -> str:
    """A PaymentMethod for a card number, as stripe.js would create in the buyer's browser."""
    answer = requests.post(
        f"{base}/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": "2030",
            "card[cvc]": "123",
        },
        auth=(SECRET_KEY, ""),
        timeout=5,
    )
    answer.raise_for_status()
    return answer.json()["id"]


def authenticate(base: str, answer, *, success: bool) -> None:
    """The buyer completes (or fails) 3-D Secure, as localstripe's stripe.js does."""
    reply = requests.post(
        f"{base}/v1/payment_intents/{answer.payment_id}/_authenticate",
        params={"success": "true" if success else "false"},
        json={"key": "pk_test_localstripe", "client_secret": answer.client_secret},
        timeout=5,
    )
    reply.raise_for_status()


def test_a_card_is_authorized_then_captured_then_refunded_in_parts(stripe_shop, django_capture_on_commit_callbacks):
    answer = authorize(stripe_shop, reference="stripe-capture", payment_method=CARD)
    assert answer.state == "authorized"
    assert answer.payment_id.startswith("pi_")
    assert stripe_shop.status(payment_id=answer.payment_id).state == "authorized"

    assert stripe_shop.capture(payment_id=answer.payment_id, amount=Decimal("25.00"), currency="EUR").approved
    # Asked again (a webhook racing the return page): already done is done.
    assert stripe_shop.capture(payment_id=answer.payment_id, amount=Decimal("25.00"), currency="EUR").approved
    status = stripe_shop.status(payment_id=answer.payment_id)
    assert (status.state, status.amount_captured) == ("captured", Decimal("25.00"))

    assert stripe_shop.refund(payment_id=answer.payment_id, amount=Decimal("10.00"), currency="EUR").approved
    assert stripe_shop.refund(payment_id=answer.payment_id, amount=Decimal("15.00"), currency="EUR").approved
    # Stripe refuses a refund beyond the captured amount; localstripe does not, so the shop's own refund records
    # guard that (docs/payments.md, "What localstripe lacks").


def test_without_a_payment_method_the_buyer_still_has_to_act(stripe_shop):
    answer = authorize(stripe_shop, reference="stripe-waiting")
    assert answer.state == "requires_action"
    assert answer.client_secret.startswith(answer.payment_id + "_secret_")
    assert stripe_shop.status(payment_id=answer.payment_id).state == "requires_action"
    # Nothing is captured before the buyer acts; a void ends it, and asking twice is no error.
    assert stripe_shop.void(payment_id=answer.payment_id).approved
    assert stripe_shop.void(payment_id=answer.payment_id).approved
    assert stripe_shop.status(payment_id=answer.payment_id).state == "canceled"


def test_three_d_secure_is_required_and_then_authorized(stripe_shop, localstripe_base):
    answer = authorize(stripe_shop, reference="stripe-3ds", payment_method=card(localstripe_base, THREE_D_SECURE))
    assert answer.state == "requires_action"
    assert answer.next_action is not None
    authenticate(localstripe_base, answer, success=True)
    assert stripe_shop.status(payment_id=answer.payment_id).state == "authorized"


def test_a_failed_three_d_secure_leaves_the_payment_waiting_with_its_reason(stripe_shop, localstripe_base):
    answer = authorize(stripe_shop, reference="stripe-3ds-fail", payment_method=card(localstripe_base, THREE_D_SECURE))
    authenticate(localstripe_base, answer, success=False)
    status = stripe_shop.status(payment_id=answer.payment_id)
    assert status.state == "requires_action"  # the buyer may try another card until the order's deadline


def test_a_declined_card_is_declined_with_the_banks_message(stripe_shop):
    answer = authorize(stripe_shop, reference="stripe-declined", payment_method=DECLINED)
    assert answer.state == "declined"
    assert "declined" in answer.message


def test_an_unreachable_stripe_is_a_retryable_503(stripe_shop, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(PaymentUnavailableError) as raised:
        authorize(stripe_shop, reference="stripe-down", payment_method=CARD)
    assert (raised.value.status, raised.value.code) == (503, "payment_unavailable")


# --- Stripe's Idempotency-Key, which the stand-in adds to localstripe -----------------------------------------


@pytest.fixture(scope="module")
def stand_in():
    """A localstripe of this module's own: its proxy, its bare address, and pause/resume."""
    with running_localstripe() as running:
        yield running


def create_intent(base: str, *, key: str, amount: int = 2500) -> requests.Response:
    return requests.post(
        f"{base}/v1/payment_intents",
        data={"amount": amount, "currency": "eur", "capture_method": "manual"},
        headers={"Idempotency-Key": key},
        auth=(SECRET_KEY, ""),
        timeout=10,
    )


def test_authorizing_again_with_the_same_reference_answers_the_same_payment_intent(stripe_shop):
    """The same request asked again with the payment's reference (after a lost answer) finds the first
    authorization instead of holding the buyer's money a second time."""
    first = authorize(stripe_shop, reference="stripe-again", payment_method=CARD)
    again = authorize(stripe_shop, reference="stripe-again", payment_method=CARD)
    assert again.payment_id == first.payment_id
    assert (again.state, stripe_shop.status(payment_id=first.payment_id).state) == ("authorized", "authorized")


def test_the_control_bare_localstripe_authorizes_twice(stripe_shop, settings, stand_in):
    """Without the stand-in's proxy localstripe makes a second PaymentIntent: the test above shows the proxy at
    work, and this one fails the day localstripe learns idempotency."""
    settings.STRIPE_API_BASE = stand_in.upstream
    first = authorize(stripe_shop, reference="stripe-again-bare", payment_method=CARD)
    again = authorize(stripe_shop, reference="stripe-again-bare", payment_method=CARD)
    assert again.payment_id != first.payment_id


def test_the_same_key_with_other_parameters_is_refused_as_stripe_refuses_it(stand_in):
    assert create_intent(stand_in.base, key="key-reused", amount=2500).status_code == 200
    refused = create_intent(stand_in.base, key="key-reused", amount=2600)
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "idempotency_error"


def test_a_key_still_in_use_is_a_conflict_then_its_first_answer_is_replayed(stand_in):
    stand_in.pause()
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(create_intent, stand_in.base, key="key-busy")
            time.sleep(0.3)  # the first request reaches localstripe, which does not answer while paused
            busy = create_intent(stand_in.base, key="key-busy")
            stand_in.resume()
            first_intent = first.result().json()["id"]
    finally:
        stand_in.resume()
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "idempotency_key_in_use")
    replayed = create_intent(stand_in.base, key="key-busy")
    assert (replayed.status_code, replayed.json()["id"]) == (200, first_intent)
    assert replayed.headers["Idempotent-Replayed"] == "true"


def test_everything_else_passes_through_unchanged(stand_in):
    """stripe.js for the pay page, reads, a POST without a key."""
    script = requests.get(f"{stand_in.base}/js.stripe.com/v3/", timeout=10)
    assert script.status_code == 200
    assert script.content == requests.get(f"{stand_in.upstream}/js.stripe.com/v3/", timeout=10).content
    made = requests.post(
        f"{stand_in.base}/v1/payment_intents",
        data={"amount": 100, "currency": "eur"},
        auth=(SECRET_KEY, ""),
        timeout=10,
    )
    read = requests.get(f"{stand_in.base}/v1/payment_intents/{made.json()['id']}", auth=(SECRET_KEY, ""), timeout=10)
    assert (read.status_code, read.json()["amount"]) == (200, 100)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"), [("25.00", "EUR", 2500), ("0.10", "usd", 10), ("500", "JPY", 500)]
)
def test_amounts_in_stripes_units(amount, currency, minor):
    assert minor_units(Decimal(amount), currency) == minor
    assert major_units(minor, currency) == Decimal(amount)


# --- webhook signatures ---------------------------------------------------------------------------------------


def signed(body: bytes, secret: str, *, at: int | None = None) -> dict[str, str]:
    """Stripe's signature header: HMAC-SHA256 of "<timestamp>.<body>" with the endpoint secret."""
    at = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={at},v1={signature}"}


def event(kind: str = "payment_intent.amount_capturable_updated", payment_intent: str = "pi_123") -> bytes:
    obj = {"id": payment_intent, "object": "payment_intent", "status": "requires_capture"}
    if kind.startswith("charge."):
        obj = {"id": "ch_1", "object": "charge", "payment_intent": payment_intent}
    return json.dumps({"id": "evt_1", "object": "event", "type": kind, "data": {"object": obj}}).encode()


@pytest.mark.parametrize("kind", ["payment_intent.amount_capturable_updated", "charge.refunded"])
def test_a_signed_webhook_names_its_event_and_payment(stripe_shop, settings, kind):
    body = event(kind, payment_intent="pi_abc")
    parsed = stripe_shop.parse_webhook(body=body, headers=signed(body, settings.STRIPE_WEBHOOK_SECRET))
    assert (parsed.id, parsed.type, parsed.payment_id) == ("evt_1", kind, "pi_abc")


@pytest.mark.parametrize(
    "headers",
    [
        lambda body, secret: {},
        lambda body, secret: signed(body, "whsec_someone_else"),
        lambda body, secret: signed(body + b" ", secret),
        lambda body, secret: signed(body, secret, at=int(time.time()) - 3600),  # replayed an hour later
    ],
    ids=["unsigned", "other-secret", "altered-body", "too-old"],
)
def test_a_webhook_not_signed_by_our_endpoint_is_rejected(stripe_shop, settings, headers):
    body = event()
    with pytest.raises(WebhookRejectedError) as raised:
        stripe_shop.parse_webhook(body=body, headers=headers(body, settings.STRIPE_WEBHOOK_SECRET))
    assert (raised.value.status, raised.value.code) == (400, "webhook_rejected")


def lost_after_authorizing(stripe_shop, *, created_at):
    """A checkout whose process was lost after Stripe authorized its card and before the answer was recorded: the
    shop's record holds the request, not its answer."""
    from orders import checkout
    from orders.models import Payment

    payment = Payment.objects.create(
        reference=secrets.token_hex(16),
        provider="stripe",
        amount=Decimal("25.00"),
        currency="EUR",
        payment_method=CARD,
        created_at=created_at,
        updated_at=created_at,
    )
    answer = checkout.authorization_request(stripe_shop, payment, email="ada@example.com")
    assert answer.state == "authorized"
    return payment, answer.payment_id


def test_reconciliation_releases_an_authorization_whose_answer_was_lost(stripe_shop):
    """Asked again with the same key, Stripe answers only an identical request: reconciliation repeats it from the
    record, learns the PaymentIntent and voids it (the order never committed)."""
    from django.utils import timezone

    from orders import checkout

    now = timezone.now()
    payment, intent = lost_after_authorizing(stripe_shop, created_at=now - timedelta(minutes=5))

    run = checkout.payments_reconcile(now=now)

    assert (run.settled, run.errors) == ({"voided": 1}, 0)
    payment.refresh_from_db()
    assert (payment.status, payment.payment_id) == ("voided", intent)
    assert stripe_shop.status(payment_id=intent).state == "canceled"


def test_a_lost_answer_older_than_stripes_idempotency_window_is_not_asked_again(stripe_shop):
    """After a day Stripe forgets the key: the same request would authorize the card a second time. The record is
    closed as lost instead, for staff to look up at Stripe by its reference."""
    from django.utils import timezone

    from orders import checkout

    now = timezone.now()
    payment, intent = lost_after_authorizing(stripe_shop, created_at=now - timedelta(hours=30))

    run = checkout.payments_reconcile(now=now)

    assert run.settled == {"lost": 1}
    payment.refresh_from_db()
    assert (payment.status, payment.reference in payment.message) == ("failed", True)
    assert stripe_shop.status(payment_id=intent).state == "authorized"  # left as it was: never a second request
