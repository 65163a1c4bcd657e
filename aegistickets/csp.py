"""Content-Security-Policy on every response: no inline script or style anywhere (Django 5.2 has no built-in CSP).

One strict policy (CSP_POLICY). A path prefix may add sources to a directive (CSP_EXTRA_SOURCES_BY_PATH), and only
exact hashes of a third-party template's fixed inline <style> block are added there, never 'unsafe-inline'.
A view that sets its own Content-Security-Policy header keeps it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def build_policy(path: str) -> str:
    """The policy for `path`: CSP_POLICY plus the extra sources of every matching CSP_EXTRA_SOURCES_BY_PATH prefix."""
    directives = {name: list(sources) for name, sources in settings.CSP_POLICY.items()}
    for prefix, extra in settings.CSP_EXTRA_SOURCES_BY_PATH.items():
        if path.startswith(prefix):
            for name, sources in extra.items():
                directives.setdefault(name, []).extend(s for s in sources if s not in directives[name])
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = build_policy(request.path)
        return response
