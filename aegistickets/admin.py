"""The admin site: Django's own, with the CSP exception its change lists need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from csp.decorators import csp_update
from django.contrib import admin

# The one inline <style> block of admin/change_list.html (lists without actions), allowed by its hash on admin views
# only; aegistickets/tests/test_security_headers.py pins it to the installed template.
CHANGE_LIST_STYLE = "'sha256-blvLUW3UscWqsXGByNOqdBboM+ShWAuugp2mC/wbafU='"  # pragma: allowlist secret


class ShopAdminSite(admin.AdminSite):
    def admin_view(self, view: Callable[..., Any], cacheable: bool = False) -> Callable[..., Any]:
        return csp_update({"style-src": [CHANGE_LIST_STYLE]})(super().admin_view(view, cacheable))
