"""The orders admin: find orders, cancel them through the service, never edit, add or delete them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from events.models import TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, services
from orders.models import Basket, Order

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_order_changelist"


def place_order(*items: tuple[TicketType, int], email: str = "ada@example.com") -> Order:
    now = timezone.now()
    token = None
    for ticket_type, quantity in items:
        token = services.basket_add(token=token, ticket_type_id=ticket_type.pk, quantity=quantity, now=now).token
    assert token is not None
    return checkout.order_place(token=token, name="Ada Lovelace", email=email, payment_method="test", now=now).order


def result_codes(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [order.code for order in response.context["cl"].result_list]


def shown_messages(response) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return [(message.level, message.message) for message in response.context["messages"]]


def cancel_via_admin(client, *orders: Order):  # type: ignore[no-untyped-def]
    return client.post(
        reverse(CHANGELIST),
        {"action": "cancel_orders", "_selected_action": [order.pk for order in orders]},
        follow=True,
    )


def test_order_changelist_lists_orders(admin_client, ticket_type):
    order = place_order((ticket_type, 2), email="grace@example.com")

    response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    html = response.content.decode()
    assert order.code in html
    assert "grace@example.com" in html
    assert "50.00" in html


def test_order_changelist_query_count_does_not_grow_with_rows(admin_client):
    def changelist_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(reverse(CHANGELIST))
        assert response.status_code == 200
        return len(queries)

    def add_orders(count: int) -> None:
        for n in range(count):
            ticket_type = TicketTypeFactory()
            place_order((ticket_type, 2), email=f"buyer{n}@example.com")

    add_orders(2)
    few = changelist_queries()
    add_orders(10)
    many = changelist_queries()

    assert Order.objects.count() == 12
    assert many == few


def test_order_change_page_query_count_does_not_grow_with_tickets(admin_client):
    def change_page_queries(order: Order) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(reverse("admin:orders_order_change", args=[order.pk]))
        assert response.status_code == 200
        return len(queries)

    small = place_order((TicketTypeFactory(), 1))
    big = place_order((TicketTypeFactory(), 10), (TicketTypeFactory(), 10), (TicketTypeFactory(), 5))
    change_page_queries(small)  # warms Django's content-type cache

    assert change_page_queries(big) == change_page_queries(small)


def test_search_by_code_and_by_email(admin_client, ticket_type):
    ada = place_order((ticket_type, 1), email="ada@example.com")
    grace = place_order((ticket_type, 1), email="grace@example.com")

    by_code = admin_client.get(reverse(CHANGELIST), {"q": grace.code})
    by_email = admin_client.get(reverse(CHANGELIST), {"q": "ada@example"})

    assert result_codes(by_code) == [grace.code]
    assert result_codes(by_email) == [ada.code]


def test_event_filter_lists_each_order_with_a_line_of_that_event_once(admin_client):
    jazz, opera = EventFactory(name="Jazz Night"), EventFactory(name="Opera Gala")
    standing, seated = TicketTypeFactory(event=jazz), TicketTypeFactory(event=jazz)
    stalls = TicketTypeFactory(event=opera)
    jazz_only = place_order((standing, 1))
    both_jazz_types = place_order((standing, 1), (seated, 2))  # two lines of the same event
    mixed = place_order((seated, 1), (stalls, 1))
    opera_only = place_order((stalls, 3))

    jazz_orders = admin_client.get(reverse(CHANGELIST), {"event": jazz.pk})
    opera_orders = admin_client.get(reverse(CHANGELIST), {"event": opera.pk})

    assert sorted(result_codes(jazz_orders)) == sorted([jazz_only.code, both_jazz_types.code, mixed.code])
    assert sorted(result_codes(opera_orders)) == sorted([mixed.code, opera_only.code])
    assert "Jazz Night" in jazz_orders.content.decode()  # offered as a filter choice


def test_event_filter_with_garbage_value_is_refused_not_crashed(admin_client, ticket_type):
    place_order((ticket_type, 1))

    response = admin_client.get(reverse(CHANGELIST), {"event": "not-a-number"})

    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_status_filter(admin_client, ticket_type):
    paid = place_order((ticket_type, 1))
    cancelled = place_order((ticket_type, 1))
    services.order_cancel(order_id=cancelled.pk, now=timezone.now())

    response = admin_client.get(reverse(CHANGELIST), {"status__exact": "cancelled"})

    assert result_codes(response) == [cancelled.code]
    assert paid.code not in result_codes(response)


def test_cancel_action_cancels_a_paid_order_and_returns_its_seats(admin_client, ticket_type):
    order = place_order((ticket_type, 3))
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 3

    response = cancel_via_admin(admin_client, order)

    assert response.status_code == 200
    order.refresh_from_db()
    ticket_type.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert order.cancelled_at is not None
    assert ticket_type.sold == 0
    assert shown_messages(response) == [
        (messages.SUCCESS, f"Cancelled 1 order(s); their seats are back on sale: {order.code}.")
    ]


def test_cancel_action_on_a_cancelled_order_warns_and_changes_nothing(admin_client, ticket_type):
    order = place_order((ticket_type, 2))
    services.order_cancel(order_id=order.pk, now=timezone.now() - timedelta(hours=1))
    order.refresh_from_db()
    cancelled_at = order.cancelled_at

    response = cancel_via_admin(admin_client, order)

    assert response.status_code == 200
    order.refresh_from_db()
    ticket_type.refresh_from_db()
    assert (order.status, order.cancelled_at) == (Order.Status.CANCELLED, cancelled_at)
    assert ticket_type.sold == 0  # not returned twice
    [(level, text)] = shown_messages(response)
    assert level == messages.WARNING
    assert f"Could not cancel 1 order(s): {order.code}" in text
    assert "only paid orders can be cancelled" in text


def test_cancel_action_reports_successes_and_failures_together(admin_client, ticket_type):
    paid = place_order((ticket_type, 1))
    already = place_order((ticket_type, 1))
    services.order_cancel(order_id=already.pk, now=timezone.now())

    response = cancel_via_admin(admin_client, paid, already)

    assert [level for level, _ in shown_messages(response)] == [messages.SUCCESS, messages.WARNING]
    assert Order.objects.filter(status=Order.Status.CANCELLED).count() == 2
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 0


def test_orders_cannot_be_added_edited_or_deleted_in_admin(admin_client, ticket_type):
    order = place_order((ticket_type, 1))
    change_url = reverse("admin:orders_order_change", args=[order.pk])

    assert admin_client.get(reverse("admin:orders_order_add")).status_code == 403
    assert admin_client.get(reverse("admin:orders_order_delete", args=[order.pk])).status_code == 403
    assert admin_client.post(change_url, {"status": "refunded", "name": "Mallory"}).status_code == 403
    actions = dict(admin_client.get(reverse(CHANGELIST)).context["action_form"].fields["action"].choices)
    assert "delete_selected" not in actions
    assert "cancel_orders" in actions
    order.refresh_from_db()
    assert (order.status, order.name) == (Order.Status.PAID, "Ada Lovelace")


def test_order_page_shows_lines_and_tickets_read_only(admin_client, ticket_type):
    order = place_order((ticket_type, 2))

    response = admin_client.get(reverse("admin:orders_order_change", args=[order.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    for ticket in order.tickets.all():
        assert ticket.code in html
    assert str(ticket_type) in html
    assert "50.00" in html  # line total: 2 × 25.00
    assert 'name="_save"' not in html
    assert order.secret not in html  # the shopper's private link stays private


def test_basket_admin_shows_holds_for_support_without_revealing_the_token(admin_client, ticket_type):
    now = timezone.now()
    basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=2, now=now)

    changelist = admin_client.get(reverse("admin:orders_basket_changelist"))
    found = admin_client.get(reverse("admin:orders_basket_changelist"), {"q": basket.token})
    page = admin_client.get(reverse("admin:orders_basket_change", args=[basket.pk]))

    assert changelist.status_code == 200
    assert [b.pk for b in found.context["cl"].result_list] == [basket.pk]
    assert page.status_code == 200
    assert str(ticket_type) in page.content.decode()
    for response in (changelist, page):  # (a search result page echoes the token staff typed in)
        assert basket.token not in response.content.decode()
    assert admin_client.get(reverse("admin:orders_basket_add")).status_code == 403
    assert admin_client.post(reverse("admin:orders_basket_delete", args=[basket.pk])).status_code == 403
    assert Basket.objects.filter(pk=basket.pk).exists()
