from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from aegistickets import faults, health, views
from aegistickets.lockout import LockoutAdminAuthenticationForm
from events import urls as events_urls
from orders import urls as orders_urls

api_urlpatterns = [
    *events_urls.api_urlpatterns,
    *orders_urls.api_urlpatterns,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]

# Repeated failed admin logins lock the client out (aegistickets/lockout.py).
admin.site.login_form = LockoutAdminAuthenticationForm

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/", include((api_urlpatterns, "api"))),
    path("admin/", admin.site.urls),
    path("", include(events_urls)),
    path("", include(orders_urls)),
]

if not settings.STORAGES["default"]["BACKEND"].endswith("S3Storage"):
    # Uploaded event images from the local media folder (S3 serves them in production).
    urlpatterns.append(path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}))

# A server error on demand for `make monitoring-check`; 404 unless FAULT_INJECTION_ENABLED=true.
urlpatterns.append(path("api/_fault", faults.fault, name="fault"))

handler404 = views.not_found
handler500 = views.server_error
