"""The email outbox: buyer emails are queued in the transaction of the change they report and sent by a worker
(`manage.py send_emails`), never in the request.

Why: a confirmation carries a tickets PDF with QR codes (~17 ms of CPU per ticket), which a checkout in an
on-sale rush should not pay for; and an email sent after the commit by the request's process is lost if that
process dies between the commit and the send. A queued row commits or rolls back with the order itself.

The protocol (delivery is at least once; two workers never send the same row at the same time):
1. `outbox_enqueue` INSERTs a pending row inside the caller's transaction: one statement, no lock.
2. `outbox_send_due` claims up to `limit` due rows in one short transaction. On PostgreSQL the rows are read with
   SELECT … FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint rows and never wait for each other; on
   SQLite the transaction begins IMMEDIATE, which serializes claims. The claim counts the attempt, stamps
   `claimed_at` and moves `next_attempt_at` to the end of the claim (`claim_lease()`), then commits: the row is no
   longer due for anyone else, and no lock or transaction is held while sending.
3. Each claimed email is built and handed to the mail backend outside any transaction; then one UPDATE records
   the result: sent; skipped when there was nothing to send any more (an address with no orders asked for its
   orders, an offer ended before its email went out); or the error and the next attempt (exponential backoff,
   capped); or `failed` once EMAIL_OUTBOX_MAX_ATTEMPTS are used up (visible to staff, who can "retry now" in the admin).
A worker that dies after the mail server accepted a message but before step 3 leaves the row claimed; when the
claim expires, another worker sends it again. So a crash may send an email twice, never lose it. The claim must
outlast one batch (`limit` × EMAIL_TIMEOUT at worst): the worker's batches are small and the lease is generous.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import get_language

from orders.emails import outbound_message
from orders.models import OutboundEmail

logger = logging.getLogger(__name__)


def claim_lease() -> timedelta:
    """How long a claimed row is left to the worker that claimed it before another may send it again (setting
    EMAIL_OUTBOX_CLAIM_SECONDS). Also how late an email can be when its worker died, or lost the database,
    before recording the result."""
    return timedelta(seconds=settings.EMAIL_OUTBOX_CLAIM_SECONDS)


RETRY_DELAY_FIRST = timedelta(seconds=30)
RETRY_DELAY_CAP = timedelta(hours=1)
# The cancellation notice says where the refund stands; the refund is asked for right after the cancel commits,
# so the notice waits a little to be able to say "refunded" rather than "being processed".
CANCELLATION_NOTICE_DELAY = timedelta(seconds=10)
DIED_WHILE_SENDING = "No result recorded for the last attempt: the worker stopped while sending it."


@dataclass(frozen=True)
class OutboxRun:
    """What one `outbox_send_due` call did: sent, failed (retried later), gave up (attempts used up), skipped
    (nothing to send any more)."""

    sent: int = 0
    failed: int = 0
    gave_up: int = 0
    skipped: int = 0

    @property
    def claimed(self) -> int:
        return self.sent + self.failed + self.gave_up + self.skipped


@dataclass(frozen=True)
class _Claim:
    pk: int
    kind: str
    order_id: int | None
    attempt: int  # this attempt's number, from 1


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: 30 s, doubling each time, at most an hour."""
    return min(RETRY_DELAY_FIRST * (1 << min(max(attempts - 1, 0), 20)), RETRY_DELAY_CAP)


def outbox_enqueue(
    *,
    kind: str,
    now: datetime,
    order_id: int | None = None,
    recipient: str = "",
    waiting_entry_id: int | None = None,
    language: str | None = None,
    delay: timedelta = timedelta(0),
) -> OutboundEmail:
    """Queues one email: about an order (to its buyer), or to `recipient`. Call it inside the transaction that
    makes the change it reports, so the email exists exactly when the change commits; it costs that transaction one
    INSERT. It is written in `language`, by default the one active now (the shopper's, in a request)."""
    return OutboundEmail.objects.create(
        kind=kind,
        order_id=order_id,
        recipient=recipient,
        waiting_entry_id=waiting_entry_id,
        language=(get_language() or "") if language is None else language,
        created_at=now,
        next_attempt_at=now + delay,
    )


def _claim_due(*, now: datetime, limit: int) -> list[_Claim]:
    """Takes up to `limit` due rows for this worker (step 2 of the protocol); one short transaction."""
    max_attempts: int = settings.EMAIL_OUTBOX_MAX_ATTEMPTS
    # A plain read first: an idle worker polling every few seconds opens no write transaction (on SQLite that
    # would take the database's one write lock, which checkouts wait for).
    if not OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now).exists():
        return []
    with transaction.atomic():
        due = _lock_due(now=now, limit=limit)
        if not due:
            return []
        # Due with no attempt left: claimed for the last attempt by a worker that stopped while sending it.
        exhausted = [pk for pk, _, _, attempts, _ in due if attempts >= max_attempts]
        if exhausted:
            OutboundEmail.objects.filter(pk__in=exhausted, claimed_at__isnull=False).update(
                last_error=DIED_WHILE_SENDING
            )
            OutboundEmail.objects.filter(pk__in=exhausted).update(status=OutboundEmail.Status.FAILED, claimed_at=None)
            logger.error("outbox: gave up on emails after %s attempts", max_attempts, extra={"email_ids": exhausted})
        claims = [
            _Claim(pk=pk, kind=kind, order_id=order_id, attempt=attempts + 1)
            for pk, kind, order_id, attempts, _ in due
            if attempts < max_attempts
        ]
        OutboundEmail.objects.filter(pk__in=[claim.pk for claim in claims]).update(
            claimed_at=now, next_attempt_at=now + claim_lease(), attempts=F("attempts") + 1
        )
    return claims


def _lock_due(*, now: datetime, limit: int) -> list[tuple[int, str, int, int, datetime | None]]:
    """The oldest due rows, locked until the claiming transaction ends. SKIP LOCKED: rows another worker is
    claiming at this moment are left to it, nobody waits; a row whose claim another worker has just committed
    is no longer due when PostgreSQL re-checks it under the lock, so it is skipped too."""
    return list(
        OutboundEmail.objects.select_for_update(skip_locked=True)
        .filter(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "kind", "order_id", "attempts", "claimed_at")[:limit]
    )


def _send(claim: _Claim) -> str | None:
    """Builds and sends one email; returns the error ("" if the backend accepted it), or None when there was nothing
    to send any more (the offer it announced has ended, an address with no orders). Never raises an Exception."""
    try:
        message = outbound_message(claim.pk)
        if message is None:
            return None
        accepted = message.send()
    except Exception as error:  # noqa: BLE001 - any failure (rendering, network, provider) is recorded and retried
        logger.warning(
            "outbox: sending %s failed",
            claim.kind,
            exc_info=True,
            extra={"email_id": claim.pk, "order_id": claim.order_id},
        )
        return f"{type(error).__name__}: {error}"[:500] or type(error).__name__
    if not accepted:
        return "The mail backend accepted no message."
    return ""


def _record(claim: _Claim, *, error: str | None, now: datetime) -> str:
    """Step 3: one UPDATE with the result. A failure is recorded only while the claim is still this worker's."""
    rows = OutboundEmail.objects.filter(pk=claim.pk)
    if error is None:
        rows.filter(status=OutboundEmail.Status.PENDING).update(status=OutboundEmail.Status.SKIPPED, claimed_at=None)
        logger.info("outbox: %s skipped, nothing to send", claim.kind, extra={"email_id": claim.pk})
        return "skipped"
    if not error:
        # Even if the claim expired and another worker took the row meanwhile: it was sent.
        rows.exclude(status=OutboundEmail.Status.SENT).update(
            status=OutboundEmail.Status.SENT, sent_at=now, claimed_at=None
        )
        logger.info("outbox: %s sent", claim.kind, extra={"email_id": claim.pk, "order_id": claim.order_id})
        return "sent"
    mine = rows.filter(status=OutboundEmail.Status.PENDING, claimed_at=now)
    if claim.attempt >= settings.EMAIL_OUTBOX_MAX_ATTEMPTS:
        mine.update(status=OutboundEmail.Status.FAILED, claimed_at=None, last_error=error)
        logger.error(
            "outbox: gave up on %s after %s attempts: %s",
            claim.kind,
            claim.attempt,
            error,
            extra={"email_id": claim.pk, "order_id": claim.order_id},
        )
        return "gave_up"
    mine.update(claimed_at=None, last_error=error, next_attempt_at=now + retry_delay(claim.attempt))
    return "failed"


def outbox_send_due(*, now: datetime, limit: int) -> OutboxRun:
    """Sends up to `limit` queued emails that are due; each at most once at a time across all workers, at least
    once overall. Never raises for a failed send (it is recorded and retried); database errors do propagate."""
    outcomes = {"sent": 0, "failed": 0, "gave_up": 0, "skipped": 0}
    for claim in _claim_due(now=now, limit=limit):
        outcomes[_record(claim, error=_send(claim), now=now)] += 1
    return OutboxRun(**outcomes)


def _being_sent(now: datetime) -> Q:
    """Rows a worker has claimed and may be sending right now: their claim has not expired."""
    return Q(status=OutboundEmail.Status.PENDING, claimed_at__isnull=False, next_attempt_at__gt=now)


def outbox_retry_now(*, email_ids: Iterable[int], now: datetime) -> int:
    """Makes failed or waiting emails due now (a failed one gets a fresh series of attempts). Leaves sent emails
    alone, and those a worker is sending right now (their claim has not expired)."""
    ids = list(email_ids)
    with transaction.atomic():
        # Waiting ones first: the failed ones become pending below and must not count twice.
        waiting = (
            OutboundEmail.objects.filter(pk__in=ids, status=OutboundEmail.Status.PENDING)
            .exclude(_being_sent(now))
            .update(next_attempt_at=now, claimed_at=None)
        )
        failed = OutboundEmail.objects.filter(pk__in=ids, status=OutboundEmail.Status.FAILED).update(
            status=OutboundEmail.Status.PENDING, attempts=0, next_attempt_at=now, claimed_at=None
        )
    return failed + waiting


def outbox_withdraw_confirmation(*, order_id: int, now: datetime) -> int:
    """Drops an order's confirmation that has not gone out, when the order is cancelled: its tickets no longer
    admit anyone, and the buyer gets the cancellation notice instead. Call it in the cancelling transaction.
    A confirmation a worker is sending right now (its claim has not expired) is left to finish: it goes out,
    and the notice follows it. A failed one goes too, so that "retry now" cannot send it later."""
    deleted, _ = (
        OutboundEmail.objects.filter(
            order_id=order_id,
            kind=OutboundEmail.Kind.ORDER_CONFIRMATION,
            status__in=[OutboundEmail.Status.PENDING, OutboundEmail.Status.FAILED],
        )
        .exclude(_being_sent(now))
        .delete()
    )
    return deleted


def outbox_discard(*, order_ids: Iterable[int]) -> int:
    """Drops the unsent emails of these orders (demo data: its buyers are not real)."""
    deleted, _ = OutboundEmail.objects.filter(
        order_id__in=list(order_ids), status=OutboundEmail.Status.PENDING
    ).delete()
    return deleted
