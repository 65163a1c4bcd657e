"""Business metrics of the shop: what was sold, how checkouts ended, what is left.

Counters that must match committed data (tickets sold, orders placed, successful outcomes) move only in
`transaction.on_commit` callbacks registered by the services: a rolled-back checkout counts nothing.
A refused step (sold out, payment declined, …) committed nothing; it is counted when it leaves the service.
Gauges (seats remaining, active holds; the email outbox) are read from the database at scrape time
(`ShopStateCollector`, `EmailOutboxCollector`, `PaymentsCollector`, `WaitingListCollector`).
"""

from __future__ import annotations

import functools
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Gauge, pushadd_to_gateway
from prometheus_client.core import GaugeMetricFamily, Metric

from aegistickets.errors import ApplicationError
from aegistickets.metrics import CachedCollector, bounded_read
from events.models import TicketType
from events.selectors import ticket_types_with_availability
from orders.models import Hold, Order, OrderLine, OutboundEmail, Payment, WaitingListEntry
from orders.waiting_list import waiting_list_summary

P = ParamSpec("P")
R = TypeVar("R")

TICKETS_SOLD = Counter("aegistickets_tickets_sold", "Tickets in committed orders, by event (slug).", ["event"])
ORDERS_PLACED = Counter("aegistickets_orders_placed", "Orders committed.")
CHECKOUT_OUTCOMES = Counter(
    "aegistickets_checkout_outcomes",
    "How each basket/checkout step ended: held or paid (committed), replayed, or the refusal's error code.",
    ["step", "outcome"],
)

PAYMENT_OUTCOMES = Counter(
    "aegistickets_payment_outcomes",
    "What became of payments, by provider: declined, captured, voided, pending orders that expired or failed, and "
    "lost (the provider's answer never recorded, too late to ask again).",
    ["provider", "outcome"],
)
WEBHOOKS = Counter(
    "aegistickets_payment_webhooks",
    "Payment webhooks received, by provider and result: handled, duplicate, rejected (bad signature or payload).",
    ["provider", "result"],
)

# Exported at 0 from the start, so that rate() sees the first occurrence of each outcome.
KNOWN_OUTCOMES = {
    "basket": (
        "held",
        "sold_out",
        "insufficient_inventory",
        "not_on_sale",
        "max_per_order_exceeded",
        "not_found",
        "validation_error",
        "error",
    ),
    "checkout": (
        "paid",
        "pending",
        "replayed",
        "payment_declined",
        "payment_unavailable",
        "hold_expired",
        "not_on_sale",
        "price_changed",
        "basket_empty",
        "not_found",
        "idempotency_conflict",
        "validation_error",
        "error",
    ),
}
for _step, _outcomes in KNOWN_OUTCOMES.items():
    for _outcome in _outcomes:
        CHECKOUT_OUTCOMES.labels(_step, _outcome)
for _provider in settings.PAYMENT_METHODS:
    for _outcome in ("declined", "captured", "voided", "expired", "failed", "lost"):
        PAYMENT_OUTCOMES.labels(_provider, _outcome)
    for _result in ("handled", "duplicate", "rejected", "ignored"):
        WEBHOOKS.labels(_provider, _result)


def payment_outcome(*, provider: str, outcome: str) -> None:
    PAYMENT_OUTCOMES.labels(provider, outcome).inc()


def webhook_received(*, provider: str, result: str) -> None:
    WEBHOOKS.labels(provider, result).inc()


def checkout_outcome(step: str, outcome: str) -> None:
    CHECKOUT_OUTCOMES.labels(step, outcome).inc()


def records_outcome(step: str, success: Callable[[Any], str]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Counts how a service call ended: its success after commit, a refusal by its error code at once."""

    def decorate(service: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(service)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = service(*args, **kwargs)
            except ApplicationError as error:
                checkout_outcome(step, error.code)
                raise
            except Exception:
                checkout_outcome(step, "error")
                raise
            # robust: a metrics failure is logged, never turned into an error for a committed checkout
            transaction.on_commit(functools.partial(checkout_outcome, step, success(result)), robust=True)
            return result

        return wrapper

    return decorate


def order_committed(*, lines: Iterable[Hold | OrderLine]) -> None:
    """on_commit callback of an order that became paid: its lines (or the holds they were made from, each with its
    ticket type and event) became tickets."""
    ORDERS_PLACED.inc()
    sold = Tally[str]()
    for line in lines:
        sold[line.ticket_type.event.slug] += line.quantity
    for event, quantity in sold.items():
        TICKETS_SOLD.labels(event).inc(quantity)


class ShopStateCollector(CachedCollector):
    """Seats remaining and held per ticket type of published, not yet ended events; active holds.

    Two aggregate queries per scrape at most (cached), whatever the number of baskets.
    """

    name = "shop_state"

    def read(self) -> list[Metric]:
        now = timezone.now()
        labels = ["event", "ticket_type", "ticket_type_id"]
        remaining = GaugeMetricFamily(
            "aegistickets_seats_remaining",
            "Seats still for sale now: capacity - sold - unexpired holds.",
            labels=labels,
        )
        held = GaugeMetricFamily("aegistickets_seats_held", "Seats in unexpired holds now.", labels=labels)
        with bounded_read():
            ticket_types = ticket_types_with_availability(
                TicketType.objects.filter(event__is_published=True, event__ends_at__gt=now).order_by(), now=now
            ).values_list("pk", "name", "event__slug", "available", "held")  # type: ignore[misc]  # annotated
            for pk, name, event, available, seats_held in ticket_types:
                remaining.add_metric([event, name, str(pk)], available)
                held.add_metric([event, name, str(pk)], seats_held)
            holds = Hold.objects.filter(expires_at__gt=now).aggregate(
                count=Count("pk"), seats=Coalesce(Sum("quantity"), 0)
            )
        active = GaugeMetricFamily("aegistickets_holds_active", "Unexpired holds (basket lines) now.")
        active.add_metric([], holds["count"])
        active_seats = GaugeMetricFamily("aegistickets_holds_active_seats", "Seats in all unexpired holds now.")
        active_seats.add_metric([], holds["seats"])
        return [remaining, held, active, active_seats]


class EmailOutboxCollector(CachedCollector):
    """The buyer emails waiting in the outbox (orders/outbox.py): due now, waiting for a retry, given up on.

    One aggregate query per scrape at most (cached), over unsent rows only (the partial index and the status
    index), however many emails have gone out. A growing `due` count or age means no worker is sending.
    """

    name = "email_outbox"

    def read(self) -> list[Metric]:
        now = timezone.now()
        pending = Q(status=OutboundEmail.Status.PENDING)
        due = pending & Q(next_attempt_at__lte=now)
        with bounded_read():
            counts = OutboundEmail.objects.filter(
                status__in=[OutboundEmail.Status.PENDING, OutboundEmail.Status.FAILED]
            ).aggregate(
                due=Count("pk", filter=due),
                pending=Count("pk", filter=pending),
                failed=Count("pk", filter=Q(status=OutboundEmail.Status.FAILED)),
                oldest_due=Min("created_at", filter=due),
            )
        families: list[Metric] = []
        for name, key, help_text in (
            ("aegistickets_emails_due", "due", "Queued buyer emails due to be sent now (unsent, not waiting)."),
            (
                "aegistickets_emails_pending",
                "pending",
                "Queued buyer emails not sent yet: due, being sent, or waiting to be retried.",
            ),
            (
                "aegistickets_emails_failed",
                "failed",
                "Buyer emails given up on after EMAIL_OUTBOX_MAX_ATTEMPTS; staff can retry them in the admin.",
            ),
        ):
            families.append(GaugeMetricFamily(name, help_text, value=counts[key]))
        oldest = counts["oldest_due"]
        families.append(
            GaugeMetricFamily(
                "aegistickets_emails_oldest_due_age_seconds",
                "Seconds since the oldest email that is due now was queued; 0 when none is due.",
                value=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
            )
        )
        return families


class PaymentsCollector(CachedCollector):
    """Orders waiting for their payment and payments waiting to be settled (orders/checkout.py).

    Two aggregate queries per scrape at most (cached), over pending orders and unsettled payments only (both
    indexed by status). A pending order past its deadline, or an authorization not captured, means that neither a
    webhook nor `reconcile_payments` has settled it: the reconciliation CronJob is not running, or the provider is
    not answering it.
    """

    name = "payments"

    def read(self) -> list[Metric]:
        now = timezone.now()
        with bounded_read():
            pending = Order.objects.filter(status=Order.Status.PENDING).aggregate(
                open=Count("pk", filter=Q(payment_deadline__gt=now)),
                closed=Count("pk", filter=Q(payment_deadline__lte=now)),
                oldest_deadline=Min("payment_deadline"),
            )
            unsettled = Payment.objects.filter(
                status__in=[Payment.Status.STARTED, Payment.Status.AUTHORIZED]
            ).aggregate(oldest=Min("updated_at"))
        orders = GaugeMetricFamily(
            "aegistickets_orders_pending",
            "Orders awaiting payment, by whether their payment window is still open.",
            labels=["window"],
        )
        orders.add_metric(["open"], pending["open"])
        orders.add_metric(["closed"], pending["closed"])
        deadline, oldest = pending["oldest_deadline"], unsettled["oldest"]
        overdue = GaugeMetricFamily(
            "aegistickets_orders_pending_overdue_seconds",
            "Seconds the oldest pending order is past its payment deadline; 0 when none is.",
            value=max((now - deadline).total_seconds(), 0.0) if deadline else 0.0,
        )
        lag = GaugeMetricFamily(
            "aegistickets_payments_unsettled_oldest_seconds",
            "Seconds since the oldest payment started or authorized without being settled (captured, voided) last "
            "changed: the reconciliation lag. Requests in flight make it a few seconds; 0 when none.",
            value=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        )
        return [orders, overdue, lag]


# --- reconciliation runs, pushed ------------------------------------------------------------------------------

# What `payment_settle` (or the reconciler's own "lost") makes of one payment.
RECONCILE_OUTCOMES = ("paid", "not_completed", "failed", "waiting", "expired", "voided", "flagged", "unchanged", "lost")
RECONCILE_JOB = "aegistickets_reconcile_payments"


def reconciliation_pushed(*, settled: Mapping[str, int], errors: int, gateway: str) -> None:
    """Pushes one reconciliation run to a Prometheus Pushgateway: the run is a CronJob's process, gone before any
    scrape, so its counters would never be seen. Raises what the push raises (OSError)."""
    registry = reconciliation_run(settled=settled, errors=errors)
    pushadd_to_gateway(gateway, job=RECONCILE_JOB, registry=registry, timeout=10)


def reconciliation_run(*, settled: Mapping[str, int], errors: int) -> CollectorRegistry:
    """One run's figures: gauges of this run (the Pushgateway keeps the latest push), and the time of the last run
    without errors, left as it was by a failed run (push-add replaces only the metrics pushed), which the
    "reconciliation stale" alert reads."""
    registry = CollectorRegistry()
    runs = Gauge(
        "aegistickets_reconcile_settled",
        "Payments the last reconciliation run settled, by what became of them.",
        ["outcome"],
        registry=registry,
    )
    for outcome in RECONCILE_OUTCOMES:
        runs.labels(outcome).set(settled.get(outcome, 0))
    Gauge(
        "aegistickets_reconcile_errors",
        "Payments the last reconciliation run could not settle (the provider did not answer).",
        registry=registry,
    ).set(errors)
    Gauge(
        "aegistickets_reconcile_last_run_timestamp_seconds",
        "When the last reconciliation run ended.",
        registry=registry,
    ).set_to_current_time()
    if not errors:
        Gauge(
            "aegistickets_reconcile_last_success_timestamp_seconds",
            "When the last reconciliation run that settled everything it asked about ended.",
            registry=registry,
        ).set_to_current_time()
    return registry


class WaitingListCollector(CachedCollector):
    """The waiting lists (orders/waiting_list.py): who waits, for how many seats, and what became of the offers.

    One aggregate query per scrape at most (cached). Offers are counted from the entries, so every process reports
    the same totals: `rate()` over `state="sent"` is offers made, over "used" and "expired" what became of them.
    """

    name = "waiting_list"

    def read(self) -> list[Metric]:
        with bounded_read():
            summary = waiting_list_summary(WaitingListEntry.objects.all())
        length = GaugeMetricFamily(
            "aegistickets_waiting_list_length", "Confirmed waiting-list entries in line (not offered seats yet)."
        )
        length.add_metric([], summary["waiting"])
        wanted = GaugeMetricFamily(
            "aegistickets_waiting_list_seats", "Seats the entries in line want: kept from the public until offered."
        )
        wanted.add_metric([], summary["seats"])
        offers = GaugeMetricFamily(
            "aegistickets_waiting_list_offers",
            "Waiting-list offers by state: sent (every offer made), open (not used or ended yet), used, expired.",
            labels=["state"],
        )
        for state in ("sent", "open", "used", "expired"):
            offers.add_metric([state], summary[state])
        return [length, wanted, offers]
