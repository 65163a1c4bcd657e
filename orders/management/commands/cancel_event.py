"""Cancels an event: withdraws it from sale, then cancels and refunds its tickets in every paid order, in batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from events.models import Event
from orders.models import Refund
from orders.services import event_cancel_batch, event_refunds_retry


class Command(BaseCommand):
    help = (
        "Cancels an event: no more sales, every paid order cancelled (tickets void, seats released) and refunded, "
        "the buyers emailed. Works in batches; safe to interrupt and re-run (it continues, never refunds twice). "
        "An order that also holds tickets of other events keeps those: only this event's tickets are cancelled and "
        "refunded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("event", help="the event's id or slug")
        parser.add_argument("--batch-size", type=int, default=100, help="orders per batch (default 100)")
        parser.add_argument("--yes", action="store_true", help="do it (without it: only say what would happen)")

    def handle(self, *args: Any, **options: Any) -> None:
        key = options["event"]
        event = Event.objects.filter(**({"pk": int(key)} if key.isdigit() else {"slug": key})).first()
        if event is None:
            raise CommandError(f"No event {key!r}.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        if not options["yes"]:
            self.stdout.write(f"Would cancel {event.name} (id {event.pk}); run again with --yes to do it.")
            return
        self.stdout.write(f"Cancelling {event.name} (id {event.pk}): withdrawn from sale.")
        done = batch_number = 0
        while True:
            batch = event_cancel_batch(event_id=event.pk, now=timezone.now(), batch_size=options["batch_size"])
            if not batch.cancelled and not batch.skipped:
                break
            batch_number += 1
            done += len(batch.cancelled)
            self.stdout.write(
                f"batch {batch_number}: cancelled {len(batch.cancelled)}, already cancelled {len(batch.skipped)}; "
                f"{done} done, {batch.remaining} paid orders left"
            )
        retried = event_refunds_retry(event_id=event.pk, now=timezone.now())
        open_refunds = [r for r in retried if r.status != Refund.Status.SUCCEEDED]
        if retried:
            self.stdout.write(f"Retried {len(retried)} unfinished refund(s); {len(open_refunds)} still not done.")
        for refund in open_refunds:
            self.stderr.write(f"refund for order {refund.order.code} {refund.status}: {refund.message}")
        self.stdout.write(f"Done: {done} order(s) cancelled in this run.")
        if open_refunds:
            raise CommandError(f"{len(open_refunds)} refund(s) failed; run the command again to retry them.")
