"""Fixtures shared by the orders tests."""

import pytest

from orders import services
from orders.payments import TestPaymentProvider


class RecordingProvider(TestPaymentProvider):
    """The test provider, remembering what it charged and refunded."""

    def __init__(self):
        self.charges, self.refunds = [], []

    def charge(self, **kwargs):
        result = super().charge(**kwargs)
        self.charges.append((kwargs["amount"], result.reference))
        return result

    def refund(self, **kwargs):
        self.refunds.append((kwargs["amount"], kwargs["reference"]))
        return super().refund(**kwargs)


@pytest.fixture
def provider(monkeypatch):
    """The checkout's payment provider, recording what it charged and refunded."""
    recording = RecordingProvider()
    monkeypatch.setattr(services, "payment_provider_for", lambda **kwargs: recording)
    return recording
