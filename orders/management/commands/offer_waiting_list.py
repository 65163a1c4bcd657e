"""Sweeps the waiting list once: ends expired offers, closes entries whose list closed, and offers free seats to
whoever is first in line. The outbox worker (`send_emails`) does this before every batch; this command is for cron,
tests and staff who want it now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.waiting_list import waiting_list_sweep


class Command(BaseCommand):
    help = "Offers freed seats to the waiting list now (the outbox worker does it continuously)."

    def handle(self, *args: Any, **options: Any) -> None:
        sweep = waiting_list_sweep(now=timezone.now())
        self.stdout.write(
            f"Waiting list: {len(sweep.offered)} offers made, {sweep.expired} expired, {sweep.closed} closed, "
            f"{sweep.lapsed} never confirmed."
        )
