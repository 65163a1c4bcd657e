"""The shipped payment providers keep the provider interface checkout relies on: authorize, capture, void, refund
(all or part) and status, each safe to ask twice."""

from decimal import Decimal

import pytest

from aegistickets.errors import NotFoundError, ValidationFailedError
from orders.models import TestProviderPayment
from orders.payments import (
    TEST_DECLINE_EMAIL,
    FreePaymentProvider,
    TestPaymentProvider,
    WebhookRejectedError,
    payment_provider_for,
    payment_provider_named,
)

pytestmark = pytest.mark.django_db


def authorize(provider, reference="r1", amount="10.00", email="a@example.com"):
    return provider.authorize(amount=Decimal(amount), currency="EUR", email=email, description="x", reference=reference)


def test_test_provider_authorizes_captures_and_refunds_in_parts():
    provider = TestPaymentProvider()
    answer = authorize(provider)
    assert (answer.state, provider.status(payment_id=answer.payment_id).state) == ("authorized", "authorized")

    assert provider.capture(payment_id=answer.payment_id, amount=Decimal("10.00"), currency="EUR").approved
    assert provider.refund(payment_id=answer.payment_id, amount=Decimal("4.00"), currency="EUR").approved
    assert provider.refund(payment_id=answer.payment_id, amount=Decimal("6.00"), currency="EUR").approved
    refused = provider.refund(payment_id=answer.payment_id, amount=Decimal("0.01"), currency="EUR")

    assert not refused.approved
    status = provider.status(payment_id=answer.payment_id)
    assert (status.state, status.amount_captured, status.amount_refunded) == (
        "captured",
        Decimal("10.00"),
        Decimal("10.00"),
    )


def test_the_same_reference_is_the_same_payment_and_each_step_is_idempotent():
    provider = TestPaymentProvider()
    first, again = authorize(provider), authorize(provider)
    assert first.payment_id == again.payment_id
    assert TestProviderPayment.objects.count() == 1
    assert provider.capture(payment_id=first.payment_id, amount=Decimal("10.00"), currency="EUR").approved
    assert provider.capture(payment_id=first.payment_id, amount=Decimal("10.00"), currency="EUR").approved
    assert TestProviderPayment.objects.get().captured == Decimal("10.00")
    # Captured money is refunded, not voided; a captured payment cannot be authorized again.
    assert not provider.void(payment_id=first.payment_id).approved
    assert authorize(provider).state == "declined"


def test_a_voided_authorization_cannot_be_captured():
    provider = TestPaymentProvider()
    answer = authorize(provider)
    assert provider.void(payment_id=answer.payment_id).approved
    assert provider.void(payment_id=answer.payment_id).approved  # asked twice
    assert not provider.capture(payment_id=answer.payment_id, amount=Decimal("10.00"), currency="EUR").approved
    assert provider.status(payment_id=answer.payment_id).state == "canceled"


@pytest.mark.parametrize("email", [TEST_DECLINE_EMAIL, " Decline@Example.com "])
def test_test_provider_declines_the_documented_address(email):
    answer = authorize(TestPaymentProvider(), email=email)
    assert answer.state == "declined"
    assert answer.message
    assert not TestProviderPayment.objects.exists()


def test_an_unknown_payment_has_failed():
    assert TestPaymentProvider().status(payment_id="test_nothing").state == "failed"


def test_free_provider_takes_only_zero_totals():
    provider = FreePaymentProvider()
    assert authorize(provider, amount="0").state == "authorized"
    assert authorize(provider, amount="0.01").state == "declined"


def test_providers_without_webhooks_reject_one():
    with pytest.raises(WebhookRejectedError):
        TestPaymentProvider().parse_webhook(body=b"{}", headers={})


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


def test_providers_are_the_classes_the_setting_names(settings):
    assert payment_provider_named("stripe").name == "stripe"
    settings.PAYMENT_PROVIDERS = ["orders.payments.FreePaymentProvider"]
    assert payment_provider_named("free").name == "free"
    with pytest.raises(NotFoundError):
        payment_provider_named("test")
