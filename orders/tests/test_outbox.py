"""Buyer emails leave through the outbox: queued in the order's own transaction, sent later by the worker
(`manage.py send_emails`), retried with backoff, never sent twice by two workers, never lost by a crash."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from aegistickets.errors import NotOnSaleError
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, outbox, services
from orders.models import Order, OutboundEmail, Payment
from orders.tests.test_concurrency import run_at_once
from orders.tests.test_emails import pdf_text

# Nothing listens on port 9 of 127.0.0.1 ("discard"): Django's real SMTP backend gets connection refused.
BROKEN_MAIL_SERVER = {
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "127.0.0.1",
    "EMAIL_PORT": 9,
    "EMAIL_TIMEOUT": 2,
}


def place(now, quantity: int = 1, email: str = "ada@example.com", ticket_type=None) -> Order:
    ticket_type = ticket_type or TicketTypeFactory(event=EventFactory(name="Aurora Quartet"), capacity=50)
    token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=now).token
    return checkout.order_place(token=token, name="Ada Lovelace", email=email, payment_method="test", now=now).order


def row(order: Order, kind: str = OutboundEmail.Kind.ORDER_CONFIRMATION) -> OutboundEmail:
    return OutboundEmail.objects.get(order=order, kind=kind)


@pytest.mark.django_db
class TestQueuedWithTheOrder:
    def test_a_checkout_queues_exactly_one_confirmation_and_sends_nothing_itself(
        self, now, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            order = place(now, 2)

        assert mail.outbox == []  # not in the request: the worker sends it
        (queued,) = OutboundEmail.objects.all()
        assert (queued.order_id, queued.kind, queued.status) == (
            order.pk,
            OutboundEmail.Kind.ORDER_CONFIRMATION,
            OutboundEmail.Status.PENDING,
        )
        assert (queued.created_at, queued.next_attempt_at, queued.attempts, queued.sent_at) == (now, now, 0, None)

    def test_a_checkout_rolled_back_queues_nothing(self, now, ticket_type):
        token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now).token
        # Withdrawn after the basket was filled: the checkout transaction fails after the order rows were written.
        ticket_type.event.is_published = False
        ticket_type.event.save(update_fields=["is_published"])

        with pytest.raises(NotOnSaleError):
            checkout.order_place(token=token, name="A", email="a@example.com", payment_method="test", now=now)

        assert not Order.objects.exists()
        assert not OutboundEmail.objects.exists()

    def test_the_queue_costs_checkout_one_insert(self, now, ticket_type):
        token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=2, now=now).token
        with CaptureQueriesContext(connection) as queries:
            checkout.order_place(token=token, name="A", email="a@example.com", payment_method="test", now=now)

        statements = [q["sql"] for q in queries.captured_queries]
        assert sum(s.startswith('INSERT INTO "orders_outboundemail"') for s in statements) == 1
        # The order's transaction: the basket lock, the holds again, order, payment link, lines, tickets, the email,
        # hold delete, seat update (and here, inside the test's transaction, a savepoint and its release instead of
        # BEGIN and COMMIT). Around it: the holds read, the payment record, the provider's authorization (one
        # statement), the capture and its record. On PostgreSQL the basket read is a SELECT … FOR NO KEY UPDATE, the
        # count is the same.
        assert len(statements) == 16, statements

    def test_a_cancellation_queues_its_notice_in_the_cancel_transaction(self, now, django_capture_on_commit_callbacks):
        order = place(now)
        with django_capture_on_commit_callbacks(execute=True):
            services.order_cancel(order_id=order.pk, now=now)

        assert mail.outbox == []
        notice = row(order, OutboundEmail.Kind.ORDER_CANCELLATION)
        assert notice.status == OutboundEmail.Status.PENDING
        # A few seconds later, so that it can say whether the refund (asked for after the commit) went through.
        assert notice.next_attempt_at == now + outbox.CANCELLATION_NOTICE_DELAY == now + timedelta(seconds=10)


@pytest.mark.django_db
class TestWorker:
    def test_sends_the_confirmation_with_the_tickets_pdf_once(self, now):
        order = place(now, 2)

        result = outbox.outbox_send_due(now=now, limit=10)

        assert result == outbox.OutboxRun(sent=1, failed=0, gave_up=0)
        (message,) = mail.outbox
        assert message.to == ["ada@example.com"]
        assert message.subject == f"Your tickets for Aurora Quartet - order {order.code}"
        (name, content, mimetype) = message.attachments[0]
        assert (name, mimetype) == (f"tickets-{order.code}.pdf", "application/pdf")
        assert all(ticket.code in pdf_text(content) for ticket in order.tickets.all())
        sent = row(order)
        assert (sent.status, sent.sent_at, sent.attempts, sent.claimed_at) == (OutboundEmail.Status.SENT, now, 1, None)

        assert outbox.outbox_send_due(now=now + timedelta(hours=1), limit=10) == outbox.OutboxRun()
        assert len(mail.outbox) == 1

    def test_sends_the_cancellation_after_the_confirmation(self, now, django_capture_on_commit_callbacks):
        order = place(now)
        assert outbox.outbox_send_due(now=now, limit=10).sent == 1
        with django_capture_on_commit_callbacks(execute=True):
            services.order_cancel(order_id=order.pk, now=now)

        assert outbox.outbox_send_due(now=now + outbox.CANCELLATION_NOTICE_DELAY, limit=10).sent == 1

        confirmation, cancellation = mail.outbox
        assert confirmation.subject == f"Your tickets for Aurora Quartet - order {order.code}"
        assert cancellation.subject == f"Cancelled: Aurora Quartet - order {order.code}"
        assert "We have refunded" in cancellation.body  # the refund ran after the cancel committed

    def test_an_order_cancelled_before_its_confirmation_went_out_gets_only_the_notice(
        self, now, django_capture_on_commit_callbacks
    ):
        order = place(now)
        with django_capture_on_commit_callbacks(execute=True):
            services.order_cancel(order_id=order.pk, now=now)

        assert outbox.outbox_send_due(now=now + outbox.CANCELLATION_NOTICE_DELAY, limit=10).sent == 1
        (notice,) = mail.outbox  # no tickets PDF for tickets that no longer admit anyone
        assert notice.subject == f"Cancelled: Aurora Quartet - order {order.code}"
        assert list(OutboundEmail.objects.values_list("kind", "status")) == [
            (OutboundEmail.Kind.ORDER_CANCELLATION, OutboundEmail.Status.SENT)
        ]

    def test_a_failed_confirmation_is_withdrawn_too_so_no_retry_can_send_it(self, now):
        order = place(now)
        OutboundEmail.objects.filter(order=order).update(status=OutboundEmail.Status.FAILED, last_error="refused")

        services.order_cancel(order_id=order.pk, now=now)

        assert not OutboundEmail.objects.filter(order=order, kind=OutboundEmail.Kind.ORDER_CONFIRMATION).exists()

    def test_a_confirmation_being_sent_at_the_cancel_still_goes_out_before_the_notice(self, now, monkeypatch):
        order = place(now)
        send = outbox._send
        cancelled_meanwhile = []

        def cancel_while_sending(claim):  # type: ignore[no-untyped-def]
            # The worker has claimed the confirmation (committed); the cancel commits before it is sent.
            services.order_cancel(order_id=order.pk, now=now)
            cancelled_meanwhile.append(claim.pk)
            return send(claim)

        monkeypatch.setattr(outbox, "_send", cancel_while_sending)
        assert outbox.outbox_send_due(now=now, limit=10).sent == 1
        monkeypatch.undo()

        assert cancelled_meanwhile == [row(order).pk]
        assert row(order).status == OutboundEmail.Status.SENT
        assert outbox.outbox_send_due(now=now + outbox.CANCELLATION_NOTICE_DELAY, limit=10).sent == 1
        assert [m.subject for m in mail.outbox] == [
            f"Your tickets for Aurora Quartet - order {order.code}",
            f"Cancelled: Aurora Quartet - order {order.code}",
        ]

    def test_takes_at_most_limit_and_the_oldest_first(self, now):
        orders = [place(now + timedelta(seconds=i), email=f"buyer{i}@example.com") for i in range(3)]

        assert outbox.outbox_send_due(now=now + timedelta(seconds=5), limit=2).sent == 2
        assert [m.to[0] for m in mail.outbox] == ["buyer0@example.com", "buyer1@example.com"]
        assert row(orders[2]).status == OutboundEmail.Status.PENDING

    def test_a_row_not_yet_due_waits(self, now):
        order = place(now)

        assert outbox.outbox_send_due(now=now - timedelta(seconds=1), limit=10) == outbox.OutboxRun()
        assert mail.outbox == []
        assert row(order).status == OutboundEmail.Status.PENDING

    def test_a_broken_mail_server_backs_off_and_records_the_error_without_raising(self, now):
        order = place(now)

        with override_settings(**BROKEN_MAIL_SERVER):
            result = outbox.outbox_send_due(now=now, limit=10)

        assert result == outbox.OutboxRun(sent=0, failed=1, gave_up=0)
        failed = row(order)
        assert failed.status == OutboundEmail.Status.PENDING
        assert failed.attempts == 1
        assert failed.claimed_at is None
        assert "ConnectionRefusedError" in failed.last_error
        assert failed.next_attempt_at == now + outbox.retry_delay(1) == now + timedelta(seconds=30)
        # Not due before its retry time, even with the mail server back.
        assert outbox.outbox_send_due(now=now + timedelta(seconds=29), limit=10) == outbox.OutboxRun()

        with override_settings(**BROKEN_MAIL_SERVER):
            outbox.outbox_send_due(now=now + timedelta(seconds=30), limit=10)
        assert row(order).next_attempt_at == now + timedelta(seconds=30) + timedelta(seconds=60)

        assert outbox.outbox_send_due(now=now + timedelta(seconds=90), limit=10).sent == 1
        delivered = row(order)
        assert (delivered.status, delivered.attempts) == (OutboundEmail.Status.SENT, 3)
        assert len(mail.outbox) == 1

    def test_the_backoff_doubles_up_to_its_cap(self):
        delays = [outbox.retry_delay(attempts) for attempts in range(1, 12)]
        assert delays[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
        assert max(delays) == delays[-1] == outbox.RETRY_DELAY_CAP == timedelta(hours=1)

    def test_gives_up_after_the_last_attempt_and_staff_can_retry(self, now, settings, admin_client):
        settings.EMAIL_OUTBOX_MAX_ATTEMPTS = 3
        order = place(now)
        clock = now
        with override_settings(**BROKEN_MAIL_SERVER):
            for _ in range(3):
                result = outbox.outbox_send_due(now=clock, limit=10)
                clock += timedelta(hours=2)

        assert result == outbox.OutboxRun(sent=0, failed=0, gave_up=1)
        failed = row(order)
        assert (failed.status, failed.attempts) == (OutboundEmail.Status.FAILED, 3)
        assert "ConnectionRefusedError" in failed.last_error
        assert outbox.outbox_send_due(now=clock + timedelta(days=7), limit=10) == outbox.OutboxRun()
        assert mail.outbox == []

        response = admin_client.post(
            reverse("admin:orders_outboundemail_changelist"),
            {"action": "retry_now", "_selected_action": [failed.pk]},
            follow=True,
        )

        assert response.status_code == 200
        assert [str(m) for m in response.context["messages"]] == ["1 email(s) queued to be sent again now."]
        retried = row(order)
        assert (retried.status, retried.attempts) == (OutboundEmail.Status.PENDING, 0)
        assert outbox.outbox_send_due(now=retried.next_attempt_at, limit=10).sent == 1
        assert len(mail.outbox) == 1

    def test_a_worker_that_dies_while_sending_leaves_it_to_be_sent_again_once_its_claim_expires(self, now):
        order = place(now)

        with override_settings(EMAIL_BACKEND=f"{__name__}.DyingBackend"), pytest.raises(KeyboardInterrupt):
            outbox.outbox_send_due(now=now, limit=10)

        claimed = row(order)
        assert (claimed.status, claimed.attempts, claimed.claimed_at) == (OutboundEmail.Status.PENDING, 1, now)
        # Another worker leaves it alone while the claim lasts (the first may still be talking to the server)…
        assert outbox.outbox_send_due(now=now + outbox.claim_lease() - timedelta(seconds=1), limit=10) == (
            outbox.OutboxRun()
        )
        # …and sends it once the claim has expired: at least once, never lost.
        assert outbox.outbox_send_due(now=now + outbox.claim_lease(), limit=10).sent == 1
        assert row(order).attempts == 2
        assert len(mail.outbox) == 1

    @override_settings(EMAIL_OUTBOX_CLAIM_SECONDS=45)
    def test_the_claim_lasts_as_long_as_the_setting_says(self, now):
        order = place(now)

        with override_settings(EMAIL_BACKEND=f"{__name__}.DyingBackend"), pytest.raises(KeyboardInterrupt):
            outbox.outbox_send_due(now=now, limit=10)

        assert row(order).next_attempt_at == now + timedelta(seconds=45)
        assert outbox.outbox_send_due(now=now + timedelta(seconds=44), limit=10) == outbox.OutboxRun()
        assert outbox.outbox_send_due(now=now + timedelta(seconds=45), limit=10).sent == 1

    def test_an_order_deleted_meanwhile_takes_its_queued_email_along(self, now):
        order = place(now)
        Payment.objects.filter(order=order).delete()  # money records protect their order
        Order.objects.filter(pk=order.pk).delete()

        assert outbox.outbox_send_due(now=now, limit=10) == outbox.OutboxRun()


def stop_after_heartbeats(heartbeat, beats: int) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM to this process once the worker has touched its heartbeat file `beats` times (its handler is
    installed before the first one)."""
    seen: set[float] = set()
    deadline = time.monotonic() + 20
    while len(seen) < beats and time.monotonic() < deadline:
        if heartbeat.exists():
            seen.add(heartbeat.stat().st_mtime_ns)
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)


class DyingBackend(BaseEmailBackend):
    """The process being stopped in the middle of talking to the mail server."""

    def send_messages(self, email_messages):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt


@pytest.mark.django_db
class TestAdmin:
    def test_resend_queues_a_new_confirmation_that_the_worker_sends(self, now, admin_client):
        paid = place(now)
        cancelled = place(now, email="grace@example.com")
        services.order_cancel(order_id=cancelled.pk, now=now)
        outbox.outbox_send_due(now=now + timedelta(minutes=1), limit=10)
        mail.outbox.clear()

        response = admin_client.post(
            reverse("admin:orders_order_changelist"),
            {"action": "resend_confirmation", "_selected_action": [paid.pk, cancelled.pk]},
            follow=True,
        )

        shown = [str(m) for m in response.context["messages"]]
        assert f"Queued the confirmation again for: {paid.code}." in shown
        assert f"Not sent, not paid: {cancelled.code} (cancelled)." in shown
        assert OutboundEmail.objects.filter(order=paid, status=OutboundEmail.Status.PENDING).count() == 1
        outbox.outbox_send_due(now=timezone.now(), limit=10)
        assert [m.to for m in mail.outbox] == [["ada@example.com"]]

    def test_the_outbox_list_shows_status_attempts_and_errors_read_only(self, now, admin_client):
        order = place(now)
        with override_settings(**BROKEN_MAIL_SERVER):
            outbox.outbox_send_due(now=now, limit=10)

        page = admin_client.get(reverse("admin:orders_outboundemail_changelist"))
        detail = admin_client.get(reverse("admin:orders_outboundemail_change", args=[row(order).pk]))

        body = page.content.decode()
        assert page.status_code == 200
        assert order.code in body
        assert "ConnectionRefusedError" in body
        assert "Order confirmation" in body
        assert detail.status_code == 200
        assert 'name="_save"' not in detail.content.decode()  # nothing to edit
        assert admin_client.get(reverse("admin:orders_outboundemail_add")).status_code == 403


@pytest.mark.django_db
class TestCommand:
    def test_once_drains_every_due_email_and_exits(self, now):
        orders = [place(now, email=f"buyer{i}@example.com") for i in range(5)]
        out = io.StringIO()

        call_command("send_emails", "--once", "--batch-size", "2", stdout=out)

        assert sorted(m.to[0] for m in mail.outbox) == [f"buyer{i}@example.com" for i in range(5)]
        assert {row(o).status for o in orders} == {OutboundEmail.Status.SENT}
        assert "5 sent, 0 failed" in out.getvalue()

    def test_once_stops_at_emails_that_keep_failing(self, now):
        place(now)
        out = io.StringIO()

        with override_settings(**BROKEN_MAIL_SERVER):
            call_command("send_emails", "--once", stdout=out)

        assert "0 sent, 1 failed" in out.getvalue()  # tried once, then waits for its retry time

    def test_once_fails_loudly_when_the_database_does(self):
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE orders_outboundemail")  # rolled back with the test's transaction

        with pytest.raises(CommandError, match="The database failed"):
            call_command("send_emails", "--once", stdout=io.StringIO())

    def test_the_loop_outlives_a_failing_database(self, tmp_path, caplog):
        heartbeat = tmp_path / "alive"
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE orders_outboundemail")  # rolled back with the test's transaction
        stopper = threading.Thread(target=stop_after_heartbeats, args=(heartbeat, 3))
        stopper.start()

        with caplog.at_level(logging.WARNING, logger="orders.outbox"):
            call_command(
                "send_emails", "--poll-seconds", "0.05", "--heartbeat-file", str(heartbeat), stdout=io.StringIO()
            )
        stopper.join()

        assert caplog.text.count("outbox: the database failed") >= 3  # kept trying, still alive for the probe

    def test_sigterm_stops_the_loop_gracefully(self, now, tmp_path):
        heartbeat = tmp_path / "alive"
        place(now)

        def stop_when_running() -> None:
            deadline = time.monotonic() + 20
            while not heartbeat.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)  # the handler is installed before the first heartbeat

        previous = signal.getsignal(signal.SIGTERM)
        stopper = threading.Thread(target=stop_when_running)
        stopper.start()
        out = io.StringIO()
        started = time.monotonic()
        call_command("send_emails", "--poll-seconds", "30", "--heartbeat-file", str(heartbeat), stdout=out)
        stopper.join()

        assert time.monotonic() - started < 10  # woke from its 30 s sleep
        assert len(mail.outbox) == 1
        assert "stopping" in out.getvalue()
        assert signal.getsignal(signal.SIGTERM) is previous  # the command's handler is gone with it


def test_the_worker_yields_the_cpu_to_web_requests(tmp_path):
    """A real worker process lowers its own priority by EMAIL_WORKER_NICE (web requests first on a shared box)."""
    heartbeat = tmp_path / "alive"
    # An empty database: the loop only has to start (it outlives a failing database and still beats).
    env = {
        **os.environ,
        "EMAIL_WORKER_NICE": "7",
        "DJANGO_SETTINGS_MODULE": "aegistickets.settings.base",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # the suite's own
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
    }
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    worker = subprocess.Popen(  # noqa: S603 - our own manage.py, fixed argv
        [sys.executable, "manage.py", "send_emails", "--heartbeat-file", str(heartbeat)],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # as systemd and the perf harness start it
    )
    try:
        deadline = time.monotonic() + 60
        while not heartbeat.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert heartbeat.exists(), "the worker never ran its first batch"
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == min(mine + 7, 19)
        autogroup = Path(f"/proc/{worker.pid}/autogroup")
        if autogroup.exists():  # it leads its own session: the session's group yields as well
            assert autogroup.read_text().split()[-1] == "7"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def unlocked_due(*, now, limit):  # type: ignore[no-untyped-def]
    """The claim's read without FOR UPDATE SKIP LOCKED: what the control case runs."""
    return list(
        OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "kind", "order_id", "attempts", "claimed_at")[:limit]
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("locked", [True, False], ids=["with-lock", "control-without-lock"])
def test_workers_claiming_at_once_never_send_an_email_twice(monkeypatch, locked):
    """Eight workers drain forty emails at once. With the row locks each email goes out once; without them
    (the control) workers read the same due rows and send them twice, and the same checks see it."""
    if not locked:
        monkeypatch.setattr(outbox, "_lock_due", unlocked_due)
    ticket_type = TicketTypeFactory(event=EventFactory(), capacity=100)
    now = timezone.now()
    orders = [place(now, email=f"buyer{i}@example.com", ticket_type=ticket_type) for i in range(40)]
    mail.outbox.clear()

    def work(_: int) -> int:
        sent = 0
        while True:
            run = outbox.outbox_send_due(now=now, limit=3)
            if not run.sent:
                return sent
            sent += run.sent

    results = run_at_once(8, work)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(1 for r in results if r) > 1, "only one worker got rows: the test did not race"
    sent_to = Counter(m.to[0] for m in mail.outbox)
    assert set(sent_to) == {o.email for o in orders}  # nothing lost either way
    if locked:
        assert sum(results) == 40  # type: ignore[arg-type]
        assert set(sent_to.values()) == {1}
        assert set(OutboundEmail.objects.values_list("status", "attempts")) == {(OutboundEmail.Status.SENT, 1)}
    else:
        assert max(sent_to.values()) > 1, "the control sent nothing twice: this test could not catch a missing lock"
