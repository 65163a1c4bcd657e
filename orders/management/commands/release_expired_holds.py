"""Housekeeping: deletes expired holds and old empty baskets (expired holds already count for nothing)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.seats import release_expired


class Command(BaseCommand):
    help = "Deletes expired holds and empty baskets older than a day. Safe to run at any time, e.g. from cron."

    def handle(self, *args: Any, **options: Any) -> None:
        result = release_expired(now=timezone.now())
        self.stdout.write(f"Deleted {result.holds} expired holds and {result.baskets} empty baskets.")
