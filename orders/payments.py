"""Payment providers: the boundary between the shop and whoever moves the money.

A provider is called with no database lock held (see `orders.services.order_place`). Two ship:
- `test`: approves every charge except for the buyer email `TEST_DECLINE_EMAIL`, which it declines;
  refunds succeed at once. For demos, development and load tests.
- `free`: for zero totals only; nothing is charged.
A real provider implements the same two methods and is enabled through the PAYMENT_METHODS setting.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings

from aegistickets.errors import ValidationFailedError

TEST_DECLINE_EMAIL = "decline@example.com"


@dataclass(frozen=True)
class PaymentResult:
    approved: bool
    reference: str
    message: str = ""


class PaymentProvider(Protocol):
    name: str

    def charge(self, *, amount: Decimal, currency: str, email: str, description: str) -> PaymentResult: ...

    def refund(self, *, reference: str, amount: Decimal, currency: str) -> PaymentResult: ...


class TestPaymentProvider:
    """Approves, except for `TEST_DECLINE_EMAIL`; no money moves."""

    name = "test"
    __test__ = False  # not a pytest test class

    def charge(self, *, amount: Decimal, currency: str, email: str, description: str) -> PaymentResult:
        if email.strip().lower() == TEST_DECLINE_EMAIL:
            return PaymentResult(approved=False, reference="", message="Card declined (test provider).")
        return PaymentResult(approved=True, reference=f"test_{secrets.token_hex(8)}")

    def refund(self, *, reference: str, amount: Decimal, currency: str) -> PaymentResult:
        return PaymentResult(approved=True, reference=f"test_refund_{secrets.token_hex(8)}")


class FreePaymentProvider:
    """Zero totals only."""

    name = "free"

    def charge(self, *, amount: Decimal, currency: str, email: str, description: str) -> PaymentResult:
        if amount != 0:
            return PaymentResult(approved=False, reference="", message="Only free orders can use `free`.")
        return PaymentResult(approved=True, reference="free")

    def refund(self, *, reference: str, amount: Decimal, currency: str) -> PaymentResult:
        return PaymentResult(approved=True, reference="free")


_PROVIDERS: dict[str, PaymentProvider] = {
    provider.name: provider for provider in (TestPaymentProvider(), FreePaymentProvider())
}


def payment_methods() -> list[str]:
    return [name for name in settings.PAYMENT_METHODS if name in _PROVIDERS]


def payment_provider_for(*, method: str, amount: Decimal) -> PaymentProvider:
    """The provider that takes this payment; a zero total always goes through `free`."""
    paying = [name for name in payment_methods() if name != "free"]
    if method not in payment_methods():
        raise ValidationFailedError(errors={"payment_method": [f"Choose one of: {', '.join(payment_methods())}."]})
    if amount == 0:
        return _PROVIDERS["free"]
    if method == "free":
        raise ValidationFailedError(
            "This order is not free.", errors={"payment_method": [f"Choose one of: {', '.join(paying)}."]}
        )
    return _PROVIDERS[method]


def payment_provider_named(name: str) -> PaymentProvider:
    """The provider that took an order's payment, for its refund (even if no longer offered at checkout)."""
    return _PROVIDERS[name]
