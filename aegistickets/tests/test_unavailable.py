"""A database that is locked, slow or gone answers 503 with Retry-After (retryable), never 500, never a hang.

The PostgreSQL tests hold a real row lock from another connection and let the shop's own `lock_timeout`
(settings: DATABASE_LOCK_TIMEOUT_MS, 3 s) cut the waiting statement off; a terminated backend stands in
for a database restart. `make chaos` (scripts/chaos/) does the same to a whole served app.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from django.db import IntegrityError, InterfaceError, OperationalError, connection, connections, transaction
from rest_framework.test import APIClient

from aegistickets.unavailable import DatabaseBusyError, ServiceUnavailableError, database_error
from events.models import TicketType
from events.tests.factories import TicketTypeFactory
from orders.models import Hold, Order


def _operational_error(message: str, cause: Exception | None = None) -> OperationalError:
    error = OperationalError(message)
    error.__cause__ = cause
    return error


class TestClassification:
    def test_lock_and_statement_timeouts_and_deadlocks_are_busy(self):
        for cause in (
            psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
            psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
            psycopg.errors.DeadlockDetected("deadlock detected"),
        ):
            error = database_error(_operational_error(str(cause), cause))
            assert isinstance(error, DatabaseBusyError), cause
            assert (error.status, error.code, error.extra["retry_after"]) == (503, "database_busy", 2)

    def test_sqlite_busy_is_busy(self):
        assert isinstance(database_error(_operational_error("database is locked")), DatabaseBusyError)

    def test_an_unreachable_database_is_unavailable(self):
        for exc in (
            _operational_error("connection refused", psycopg.OperationalError("connection refused")),
            InterfaceError("connection already closed"),
        ):
            error = database_error(exc)
            assert type(error) is ServiceUnavailableError
            assert (error.status, error.code, error.extra["retry_after"]) == (503, "service_unavailable", 5)

    def test_other_errors_stay_server_errors(self):
        assert database_error(IntegrityError("duplicate key")) is None
        assert database_error(ValueError("a bug")) is None


@pytest.mark.django_db
def test_the_shop_sets_its_timeouts_on_every_postgresql_connection():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL session settings")
    with connection.cursor() as cursor:
        shown = {}
        for name in ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout"):
            cursor.execute(f"SHOW {name}")
            shown[name] = cursor.fetchone()[0]
    assert shown == {"lock_timeout": "3s", "statement_timeout": "15s", "idle_in_transaction_session_timeout": "1min"}


class RowLock:
    """Another session holds the ticket type's row lock (like an organizer's long transaction) until released."""

    def __init__(self, ticket_type_id: int) -> None:
        self.ticket_type_id = ticket_type_id
        self.taken = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        try:
            with transaction.atomic():
                list(TicketType.objects.select_for_update().filter(pk=self.ticket_type_id))
                self.taken.set()
                self.release.wait(30)
        finally:
            connections.close_all()

    def __enter__(self) -> RowLock:
        self.thread.start()
        assert self.taken.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.thread.join(30)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestOnPostgreSQL:
    def test_a_locked_seat_row_makes_basket_add_answer_503_busy_in_time_and_write_nothing(self):
        ticket_type = TicketTypeFactory(capacity=10)
        client = APIClient()
        with RowLock(ticket_type.pk):
            started = time.monotonic()
            response = client.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1}, format="json")
            waited = time.monotonic() - started
        assert response.status_code == 503, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert response["Retry-After"] == "2"
        assert response.json()["code"] == "database_busy"
        assert 2.5 < waited < 8, waited  # the 3 s lock_timeout, not a hang
        assert not Hold.objects.exists()
        # The lock is gone: the same request succeeds.
        again = client.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1}, format="json")
        assert again.status_code == 201, again.content

    def test_a_locked_seat_row_at_checkout_is_retryable_and_the_retry_places_one_order(self):
        ticket_type = TicketTypeFactory(capacity=10)
        client = APIClient()
        basket = client.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 2}, format="json").json()
        body = {"basket": basket["token"], "name": "Ada", "email": "ada@example.com", "payment_method": "test"}
        key = str(uuid.uuid4())
        with RowLock(ticket_type.pk):
            refused = client.post("/api/checkout", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert refused.status_code == 503, refused.content
        assert refused.json()["code"] == "database_busy"
        assert not Order.objects.exists()
        ticket_type.refresh_from_db()
        assert ticket_type.sold == 0
        placed = client.post("/api/checkout", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        replayed = client.post("/api/checkout", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert placed.status_code == 201, placed.content
        assert replayed.status_code == 201, replayed.content
        assert replayed.json()["order"]["code"] == placed.json()["order"]["code"]
        assert Order.objects.count() == 1
        ticket_type.refresh_from_db()
        assert ticket_type.sold == 2

    def test_the_event_page_form_gets_the_503_page_with_retry_after(self, client):
        ticket_type = TicketTypeFactory(capacity=10)
        with RowLock(ticket_type.pk):
            response = client.post(
                f"/events/{ticket_type.event.slug}/basket/", {"ticket_type": ticket_type.pk, "quantity": 1}
            )
        assert response.status_code == 503
        assert response["Retry-After"] == "2"
        assert b"Nothing was saved" in response.content
        assert not Hold.objects.exists()

    def test_a_connection_dropped_by_the_database_is_503_unavailable_not_500(self):
        ticket_type = TicketTypeFactory(capacity=10)
        connection.ensure_connection()
        backend = connection.connection.info.backend_pid
        with psycopg.connect(_dsn(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        response = APIClient().post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1}, format="json")
        assert response.status_code == 503, response.content
        assert response.json()["code"] == "service_unavailable"
        assert response["Retry-After"] == "5"
        connection.close()


def _dsn() -> str:
    settings = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or "127.0.0.1",
        port=str(settings["PORT"] or 5432),
    )
