"""Liveness and readiness for probes and load balancers."""

from __future__ import annotations

import threading

from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

READINESS_TIMEOUT_SECONDS = 2.0


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving; touches no database."""
    return JsonResponse({"status": "ok"})


def _ping_database(outcome: dict[str, str]) -> None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        outcome["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported to the caller
        outcome["database"] = f"unreachable: {exc.__class__.__name__}: {exc}".strip()[:300]
    finally:
        connections.close_all()  # this thread's own connection


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database answers within READINESS_TIMEOUT_SECONDS; 503 with the reason otherwise."""
    outcome: dict[str, str] = {}
    # A thread of its own, so a database that hangs cannot hang the probe past its timeout.
    probe = threading.Thread(target=_ping_database, args=(outcome,), daemon=True)
    probe.start()
    probe.join(READINESS_TIMEOUT_SECONDS)
    database = outcome.get("database", f"timeout: no answer within {READINESS_TIMEOUT_SECONDS:g} s")
    if database != "ok":
        return JsonResponse({"status": "unavailable", "checks": {"database": database}}, status=503)
    return JsonResponse({"status": "ok", "checks": {"database": "ok"}})
