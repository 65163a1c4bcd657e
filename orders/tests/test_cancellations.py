"""Cancelling an order: tickets void, seats back on sale, exactly one refund through the provider (after the
commit, outside the locks), an email to the buyer (queued with the cancellation, sent by the outbox worker);
a second cancel is a clear 409 and pays nothing."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from aegistickets.errors import OrderNotCancellableError
from aegistickets.tests.test_organizer_access import staff_with
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory
from orders import checkout, outbox, payments, services
from orders.models import Order, Refund
from orders.payments import FreePaymentProvider, PaymentResult
from orders.tests.conftest import RecordingProvider
from orders.tests.test_check_in import token_client
from orders.tests.test_concurrency import run_at_once


class FailingProvider(RecordingProvider):
    """The recording test provider; `fail` makes its refunds decline or raise like a real one's can."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: str | None = None

    def refund(self, **kwargs):  # type: ignore[no-untyped-def]
        if self.fail == "decline":
            self.refunds.append((kwargs["amount"], kwargs["payment_id"]))
            return PaymentResult(approved=False, reference="", message="Refund window closed (test).")
        if self.fail == "raise":
            self.refunds.append((kwargs["amount"], kwargs["payment_id"]))
            raise TimeoutError("provider timed out")
        return super().refund(**kwargs)


@pytest.fixture
def provider(monkeypatch):  # type: ignore[no-untyped-def]
    recording = FailingProvider()
    installed = {"test": recording, "free": FreePaymentProvider()}
    monkeypatch.setattr(payments, "providers", lambda: installed)
    return recording


def send_queued_emails() -> None:
    """The email worker's step, late enough for the cancellation notice (queued a few seconds ahead)."""
    outbox.outbox_send_due(now=timezone.now() + outbox.CANCELLATION_NOTICE_DELAY, limit=100)


def paid_order(ticket_type, quantity: int = 2, email: str = "ada@example.com") -> Order:
    now = timezone.now()
    token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=now).token
    return checkout.order_place(token=token, name="Ada Lovelace", email=email, payment_method="test", now=now).order


@pytest.mark.django_db
class TestOrderCancel:
    def test_voids_returns_seats_refunds_once_and_emails_the_buyer(
        self, ticket_type, provider, django_capture_on_commit_callbacks
    ):
        order = paid_order(ticket_type, 2)
        send_queued_emails()  # the confirmation
        mail.outbox.clear()

        with django_capture_on_commit_callbacks(execute=True):
            services.order_cancel(order_id=order.pk, now=timezone.now())
        send_queued_emails()

        order.refresh_from_db()
        ticket_type.refresh_from_db()
        assert order.status == Order.Status.CANCELLED
        assert ticket_type.sold == 0
        refund = Refund.objects.get()
        assert (refund.order, refund.status, refund.amount, refund.attempts) == (
            order,
            Refund.Status.SUCCEEDED,
            Decimal("50.00"),
            1,
        )
        assert refund.reference.startswith("test_refund_")
        assert refund.completed_at is not None
        assert provider.refunds == [(Decimal("50.00"), order.payment_reference)]
        (message,) = mail.outbox
        assert message.to == ["ada@example.com"]
        assert message.subject == f"Cancelled: {ticket_type.event.name} - order {order.code}"
        assert "We have refunded €50.00" in message.body
        assert "no longer valid" in message.alternatives[0][0]

    def test_the_provider_is_not_called_before_the_cancellation_commits(
        self, ticket_type, provider, django_capture_on_commit_callbacks
    ):
        order = paid_order(ticket_type)
        mail.outbox.clear()

        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.order_cancel(order_id=order.pk, now=timezone.now())

        assert provider.refunds == []
        assert Refund.objects.get().status == Refund.Status.PENDING
        assert mail.outbox == []
        assert len(callbacks) == 1

    def test_cancelling_twice_is_refused_and_never_refunds_twice(
        self, ticket_type, provider, django_capture_on_commit_callbacks
    ):
        order = paid_order(ticket_type)
        with django_capture_on_commit_callbacks(execute=True):
            services.order_cancel(order_id=order.pk, now=timezone.now())

        with django_capture_on_commit_callbacks(execute=True), pytest.raises(OrderNotCancellableError):
            services.order_cancel(order_id=order.pk, now=timezone.now())

        assert Refund.objects.count() == 1
        assert len(provider.refunds) == 1

    @pytest.mark.parametrize("failure", ["decline", "raise"])
    def test_a_failed_refund_is_recorded_told_and_retried_once(
        self, ticket_type, provider, django_capture_on_commit_callbacks, failure
    ):
        order = paid_order(ticket_type)
        send_queued_emails()  # the confirmation
        mail.outbox.clear()
        provider.fail = failure

        with django_capture_on_commit_callbacks(execute=True):
            services.order_cancel(order_id=order.pk, now=timezone.now())
        send_queued_emails()

        refund = Refund.objects.get()
        assert refund.status == Refund.Status.FAILED
        assert refund.message in {"Refund window closed (test).", "TimeoutError: provider timed out"}
        assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED  # the tickets stay void
        assert "is being processed" in mail.outbox[0].body

        provider.fail = None
        retried = services.refund_process(refund_id=refund.pk, now=timezone.now())
        again = services.refund_process(refund_id=refund.pk, now=timezone.now())

        assert (retried.status, retried.attempts) == (Refund.Status.SUCCEEDED, 2)
        assert again.status == Refund.Status.SUCCEEDED
        assert len(provider.refunds) == 2  # the failed try and the retry; the third call paid nothing

    def test_a_refund_being_processed_is_not_paid_again(
        self, ticket_type, provider, django_capture_on_commit_callbacks
    ):
        order = paid_order(ticket_type)
        with django_capture_on_commit_callbacks(execute=False):
            services.order_cancel(order_id=order.pk, now=timezone.now())
        refund = Refund.objects.get()
        Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.PROCESSING)

        assert services.refund_process(refund_id=refund.pk, now=timezone.now()).status == Refund.Status.PROCESSING
        assert provider.refunds == []


@pytest.mark.django_db
class TestCancelApi:
    def test_cancels_and_answers_with_the_order_and_its_refund(self, refunding_api, ticket_type, provider):
        order = paid_order(ticket_type, 2)

        response = refunding_api.post(f"/api/orders/{order.code}/cancel")

        assert response.status_code == 200
        body = response.json()
        assert body["order"]["code"] == order.code
        assert body["order"]["status"] == "cancelled"
        assert body["refund"]["amount"] == "50.00"
        assert body["refund"]["status"] in {"pending", "succeeded"}  # succeeded once the request's commit ran
        ticket_type.refresh_from_db()
        assert ticket_type.sold == 0

    def test_a_second_cancel_is_409_order_not_cancellable(self, refunding_api, ticket_type, provider):
        order = paid_order(ticket_type)
        refunding_api.post(f"/api/orders/{order.code}/cancel")

        response = refunding_api.post(f"/api/orders/{order.code}/cancel")

        assert response.status_code == 409
        assert response.json()["code"] == "order_not_cancellable"
        assert Refund.objects.count() == 1

    def test_non_staff_are_refused(self, api, ticket_type):
        order = paid_order(ticket_type)

        assert token_client(UserFactory()).post(f"/api/orders/{order.code}/cancel").status_code == 403
        assert api.post(f"/api/orders/{order.code}/cancel").status_code == 401
        assert Order.objects.get().status == Order.Status.PAID

    def test_unknown_code_is_404(self, refunding_api):
        assert refunding_api.post("/api/orders/AT-XXXXXX/cancel").status_code == 404


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_organizers_cancel_at_once_one_refund_one_409(provider):
    ticket_type = TicketTypeFactory(event=EventFactory(), capacity=10)
    order = paid_order(ticket_type, 3)
    staff = [token_client(staff_with("refund_order")) for _ in range(8)]

    results = run_at_once(len(staff), lambda i: staff[i].post(f"/api/orders/{order.code}/cancel"))

    assert not [r for r in results if isinstance(r, Exception)]
    assert Counter(r.status_code for r in results) == {200: 1, 409: 7}
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    assert len(provider.refunds) == 1
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 0


@pytest.mark.django_db
def test_admin_retries_failed_refunds(admin_client, ticket_type, provider, django_capture_on_commit_callbacks):
    order = paid_order(ticket_type)
    provider.fail = "decline"
    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order_id=order.pk, now=timezone.now())
    provider.fail = None

    response = admin_client.post(
        "/admin/orders/order/", {"action": "retry_refunds", "_selected_action": [order.pk]}, follow=True
    )

    assert response.status_code == 200
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    assert [m.message for m in response.context["messages"]] == [f"Refunded 1 order(s): {order.code}."]
