"""The root URLconf. The apps' URLconfs are named, not imported: this layer imports no app."""

from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from aegistickets import faults, views

# The one inline <style> block of drf_spectacular/swagger_ui.html (the Swagger UI script itself is a separate file:
# SplitView), allowed by its hash on that page only; aegistickets/tests/test_security_headers.py pins it.
SWAGGER_UI_STYLE = "'sha256-MMpT0iDxyjALd9PdfepImGX3DBfJPXZ4IlDWdPAgtn0='"  # pragma: allowlist secret

api_urlpatterns = [
    path("", include("events.api_urls")),
    path("", include("orders.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        csp_update({"style-src": [SWAGGER_UI_STYLE]})(SpectacularSwaggerSplitView.as_view(url_name="api:schema")),
        name="docs",
    ),
]

# /healthz, /readyz and /metrics are answered before the URLconf (aegistickets/probes.py).
urlpatterns = [
    path("api/", include((api_urlpatterns, "api"))),
    path("admin/", admin.site.urls),
    # The language switcher of every page posts here (django.views.i18n.set_language): a cookie, no URL prefix.
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("events.urls")),
    path("", include("orders.urls")),
]

if not settings.STORAGES["default"]["BACKEND"].endswith("S3Storage"):
    # Uploaded event images from the local media folder (S3 serves them in production).
    urlpatterns.append(path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}))

# A server error on demand for `make monitoring-check`; 404 unless FAULT_INJECTION_ENABLED=true.
urlpatterns.append(path("api/_fault", faults.fault, name="fault"))

handler404 = views.not_found
handler500 = views.server_error
