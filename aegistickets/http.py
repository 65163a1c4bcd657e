"""Who sent a request (the client address that rate limits and the login lockout count by), and the shop's own
absolute links, for what is read outside a request (emails, calendar files)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse


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


def site_url(viewname: str, **kwargs: object) -> str:
    """The absolute address of a named URL: SITE_URL + its path."""
    site: str = settings.SITE_URL
    return site.rstrip("/") + reverse(viewname, kwargs=kwargs)
