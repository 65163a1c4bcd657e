"""Staff of an organizer see the orders holding tickets of their events and change only what is wholly theirs; door
staff admit only their organizers' tickets. (Every API operation against another organizer's objects:
aegistickets/tests/test_organizer_access.py; the admin: test_admin_scope.py.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from aegistickets.tests.test_organizer_access import assert_problem, database_state, token_client
from events.models import Event, Organizer, TicketType
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, UserFactory, organizer
from orders.models import Order, Ticket
from orders.tests.test_admin import place_order
from orders.tests.test_check_in import door_user

pytestmark = pytest.mark.django_db


@dataclass
class TwoOrganizers:
    """Organizer A (the factories' main one) and B, an event each, and a basket that mixed them."""

    b: Organizer
    a_type: TicketType
    a_other_type: TicketType
    b_type: TicketType
    mixed: Order  # two lines of A's event, one of B's
    only_a: Order
    only_b: Order

    def ticket(self, order: Order, ticket_type: TicketType) -> Ticket:
        return order.tickets.filter(ticket_type=ticket_type).first()  # type: ignore[return-value]


@pytest.fixture
def two(db: None) -> TwoOrganizers:
    b = OrganizerFactory()
    a_event = EventFactory()
    a_type, a_other_type = TicketTypeFactory(event=a_event), TicketTypeFactory(event=a_event)
    b_type = TicketTypeFactory(event=EventFactory(organizer=b))
    return TwoOrganizers(
        b=b,
        a_type=a_type,
        a_other_type=a_other_type,
        b_type=b_type,
        mixed=place_order((a_type, 1), (a_other_type, 1), (b_type, 1)),
        only_a=place_order((a_type, 1)),
        only_b=place_order((b_type, 1)),
    )


def codes(response: Any) -> set[str]:
    return {order["code"] for order in response.json()["orders"]}


def test_each_organizers_staff_list_the_orders_holding_their_events_tickets_each_once(two):
    staff_a = token_client(organizer())
    staff_b = token_client(organizer(of=two.b))

    assert codes(staff_a.get("/api/orders")) == {two.mixed.code, two.only_a.code}
    assert staff_a.get("/api/orders").json()["count"] == 2  # the mixed order's two lines of A: listed once
    assert codes(staff_b.get("/api/orders")) == {two.mixed.code, two.only_b.code}
    assert codes(staff_a.get("/api/orders", {"event": two.b_type.event_id})) == {two.mixed.code}


def test_a_mixed_order_shows_each_organizer_only_its_own_lines_and_tickets(two):
    """A ticket's code admits at its event's door: another organizer's staff never see it."""
    body = token_client(organizer(of=two.b)).get(f"/api/orders/{two.mixed.code}").json()["order"]

    assert [line["ticket_type_id"] for line in body["lines"]] == [two.b_type.pk]
    assert [ticket["code"] for ticket in body["tickets"]] == [two.ticket(two.mixed, two.b_type).code]
    assert body["total"] == str(two.mixed.total)  # the order's own total, whole


def test_the_orders_list_runs_a_fixed_number_of_queries_for_an_organizers_staff(two):
    client = token_client(organizer())
    with CaptureQueriesContext(connection) as few:
        client.get("/api/orders")
    for _ in range(4):
        place_order((two.a_type, 1), (two.b_type, 2))
    with CaptureQueriesContext(connection) as many:
        assert client.get("/api/orders").json()["count"] == 6

    assert len(few) == len(many)


@pytest.mark.parametrize(
    ("path", "body"),
    [("cancel", None), ("refunds", {"amount": "1.00"})],
    ids=["cancel the order", "refund an amount"],
)
def test_a_whole_order_write_needs_every_event_of_the_order(two, path, body):
    clients = [token_client(organizer(refund=True)), token_client(organizer(refund=True, of=two.b))]
    before = database_state()

    for client in clients:
        response = client.post(f"/api/orders/{two.mixed.code}/{path}", body, format="json")
        assert_problem(response, 403, "order_of_other_organizers")
    assert database_state() == before

    both = organizer(refund=True)
    two.b.members.add(both)
    response = token_client(both).post(f"/api/orders/{two.mixed.code}/{path}", body, format="json")
    assert response.status_code in (200, 201), response.content


def test_a_superuser_cancels_a_mixed_order(two):
    response = token_client(UserFactory(is_staff=True, is_superuser=True)).post(f"/api/orders/{two.mixed.code}/cancel")

    assert response.status_code == 200, response.content
    assert Order.objects.get(pk=two.mixed.pk).status == Order.Status.CANCELLED


def test_staff_cancel_their_own_tickets_of_a_mixed_order_and_not_the_others(two):
    client = token_client(organizer(refund=True))
    theirs = two.ticket(two.mixed, two.b_type).code
    unknown = "X" * 26
    before = database_state()

    for named in ([theirs], [unknown]):
        refused = client.post(f"/api/orders/{two.mixed.code}/refunds", {"tickets": named}, format="json")
        body = assert_problem(refused, 400, "validation_error")
        assert body["errors"] == {"tickets": [f"Not tickets of order {two.mixed.code}: {named[0]}."]}
    assert database_state() == before

    own = two.ticket(two.mixed, two.a_type).code
    done = client.post(f"/api/orders/{two.mixed.code}/refunds", {"tickets": [own]}, format="json")
    assert done.status_code == 201, done.content
    assert Ticket.objects.get(code=own).cancelled_at is not None
    assert Ticket.objects.get(code=theirs).cancelled_at is None


# --- check-in -------------------------------------------------------------------------------------------------


def test_door_staff_take_another_organizers_ticket_for_an_unknown_one(two):
    door = token_client(door_user())  # a member of A
    theirs = two.ticket(two.only_b, two.b_type)
    before = database_state()

    refused = door.post("/api/check-ins", {"secret": theirs.code, "event_id": two.b_type.event_id}, format="json")
    made_up = door.post("/api/check-ins", {"secret": "X" * 26, "event_id": two.b_type.event_id}, format="json")

    assert_problem(refused, 404, "not_found")
    assert refused.content == made_up.content
    assert database_state() == before
    own = two.ticket(two.only_a, two.a_type)
    admitted = door.post("/api/check-ins", {"secret": own.code, "event_id": two.a_type.event_id}, format="json")
    assert admitted.status_code == 201, admitted.content


def test_door_staff_of_no_organizer_admit_nobody(two):
    stranger = UserFactory()
    stranger.save()
    stranger.groups.add(*door_user("door-a").groups.all())
    ticket = two.ticket(two.only_a, two.a_type)

    response = token_client(stranger).post(
        "/api/check-ins", {"secret": ticket.code, "event_id": two.a_type.event_id}, format="json"
    )

    assert_problem(response, 404, "not_found")


def test_the_desk_shows_and_admits_only_the_organizers_events(two):
    client = Client()
    client.force_login(door_user())
    a_event, b_event = Event.objects.get(pk=two.a_type.event_id), Event.objects.get(pk=two.b_type.event_id)

    page = client.get("/check-in/").content.decode()
    assert a_event.name in page
    assert b_event.name not in page
    assert client.get("/check-in/", {"event": b_event.pk}).status_code == 404
    assert client.get("/check-in/count/", {"event": b_event.pk}).status_code == 404
    assert client.get("/check-in/count/", {"event": a_event.pk}).status_code == 200

    theirs = two.ticket(two.only_b, two.b_type)
    scanned = client.post(f"/check-in/?event={a_event.pk}", {"secret": theirs.code, "event": a_event.pk})
    assert "Not found" in scanned.content.decode()
    assert not theirs.check_ins.exists()
