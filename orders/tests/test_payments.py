"""The shipped payment providers keep the provider contract the checkout relies on."""

from decimal import Decimal

import pytest

from aegistickets.errors import ValidationFailedError
from orders.payments import TEST_DECLINE_EMAIL, FreePaymentProvider, TestPaymentProvider, payment_provider_for


def test_test_provider_approves_with_a_unique_reference_and_refunds():
    provider = TestPaymentProvider()
    first = provider.charge(amount=Decimal("10.00"), currency="EUR", email="a@example.com", description="x")
    second = provider.charge(amount=Decimal("10.00"), currency="EUR", email="a@example.com", description="x")
    assert first.approved
    assert second.approved
    assert first.reference != second.reference
    assert provider.refund(reference=first.reference, amount=Decimal("10.00"), currency="EUR").approved


@pytest.mark.parametrize("email", [TEST_DECLINE_EMAIL, " Decline@Example.com "])
def test_test_provider_declines_the_documented_address(email):
    result = TestPaymentProvider().charge(amount=Decimal("1.00"), currency="EUR", email=email, description="x")
    assert not result.approved
    assert result.message


def test_free_provider_takes_only_zero_totals():
    provider = FreePaymentProvider()
    assert provider.charge(amount=Decimal("0"), currency="EUR", email="a@example.com", description="x").approved
    assert not provider.charge(amount=Decimal("0.01"), currency="EUR", email="a@example.com", description="x").approved


def test_provider_choice():
    assert payment_provider_for(method="test", amount=Decimal("5")).name == "test"
    assert payment_provider_for(method="test", amount=Decimal("0")).name == "free"
    with pytest.raises(ValidationFailedError):
        payment_provider_for(method="free", amount=Decimal("5"))
    with pytest.raises(ValidationFailedError):
        payment_provider_for(method="paypal", amount=Decimal("5"))


def test_disabled_methods_are_refused(settings):
    settings.PAYMENT_METHODS = ["free"]
    with pytest.raises(ValidationFailedError):
        payment_provider_for(method="test", amount=Decimal("5"))
