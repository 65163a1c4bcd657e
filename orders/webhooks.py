"""Payment providers' webhooks: verified, handled once per event id, and never trusted for what they say.

A webhook only tells the shop *that* something happened to a payment. What happened is read back from the provider
(`checkout.payment_settle` asks for the payment's status), so an event that arrives twice, out of order, before
the buyer's browser returns, or never, leads to the same end: settlement is idempotent, and `reconcile_payments`
covers the events that never come. Only disputes and refunds made outside the shop carry information of their own:
they flag the order for staff.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from aegistickets.errors import NotFoundError
from orders import checkout, metrics, seats
from orders.models import Payment, WebhookDelivery
from orders.payments import WebhookEvent, WebhookRejectedError, payment_provider_named

# Events that may change a payment's state: settled from the provider's answer, whatever the event says.
SETTLING = frozenset(
    {
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
        "payment_intent.requires_action",
    }
)
# Events staff must look at: money moved back outside the shop's own refunds, or a chargeback is coming.
FLAGGING = {
    "charge.dispute.created": "The buyer disputed the payment (chargeback): answer it in the provider's dashboard.",
    "charge.refunded": "The payment was refunded at the provider: check the order's tickets.",
}


@dataclass(frozen=True)
class WebhookOutcome:
    result: str  # handled, duplicate, ignored
    event: WebhookEvent


def webhook_receive(*, provider_name: str, body: bytes, headers: Mapping[str, str], now: datetime) -> WebhookOutcome:
    """Verifies and handles one delivery. A provider error while handling raises (a 503 for the provider to retry
    later) and records nothing, so the retry is handled in full; a handled event id is answered as a duplicate."""
    try:
        provider = payment_provider_named(provider_name)
    except NotFoundError:
        metrics.webhook_received(provider="unknown", result="rejected")
        raise
    try:
        event = provider.parse_webhook(body=body, headers=headers)
    except WebhookRejectedError:
        metrics.webhook_received(provider=provider_name, result="rejected")
        raise
    if WebhookDelivery.objects.filter(provider=provider_name, event_id=event.id).exists():
        result = "duplicate"
    elif event.type in FLAGGING:
        result = _flag(event, provider_name=provider_name, now=now)
    else:
        result = _settle(event, provider_name=provider_name, now=now)
        # A concurrent delivery of the same event settled it too, which settlement allows.
        with contextlib.suppress(IntegrityError):
            _record(event, provider_name=provider_name, now=now)
    metrics.webhook_received(provider=provider_name, result=result)
    return WebhookOutcome(result=result, event=event)


def _payment(event: WebhookEvent, *, provider_name: str) -> Payment | None:
    """The shop's payment the event is about; None for another integration's payment on the same account."""
    if not event.payment_id:
        return None
    return Payment.objects.filter(provider=provider_name, payment_id=event.payment_id).first()


def _settle(event: WebhookEvent, *, provider_name: str, now: datetime) -> str:
    payment = _payment(event, provider_name=provider_name) if event.type in SETTLING else None
    if payment is None:
        return "ignored"
    checkout.payment_settle(payment=payment, now=now)
    return "handled"


def _flag(event: WebhookEvent, *, provider_name: str, now: datetime) -> str:
    """Flags the order with the event's note, in one transaction with the event's record: a note is added once."""
    payment = _payment(event, provider_name=provider_name)
    try:
        with transaction.atomic():
            _record(event, provider_name=provider_name, now=now)
            if payment is None or payment.order_id is None:
                return "ignored"
            order = seats.lock_order(payment.order_id)
            order.flag_for_staff(FLAGGING[event.type])
            order.save(update_fields=["payment_note", "flagged"])
    except IntegrityError:
        return "duplicate"  # a concurrent delivery of the same event flagged it
    return "handled"


def _record(event: WebhookEvent, *, provider_name: str, now: datetime) -> None:
    """The event id, once (the unique constraint refuses it twice)."""
    with transaction.atomic():
        WebhookDelivery.objects.create(
            provider=provider_name,
            event_id=event.id[:255],
            type=event.type[:100],
            payment_id=event.payment_id[:255],
            received_at=now,
        )
