"""The ceiling's one path: `/`, answering the body /healthz answers."""

from django.http import HttpRequest, JsonResponse
from django.urls import path


def ceiling(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("", ceiling)]
