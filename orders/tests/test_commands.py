"""Operator commands: tidying expired holds, and issuing organizer API tokens."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.tests.factories import UserFactory, organizer
from orders import services
from orders.models import Basket, Hold

pytestmark = pytest.mark.django_db


def run(name: str, *args: str, **options: object) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, **options)
    return out.getvalue()


def orders_api(key: str):  # type: ignore[no-untyped-def]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/orders")


# --- release_expired_holds ----------------------------------------------------------------------------


def test_release_expired_holds_deletes_only_expired_holds(ticket_type):
    now = timezone.now()
    expired = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=2, now=now - timedelta(hours=2))
    live = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=3, now=now)
    stale_empty = Basket.objects.create()
    Basket.objects.filter(pk=stale_empty.pk).update(updated_at=now - timedelta(days=2))

    out = run("release_expired_holds")

    assert out == "Deleted 1 expired holds and 1 empty baskets.\n"
    assert list(Hold.objects.values_list("basket_id", "quantity")) == [(live.pk, 3)]
    assert not Basket.objects.filter(pk=stale_empty.pk).exists()
    assert Basket.objects.filter(pk=expired.pk).exists()  # emptied just now: kept until it is a day old


def test_release_expired_holds_with_nothing_to_do(ticket_type):
    services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=timezone.now())

    assert run("release_expired_holds") == "Deleted 0 expired holds and 0 empty baskets.\n"
    assert Hold.objects.count() == 1


# --- create_api_token ---------------------------------------------------------------------------------


def test_create_api_token_prints_only_a_key_that_opens_the_organizer_api(db):
    user = organizer()

    out = run("create_api_token", user.username)

    key = out.strip()
    assert out == f"{key}\n"  # scriptable: TOKEN=$(python manage.py create_api_token …)
    assert Token.objects.get(user=user).key == key
    response = orders_api(key)
    assert response.status_code == 200, response.content
    assert response.json()["orders"] == []


def test_create_api_token_returns_the_same_key_until_rotated(db):
    user = organizer()
    first = run("create_api_token", user.username).strip()

    again = run("create_api_token", user.username).strip()
    rotated = run("create_api_token", user.username, "--rotate").strip()

    assert again == first
    assert rotated != first
    assert Token.objects.filter(user=user).count() == 1
    assert orders_api(first).status_code == 401
    assert orders_api(rotated).status_code == 200


def test_create_api_token_refuses_unknown_user(db):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run("create_api_token", "nobody")
    assert not Token.objects.exists()


def test_create_api_token_refuses_non_staff_unless_allowed(db):
    user = UserFactory(is_staff=False)

    with pytest.raises(CommandError, match="not staff"):
        run("create_api_token", user.username)
    assert not Token.objects.exists()

    key = run("create_api_token", user.username, "--allow-non-staff").strip()
    assert Token.objects.get(user=user).key == key
    assert orders_api(key).status_code == 403  # the organizer API stays staff-only


def test_create_api_token_refuses_inactive_user(db):
    user = UserFactory(is_staff=True, is_active=False)

    with pytest.raises(CommandError, match="inactive"):
        run("create_api_token", user.username)
