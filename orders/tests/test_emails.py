"""The buyer's confirmation email: queued with the order, sent by the outbox worker, never failing a checkout."""

from __future__ import annotations

import email
import io
import logging
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, outbox, services
from orders.models import Order, OutboundEmail

pytestmark = pytest.mark.django_db

SITE = "https://tickets.example.org"

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def place(now, *quantities: int, email_address: str = "ada@example.com") -> Order:
    token = None
    for number, quantity in enumerate(quantities):
        ticket_type = TicketTypeFactory(
            event=EventFactory(name=f"Aurora Quartet {number}", venue="Pierre Boulez Saal"), name="Standard"
        )
        token = services.basket_add(token=token, ticket_type_id=ticket_type.pk, quantity=quantity, now=now).token
    return checkout.order_place(
        token=token, name="Ada Lovelace", email=email_address, payment_method="test", now=now
    ).order


def send_queued(now) -> outbox.OutboxRun:  # type: ignore[no-untyped-def]
    """One step of the email worker (`manage.py send_emails`), as it runs after the checkout."""
    return outbox.outbox_send_due(now=now, limit=10)


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


class TestConfirmation:
    @pytest.fixture(autouse=True)
    def _site(self, settings):  # type: ignore[no-untyped-def]
        settings.SITE_URL = SITE + "/"  # a trailing slash does not double up in links

    def test_sent_once_by_the_worker_with_subject_parts_link_and_pdf(self, now, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            order = place(now, 2)
        assert send_queued(now).sent == 1
        assert send_queued(now).sent == 0
        assert len(mail.outbox) == 1
        message = mail.outbox[0]

        assert message.to == ["ada@example.com"]
        assert message.subject == f"Your tickets for Aurora Quartet 0 - order {order.code}"
        link = SITE + f"/orders/{order.code}/{order.secret}/"
        assert link in message.body
        assert "2 x Aurora Quartet 0 - Standard" in message.body
        (html, mimetype) = message.alternatives[0]
        assert mimetype == "text/html"
        assert f'<a href="{link}">' in html
        assert "Pierre Boulez Saal" in html
        (name, content, pdf_type) = message.attachments[0]
        assert (name, pdf_type) == (f"tickets-{order.code}.pdf", "application/pdf")
        text = pdf_text(content)
        for ticket in order.tickets.all():
            assert ticket.code in text

    def test_a_multi_event_order_names_every_event(self, now, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            order = place(now, 1, 1)
        send_queued(now)

        assert mail.outbox[0].subject == f"Your tickets for Aurora Quartet 0, Aurora Quartet 1 - order {order.code}"

    def test_not_sent_by_the_checkout_itself(self, now, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            order = place(now, 1)

        assert mail.outbox == []  # neither in the transaction nor after its commit: the worker sends it
        assert OutboundEmail.objects.get(order=order).status == OutboundEmail.Status.PENDING

    def test_a_failed_checkout_sends_nothing(self, now, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(Exception, match="declined"):
            place(now, 1, email_address="decline@example.com")

        assert send_queued(now) == outbox.OutboxRun()
        assert mail.outbox == []

    def test_a_broken_mail_server_never_fails_the_checkout(self, now, django_capture_on_commit_callbacks, caplog):
        # Nothing listens on port 9 of 127.0.0.1 ("discard"): the real SMTP backend gets connection refused.
        with (
            override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1", EMAIL_PORT=9, EMAIL_TIMEOUT=2),
            django_capture_on_commit_callbacks(execute=True),
            caplog.at_level(logging.WARNING, logger="orders.outbox"),
        ):
            order = place(now, 1)
            assert send_queued(now) == outbox.OutboxRun(failed=1)

        assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
        assert "outbox: sending order_confirmation failed" in caplog.text
        assert "ConnectionRefusedError" in OutboundEmail.objects.get(order=order).last_error


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802 - aiosmtpd hook
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():  # type: ignore[no-untyped-def]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def test_sends_through_a_real_smtp_server(now, smtp_server, django_capture_on_commit_callbacks):
    controller, inbox = smtp_server
    # The same path production takes: EMAIL_URL → Django's SMTP backend → a server on the network.
    with (
        override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1", EMAIL_PORT=controller.port, SITE_URL=SITE),
        django_capture_on_commit_callbacks(execute=True),
    ):
        order = place(now, 2)
        assert send_queued(now).sent == 1

    assert len(inbox.messages) == 1
    mail_from, recipients, raw = inbox.messages[0]
    assert recipients == ["ada@example.com"]
    assert mail_from == "tickets@localhost"
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == f"Your tickets for Aurora Quartet 0 - order {order.code}"
    assert SITE + f"/orders/{order.code}/{order.secret}/" in parsed.get_body(("plain",)).get_content()
    assert parsed.get_body(("html",)) is not None
    attachment, calendar = list(parsed.iter_attachments())
    assert attachment.get_filename() == f"tickets-{order.code}.pdf"
    assert calendar.get_filename() == f"events-{order.code}.ics"
    assert calendar.get_content_type() == "text/calendar"
    text = pdf_text(attachment.get_content())
    assert all(ticket.code in text for ticket in order.tickets.all())


def test_admin_resends_paid_orders_and_skips_cancelled_ones(admin_client, now):
    paid = place(now, 1)
    cancelled = place(now, 1, email_address="grace@example.com")
    services.order_cancel(order_id=cancelled.pk, now=now)
    send_queued(now + outbox.CANCELLATION_NOTICE_DELAY)
    mail.outbox.clear()

    response = admin_client.post(
        reverse("admin:orders_order_changelist"),
        {"action": "resend_confirmation", "_selected_action": [paid.pk, cancelled.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert mail.outbox == []  # queued; the worker sends it
    send_queued(timezone.now())
    assert [message.to for message in mail.outbox] == [["ada@example.com"]]
    assert paid.code in mail.outbox[0].subject
    shown = [message.message for message in response.context["messages"]]
    assert f"Queued the confirmation again for: {paid.code}." in shown
    assert f"Not sent, not paid: {cancelled.code} (cancelled)." in shown
