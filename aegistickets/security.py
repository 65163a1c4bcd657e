"""The Content-Security-Policy header on every response, by django-csp (policy: settings CONTENT_SECURITY_POLICY)."""

from __future__ import annotations

from functools import cached_property

from csp.constants import HEADER
from csp.middleware import CSPMiddleware, PolicyParts
from csp.utils import build_policy
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, which builds the policy, and an empty report-only one, anew for every response: a fifth
    to a quarter of a cached catalog read's CPU (docs/performance.md). Here a response whose view changed nothing
    of the policy (no csp_update/csp_replace, no nonce used) gets the same policy built once per process; any
    other goes through django-csp unchanged. The shop uses neither a report-only policy nor csp_exempt, which this
    shortcut would not see."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if HEADER in response or self.get_policy_parts(request=request, response=response) != PolicyParts():
            return super().process_response(request, response)
        response[HEADER] = self.default_policy
        return response

    @cached_property
    def default_policy(self) -> str:
        return build_policy()
