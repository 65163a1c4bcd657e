"""Business metrics match committed data: counted after commit, never for a rollback; gauges read the truth."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY

from aegistickets.errors import (
    HoldExpiredError,
    InsufficientInventoryError,
    NotOnSaleError,
    PaymentDeclinedError,
    SoldOutError,
    ValidationFailedError,
)
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, outbox, services
from orders.metrics import EmailOutboxCollector, ShopStateCollector
from orders.models import Order
from orders.payments import TEST_DECLINE_EMAIL

# Real commits, so that on_commit callbacks run exactly as they do in production.
pytestmark = pytest.mark.django_db(transaction=True)

HOLD = timedelta(minutes=10)

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def outcome(step, name):
    return sample("aegistickets_checkout_outcomes_total", step=step, outcome=name)


class Snapshot:
    """The business counters now; `delta()` says how they moved since."""

    def __init__(self, event_slug):
        self.slug = event_slug
        self.before = self.read()

    def read(self):
        return {
            "sold": sample("aegistickets_tickets_sold_total", event=self.slug),
            "orders": sample("aegistickets_orders_placed_total"),
            "held": outcome("basket", "held"),
            "paid": outcome("checkout", "paid"),
        }

    def delta(self):
        return {key: value - self.before[key] for key, value in self.read().items()}


def add(ticket_type, quantity, now, token=None):
    return services.basket_add(token=token, ticket_type_id=ticket_type.pk, quantity=quantity, now=now)


def place(basket, now, **kwargs):
    defaults = {"name": "Ada Lovelace", "email": "ada@example.com", "payment_method": "test"}
    return checkout.order_place(token=basket.token, now=now, **{**defaults, **kwargs})


def test_a_committed_checkout_counts_its_tickets_by_event_and_one_order(ticket_type, now):
    other = TicketTypeFactory(event=ticket_type.event, capacity=10)
    snapshot = Snapshot(ticket_type.event.slug)

    basket = add(ticket_type, 2, now)
    add(other, 3, now, token=basket.token)
    place(basket, now)

    assert snapshot.delta() == {"sold": 5, "orders": 1, "held": 2, "paid": 1}
    assert Order.objects.get().tickets.count() == 5


class CallerRolledBackError(Exception):
    pass


def in_rolled_back_transaction(call):
    """Runs `call` inside a caller's transaction that then rolls back."""
    with transaction.atomic():
        call()
        raise CallerRolledBackError


def test_a_checkout_rolled_back_after_the_service_returned_counts_nothing(ticket_type, now):
    basket = add(ticket_type, 2, now)
    snapshot = Snapshot(ticket_type.event.slug)

    # The order is written and its callbacks registered, then the caller's outer transaction rolls back.
    with pytest.raises(CallerRolledBackError):
        in_rolled_back_transaction(lambda: place(basket, now))

    assert not Order.objects.exists()
    assert snapshot.delta() == {"sold": 0, "orders": 0, "held": 0, "paid": 0}


def test_a_basket_add_rolled_back_counts_no_hold(ticket_type, now):
    snapshot = Snapshot(ticket_type.event.slug)
    with pytest.raises(CallerRolledBackError):
        in_rolled_back_transaction(lambda: add(ticket_type, 1, now))
    assert snapshot.delta()["held"] == 0


def test_a_replayed_idempotency_key_is_counted_as_replayed_not_as_a_second_order(ticket_type, now):
    basket = add(ticket_type, 2, now)
    place(basket, now, idempotency_key="k-1", fingerprint="f")
    snapshot = Snapshot(ticket_type.event.slug)
    replayed = outcome("checkout", "replayed")

    assert not place(basket, now, idempotency_key="k-1", fingerprint="f").created

    assert snapshot.delta() == {"sold": 0, "orders": 0, "held": 0, "paid": 0}
    assert outcome("checkout", "replayed") == replayed + 1


def test_refusals_are_counted_by_their_code_and_sell_nothing(ticket_type, now):
    snapshot = Snapshot(ticket_type.event.slug)
    before = {
        ("basket", code): outcome("basket", code)
        for code in ("validation_error", "insufficient_inventory", "sold_out", "not_on_sale")
    }
    before[("checkout", "payment_declined")] = outcome("checkout", "payment_declined")
    before[("checkout", "hold_expired")] = outcome("checkout", "hold_expired")

    with pytest.raises(ValidationFailedError):
        add(ticket_type, 0, now)
    mine = add(ticket_type, 4, now)
    with pytest.raises(PaymentDeclinedError):
        place(mine, now, email=TEST_DECLINE_EMAIL)
    later = now + HOLD + timedelta(seconds=1)
    add(ticket_type, 8, later)  # another shopper takes the seats of the expired hold
    with pytest.raises(HoldExpiredError):
        place(mine, later)
    with pytest.raises(InsufficientInventoryError):
        add(ticket_type, 3, later)
    add(ticket_type, 2, later)  # the last 2 seats
    with pytest.raises(SoldOutError):
        add(ticket_type, 1, later)
    not_yet = TicketTypeFactory(event=ticket_type.event, sale_starts_at=now + timedelta(days=1))
    with pytest.raises(NotOnSaleError):
        add(not_yet, 1, now)

    moved = {key: outcome(*key) - value for key, value in before.items()}
    assert moved == {
        ("basket", "validation_error"): 1,
        ("basket", "insufficient_inventory"): 1,
        ("basket", "sold_out"): 1,
        ("basket", "not_on_sale"): 1,
        ("checkout", "payment_declined"): 1,
        ("checkout", "hold_expired"): 1,
    }
    assert snapshot.delta() == {"sold": 0, "orders": 0, "held": 3, "paid": 0}


def test_every_known_outcome_is_exported_before_it_first_happens():
    assert (
        REGISTRY.get_sample_value(
            "aegistickets_checkout_outcomes_total", {"step": "checkout", "outcome": "idempotency_conflict"}
        )
        is not None
    )


# --- gauges read at scrape time ------------------------------------------------------------------------


def gauges(collector):
    return {
        (family.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }


def test_shop_state_gauges_are_the_databases_truth():
    now = timezone.now()
    hall = TicketTypeFactory(event=EventFactory(slug="hall"), name="Hall", capacity=10)
    basket = add(hall, 3, now)
    place(basket, now)  # 3 sold
    add(hall, 2, now)  # 2 held
    expired = add(hall, 4, now - HOLD - timedelta(minutes=1))  # expired: counts for nothing
    assert expired.holds.count() == 1
    TicketTypeFactory(event=EventFactory(slug="draft", is_published=False))
    past = EventFactory(slug="past", starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    TicketTypeFactory(event=past)

    with CaptureQueriesContext(connection) as queries:
        values = gauges(ShopStateCollector())
    # Two aggregate queries whatever the number of ticket types and holds (plus, on PostgreSQL, the
    # transaction and its statement timeout).
    assert [q["sql"].split()[0] for q in queries.captured_queries].count("SELECT") == 2

    labels = (("event", "hall"), ("ticket_type", "Hall"), ("ticket_type_id", str(hall.pk)))
    assert values[("aegistickets_seats_remaining", labels)] == 10 - 3 - 2
    assert values[("aegistickets_seats_held", labels)] == 2
    assert values[("aegistickets_holds_active", ())] == 1
    assert values[("aegistickets_holds_active_seats", ())] == 2
    assert values[("aegistickets_metrics_db_read_ok", (("collector", "shop_state"),))] == 1
    events = {dict(key[1]).get("event") for key in values if key[0] == "aegistickets_seats_remaining"}
    assert events == {"hall"}  # unpublished and finished events are not reported


def test_shop_state_is_read_once_per_cache_period(ticket_type, settings, django_assert_num_queries):
    settings.METRICS_DB_CACHE_SECONDS = 60
    collector = ShopStateCollector()
    first = gauges(collector)
    add(ticket_type, 2, timezone.now())
    with django_assert_num_queries(0):
        assert gauges(collector) == first  # cached: a scrape storm costs the database nothing
    collector.clear()
    assert gauges(collector) != first


def test_email_outbox_gauges_are_the_databases_truth(ticket_type, settings):
    start = timezone.now().replace(microsecond=0)

    def order(at):  # type: ignore[no-untyped-def]
        return place(add(ticket_type, 1, at), at)

    broken = {"EMAIL_BACKEND": SMTP, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": 9, "EMAIL_TIMEOUT": 2}
    settings.EMAIL_OUTBOX_MAX_ATTEMPTS = 1
    order(start)
    with override_settings(**broken):
        assert outbox.outbox_send_due(now=start, limit=10).gave_up == 1  # failed for good
    settings.EMAIL_OUTBOX_MAX_ATTEMPTS = 5
    order(start)
    assert outbox.outbox_send_due(now=start, limit=10).sent == 1  # sent: not counted anywhere
    order(start)
    with override_settings(**broken):
        assert outbox.outbox_send_due(now=start, limit=10).failed == 1  # pending, waiting 30 s for a retry
    order(start)
    order(start + timedelta(seconds=10))  # two due now, the older one queued 20 s before the scrape

    with time_machine.travel(start + timedelta(seconds=20), tick=False), CaptureQueriesContext(connection) as queries:
        values = gauges(EmailOutboxCollector())

    assert [q["sql"].split()[0] for q in queries.captured_queries].count("SELECT") == 1
    assert values[("aegistickets_emails_due", ())] == 2
    assert values[("aegistickets_emails_pending", ())] == 3
    assert values[("aegistickets_emails_failed", ())] == 1
    assert values[("aegistickets_emails_oldest_due_age_seconds", ())] == 20
    assert values[("aegistickets_metrics_db_read_ok", (("collector", "email_outbox"),))] == 1


def test_email_outbox_gauges_are_zero_when_nothing_waits():
    values = gauges(EmailOutboxCollector())

    assert values[("aegistickets_emails_due", ())] == 0
    assert values[("aegistickets_emails_oldest_due_age_seconds", ())] == 0
    assert values[("aegistickets_emails_failed", ())] == 0
