"""validated_input: one serializer per class checks every request's input; nothing of one request reaches the next."""

import pytest
from rest_framework import serializers

from aegistickets.api import JsonInput, validated_input


class Shape(JsonInput):
    name = serializers.CharField(max_length=5)
    size = serializers.IntegerField(min_value=1)
    note = serializers.CharField(required=False, default="none")


def test_valid_input_comes_back_with_defaults_each_time():
    assert validated_input(Shape, {"name": "a", "size": 1}) == {"name": "a", "size": 1, "note": "none"}
    assert validated_input(Shape, {"name": "b", "size": 2, "note": "x"}) == {"name": "b", "size": 2, "note": "x"}
    assert validated_input(Shape, {"name": "c", "size": 3}) == {"name": "c", "size": 3, "note": "none"}


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"name": "toolong", "size": 0}, {"name", "size"}),
        ({"name": "a", "size": "1"}, {"size"}),  # a JSON string is not an integer
        ({"size": 1}, {"name"}),
        ([1, 2], {"non_field_errors"}),
        (None, {"non_field_errors"}),
    ],
)
def test_invalid_input_is_refused_with_drf_errors_by_field_and_leaves_no_trace(data, errors):
    with pytest.raises(serializers.ValidationError) as refused:
        validated_input(Shape, data)
    assert isinstance(refused.value.detail, dict)
    assert set(refused.value.detail) == errors
    assert all(isinstance(messages, list) and messages for messages in refused.value.detail.values())
    assert validated_input(Shape, {"name": "ok", "size": 9}) == {"name": "ok", "size": 9, "note": "none"}


def test_partial_input_skips_the_absent_fields_and_full_input_still_requires_them():
    assert validated_input(Shape, {"size": 4}, partial=True) == {"size": 4}
    with pytest.raises(serializers.ValidationError) as refused:
        validated_input(Shape, {"size": 4})
    assert set(refused.value.detail) == {"name"}
    assert validated_input(Shape, {}, partial=True) == {}
