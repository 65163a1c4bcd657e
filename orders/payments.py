"""Payment providers: the boundary between the shop and whoever moves the money.

Every provider has the same lifecycle: **authorize** before the order commits (no money moves yet), **capture**
after it commits, **void** an authorization whose order did not commit, **refund** (all or part) a captured payment.
Nothing is captured without a committed order; the shop's own record of each payment (`orders.models.Payment`) is
written before the provider is asked, so `manage.py reconcile_payments` can settle whatever a lost process left
behind by asking the provider (`status`). A provider is never called inside a database transaction.

A provider is a class named in the PAYMENT_PROVIDERS setting (a dotted path); PAYMENT_METHODS chooses which of them
shoppers are offered. Three ship:
- `test`: approves every payment except for the buyer email `TEST_DECLINE_EMAIL`; keeps its books in its own table
  (`TestProviderPayment`), standing in for a provider's. For demos, development and load tests.
- `free`: for zero totals only; nothing is charged.
- `stripe` (orders/stripe_provider.py): PaymentIntents with manual capture; the buyer may have to confirm (3-D
  Secure).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.db.models import F
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from aegistickets.errors import ApplicationError, NotFoundError, ValidationFailedError
from aegistickets.unavailable import ServiceUnavailableError
from orders import seats
from orders.models import TestProviderPayment

TEST_DECLINE_EMAIL = "decline@example.com"


class PaymentUnavailableError(ServiceUnavailableError):
    code = "payment_unavailable"
    title = _("Payment provider unavailable")
    default_detail = _("The payment provider did not answer in time. Nothing was charged; please retry shortly.")
    retry_after = 5


class WebhookRejectedError(ApplicationError):
    code = "webhook_rejected"
    status = 400
    title = _("Webhook rejected")
    default_detail = _("The webhook's signature or payload could not be verified.")


@dataclass(frozen=True)
class Authorization:
    """A provider's answer to `authorize`. `state`:
    - `authorized`: the amount is reserved on the buyer's account; capture it once the order commits;
    - `requires_action`: the buyer must act first (enter a card, pass 3-D Secure); the answer comes later (webhook,
      return page, reconciliation);
    - `declined`: nothing was reserved; `message` says why."""

    state: str
    payment_id: str
    message: str = ""
    client_secret: str = ""
    next_action: dict[str, Any] | None = None


@dataclass(frozen=True)
class PaymentResult:
    """The answer to capture, void and refund."""

    approved: bool
    reference: str
    message: str = ""


@dataclass(frozen=True)
class ProviderStatus:
    """What the provider knows of a payment: `state` is one of `requires_action`, `authorized`, `captured`,
    `canceled` (voided or expired at the provider), `failed`."""

    state: str
    amount_captured: Decimal = Decimal("0.00")
    amount_refunded: Decimal = Decimal("0.00")
    message: str = ""


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook, reduced to what the shop acts on."""

    id: str
    type: str
    payment_id: str


class PaymentProvider:
    """The interface every provider implements. Amounts are Decimals in `currency`; ids are the provider's."""

    name: ClassVar[str]

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
        raise NotImplementedError

    def capture(self, *, payment_id: str, amount: Decimal, currency: str) -> PaymentResult:
        raise NotImplementedError

    def void(self, *, payment_id: str) -> PaymentResult:
        raise NotImplementedError

    def refund(self, *, payment_id: str, amount: Decimal, currency: str) -> PaymentResult:
        raise NotImplementedError

    def status(self, *, payment_id: str) -> ProviderStatus:
        raise NotImplementedError

    def confirm(self, *, payment_id: str, payment_method: str) -> Authorization:
        """Confirms a payment that awaits the buyer with the payment method their browser created (its pay page):
        authorized, requires_action (the browser authenticates the buyer next: 3-D Secure) or declined. Only a
        provider whose `authorize` can answer requires_action leaves payments awaiting the buyer, so only such a
        provider has it."""
        raise NotImplementedError

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        raise WebhookRejectedError(f"The {self.name} provider sends no webhooks.")

    def client_config(self, *, amount: Decimal, currency: str) -> dict[str, str]:
        """What the pay page needs to let the buyer pay `amount` in the browser (public values only)."""
        return {}

    def content_security_policy(self) -> dict[str, list[str]]:
        """The sources the pay page's Content-Security-Policy adds for this provider's code in the buyer's browser,
        by directive; every other page keeps the shop's own policy."""
        return {}


class TestPaymentProvider(PaymentProvider):
    """Approves, except for `TEST_DECLINE_EMAIL`; no money moves. Its books are a table of the shop's database, so
    they survive a killed worker and can be read back against the orders (make chaos does)."""

    name = "test"
    __test__ = False  # not a pytest test class

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
        # The shop's reference makes the call idempotent, as Stripe's idempotency key does: asked again, it answers
        # with the same payment.
        payment_id = f"test_{reference}"
        if email.strip().lower() == TEST_DECLINE_EMAIL:
            return Authorization(
                state="declined", payment_id=payment_id, message=gettext_noop("Card declined (test provider).")
            )
        if not seats.insert_new(TestProviderPayment(payment_id=payment_id, amount=amount, currency=currency)):
            state = TestProviderPayment.objects.filter(payment_id=payment_id).values_list("state", flat=True).first()
            if state != "authorized":
                return Authorization(state="declined", payment_id=payment_id, message=f"Payment is {state}.")
        return Authorization(state="authorized", payment_id=payment_id)

    def capture(self, *, payment_id: str, amount: Decimal, currency: str) -> PaymentResult:
        return self._move(payment_id, "authorized", state="captured", captured=amount)

    def void(self, *, payment_id: str) -> PaymentResult:
        return self._move(payment_id, "authorized", state="canceled")

    def refund(self, *, payment_id: str, amount: Decimal, currency: str) -> PaymentResult:
        refunded = TestProviderPayment.objects.filter(
            payment_id=payment_id, state="captured", captured__gte=F("refunded") + amount
        ).update(refunded=F("refunded") + amount)
        if not refunded:
            return PaymentResult(approved=False, reference="", message="Nothing captured left to refund.")
        return PaymentResult(approved=True, reference=f"test_refund_{secrets.token_hex(8)}")

    def status(self, *, payment_id: str) -> ProviderStatus:
        payment = TestProviderPayment.objects.filter(payment_id=payment_id).first()
        if payment is None:
            return ProviderStatus(state="failed", message="No such payment.")
        return ProviderStatus(state=payment.state, amount_captured=payment.captured, amount_refunded=payment.refunded)

    def _move(self, payment_id: str, from_state: str, *, state: str, captured: Decimal | None = None) -> PaymentResult:
        changes = TestProviderPayment(payment_id=payment_id, state=state, captured=captured or Decimal("0.00"))
        moved = seats.update(
            changes, ["state", "captured"] if captured is not None else ["state"], only_if=("state", from_state)
        )
        if not moved:
            current = TestProviderPayment.objects.filter(payment_id=payment_id).values_list("state", flat=True).first()
            if current == state:  # asked twice: the first call did it
                return PaymentResult(approved=True, reference=payment_id)
            return PaymentResult(approved=False, reference="", message=f"Payment is {current or 'unknown'}.")
        return PaymentResult(approved=True, reference=payment_id)


class FreePaymentProvider(PaymentProvider):
    """Zero totals only: every step succeeds and nothing moves."""

    name = "free"

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
        if amount != 0:
            return Authorization(
                state="declined", payment_id="", message=gettext_noop("Only free orders can use `free`.")
            )
        return Authorization(state="authorized", payment_id="free")

    def capture(self, *, payment_id: str, amount: Decimal, currency: str) -> PaymentResult:
        return PaymentResult(approved=True, reference="free")

    def void(self, *, payment_id: str) -> PaymentResult:
        return PaymentResult(approved=True, reference="free")

    def refund(self, *, payment_id: str, amount: Decimal, currency: str) -> PaymentResult:
        return PaymentResult(approved=True, reference="free")

    def status(self, *, payment_id: str) -> ProviderStatus:
        return ProviderStatus(state="captured")


@functools.cache
def _providers(paths: tuple[str, ...]) -> dict[str, PaymentProvider]:
    classes = [import_string(path) for path in paths]
    return {cls.name: cls() for cls in classes}


def providers() -> dict[str, PaymentProvider]:
    """Every installed provider by name (PAYMENT_PROVIDERS), whether or not shoppers are offered it."""
    return _providers(tuple(settings.PAYMENT_PROVIDERS))


def payment_methods() -> list[str]:
    return [name for name in settings.PAYMENT_METHODS if name in providers()]


def payment_provider_for(*, method: str, amount: Decimal) -> PaymentProvider:
    """The provider that takes this payment; a zero total always goes through `free`."""
    paying = [name for name in payment_methods() if name != "free"]
    if method not in payment_methods():
        raise ValidationFailedError(errors={"payment_method": [f"Choose one of: {', '.join(payment_methods())}."]})
    if amount == 0:
        return providers()["free"]
    if method == "free":
        raise ValidationFailedError(
            "This order is not free.", errors={"payment_method": [f"Choose one of: {', '.join(paying)}."]}
        )
    return providers()[method]


def payment_provider_named(name: str) -> PaymentProvider:
    """The provider that took a payment, to settle or refund it (even if no longer offered at checkout)."""
    try:
        return providers()[name]
    except KeyError:
        raise NotFoundError(f"No payment provider named {name!r} is installed.") from None
