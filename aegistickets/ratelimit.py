"""Abuse limits: fixed-window request counters in the shared "ratelimit" cache (Redis when REDIS_URL is set).

- Basket add and checkout, pages and API alike, per client IP and per basket: `RateLimitMiddleware` (by URL name,
  before the view runs, so a limited request costs no database work).
- Organizer API (any view whose permissions include IsStaff), per staff user: `OrganizerThrottle`, DRF's default
  throttle, whose `Throttled` leaves as 429 `rate_limited` problem JSON with Retry-After (aegistickets/errors.py).

Counters are one atomic INCR per request and key, so all workers and pods share them. If the cache is down the
limiter lets requests through (logged): abuse limits must never take the shop down with them.
The client IP honours X-Forwarded-For only across TRUSTED_PROXY_HOPS proxies (the ALB: 1), so it cannot be spoofed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from aegistickets.errors import RateLimitedError
from aegistickets.views import error_page

logger = logging.getLogger(__name__)

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(rate: str) -> tuple[int, int]:
    """'30/min' → (30, 60); '5/10s' → (5, 10). ValueError on anything else."""
    match = _RATE.match(rate)
    if not match:
        raise ValueError(f"Bad rate {rate!r}: use e.g. '30/min', '5/10s', '1000/h'.")
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * _UNIT_SECONDS[unit]


def client_ip(request: HttpRequest) -> str:
    """The client's address: the peer, or the address the outermost of TRUSTED_PROXY_HOPS proxies saw.

    Each proxy appends the address it received the request from to X-Forwarded-For; only the last
    TRUSTED_PROXY_HOPS entries were written by our proxies, anything left of them is the client's own say.
    """
    remote = str(request.META.get("REMOTE_ADDR") or "")
    hops = settings.TRUSTED_PROXY_HOPS
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    chain = [part for part in forwarded if part] + [remote]
    candidate = chain[-(hops + 1)] if len(chain) > hops else chain[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def hit(scope: str, identity: str) -> int | None:
    """Count one request of `identity` against RATE_LIMITS[scope]; the seconds to wait if over the limit, else None."""
    if not settings.RATE_LIMITS_ENABLED or not identity:
        return None
    limit, window = parse_rate(settings.RATE_LIMITS[scope])
    now = time.time()
    start = int(now // window) * window
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    key = f"rl:{scope}:{digest}:{start}"
    cache = caches[settings.RATE_LIMIT_CACHE]
    try:
        cache.add(key, 0, timeout=window + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window + 1)
            count = 1
    except Exception:  # the limiter fails open: a cache outage must not refuse every sale
        logger.warning("rate limit cache unavailable; %s not limited", scope, exc_info=True)
        return None
    if count > limit:
        return max(1, math.ceil(start + window - now))
    return None


def too_many_requests(request: HttpRequest, retry_after: int) -> HttpResponse:
    """429 with Retry-After: problem JSON under /api, the 429 page elsewhere."""
    error = RateLimitedError(extra={"retry_after": retry_after})
    return error_page(request, error, "429.html", {"retry_after": retry_after})


def _api_basket(request: HttpRequest) -> str:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return ""
    token = body.get("basket") if isinstance(body, dict) else None
    return token if isinstance(token, str) else ""


def _session_basket(request: HttpRequest) -> str:
    from orders.views import SESSION_BASKET  # lazily: orders.views imports much of the app

    token = request.session.get(SESSION_BASKET)
    return token if isinstance(token, str) else ""


# URL name → (scope prefix, how to find the basket). POST only: reads are cheap and cached.
LIMITED_VIEWS: dict[str, tuple[str, Callable[[HttpRequest], str]]] = {
    "api:basket-add": ("basket_add", _api_basket),
    "api:checkout": ("checkout", _api_basket),
    "events:detail": ("basket_add", _session_basket),
    "orders:checkout": ("checkout", _session_basket),
}


class RateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if request.method != "POST" or not settings.RATE_LIMITS_ENABLED or request.resolver_match is None:
            return None
        limited = LIMITED_VIEWS.get(request.resolver_match.view_name)
        if limited is None:
            return None
        scope, basket_of = limited
        waits = [hit(f"{scope}_ip", client_ip(request)), hit(f"{scope}_basket", basket_of(request))]
        retry_after = max((w for w in waits if w is not None), default=None)
        return None if retry_after is None else too_many_requests(request, retry_after)


class OrganizerThrottle(BaseThrottle):
    """The organizer API (views whose permissions include IsStaff), per staff user: RATE_LIMITS['organizer']."""

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        from aegistickets.api import IsStaff  # lazily: no import cycle through DRF settings

        if not any(isinstance(permission, IsStaff) for permission in view.get_permissions()):
            return True
        user = getattr(request, "user", None)
        identity = f"user:{user.pk}" if user is not None and getattr(user, "pk", None) else client_ip(request)
        self._wait = hit("organizer", identity)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait
