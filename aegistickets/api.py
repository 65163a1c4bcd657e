"""Pieces every API view shares: pagination, the staff permission, the problem schema for OpenAPI."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.fields import Field, empty
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import DjangoModelPermissions, IsAdminUser
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


class AdminRights(DjangoModelPermissions):
    """The admin's own rights on the model of the view's `queryset`: view to read, add to create, change to update.
    A role set up in the admin (say, support staff who may only look at orders) means the same through the API."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


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

    default_error_messages = {"out_of_range": _("Must be between the years 2000 and 2199.")}

    def to_internal_value(self, value: Any) -> Any:
        parsed = super().to_internal_value(value)
        if not 2000 <= parsed.year <= 2199:
            self.fail("out_of_range")
        return parsed


class ReusedSerializer(serializers.Serializer):
    """A plain serializer made once per class and process for the work that keeps no state on it: representing an
    output, validating an input that turns out valid. DRF builds a serializer by deep-copying every declared field,
    nested ones included, each time one is made: a tenth to a sixth of a basket add's CPU (docs/performance.md).
    Invalid input goes through a new instance's `is_valid`, which shapes the errors as DRF does."""

    @classmethod
    def represent(cls, instance: Any) -> dict[str, Any]:
        """`cls(instance).data`, from the shared instance."""
        return dict(cls.shared(partial=False).to_representation(instance))

    @classmethod
    def validated(cls, data: Any, *, partial: bool = False) -> dict[str, Any]:
        """The validated input, or ValidationError (400 problem JSON) as `is_valid(raise_exception=True)` raises it."""
        try:
            return dict(cls.shared(partial=partial).run_validation(data))
        except serializers.ValidationError:
            cls(data=data, partial=partial).is_valid(raise_exception=True)  # the same data: raises the shaped errors
            raise

    @classmethod
    @functools.cache
    def shared(cls, *, partial: bool) -> ReusedSerializer:
        return cls(partial=partial)


class PageInput(ReusedSerializer):
    """The `page` query parameter of a paginated list, validated before the paginator reads it."""

    page = serializers.IntegerField(required=False, min_value=1, help_text="1 for the first page.")


def _json_type_errors(field: Field, value: Any) -> list[str]:
    """What is of the wrong JSON type in a value: a list's items and a dict's values against their child field,
    each named by its index or key, as the problem's flat messages name them."""
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        items: Any = enumerate(value)
    elif isinstance(field, serializers.DictField) and isinstance(value, Mapping):
        items = value.items()
    else:
        error = _json_type_error(field, value)
        return [error] if error else []
    return [f"{where}: {error}" for where, item in items if (error := _json_type_error(field.child, item))]


def _json_type_error(field: Field, value: Any) -> str | None:
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else gettext("Must be true or false.")
    if isinstance(field, serializers.IntegerField):
        # Not a bool (a Python int) and not 1.0: a draft-4 schema (OpenAPI 3.0) counts neither as an integer.
        return None if isinstance(value, int) and not isinstance(value, bool) else gettext("Must be an integer.")
    if isinstance(field, serializers.DecimalField):
        # Documented, and answered, as a string: a JSON number would pass through a binary float first.
        return None if isinstance(value, str) else gettext('Must be a string such as "12.50".')
    if isinstance(field, serializers.CharField | serializers.DateTimeField | serializers.ChoiceField):
        if not isinstance(value, str):
            return gettext("Must be a string.")
        # The schema's maxLength is of the value sent; DRF counts after trimming whitespace, and would take a value
        # one blank too long that the schema forbids.
        limit = getattr(field, "max_length", None)
        if limit is not None and len(value) > limit:
            return gettext("Ensure this field has no more than %(limit)d characters.") % {"limit": limit}
    return None


class JsonInput(ReusedSerializer):
    """An input serializer for a JSON body: each value must already have the JSON type the schema documents.

    DRF's fields coerce as HTML forms need (5 → "5", "20" → 20, "true" or 1 → True, 12.5 → Decimal("12.5")), which
    takes a client's bug for a request; here the wrong type is a 400 naming the field (found by `make fuzz`, ST201).
    """

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)
        errors = {}
        for field in (field for field in self.fields.values() if not field.read_only):
            value = data.get(field.field_name, empty)
            if value is not empty and value is not None and (wrong := _json_type_errors(field, value)):
                errors[field.field_name] = wrong
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as refused:
            if not isinstance(refused.detail, Mapping):
                raise
            # Every field's error in one answer: DRF's for the others, ours where DRF would have coerced or trimmed.
            raise serializers.ValidationError({**refused.detail, **errors}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return validated


URI_TOO_LONG = {
    "description": (
        "Request line longer than the server accepts (8190 bytes): refused by the web server before the API, as a "
        "short HTML page."
    ),
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def document_server_limits(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation can be refused with 414 by gunicorn
    (`limit_request_line` in gunicorn.conf.py) before the request reaches Django."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("414", URI_TOO_LONG)
    return result


def problems(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """OpenAPI responses for error statuses, all problem JSON."""
    # Keyed (status, media type): the body is sent as application/problem+json, so the schema must say so.
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(response=ProblemSerializer, description="Problem details")
        for status in statuses
    }


def validated_input(serializer_class: type[ReusedSerializer], data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validates request input with an input serializer; invalid input raises (→ 400 problem JSON)."""
    return serializer_class.validated(data, partial=partial)


def validated_query(serializer_class: type[ReusedSerializer], query_params: QueryDict) -> dict[str, Any]:
    """Validates query parameters: an empty value (`?status=`) is validated like any other. Given the QueryDict
    itself, DRF would take it, as for an HTML form, for an absent optional field: `?status=` would list every order.
    A repeated parameter counts with its last value, as `QueryDict.get` (and so the paginator) reads it."""
    return validated_input(serializer_class, query_params.dict())
