from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class ShopAdminConfig(AdminConfig):
    """Django's admin app with our AdminSite (aegistickets/admin.py)."""

    default_site = "aegistickets.admin.ShopAdminSite"


class PlatformConfig(AppConfig):
    """The platform layer as an app: it owns one table, the shared abuse counters' (its migrations)."""

    name = "aegistickets"
    label = "platform"
    verbose_name = "Platform"
