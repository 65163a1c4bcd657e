"""Abuse limits, counted in the shared "ratelimit" cache (Redis when REDIS_URL is set, else the database).

- Writes a shopper can repeat (basket add, checkout; pages and API alike) are limited per client address and per
  basket with django-ratelimit: `rate_limited` wraps the view, so a refused request costs no work of the view.
- Tries of a voucher code (the event page's `?voucher=`, basket add, the basket's voucher form, checkout) are
  limited per client address on top, so codes cannot be guessed by trying many.
- The organizer API is limited per staff user with DRF's throttling: `OrganizerRateThrottle`, whose `Throttled`
  leaves as 429 `rate_limited` problem JSON with Retry-After (aegistickets/errors.py).

Rates are RATE_LIMITS[scope] ("120/m", "5/10s"); RATE_LIMITS_ENABLED=false turns every limit off. If the cache is
down the limits let requests through (logged): abuse limits must never take the shop down with them.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django_ratelimit.core import get_usage
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from aegistickets.errors import RateLimitedError
from aegistickets.http import client_ip
from aegistickets.views import error_page

logger = logging.getLogger(__name__)

# Who a request counts against: a string identifying it, "" for nobody (then that limit does not apply).
Identity = Callable[[HttpRequest], str]


def _wait(request: HttpRequest, *, scope: str, identity: str) -> int | None:
    """Counts one request of `identity` against RATE_LIMITS[scope]: the seconds to wait if over it, else None."""
    if not identity:
        return None
    try:
        usage = get_usage(
            request,
            group=scope,
            key=lambda group, request: identity,
            rate=settings.RATE_LIMITS[scope],
            increment=True,
        )
    except Exception:  # noqa: BLE001 - the limiter fails open: a cache outage must not refuse every sale
        logger.warning("rate limit cache unavailable; %s not limited", scope, exc_info=True)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    return max(1, usage["time_left"])


def voucher_attempt(request: HttpRequest) -> str:
    """The client's address when the request tries a voucher code (a query parameter, a form field or a JSON field),
    else nobody: what guessing codes counts against."""
    code = request.GET.get("voucher") or (request.POST.get("voucher") if request.method == "POST" else "")
    # Most basket adds and checkouts carry no code: the body is parsed only when it may name one (a key can also be
    # written with \u escapes, which must not slip past the limit).
    if (
        not code
        and request.method == "POST"
        and request.content_type == "application/json"
        and (b"voucher" in request.body or b"\\u" in request.body)
    ):
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            body = None
        code = body.get("voucher") if isinstance(body, dict) else ""
    return client_ip(request) if code else ""


def posted_value(field: str) -> Identity:
    """Who a request counts against by a value it posts (an email address, say), as a form field or a JSON field:
    stripped and lower-cased, "" when absent (then the limit does not apply)."""

    def identity(request: HttpRequest) -> str:
        value: Any = request.POST.get(field, "")
        if not value and request.content_type == "application/json":
            try:
                body = json.loads(request.body or b"{}")
            except (ValueError, UnicodeDecodeError):
                body = None
            value = body.get(field, "") if isinstance(body, dict) else ""
        return value.strip().lower()[:254] if isinstance(value, str) else ""

    return identity


def rate_limited(
    scope: str, *, methods: tuple[str, ...] = ("POST",), template: str = "429.html", **identities: Identity
) -> Callable[[Callable[..., HttpResponse]], Callable[..., Any]]:
    """Limits `methods` requests (POSTs unless given) to a view by RATE_LIMITS[f"{scope}_{name}"] for each
    `name=identity`: `rate_limited("checkout", ip=…, basket=…)`. Over any limit: 429 with Retry-After (problem JSON
    under /api, the 429 page elsewhere: `template`, given `retry_after`)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., Any]:
        @functools.wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method in methods and settings.RATE_LIMITS_ENABLED:
                waits = [
                    _wait(request, scope=f"{scope}_{name}", identity=identity(request))
                    for name, identity in identities.items()
                ]
                retry_after = max((wait for wait in waits if wait is not None), default=None)
                if retry_after is not None:
                    error = RateLimitedError(extra={"retry_after": retry_after})
                    return error_page(request, error, template, {"retry_after": retry_after})
            return view(request, *args, **kwargs)

        return limited

    return decorate


class OrganizerRateThrottle(UserRateThrottle):
    """The organizer API (views whose permissions include IsStaff), per staff user: RATE_LIMITS['organizer']."""

    scope = "organizer"

    def __init__(self) -> None:
        """Nothing yet: DRF makes a throttle for every request, and most requests are not the organizer API's."""

    def get_rate(self) -> str:
        return str(settings.RATE_LIMITS["organizer"])

    def allow_request(self, request: Request, view: Any) -> bool:
        from aegistickets.api import IsStaff  # lazily: aegistickets.api imports DRF's settings, which import us

        if not settings.RATE_LIMITS_ENABLED:
            return True
        if not any(isinstance(permission, IsStaff) for permission in view.get_permissions()):
            return True
        # What SimpleRateThrottle reads when it is made: the rate (read now, so it follows the settings) and the
        # shared cache (DRF's own reads the default cache).
        self.cache = caches[settings.RATELIMIT_USE_CACHE]
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return bool(super().allow_request(request, view))
        except Exception:  # noqa: BLE001 - fails open, as the shopper limits do
            logger.warning("rate limit cache unavailable; organizer API not limited", exc_info=True)
            return True
