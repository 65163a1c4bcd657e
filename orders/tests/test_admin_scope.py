"""The admin shows staff only what belongs to their organizers (OrganizerScopedAdmin): lists, change and delete pages,
actions, exports and the choices of its forms. Superusers see everything (the other admin tests run as one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from aegistickets.tests.test_organizer_access import database_state
from events.admin import OrganizerScopedAdmin
from events.models import Event, Organizer, TicketType, Voucher
from events.tests.factories import (
    EventFactory,
    OrganizerFactory,
    TicketTypeFactory,
    VoucherFactory,
    main_organizer,
    organizer,
)
from orders import services
from orders.models import Basket, Order, OutboundEmail, WaitingListEntry
from orders.tests.test_admin import place_order

pytestmark = pytest.mark.django_db


@dataclass
class Shops:
    """What organizer A (the factories' main one) and organizer B each own, and a basket that mixed them."""

    b: Organizer
    a_event: Event
    b_event: Event
    a_type: TicketType
    b_type: TicketType
    only_a: Order
    only_b: Order
    mixed: Order
    a_basket: Basket
    b_basket: Basket
    a_voucher: Voucher
    b_voucher: Voucher
    a_entry: WaitingListEntry
    b_entry: WaitingListEntry


@pytest.fixture
def shops(db: None) -> Shops:
    b = OrganizerFactory()
    a_type = TicketTypeFactory(event=EventFactory(name="Harbour Nights"))
    b_type = TicketTypeFactory(event=EventFactory(organizer=b, name="Dune Festival"))
    now = timezone.now()

    def basket(ticket_type: TicketType) -> Basket:
        return services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now)

    return Shops(
        b=b,
        a_event=a_type.event,
        b_event=b_type.event,
        a_type=a_type,
        b_type=b_type,
        only_a=place_order((a_type, 1)),
        only_b=place_order((b_type, 1)),
        mixed=place_order((a_type, 1), (b_type, 1)),
        a_basket=basket(a_type),
        b_basket=basket(b_type),
        a_voucher=VoucherFactory(code="HARBOUR"),
        b_voucher=VoucherFactory(code="DUNE", organizer=b),
        a_entry=WaitingListEntry.objects.create(ticket_type=a_type, email="a@example.com", quantity=1, created_at=now),
        b_entry=WaitingListEntry.objects.create(ticket_type=b_type, email="b@example.com", quantity=1, created_at=now),
    )


@pytest.fixture
def staff_a(client: Client) -> Client:
    """Staff of A with every right of the shop's models, refunds included, signed in to the admin."""
    user = organizer(refund=True)
    user.save()  # the factory's password, stored: an admin session checks it
    client.force_login(user)
    return client


def emails_of(order: Order) -> list[Any]:
    return list(OutboundEmail.objects.filter(order=order))


# Per admin: the objects of A staff see, and those of B they must not.
SCOPED: dict[str, Callable[[Shops], tuple[list[Any], list[Any]]]] = {
    "events_organizer": lambda s: ([main_organizer()], [s.b]),
    "events_event": lambda s: ([s.a_event], [s.b_event]),
    "events_tickettype": lambda s: ([s.a_type], [s.b_type]),
    "orders_order": lambda s: ([s.only_a, s.mixed], [s.only_b]),
    "orders_outboundemail": lambda s: ([*emails_of(s.only_a), *emails_of(s.mixed)], emails_of(s.only_b)),
    "orders_basket": lambda s: ([s.a_basket], [s.b_basket]),
    "events_voucher": lambda s: ([s.a_voucher], [s.b_voucher]),
    "orders_waitinglistentry": lambda s: ([s.a_entry], [s.b_entry]),
}


def test_every_admin_of_the_shop_is_scoped_and_tested_here():
    shop_models = [model for model in apps.get_models() if model._meta.app_label in {"events", "orders"}]
    registered = [model for model in shop_models if admin.site.is_registered(model)]

    assert {f"{model._meta.app_label}_{model._meta.model_name}" for model in registered} == set(SCOPED)
    assert all(isinstance(admin.site.get_model_admin(model), OrganizerScopedAdmin) for model in registered)


@pytest.mark.parametrize("name", SCOPED)
def test_a_changelist_shows_only_the_organizers_own_rows(staff_a, shops, name):
    own, _ = SCOPED[name](shops)

    response = staff_a.get(reverse(f"admin:{name}_changelist"))

    assert response.status_code == 200
    assert sorted(row.pk for row in response.context["cl"].result_list) == sorted(row.pk for row in own)


@pytest.mark.parametrize("name", SCOPED)
def test_another_organizers_object_is_not_found_and_nothing_changes(staff_a, shops, name):
    _, theirs = SCOPED[name](shops)
    before = database_state()

    for obj in theirs:
        for view in ("change", "delete", "history"):
            url = reverse(f"admin:{name}_{view}", args=[obj.pk])
            response = staff_a.get(url)
            # "…doesn't exist. Perhaps it was deleted?", or 403 where the admin deletes nothing of the kind anyway.
            assert response.status_code == 403 or response.url == reverse("admin:index"), (view, obj)
            staff_a.post(url, {"post": "yes", "name": "Taken over"})

    assert database_state() == before


def event_action(client: Client, action: str, event: Event, **extra: str) -> Any:
    return client.post(
        reverse("admin:events_event_changelist"), {"action": action, "_selected_action": [event.pk], **extra}
    )


@pytest.mark.parametrize("action", ["export_event_orders", "export_event_attendees", "cancel_event"])
def test_the_event_actions_reach_only_the_organizers_events(staff_a, shops, action):
    before = database_state()

    response = event_action(staff_a, action, shops.b_event, confirmed="yes")

    assert response.status_code == 302  # back to the list: no such event selected; no CSV, no confirmation page
    assert database_state() == before
    own = event_action(staff_a, action, shops.a_event)
    assert own.status_code == 200
    assert shops.b_event.name not in b"".join(own.streaming_content if own.streaming else [own.content]).decode()


def test_the_event_form_offers_only_the_users_organizers(staff_a, shops):
    form = staff_a.get(reverse("admin:events_event_add")).context["adminform"].form

    assert list(form.fields["organizer"].queryset) == [main_organizer()]


def test_the_order_list_filters_by_the_users_events_only(staff_a, shops):
    page = staff_a.get(reverse("admin:orders_order_changelist")).content.decode()

    assert shops.a_event.name in page
    assert shops.b_event.name not in page


def test_a_mixed_orders_page_shows_only_the_users_tickets(staff_a, shops):
    page = staff_a.get(reverse("admin:orders_order_change", args=[shops.mixed.pk])).content.decode()

    assert shops.mixed.tickets.get(ticket_type=shops.a_type).code in page
    assert shops.mixed.tickets.get(ticket_type=shops.b_type).code not in page


def test_a_mixed_order_is_not_cancelled_by_one_organizers_staff(staff_a, shops):
    before = database_state()

    response = staff_a.post(
        reverse("admin:orders_order_changelist"),
        {"action": "cancel_orders", "_selected_action": [shops.mixed.pk]},
        follow=True,
    )

    assert "another organizer" in response.content.decode()
    assert database_state() == before


def test_the_partial_refund_page_offers_only_the_users_tickets_of_a_mixed_order(staff_a, shops):
    page = staff_a.post(
        reverse("admin:orders_order_changelist"), {"action": "refund_part", "_selected_action": [shops.mixed.pk]}
    )

    choices = [code for code, _ in page.context["form"].fields["tickets"].choices]
    assert choices == [shops.mixed.tickets.get(ticket_type=shops.a_type).code]
