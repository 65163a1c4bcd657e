"""Fixtures shared by every test package."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.tests.factories import EventFactory, TicketTypeFactory, organizer


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


def token_api(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def staff_api(db: None) -> APIClient:
    """An organizer: staff with the admin's rights on the shop's models, not the right to refund."""
    return token_api(organizer())


@pytest.fixture
def refunding_api(db: None) -> APIClient:
    """An organizer who may also cancel and refund orders."""
    return token_api(organizer(refund=True))


@pytest.fixture
def event(db: None):  # type: ignore[no-untyped-def]
    return EventFactory()


@pytest.fixture
def ticket_type(event):  # type: ignore[no-untyped-def]
    return TicketTypeFactory(event=event, capacity=10)
