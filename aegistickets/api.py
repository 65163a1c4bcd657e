"""Pieces every API view shares: pagination, the staff permission, the problem schema for OpenAPI."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from aegistickets.errors import PROBLEM_CONTENT_TYPE


class NamedPagePagination(PageNumberPagination):
    """`{"count", "next", "previous", "<results_key>": [...]}`."""

    page_size = 20
    results_key = "results"

    def get_paginated_response(self, data: list[Any]) -> Response:
        return Response(
            OrderedDict(
                [
                    ("count", self.page.paginator.count),
                    ("next", self.get_next_link()),
                    ("previous", self.get_previous_link()),
                    (self.results_key, data),
                ]
            )
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["count", "next", "previous", self.results_key],
            "properties": {
                "count": {"type": "integer"},
                "next": {"type": "string", "format": "uri", "nullable": True},
                "previous": {"type": "string", "format": "uri", "nullable": True},
                self.results_key: schema,
            },
        }


class IsStaff(IsAdminUser):
    """Organizer endpoints: an authenticated user with `is_staff`."""


class ProblemSerializer(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class ShopDateTimeField(serializers.DateTimeField):
    """A date-time input between the years 2000 and 2199: anything else is a typo or an attack, and very old dates
    come back with local-mean-time offsets (e.g. +00:53:28) that are not RFC 3339."""

    default_error_messages = {"out_of_range": "Must be between the years 2000 and 2199."}

    def to_internal_value(self, value: Any) -> Any:
        parsed = super().to_internal_value(value)
        if not 2000 <= parsed.year <= 2199:
            self.fail("out_of_range")
        return parsed


def problems(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """OpenAPI responses for error statuses, all problem JSON."""
    # Keyed (status, media type): the body is sent as application/problem+json, so the schema must say so.
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(response=ProblemSerializer, description="Problem details")
        for status in statuses
    }


def validated_input(
    serializer_class: type[serializers.Serializer], data: Any, *, partial: bool = False
) -> dict[str, Any]:
    """Validates request input with an input serializer; invalid input raises (→ 400 problem JSON)."""
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
