"""Settles the payments no webhook settled, by asking their provider (orders/checkout.py, `payments_reconcile`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orders import metrics
from orders.checkout import Reconciliation, payments_reconcile


class Command(BaseCommand):
    help = (
        "Asks the payment provider about every payment left unsettled for longer than --older-than seconds (a pending "
        "order past its deadline, an authorization not captured, one whose order never committed) and settles it. "
        "Safe to run at any time and from several places at once; the chart runs it every two minutes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than", type=int, default=120, help="seconds (default 120: leaves requests in flight)"
        )
        parser.add_argument("--limit", type=int, default=500, help="payments per run (default 500)")

    def handle(self, *args: Any, **options: Any) -> None:
        run = payments_reconcile(
            now=timezone.now(), older_than=timedelta(seconds=options["older_than"]), limit=options["limit"]
        )
        settled = ", ".join(f"{outcome} {count}" for outcome, count in sorted(run.settled.items())) or "nothing"
        self.stdout.write(f"Settled: {settled}. Provider errors: {run.errors}.")
        self._push(run)
        if run.errors:
            # Non-zero, so the CronJob's failed runs show that the provider did not answer.
            raise CommandError(f"{run.errors} payments could not be settled; the next run asks again.")

    def _push(self, run: Reconciliation) -> None:
        """The run to the Pushgateway, if there is one. A failed push fails nothing: the payments are settled, and
        the alert on stale runs shows that the runs went unseen."""
        gateway: str = settings.METRICS_PUSHGATEWAY_URL
        if not gateway:
            return
        try:
            metrics.reconciliation_pushed(settled=run.settled, errors=run.errors, gateway=gateway)
        except OSError as error:
            self.stderr.write(f"Settled, but could not push the run's metrics to {gateway}: {error}")
