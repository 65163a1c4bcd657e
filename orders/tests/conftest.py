"""Fixtures shared by the orders tests."""

import secrets

import pytest

from events.tests.factories import TicketTypeFactory
from orders import payments
from orders.payments import FreePaymentProvider, TestPaymentProvider
from orders.tests import test_admin
from scripts.lib import localstripe
from scripts.lib.localstripe import running_localstripe


class RecordingProvider(TestPaymentProvider):
    """The test provider, remembering each step it took: (amount, payment id) per authorization, capture and refund;
    the payment id per void."""

    def __init__(self):
        self.authorized, self.captured, self.voided, self.refunds = [], [], [], []

    def authorize(self, **kwargs):
        answer = super().authorize(**kwargs)
        if answer.state == "authorized":
            self.authorized.append((kwargs["amount"], answer.payment_id))
        return answer

    def capture(self, **kwargs):
        result = super().capture(**kwargs)
        if result.approved:
            self.captured.append((kwargs["amount"], kwargs["payment_id"]))
        return result

    def void(self, **kwargs):
        result = super().void(**kwargs)
        if result.approved:
            self.voided.append(kwargs["payment_id"])
        return result

    def refund(self, **kwargs):
        self.refunds.append((kwargs["amount"], kwargs["payment_id"]))
        return super().refund(**kwargs)


@pytest.fixture
def provider(monkeypatch):
    """The payment provider behind `test`, recording each step."""
    recording = RecordingProvider()
    installed = {"test": recording, "free": FreePaymentProvider()}
    monkeypatch.setattr(payments, "providers", lambda: installed)
    return recording


@pytest.fixture(scope="session")
def localstripe_base():
    """localstripe, Stripe's stand-in, on 127.0.0.1 for the whole run: its base URL."""
    with running_localstripe() as stand_in:
        yield stand_in.base


@pytest.fixture
def stripe_shop(settings, localstripe_base):
    """The shop offering Stripe, its SDK pointed at localstripe, with a webhook secret of the test's own."""
    settings.PAYMENT_METHODS = ["stripe", "test", "free"]
    settings.STRIPE_API_BASE = localstripe_base
    settings.STRIPE_SECRET_KEY = localstripe.SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = localstripe.PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)  # pragma: allowlist secret
    settings.STRIPE_TIMEOUT_SECONDS = 5.0
    return payments.payment_provider_named("stripe")


@pytest.fixture
def sold_out(db):
    """A ticket type of 2 seats, both sold (in two orders of one seat)."""
    ticket_type = TicketTypeFactory(capacity=2, max_per_order=4)
    orders = [test_admin.place_order((ticket_type, 1), email=f"buyer{i}@example.com") for i in range(2)]
    ticket_type.orders = orders
    return ticket_type
