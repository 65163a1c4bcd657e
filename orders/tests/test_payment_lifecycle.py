"""An order's status moves only along Order.TRANSITIONS, and the database itself refuses every other move: no code
path, admin action or hand-written UPDATE can turn a refunded order back into a paid one."""

from __future__ import annotations

import importlib
from datetime import timedelta
from decimal import Decimal
from itertools import product

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.models import Order

pytestmark = pytest.mark.django_db

STATUSES = [status for status, _ in Order.Status.choices]


def order_in(status: str) -> Order:
    now = timezone.now()
    order = Order.objects.create(
        status=Order.Status.PENDING,
        name="Ada",
        email="ada@example.com",
        total=Decimal("10.00"),
        payment_method="test",
        created_at=now,
        payment_deadline=now + timedelta(minutes=15),
    )
    # Walk a path the rules allow to reach the wanted status.
    for step in {
        "pending": [],
        "paid": ["paid"],
        "expired": ["expired"],
        "failed": ["failed"],
        "cancelled": ["paid", "cancelled"],
        "refunded": ["paid", "refunded"],
    }[status]:
        Order.objects.filter(pk=order.pk).update(status=step)
    order.refresh_from_db()
    return order


@pytest.mark.parametrize(("old", "new"), [pair for pair in product(STATUSES, STATUSES) if pair[0] != pair[1]])
def test_the_database_allows_exactly_the_documented_transitions(old, new):
    order = order_in(old)
    allowed = new in Order.TRANSITIONS[old]
    assert order.can_become(new) is allowed
    if allowed:
        Order.objects.filter(pk=order.pk).update(status=new)
        assert Order.objects.get(pk=order.pk).status == new
    else:
        with pytest.raises(IntegrityError), transaction.atomic():
            Order.objects.filter(pk=order.pk).update(status=new)
        assert Order.objects.get(pk=order.pk).status == old


def test_saving_the_same_status_again_is_no_transition():
    order = order_in("refunded")
    order.name = "Ada Lovelace"
    order.save()
    assert Order.objects.get(pk=order.pk).status == "refunded"


def test_the_migrations_rule_is_the_models_rule():
    migration = importlib.import_module("orders.migrations.0005_payments")
    in_database = {(old, new) for old, new in migration.ALLOWED}
    in_model = {(old, new) for old, targets in Order.TRANSITIONS.items() for new in targets}
    assert in_database == in_model


def test_a_pending_order_has_a_payment_deadline():
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(
            status=Order.Status.PENDING,
            name="Ada",
            email="ada@example.com",
            total=Decimal("10.00"),
            payment_method="test",
            created_at=timezone.now(),
        )
