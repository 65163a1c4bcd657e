"""Django admin login brute-force lockout, counted in the shared "ratelimit" cache (Redis in production).

After ADMIN_LOGIN_MAX_FAILURES failed logins for one username from one client address, or
ADMIN_LOGIN_MAX_FAILURES_PER_IP from one address for any usernames, that address (for that username, or at all)
is refused for ADMIN_LOGIN_LOCKOUT_SECONDS, counted from the first failure, without the password being checked:
a correct guess during the lockout is refused too. A successful login clears the username's counter.
The client address is aegistickets.ratelimit.client_ip (X-Forwarded-For only across the trusted proxy hops).
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import caches

from aegistickets.ratelimit import client_ip

logger = logging.getLogger(__name__)


def _keys(ip: str, username: str) -> list[tuple[str, int]]:
    pair = hashlib.sha256(f"{ip}\n{username.strip().lower()}".encode()).hexdigest()[:32]
    return [
        (f"lockout:pair:{pair}", settings.ADMIN_LOGIN_MAX_FAILURES),
        (f"lockout:ip:{hashlib.sha256(ip.encode()).hexdigest()[:32]}", settings.ADMIN_LOGIN_MAX_FAILURES_PER_IP),
    ]


def is_locked_out(*, ip: str, username: str) -> bool:
    cache = caches[settings.RATE_LIMIT_CACHE]
    try:
        return any((cache.get(key) or 0) >= limit for key, limit in _keys(ip, username))
    except Exception:  # noqa: BLE001 - a cache outage must not lock every admin out (nor in)
        logger.warning("lockout cache unavailable", exc_info=True)
        return False


def record_failure(*, ip: str, username: str) -> None:
    cache = caches[settings.RATE_LIMIT_CACHE]
    try:
        for key, _ in _keys(ip, username):
            if not cache.add(key, 1, timeout=settings.ADMIN_LOGIN_LOCKOUT_SECONDS):
                cache.incr(key)
    except Exception:  # noqa: BLE001
        logger.warning("lockout cache unavailable", exc_info=True)
    logger.warning("admin login failed for %r from %s", username[:150], ip)


def clear_failures(*, ip: str, username: str) -> None:
    try:
        caches[settings.RATE_LIMIT_CACHE].delete(_keys(ip, username)[0][0])
    except Exception:  # noqa: BLE001
        logger.warning("lockout cache unavailable", exc_info=True)


class LockoutAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin login form, refusing locked-out clients before the password is checked."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked_out": "Too many failed login attempts. Try again in %(minutes)s minutes.",
    }

    def clean(self) -> dict[str, Any]:
        ip = client_ip(self.request) if self.request is not None else ""
        username = str(self.data.get("username", ""))
        if is_locked_out(ip=ip, username=username):
            raise forms.ValidationError(
                self.error_messages["locked_out"],
                code="locked_out",
                params={"minutes": math.ceil(settings.ADMIN_LOGIN_LOCKOUT_SECONDS / 60)},
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if error.code == "invalid_login":
                record_failure(ip=ip, username=username)
            raise
        clear_failures(ip=ip, username=username)
        return cleaned
