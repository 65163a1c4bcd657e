"""The database is down, restarting or too slow: a retryable 503, never a 500 and never a hang.

PostgreSQL refusing connections, dropping them (restart, failover) or cutting a statement off at its
`lock_timeout` / `statement_timeout` (settings: DATABASE_*_TIMEOUT_MS) all reach the view as Django's
`OperationalError` (or `InterfaceError` for a connection already gone). The request's transaction never
committed, so nothing was written; the client may retry (with the same Idempotency-Key for a checkout).

- under /api: 503 problem JSON, code `service_unavailable` (the database is unreachable) or `database_busy`
  (a lock or statement timeout), with `Retry-After`;
- pages: the 503 page with the same header.

Django closes a broken connection at the end of the failed request (`close_if_unusable_or_obsolete`), so the
next request reconnects: the app recovers by itself once the database is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from aegistickets.errors import ApplicationError
from aegistickets.views import error_page

logger = logging.getLogger(__name__)

# SQLSTATEs of "the database is up but this statement waited or ran too long": lock_not_available (lock_timeout,
# NOWAIT), query_canceled (statement_timeout), deadlock_detected (the victim may simply retry).
BUSY_SQLSTATES = frozenset({"55P03", "57014", "40P01"})


class ServiceUnavailableError(ApplicationError):
    code = "service_unavailable"
    status = 503
    title = _("Service unavailable")
    default_detail = _("The shop cannot reach its database right now. Nothing was saved; please retry shortly.")
    retry_after = 5

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        # Every 503 tells the client when to come back (the Retry-After header and the problem's retry_after).
        self.extra.setdefault("retry_after", self.retry_after)


class DatabaseBusyError(ServiceUnavailableError):
    code = "database_busy"
    title = _("Busy, please retry")
    default_detail = _("The shop is too busy to finish this request in time. Nothing was saved; please retry.")
    retry_after = 2


def database_error(exc: BaseException) -> ServiceUnavailableError | None:
    """The retryable error for a database failure; None for anything else (a bug stays a 500)."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    # SQLite: another writer kept the database locked past the busy timeout.
    if sqlstate in BUSY_SQLSTATES or "database is locked" in str(exc):
        error: ServiceUnavailableError = DatabaseBusyError()
    else:
        error = ServiceUnavailableError()
    return error


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        error = database_error(exception)
        if error is None:
            return None
        # A warning, not an error: the database's own alerts page someone; this is the expected fallout.
        logger.warning(
            "database unavailable: answered 503 %s",
            error.code,
            extra={"path": request.path, "error": f"{exception.__class__.__name__}: {exception}"[:300]},
        )
        return error_page(request, error, "503.html")
