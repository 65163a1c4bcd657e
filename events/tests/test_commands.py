"""`seed_demo`: a believable shop whose books balance, created once however often it runs."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from events.models import Event, TicketType
from events.selectors import events_upcoming, ticket_type_is_on_sale
from orders.models import Basket, Hold, Order, OrderLine, OutboundEmail, Ticket

pytestmark = pytest.mark.django_db

User = get_user_model()


def seed(**options: object) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def snapshot() -> dict[str, object]:
    return {
        "events": Event.objects.count(),
        "ticket_types": TicketType.objects.count(),
        "orders": Order.objects.count(),
        "lines": OrderLine.objects.count(),
        "tickets": Ticket.objects.count(),
        "baskets": Basket.objects.count(),
        "holds": Hold.objects.count(),
        "users": User.objects.count(),
        "sold": sorted(TicketType.objects.values_list("pk", "sold")),
    }


def test_seed_demo_creates_upcoming_events_sold_out_nearly_sold_out_and_not_yet_on_sale():
    seed(admin_password="demo-pass-123")
    now = timezone.now()

    upcoming = list(events_upcoming(now=now))
    assert len(upcoming) >= 4
    assert all(event.is_published and event.starts_at > now for event in upcoming)
    assert all(event.ticket_types.exists() for event in upcoming)
    assert sum(event.sold_out for event in upcoming) >= 1
    assert [e.available for e in upcoming if 0 < e.available <= 5], "one event nearly sold out"
    not_yet = [t for t in TicketType.objects.select_related("event") if t.sale_starts_at and t.sale_starts_at > now]
    assert not_yet
    assert not any(ticket_type_is_on_sale(t, now=now) for t in not_yet)
    assert TicketType.objects.filter(price=0).exists()


def test_seed_demo_sales_are_real_orders_whose_books_balance():
    seed(admin_password="demo-pass-123")

    assert Order.objects.count() > 0
    assert not Hold.objects.exists()  # every demo basket was checked out
    for ticket_type in TicketType.objects.all():
        tickets = Ticket.objects.filter(ticket_type=ticket_type, order__status=Order.Status.PAID).count()
        lines = OrderLine.objects.filter(ticket_type=ticket_type).aggregate(n=Sum("quantity"))["n"] or 0
        assert ticket_type.sold == tickets == lines, ticket_type
        assert ticket_type.sold <= ticket_type.capacity
    for order in Order.objects.prefetch_related("lines"):
        assert order.status == Order.Status.PAID
        assert order.total == sum(line.line_total for line in order.lines.all())
        assert re.fullmatch(r"demo-buyer\d+@example\.com", order.email)
        assert order.name.startswith("Demo Buyer ")
    assert Order.objects.values("email").distinct().count() == Order.objects.count()


def test_seed_demo_queues_no_emails_to_its_demo_buyers():
    seed(admin_password="demo-pass-123")

    assert Order.objects.exists()
    assert not OutboundEmail.objects.exists()  # nothing for the email worker to print or send


def test_seed_demo_twice_creates_nothing_new():
    first = seed(admin_password="demo-pass-123")
    before = snapshot()

    second = seed(admin_password="another-password")

    assert snapshot() == before
    assert "5 created, 0 already present" in first
    assert "0 created, 5 already present" in second
    assert User.objects.get(username="admin").check_password("demo-pass-123")


def test_seed_demo_creates_admin_with_the_given_password():
    out = seed(admin_password="demo-pass-123")

    admin = User.objects.get(username="admin")
    assert (admin.is_superuser, admin.is_staff, admin.is_active) == (True, True, True)
    assert admin.check_password("demo-pass-123")
    assert "Admin: username admin, password demo-pass-123" in out


def test_seed_demo_takes_admin_password_from_environment(monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "from-the-env-456")

    out = seed()

    assert User.objects.get(username="admin").check_password("from-the-env-456")
    assert "Admin: username admin, password from-the-env-456" in out


def test_seed_demo_generates_an_admin_password_when_none_is_given(monkeypatch):
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)

    out = seed()

    match = re.search(r"Admin: username admin, password (\S+)", out)
    assert match
    assert len(match.group(1)) >= 16
    assert User.objects.get(username="admin").check_password(match.group(1))


def test_seed_demo_leaves_an_existing_admin_password_alone(admin_user):
    out = seed(admin_password="would-be-new")

    admin_user.refresh_from_db()
    assert admin_user.check_password("password")  # pytest-django's admin_user password
    assert "already exists; its password is unchanged" in out
    assert "python manage.py changepassword admin" in out
    assert "would-be-new" not in out


def test_seed_demo_fills_only_events_it_creates():
    seed(admin_password="demo-pass-123")
    Event.objects.get(slug="rheinklang-open-air").delete()
    kept = Event.objects.get(slug="lena-hart-unplugged")
    sold_before = kept.ticket_types.get().sold

    out = seed()

    assert "1 created, 4 already present" in out
    assert Event.objects.filter(slug="rheinklang-open-air").exists()
    assert kept.ticket_types.get().sold == sold_before
