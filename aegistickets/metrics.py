"""Prometheus metrics: the `/metrics` endpoint, who may read it, and which requests count as traffic.

- HTTP metrics come from django-prometheus. Our subclasses of its two middlewares skip the untracked
  paths (`/healthz`, `/readyz`, `/metrics`): probes and scrapes are not shop traffic.
- Under gunicorn, prometheus_client runs in multiprocess mode: `gunicorn.conf.py` sets
  PROMETHEUS_MULTIPROC_DIR (cleaned at every start), each worker writes its counters there, and a scrape
  sums every worker's files (MultiProcessCollector), whichever worker answers it.
- Gauges that describe the database (seats, holds, connections) are read at scrape time by collectors in
  the answering process only, a few aggregate queries at most, cached for METRICS_DB_CACHE_SECONDS.
- `/metrics` is answered by `MetricsEndpointMiddleware`, first in the chain, before host validation and
  the HTTPS redirect: Prometheus scrapes a pod by its IP over plain HTTP. Who may read it is decided by
  the TCP peer address only (see `metrics_access_allowed`).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from timeit import default_timer
from typing import Any

import prometheus_client
from django.conf import settings
from django.db import connections, transaction
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from django_prometheus.middleware import Metrics as _Metrics
from django_prometheus.middleware import PrometheusBeforeMiddleware as _BeforeMiddleware
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

# Set by a reverse proxy (the ALB always adds X-Forwarded-For). A scrape straight from Prometheus has none.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
# The methods django-prometheus labels by name; any other is "<invalid method>".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"})


def multiprocess_mode() -> bool:
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


def is_untracked(request: HttpRequest) -> bool:
    """Probes and scrapes are not traffic: they never enter the request metrics."""
    return request.path_info in settings.METRICS_UNTRACKED_PATHS


# The django-prometheus HTTP families we export: what the SLI rules, alerts, dashboard and runbooks read
# (docs/slos.md), and the counters that say a latency went unmeasured. Its other families (request and response
# body sizes, methods, transports, templates, charsets) are never registered and never updated: under gunicorn
# every update is a write to a shared file, and they were half of a request's metric writes (8 of 16; a histogram
# observation is two; docs/performance.md).
HTTP_FAMILIES = frozenset(
    {
        "django_http_requests_before_middlewares_total",
        "django_http_responses_before_middlewares_total",
        "django_http_requests_latency_including_middlewares_seconds",
        "django_http_requests_unknown_latency_including_middlewares_total",
        "django_http_requests_latency_seconds_by_view_method",
        "django_http_requests_unknown_latency_total",
        "django_http_responses_total_by_status",
        "django_http_responses_total_by_status_view_method",
        "django_http_exceptions_total_by_type",
        "django_http_exceptions_total_by_view",
    }
)


class HttpMetrics(_Metrics):  # type: ignore[misc]
    """django-prometheus' own definitions (names, help, buckets) of the families in HTTP_FAMILIES only."""

    def register_metric(
        self, metric_cls: type, name: str, documentation: str, labelnames: Any = (), **kwargs: Any
    ) -> Any:
        if name not in HTTP_FAMILIES:
            return None
        return super().register_metric(metric_cls, name, documentation, labelnames=labelnames, **kwargs)


class PrometheusBeforeMiddleware(_BeforeMiddleware):  # type: ignore[misc]
    metrics_cls = HttpMetrics

    def process_request(self, request: HttpRequest) -> None:
        if not is_untracked(request):
            super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if is_untracked(request):
            return response
        return super().process_response(request, response)  # type: ignore[no-any-return]


class PrometheusAfterMiddleware(MiddlewareMixin):
    """django-prometheus' after-middleware for the families in HTTP_FAMILIES: responses by status and by view,
    latency by view, exceptions. Each labelled child is looked up once per process, not once per request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)
        self.metrics = HttpMetrics.get_instance()
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, name: str, *labels: str) -> Any:
        key = (name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = getattr(self.metrics, name).labels(*labels)
        return child

    @staticmethod
    def _method(request: HttpRequest) -> str:
        return request.method if request.method in KNOWN_METHODS else "<invalid method>"

    @staticmethod
    def _view(request: HttpRequest) -> str:
        match = getattr(request, "resolver_match", None)
        return (match.view_name if match is not None else None) or "<unnamed view>"

    def process_request(self, request: HttpRequest) -> None:
        if not is_untracked(request):
            request.prometheus_after_middleware_event = default_timer()  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if is_untracked(request):
            return response
        status, view, method = str(response.status_code), self._view(request), self._method(request)
        self._child("responses_by_status", status).inc()
        self._child("responses_by_status_view_method", status, view, method).inc()
        started = getattr(request, "prometheus_after_middleware_event", None)
        if started is None:
            self.metrics.requests_unknown_latency.inc()
        else:
            # By the method's known name, as the counter above: django-prometheus labelled the latency with any
            # method a client sent, one new series per made-up method.
            self._child("requests_latency_by_view_method", view, method).observe(default_timer() - started)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if is_untracked(request):
            return
        self._child("exceptions_by_type", type(exception).__name__).inc()
        if hasattr(request, "resolver_match"):
            self._child("exceptions_by_view", self._view(request)).inc()
        # The latency is observed once, in process_response, which the 500 answer still passes through
        # (django-prometheus observed it here as well: twice for one request).


# --- who may read /metrics ----------------------------------------------------------------------------


def parse_networks(values: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


def metrics_access_allowed(request: HttpRequest) -> bool:
    """Only a direct peer inside METRICS_ALLOWED_NETWORKS, and never a request relayed by a proxy.

    REMOTE_ADDR is the TCP peer (gunicorn never rewrites it from headers). Behind the ALB that peer is
    the ALB's own private VPC address, which the private ranges admit, so a relayed request is refused
    by its X-Forwarded-For (the ALB always adds one; a client can add such a header, never remove the
    ALB's). Prometheus scraping the pod directly sends none of these headers.
    """
    if any(request.META.get(header) for header in PROXY_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "").split("%")[0])
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return any(peer in network for network in parse_networks(settings.METRICS_ALLOWED_NETWORKS))


# --- database gauges, read at scrape time -------------------------------------------------------------


class CachedCollector:
    """Runs `read()` at most once per METRICS_DB_CACHE_SECONDS per process; a failed read yields no
    samples (and `aegistickets_metrics_db_read_ok 0`) instead of failing the whole scrape."""

    name = "collector"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expires = 0.0
        self._families: list[Metric] = []

    def read(self) -> list[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() >= self._expires:
                try:
                    self._families = self.read()
                    ok = 1.0
                except Exception:  # noqa: BLE001 - a scrape must still answer with the HTTP metrics
                    logger.warning("metrics: %s could not read the database", self.name, exc_info=True)
                    self._families, ok = [], 0.0
                status = GaugeMetricFamily(
                    "aegistickets_metrics_db_read_ok",
                    "1 if the last scrape-time database read of this collector succeeded.",
                    labels=["collector"],
                )
                status.add_metric([self.name], ok)
                self._families = [*self._families, status]
                self._expires = time.monotonic() + settings.METRICS_DB_CACHE_SECONDS
            yield from self._families

    def clear(self) -> None:
        with self._lock:
            self._expires = 0.0


@contextlib.contextmanager
def bounded_read() -> Iterator[None]:
    """Scrape-time reads: on PostgreSQL one transaction with a 2 s statement timeout, so a slow database
    cannot hold a scrape past Prometheus' timeout. On SQLite plain autocommit reads (a transaction there
    would start with BEGIN IMMEDIATE and take the write lock)."""
    if connections["default"].vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 2000")
        yield


# Connections of every database count against max_connections; `superuser_reserved_connections` of them
# are not available to the app, so the ratio is taken against what the app can actually get.
PG_CONNECTIONS_SQL = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend'),
       count(*) FILTER (WHERE backend_type = 'client backend' AND datname = current_database()),
       current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
FROM pg_stat_activity
"""


class DatabaseConnectionsCollector(CachedCollector):
    """Connection saturation of PostgreSQL: client connections in use vs the connections the app may open."""

    name = "db_connections"

    def read(self) -> list[Metric]:
        if connections["default"].vendor != "postgresql":
            return []
        with bounded_read(), connections["default"].cursor() as cursor:
            cursor.execute(PG_CONNECTIONS_SQL)
            server, database, usable = cursor.fetchone()
        in_use = GaugeMetricFamily(
            "aegistickets_db_connections",
            "PostgreSQL client connections open now: scope=server (all databases) or database (ours).",
            labels=["scope"],
        )
        in_use.add_metric(["server"], server)
        in_use.add_metric(["database"], database)
        limit = GaugeMetricFamily(
            "aegistickets_db_connections_max",
            "Connections non-superusers may open: max_connections - superuser_reserved_connections.",
            value=usable,
        )
        return [in_use, limit]


@functools.cache
def scrape_collectors() -> tuple[CachedCollector, ...]:
    """The scrape-time collectors, one set per process (their caches live in them); built on first use so
    that importing this module touches no app models."""
    from orders.metrics import EmailOutboxCollector, ShopStateCollector

    return (ShopStateCollector(), EmailOutboxCollector(), DatabaseConnectionsCollector())


def metrics_registry() -> CollectorRegistry:
    """What one scrape sees: every worker's counters (multiprocess) or this process's, plus the DB gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(prometheus_client.REGISTRY)
    for collector in scrape_collectors():
        registry.register(collector)
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics in the Prometheus text format, for internal addresses only."""
    if not metrics_access_allowed(request):
        return HttpResponse(
            "/metrics is served to cluster-internal addresses only.\n", status=403, content_type="text/plain"
        )
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    body = prometheus_client.generate_latest(metrics_registry())
    response = HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


class MetricsEndpointMiddleware:
    """Answers METRICS_PATH before any other middleware (no host check, no HTTPS redirect, no session)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == settings.METRICS_PATH:
            return metrics_view(request)
        return self.get_response(request)
