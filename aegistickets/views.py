"""Error pages: problem JSON under /api, HTML elsewhere."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from aegistickets.errors import InternalServerError, NotFoundError, is_api_request, problem_json_response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return problem_json_response(NotFoundError())
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return problem_json_response(InternalServerError())
    return render(request, "500.html", status=500)
