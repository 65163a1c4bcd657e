"""Fixtures shared by every test package."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if connection.vendor != "postgresql":
        skip = pytest.mark.skip(
            reason="needs PostgreSQL row locks and concurrent connections: set DATABASE_URL=postgres://… "
            "(SQLite serializes writers, so there is no race to test)"
        )
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def now() -> datetime:
    """A fixed 'now' for service tests; pass it in instead of sleeping."""
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_api(db: None) -> APIClient:
    user = UserFactory(is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def refunding_api(db: None) -> APIClient:
    """Staff holding the permission to cancel and refund orders."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="refund_order"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def event(db: None):  # type: ignore[no-untyped-def]
    return EventFactory()


@pytest.fixture
def ticket_type(event):  # type: ignore[no-untyped-def]
    return TicketTypeFactory(event=event, capacity=10)
