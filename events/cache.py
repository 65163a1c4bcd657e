"""A short-lived, per-process cache for catalog reads (event list and event pages, page and API).

Listings may show availability up to CATALOG_CACHE_SECONDS old (default 2 s); checkout and basket
never read from here, they decide on the database under a row lock. An organizer's write clears the
cache of the process that made it as soon as it commits; other processes see it within the TTL. Per
process (local memory), so a cache hit costs no network round trip.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import caches
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils.translation import get_language
from rest_framework.renderers import JSONRenderer

T = TypeVar("T")
_MISSING = object()
SOLD_OUT_MEMO_SECONDS = 1.0
# Stands in for the visitor's CSRF token in a cached page; each response gets its own token back.
_CSRF_PLACEHOLDER = f"csrf{secrets.token_hex(16)}"


def catalog_cached(key: str, compute: Callable[[], T]) -> T:
    """The cached value for `key`, computed (and kept for CATALOG_CACHE_SECONDS) on a miss."""
    ttl = settings.CATALOG_CACHE_SECONDS
    if ttl <= 0:
        return compute()
    cache = caches["catalog"]
    digest = hashlib.sha256(key.encode()).hexdigest()
    value = cache.get(digest, _MISSING)
    if value is _MISSING:
        value = compute()
        cache.set(digest, value, ttl)
    return value  # type: ignore[no-any-return]


def remember_sold_out(ticket_type_id: int) -> None:
    """A locked count just found no seat left: refuse the next adds for a moment without a query."""
    ttl = min(settings.CATALOG_CACHE_SECONDS, SOLD_OUT_MEMO_SECONDS)
    if ttl > 0:
        caches["catalog"].set(f"soldout:{ticket_type_id}", True, ttl)


def recently_sold_out(ticket_type_id: int) -> bool:
    """True for up to a second after a locked count found the ticket type sold out (a refusal may lag a
    freed seat by that second, never the other way round: a sale is always decided under the lock)."""
    return settings.CATALOG_CACHE_SECONDS > 0 and bool(caches["catalog"].get(f"soldout:{ticket_type_id}"))


def catalog_invalidate() -> None:
    """Forget cached catalog reads once the current transaction commits."""
    transaction.on_commit(caches["catalog"].clear)


def cached_page(request: HttpRequest, key: str, render_page: Callable[[dict[str, Any]], HttpResponse]) -> HttpResponse:
    """A whole GET page from the catalog cache, with this visitor's own CSRF token put back in.

    `render_page(extra_context)` renders the page; pages carrying flash messages (per visitor) and
    every non-GET request are rendered fresh. A page is kept per language (the one LocaleMiddleware chose for
    this request), so a visitor never gets a page cached in another visitor's language.
    """
    if settings.CATALOG_CACHE_SECONDS <= 0 or request.method != "GET" or get_messages(request):
        return render_page({})
    key = f"{key}:lang={get_language()}"

    def render_shareable() -> tuple[int, bytes, str] | None:
        response = render_page({"csrf_token": _CSRF_PLACEHOLDER})
        if response.status_code != 200:
            return None
        return response.status_code, response.content, response["Content-Type"]

    cached = catalog_cached(key, render_shareable)
    if cached is None:
        return render_page({})
    status, content, content_type = cached
    if _CSRF_PLACEHOLDER.encode() in content:
        content = content.replace(_CSRF_PLACEHOLDER.encode(), get_token(request).encode())
    return HttpResponse(content, status=status, content_type=content_type)


def cached_json(key: str, compute_data: Callable[[], Any]) -> HttpResponse:
    """A JSON response whose rendered bytes come from the catalog cache (no serializer on a hit), per language like
    the pages (a translated label in the data must not reach a reader of another language)."""
    body = catalog_cached(f"{key}:lang={get_language()}", lambda: JSONRenderer().render(compute_data()))
    return HttpResponse(body, content_type="application/json")
