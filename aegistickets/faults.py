"""A real server error on demand, for proving the error SLI end to end (`make monitoring-check`).

Off unless FAULT_INJECTION_ENABLED=true; then `GET /api/_fault` raises, and Django answers with its
ordinary 500 (problem JSON under /api), exactly as for a bug.
"""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse


class InjectedFaultError(RuntimeError):
    pass


def fault(request: HttpRequest) -> HttpResponse:
    if not settings.FAULT_INJECTION_ENABLED:
        raise Http404
    raise InjectedFaultError("fault injected on purpose (FAULT_INJECTION_ENABLED=true)")
