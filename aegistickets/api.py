"""Pieces every API view shares: pagination, the staff permission, the problem schema for OpenAPI."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response


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


def problems(*statuses: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for error statuses, all problem JSON."""
    return {
        status: OpenApiResponse(response=ProblemSerializer, description="application/problem+json")
        for status in statuses
    }


def validated_input(
    serializer_class: type[serializers.Serializer], data: Any, *, partial: bool = False
) -> dict[str, Any]:
    """Validates request input with an input serializer; invalid input raises (→ 400 problem JSON)."""
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
