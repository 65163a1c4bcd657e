"""Error pages: problem JSON under /api, HTML elsewhere."""

import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import ngettext

from aegistickets.errors import (
    ApplicationError,
    InternalServerError,
    LoginLockedOutError,
    NotFoundError,
    is_api_request,
    problem_json_response,
)


def error_page(
    request: HttpRequest, error: ApplicationError, template: str, context: dict[str, Any] | None = None
) -> HttpResponse:
    """The error as problem JSON under /api, as `template` elsewhere; with Retry-After when it carries one."""
    if is_api_request(request):
        return problem_json_response(error)
    response = render(request, template, {"error": error, **(context or {})}, status=error.status)
    if "retry_after" in error.extra:
        response["Retry-After"] = str(error.extra["retry_after"])
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, NotFoundError(), "404.html")


def server_error(request: HttpRequest) -> HttpResponse:
    return error_page(request, InternalServerError(), "500.html")


def login_locked_out(request: HttpRequest, response: HttpResponse | None, credentials: Any = None) -> HttpResponse:
    """django-axes' answer to a locked-out client (AXES_LOCKOUT_CALLABLE), on every login form: 429 with Retry-After,
    whatever the password was."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    minutes = math.ceil(seconds / 60)
    error = LoginLockedOutError(
        ngettext(
            "Too many failed login attempts. Try again in %(minutes)d minute.",
            "Too many failed login attempts. Try again in %(minutes)d minutes.",
            minutes,
        )
        % {"minutes": minutes},
        extra={"retry_after": seconds},
    )
    return error_page(request, error, "login_locked_out.html")
