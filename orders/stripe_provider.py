"""Stripe, through the official SDK: PaymentIntents with manual capture (docs/payments.md).

The PaymentIntent is created when the order goes pending. On the shop's pay page stripe.js turns the card into a
PaymentMethod and the shop confirms the intent with it (3-D Secure, if the bank asks, then runs in the page); an API
client confirms it with a payment method in the checkout request. It is captured only after the order committed as
paid and cancelled (voided) when the order could not get its seats, so no money is taken for an order that does not
exist. Every call carries a timeout; a timeout or an unreachable Stripe is a retryable 503
(PaymentUnavailableError), with nothing captured.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import stripe
from django.conf import settings
from django.utils.translation import gettext_noop
from stripe.params import PaymentIntentCreateParams, RefundCreateParams

from orders.payments import (
    Authorization,
    PaymentProvider,
    PaymentResult,
    PaymentUnavailableError,
    ProviderStatus,
    WebhookEvent,
    WebhookRejectedError,
)

# Currencies Stripe counts in whole units (no cents): https://docs.stripe.com/currencies#zero-decimal
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV"})

# PaymentIntent statuses as the shop's provider states; every status before an authorization waits for the buyer.
STATES = {
    "requires_payment_method": "requires_action",
    "requires_confirmation": "requires_action",
    "requires_action": "requires_action",
    "processing": "requires_action",
    "requires_capture": "authorized",
    "succeeded": "captured",
    "canceled": "canceled",
}


# Where real stripe.js runs from, and the other origins Stripe's security guide (docs.stripe.com/security/guide,
# "Content Security Policy") lists for it.
STRIPE_JS_ORIGIN = "https://js.stripe.com"
STRIPE_JS_SUBDOMAINS = "https://*.js.stripe.com"
STRIPE_HOOKS_ORIGIN = "https://hooks.stripe.com"

# What the buyer reads when Stripe refused the payment method itself (not the bank declining it).
# Stored with the payment in English, like every provider message; shown translated (the catalog knows it).
UNUSABLE_CARD = gettext_noop(
    "This card could not be used for the payment. Please check its details or try another card."
)


def minor_units(amount: Decimal, currency: str) -> int:
    """Stripe's integer amount: cents, or whole units for a zero-decimal currency."""
    return int(amount) if currency.upper() in ZERO_DECIMAL else int((amount * 100).to_integral_value())


def major_units(amount: int, currency: str) -> Decimal:
    return Decimal(amount) if currency.upper() in ZERO_DECIMAL else (Decimal(amount) / 100).quantize(Decimal("0.01"))


@functools.cache
def _client(api_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        http_client=stripe.new_default_http_client(timeout=timeout),
        max_network_retries=0,  # the shop retries with the same idempotency key; the SDK would hide a slow Stripe
    )


def client() -> stripe.StripeClient:
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT_SECONDS)


class StripePaymentProvider(PaymentProvider):
    name = "stripe"

    def authorize(
        self,
        *,
        amount: Decimal,
        currency: str,
        email: str,
        description: str,
        reference: str,
        payment_method: str = "",
        return_url: str = "",
    ) -> Authorization:
        params: PaymentIntentCreateParams = {
            "amount": minor_units(amount, currency),
            "currency": currency.lower(),
            "capture_method": "manual",
            "metadata": {"reference": reference, "description": description[:500]},
        }
        if payment_method:
            params |= {"payment_method": payment_method, "confirm": True}
            if return_url:  # where Stripe sends the buyer back from 3-D Secure when the API client confirms
                params["return_url"] = return_url
        try:
            intent = _call(lambda: client().v1.payment_intents.create(params, {"idempotency_key": reference}))
        except stripe.CardError as declined:
            intent = declined.error.payment_intent if declined.error else None
            return Authorization(
                state="declined", payment_id=str(getattr(intent, "id", "") or ""), message=str(declined.user_message)
            )
        return _authorization(intent)

    def confirm(self, *, payment_id: str, payment_method: str) -> Authorization:
        """Stripe's "finalize payments on the server": the PaymentMethod stripe.js made of the card goes onto the
        PaymentIntent, which the shop confirms. Without a return_url Stripe answers 3-D Secure as an action for
        stripe.js to handle in the page."""
        try:
            _call(lambda: client().v1.payment_intents.update(payment_id, {"payment_method": payment_method}))
            intent = _call(lambda: client().v1.payment_intents.confirm(payment_id))
        except stripe.CardError as declined:
            return Authorization(state="declined", payment_id=payment_id, message=str(declined.user_message))
        except stripe.InvalidRequestError:
            # Confirmed already (a second click, another tab): the intent says so. Otherwise the payment method was
            # not one Stripe would take for it.
            intent = _call(lambda: client().v1.payment_intents.retrieve(payment_id))
            if intent.status != "requires_capture":
                return Authorization(state="declined", payment_id=payment_id, message=UNUSABLE_CARD)
        return _authorization(intent)

    def capture(self, *, payment_id: str, amount: Decimal, currency: str) -> PaymentResult:
        return self._act(
            lambda: client().v1.payment_intents.capture(payment_id), payment_id=payment_id, done="succeeded"
        )

    def void(self, *, payment_id: str) -> PaymentResult:
        return self._act(lambda: client().v1.payment_intents.cancel(payment_id), payment_id=payment_id, done="canceled")

    def refund(self, *, payment_id: str, amount: Decimal, currency: str) -> PaymentResult:
        params: RefundCreateParams = {"payment_intent": payment_id, "amount": minor_units(amount, currency)}
        try:
            refund = _call(lambda: client().v1.refunds.create(params))
        except stripe.StripeError as error:
            return PaymentResult(approved=False, reference="", message=str(error.user_message or error))
        return PaymentResult(approved=refund.status in ("succeeded", "pending"), reference=refund.id)

    def status(self, *, payment_id: str) -> ProviderStatus:
        intent = _call(lambda: client().v1.payment_intents.retrieve(payment_id))
        currency = intent.currency.upper()
        state = STATES.get(intent.status, "requires_action")
        error = intent.to_dict().get("last_payment_error")
        return ProviderStatus(
            state=state,
            amount_captured=major_units(intent.amount, currency) if state == "captured" else Decimal("0.00"),
            message=str(error.get("message", "")) if isinstance(error, Mapping) else "",
        )

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """The event, if Stripe signed it with our endpoint secret within the last five minutes."""
        try:
            event = stripe.Webhook.construct_event(
                body, headers.get("Stripe-Signature", ""), settings.STRIPE_WEBHOOK_SECRET
            )
        except (ValueError, stripe.SignatureVerificationError) as error:
            raise WebhookRejectedError(str(error)[:200]) from None
        data = event.data.object.to_dict()
        payment_id = data.get("id") if event.type.startswith("payment_intent.") else data.get("payment_intent")
        return WebhookEvent(id=event.id, type=event.type, payment_id=str(payment_id or ""))

    def client_config(self, *, amount: Decimal, currency: str) -> dict[str, str]:
        """The Payment Element is created before stripe.js sees the PaymentIntent, so it is told the amount, in
        Stripe's integer units, and the currency, to offer only what can pay them."""
        return {
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "js_url": settings.STRIPE_JS_URL,
            "amount": str(minor_units(amount, currency)),
            "currency": currency.lower(),
        }

    def content_security_policy(self) -> dict[str, list[str]]:
        """stripe.js and the frames it opens (the Payment Element, 3-D Secure) come from its origin; it calls the API.
        Real stripe.js also loads scripts and frames from its subdomains and opens 3-D Secure pages on
        hooks.stripe.com, as Stripe's security guide lists; a stand-in at another origin uses none of them. Its fraud
        signals (m.stripe.network) load inside Stripe's own frame, under that frame's policy, not this page's."""
        js, api = _origin(settings.STRIPE_JS_URL), _origin(settings.STRIPE_API_BASE)
        if js != STRIPE_JS_ORIGIN:
            return {"script-src": [js], "frame-src": [js], "connect-src": [api]}
        return {
            "script-src": [js, STRIPE_JS_SUBDOMAINS],
            "frame-src": [js, STRIPE_JS_SUBDOMAINS, STRIPE_HOOKS_ORIGIN],
            "connect-src": [api],
        }

    def _act(self, call: Any, *, payment_id: str, done: str) -> PaymentResult:
        try:
            intent = _call(call)
        except stripe.InvalidRequestError as error:
            # Asked twice (a retry, a webhook racing the return page): if the first call did it, so be it.
            intent = _call(lambda: client().v1.payment_intents.retrieve(payment_id))
            if intent.status != done:
                return PaymentResult(approved=False, reference="", message=str(error.user_message or error))
        return PaymentResult(approved=intent.status == done, reference=intent.id, message=intent.status)


def _call(call: Any) -> Any:
    """One SDK call; Stripe unreachable or too slow is a retryable 503."""
    try:
        return call()
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:  # APIError: Stripe's 5xx
        raise PaymentUnavailableError() from error


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _authorization(intent: Any) -> Authorization:
    state = STATES.get(intent.status, "requires_action")
    next_action = intent.next_action.to_dict() if getattr(intent, "next_action", None) else None
    return Authorization(
        state=state if state in ("authorized", "requires_action") else "declined",
        payment_id=intent.id,
        client_secret=intent.client_secret or "",
        next_action=next_action,
        message=intent.status,
    )
