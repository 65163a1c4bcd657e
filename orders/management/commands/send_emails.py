"""The outbox worker: sends the queued buyer emails (orders/outbox.py), next to the web processes. Before each
batch it sweeps the waiting list (orders/waiting_list.py), so that freed seats are offered, and their emails
queued, within a poll of coming free.

    python manage.py send_emails            # runs until SIGTERM/SIGINT, looking for due emails every few seconds
    python manage.py send_emails --once     # sends everything due now, then exits (cron, tests, a backlog)

Several workers may run at once (one per pod or host): they claim disjoint emails. SIGTERM (or Ctrl-C) lets the
batch in hand (`--batch-size`, small) finish and be recorded, then exits 0; a SIGKILL before that means those
emails are sent again once their claim expires (at least once, never lost). `--heartbeat-file` is touched after
every batch and every idle poll, for a liveness probe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections, connection, connections
from django.utils import timezone

from orders.outbox import OutboxRun, outbox_send_due
from orders.waiting_list import waiting_list_sweep

logger = logging.getLogger("orders.outbox")


def yield_cpu(nice: int) -> None:
    """Lowers this process's CPU priority so that web requests on the same box come first.

    Linux with autogroup scheduling (the default on desktops and many servers) first shares the CPU between
    sessions, and nice only ranks processes inside one session. A worker that leads its own session (started
    with setsid, as by systemd or the perf harness) would keep an equal share with the whole web server's
    session, so it lowers its session group's priority too (only its own processes are in it)."""
    os.nice(nice)
    if os.getsid(0) == os.getpid():
        with contextlib.suppress(OSError):  # no autogroup scheduling here: nice alone does it
            Path("/proc/self/autogroup").write_text(f"{nice}\n")


class Command(BaseCommand):
    help = "Sends the queued buyer emails (order confirmations, cancellation notices); --once drains and exits."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Send every email due now, then exit.")
        parser.add_argument(
            "--batch-size", type=int, default=10, help="Emails claimed at a time (default 10; keep it small)."
        )
        parser.add_argument(
            "--poll-seconds",
            type=float,
            default=None,
            help="Pause between looks when nothing is due (default: EMAIL_OUTBOX_POLL_SECONDS).",
        )
        parser.add_argument("--heartbeat-file", default="", help="A file touched after every batch (liveness).")

    def handle(self, *args: Any, **options: Any) -> None:
        batch: int = options["batch_size"]
        poll: float = options["poll_seconds"] or settings.EMAIL_OUTBOX_POLL_SECONDS
        if batch < 1 or poll <= 0:
            raise CommandError("--batch-size must be at least 1 and --poll-seconds positive.")
        heartbeat = Path(options["heartbeat_file"]) if options["heartbeat_file"] else None
        if not options["once"] and settings.EMAIL_WORKER_NICE:
            yield_cpu(settings.EMAIL_WORKER_NICE)
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stdout.write(f"{signal.Signals(signum).name}: stopping after the current batch.")
            self.stdout.flush()
            stop.set()

        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            total = self._run(once=options["once"], batch=batch, poll=poll, heartbeat=heartbeat, stop=stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(
            f"Outbox: {total.sent} sent, {total.failed} failed (retried later), {total.gave_up} gave up, "
            f"{total.skipped} skipped (nothing to send)."
        )
        self.stdout.flush()

    def _run(self, *, once: bool, batch: int, poll: float, heartbeat: Path | None, stop: threading.Event) -> OutboxRun:
        total = OutboxRun()
        if not once:
            self.stdout.write(f"Sending queued emails every {poll:g} s (batches of {batch}); SIGTERM stops.")
            self.stdout.flush()  # a log line now, not when a buffer fills
        while not stop.is_set():
            if not connection.in_atomic_block:  # (a test's transaction, never in production)
                # As after each web request: a connection that failed or outlived CONN_MAX_AGE is replaced.
                close_old_connections()
            try:
                waiting_list_sweep(now=timezone.now())
                run = outbox_send_due(now=timezone.now(), limit=batch)
            except DatabaseError as error:
                if once:
                    raise CommandError(f"The database failed: {error}") from error
                # One line, no traceback: while the database is down this repeats every poll.
                logger.warning("outbox: the database failed (%s); trying again in %g s", error, poll)
                if not connection.in_atomic_block:
                    connections.close_all()  # reconnect next time
                run = OutboxRun()
            if heartbeat is not None:
                heartbeat.touch()
            if run.claimed:
                logger.info(
                    "outbox: %s sent, %s failed, %s gave up, %s skipped", run.sent, run.failed, run.gave_up, run.skipped
                )
                total = OutboxRun(
                    sent=total.sent + run.sent,
                    failed=total.failed + run.failed,
                    gave_up=total.gave_up + run.gave_up,
                    skipped=total.skipped + run.skipped,
                )
            if run.claimed == batch:
                continue  # a full batch: more may be due right now
            if once:
                break
            stop.wait(poll)
        return total
