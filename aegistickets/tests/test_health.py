"""Liveness and readiness answer what probes need, without touching the database for liveness."""

import pytest
from django.db import OperationalError

from aegistickets import health


class FakeConnections(dict):
    """Stands in for django.db.connections with one broken or hanging database."""

    def close_all(self):
        pass


def test_healthz_is_ok_without_a_database(client):
    # No django_db mark: any query would fail this test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db(transaction=True)
def test_readyz_is_ok_when_the_database_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_readyz_is_503_with_the_reason_when_the_database_fails(client, monkeypatch):
    class BrokenCursor:
        def __enter__(self):
            raise OperationalError("connection refused")

        def __exit__(self, *args):
            return False

    class BrokenConnection:
        def cursor(self):
            return BrokenCursor()

    monkeypatch.setattr(health, "connections", FakeConnections(default=BrokenConnection()))
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "connection refused" in body["checks"]["database"]


def test_readyz_gives_up_after_its_timeout(client, monkeypatch):
    import threading

    release = threading.Event()

    class HangingCursor:
        def __enter__(self):
            release.wait(10)
            raise OperationalError("too late")

        def __exit__(self, *args):
            return False

    class HangingConnection:
        def cursor(self):
            return HangingCursor()

    monkeypatch.setattr(health, "READINESS_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(health, "connections", FakeConnections(default=HangingConnection()))
    try:
        response = client.get("/readyz")
    finally:
        release.set()
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("timeout")


def test_health_endpoints_refuse_writes(client):
    assert client.post("/healthz").status_code == 405
