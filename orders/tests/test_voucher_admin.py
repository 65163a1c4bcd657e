"""Vouchers in the admin: the list with use and revenue, making many at once, the CSV with redemptions, and edits
that never undo a redemption."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from events.models import Voucher
from events.tests.factories import (
    EventFactory,
    OrganizerFactory,
    TicketTypeFactory,
    VoucherFactory,
    main_organizer,
    organizer,
)
from orders import checkout, services

pytestmark = pytest.mark.django_db


def sell(ticket_type, now, code, quantity=1):
    basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=now, voucher=code)
    return checkout.order_place(token=basket.token, name="Ada", email="a@example.com", payment_method="test", now=now)


def test_the_voucher_list_shows_use_held_and_revenue(admin_client, now):
    ticket_type = TicketTypeFactory(price=Decimal("50.00"))
    VoucherFactory(code="HALF", value=Decimal("50"), max_redemptions=10, comment="for the choir")
    sell(ticket_type, now, "HALF", quantity=2)

    body = admin_client.get(reverse("admin:events_voucher_changelist")).content.decode()

    assert "HALF" in body
    assert "2 / 10" in body
    assert "€50.00" in body
    assert "50 % off" in body
    assert "Make many vouchers" in body


def test_staff_make_many_vouchers_at_once(admin_client):
    event = EventFactory()
    ticket_type = TicketTypeFactory(event=event)
    url = reverse("admin:events_voucher_bulk")
    form = {
        "organizer": main_organizer().pk,
        "event": event.pk,
        "count": 25,
        "discount_type": "fixed",
        "value": "5.00",
        "ticket_types": [ticket_type.pk],
        "max_redemptions": 1,
        "comment": "sponsors",
    }

    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, form)

    assert response.status_code == 302
    made = Voucher.objects.filter(comment="sponsors")
    assert made.count() == 25
    assert len(set(made.values_list("code", flat=True))) == 25
    assert {tuple(v.ticket_types.values_list("pk", flat=True)) for v in made} == {(ticket_type.pk,)}


def test_a_bulk_request_for_another_organizers_event_is_refused(admin_client):
    other = EventFactory(organizer=OrganizerFactory())
    form = {
        "organizer": main_organizer().pk,
        "event": other.pk,
        "count": 2,
        "discount_type": "percent",
        "value": "10",
        "max_redemptions": 1,
    }

    response = admin_client.post(reverse("admin:events_voucher_bulk"), form)

    assert response.status_code == 200
    assert "Not an event of this organizer." in response.content.decode()
    assert not Voucher.objects.exists()


def test_the_csv_export_lists_each_voucher_with_its_redemptions(admin_client, now):
    ticket_type = TicketTypeFactory(price=Decimal("20.00"))
    VoucherFactory(code="USED1", value=Decimal("25"))
    VoucherFactory(code="UNUSED")
    order = sell(ticket_type, now, "USED1", quantity=3).order

    response = admin_client.post(
        reverse("admin:events_voucher_changelist"),
        {"action": "export_vouchers", "_selected_action": [v.pk for v in Voucher.objects.all()]},
    )

    rows = {row["code"]: row for row in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))}
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (rows["USED1"]["redemptions"], rows["USED1"]["revenue"], rows["USED1"]["orders"]) == (
        "3",
        "45.00",
        f"{order.code} ×3",
    )
    assert (rows["UNUSED"]["redemptions"], rows["UNUSED"]["orders"]) == ("0", "")
    assert rows["USED1"]["event"] == "all events"


def test_editing_a_voucher_never_writes_back_its_redemptions(admin_client, now):
    ticket_type = TicketTypeFactory()
    voucher = VoucherFactory(code="EDIT", max_redemptions=5)
    url = reverse("admin:events_voucher_change", args=[voucher.pk])
    page = admin_client.get(url)  # the form is read now, with 0 redeemed
    sell(ticket_type, now, "EDIT", quantity=2)  # a sale commits meanwhile

    form = {
        "organizer": main_organizer().pk,
        "code": "edit",
        "discount_type": "percent",
        "value": "15",
        "max_redemptions": 5,
    }
    response = admin_client.post(url, form)

    assert page.status_code == 200
    assert response.status_code == 302, response.context["adminform"].form.errors
    voucher.refresh_from_db()
    assert (voucher.value, voucher.redeemed) == (Decimal("15.00"), 2)


def test_the_maximum_cannot_drop_below_what_was_used(admin_client, now):
    ticket_type = TicketTypeFactory()
    voucher = VoucherFactory(code="LIMIT", max_redemptions=5)
    sell(ticket_type, now, "LIMIT", quantity=3)
    form = {
        "organizer": main_organizer().pk,
        "code": "LIMIT",
        "discount_type": "percent",
        "value": "10",
        "max_redemptions": 2,
    }

    response = admin_client.post(reverse("admin:events_voucher_change", args=[voucher.pk]), form)

    assert "Already used 3 times." in response.content.decode()
    voucher.refresh_from_db()
    assert voucher.max_redemptions == 5


def test_staff_make_vouchers_only_for_their_own_organizers(client):
    staff = organizer()
    staff.save()
    client.force_login(staff)
    other = OrganizerFactory()
    form = {"organizer": other.pk, "count": 2, "discount_type": "percent", "value": "10", "max_redemptions": 1}

    page = client.get(reverse("admin:events_voucher_bulk")).content.decode()
    response = client.post(reverse("admin:events_voucher_bulk"), form)

    assert other.name not in page
    assert main_organizer().name in page
    assert "Select a valid choice" in response.content.decode()
    assert not Voucher.objects.exists()
