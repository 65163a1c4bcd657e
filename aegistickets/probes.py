"""Answers the probes and the scrape before any other middleware: `/healthz`, `/readyz`, `/metrics`.

Why first: a load balancer and the kubelet call a pod by its address (a Host header ALLOWED_HOSTS does not name) over
plain HTTP, and Prometheus scrapes it the same way; none of them may meet the host check, the HTTPS redirect, a
session or CSRF. And probes and scrapes are not shop traffic: they must never enter the request metrics the SLIs are
computed from, which the django-prometheus middlewares after this one record. It also keeps a probe as cheap as a
request can be, so a busy pod still answers its liveness probe.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from aegistickets import health, metrics


class ProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.probes: dict[str, Callable[[HttpRequest], HttpResponse]] = {
            "/healthz": health.healthz,
            "/readyz": health.readyz,
            settings.METRICS_PATH: metrics.metrics_view,
        }

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = self.probes.get(request.path_info)
        if probe is not None:
            return probe(request)
        return self.get_response(request)
