"""Check-in at the door: each paid ticket admits once, for its own event; the API and the staff page agree."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory, main_organizer
from orders import checkout, selectors, services
from orders.models import CheckIn, Order, Ticket
from orders.tests.test_concurrency import run_at_once

URL = "/api/check-ins"
DESK = "/check-in/"


def paid_order(ticket_type, quantity: int = 1) -> Order:
    now = timezone.now()
    token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=now).token
    return checkout.order_place(
        token=token, name="Ada Lovelace", email="ada@example.com", payment_method="test", now=now
    ).order


def door_user(username: str = "door1"):  # type: ignore[no-untyped-def]
    user = UserFactory(username=username)
    user.save()  # the factory sets the password without saving it
    # get_or_create: a transactional test flushes the group the migration made.
    user.groups.add(Group.objects.get_or_create(name=selectors.DOOR_STAFF_GROUP)[0])
    main_organizer().members.add(user)  # the organizer of the factories' events
    return user


def token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def door(db):  # type: ignore[no-untyped-def]
    return token_client(door_user())


@pytest.mark.django_db
class TestCheckInApi:
    def test_first_scan_is_valid_and_records_who_and_when(self, door, ticket_type):
        ticket = paid_order(ticket_type).tickets.get()

        response = door.post(URL, {"secret": ticket.code, "event_id": ticket_type.event_id}, format="json")

        assert response.status_code == 201
        body = response.json()
        assert body["result"] == "valid"
        assert body["ticket"]["code"] == ticket.code
        assert body["ticket"]["event_id"] == ticket_type.event_id
        assert body["ticket"]["ticket_type_name"] == ticket_type.name
        assert body["ticket"]["name"] == "Ada Lovelace"
        check_in = CheckIn.objects.get()
        assert (check_in.ticket, check_in.event_id, check_in.checked_in_by.username) == (
            ticket,
            ticket.ticket_type.event_id,
            "door1",
        )
        assert datetime.fromisoformat(body["checked_in_at"]) == check_in.checked_in_at

    def test_second_scan_is_already_checked_in_with_when_and_by_whom(self, door, ticket_type):
        ticket = paid_order(ticket_type).tickets.get()
        door.post(URL, {"secret": ticket.code, "event_id": ticket_type.event_id}, format="json")
        other_door = token_client(door_user("door2"))

        response = other_door.post(URL, {"secret": ticket.code, "event_id": ticket_type.event_id}, format="json")

        assert response.status_code == 409
        assert response["Content-Type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "already_checked_in"
        assert body["checked_in_by"] == "door1"
        assert datetime.fromisoformat(body["checked_in_at"]) == CheckIn.objects.get().checked_in_at
        assert CheckIn.objects.count() == 1

    def test_lowercase_and_spaces_from_a_scanner_still_match(self, door, ticket_type):
        ticket = paid_order(ticket_type).tickets.get()
        typed = f" {ticket.code[:13].lower()} {ticket.code[13:]} "

        response = door.post(URL, {"secret": typed, "event_id": ticket_type.event_id}, format="json")

        assert response.status_code == 201

    def test_a_cancelled_orders_ticket_is_refused(self, door, ticket_type):
        order = paid_order(ticket_type)
        services.order_cancel(order_id=order.pk, now=timezone.now())

        response = door.post(URL, {"secret": order.tickets.get().code, "event_id": ticket_type.event_id}, format="json")

        assert response.status_code == 409
        assert response.json()["code"] == "ticket_cancelled"
        assert not CheckIn.objects.exists()

    def test_a_ticket_for_another_event_is_refused(self, door, ticket_type):
        ticket = paid_order(ticket_type).tickets.get()
        other = EventFactory(name="Other Night")

        response = door.post(URL, {"secret": ticket.code, "event_id": other.pk}, format="json")

        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "wrong_event"
        assert body["ticket_event_id"] == ticket_type.event_id
        assert not CheckIn.objects.exists()

    def test_an_unknown_secret_is_not_found(self, door, ticket_type):
        paid_order(ticket_type)

        response = door.post(URL, {"secret": "2" * 26, "event_id": ticket_type.event_id}, format="json")

        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_missing_fields_are_a_validation_error(self, door):
        response = door.post(URL, {"secret": ""}, format="json")

        assert response.status_code == 400
        assert set(response.json()["errors"]) == {"secret", "event_id"}

    def test_values_of_the_wrong_json_type_are_a_validation_error(self, door, ticket_type):
        ticket = paid_order(ticket_type).tickets.get()

        response = door.post(URL, {"secret": 12345, "event_id": str(ticket_type.event_id)}, format="json")

        assert response.status_code == 400
        assert set(response.json()["errors"]) == {"secret", "event_id"}
        assert not CheckIn.objects.filter(ticket=ticket).exists()

    def test_staff_may_check_in(self, staff_api, ticket_type):
        ticket = paid_order(ticket_type).tickets.get()

        response = staff_api.post(URL, {"secret": ticket.code, "event_id": ticket_type.event_id}, format="json")

        assert response.status_code == 201

    def test_anonymous_and_plain_users_may_not(self, api, ticket_type):
        ticket = paid_order(ticket_type).tickets.get()
        payload = {"secret": ticket.code, "event_id": ticket_type.event_id}

        assert api.post(URL, payload, format="json").status_code == 401
        assert token_client(UserFactory()).post(URL, payload, format="json").status_code == 403
        assert not CheckIn.objects.exists()

    def test_the_database_refuses_a_second_check_in_row(self, ticket_type):
        ticket = paid_order(ticket_type).tickets.get()
        CheckIn.objects.create(ticket=ticket, event_id=ticket_type.event_id, checked_in_at=timezone.now())

        with pytest.raises(IntegrityError), transaction.atomic():
            CheckIn.objects.create(ticket=ticket, event_id=ticket_type.event_id, checked_in_at=timezone.now())


@pytest.mark.django_db
def test_the_migration_creates_the_door_staff_group():
    assert Group.objects.filter(name="door staff").exists()


@pytest.mark.django_db
class TestDoorCounter:
    def test_counts_checked_in_of_sold_per_event(self, ticket_type):
        tickets = list(paid_order(ticket_type, 3).tickets.all())
        cancelled = paid_order(ticket_type, 2)
        services.order_cancel(order_id=cancelled.pk, now=timezone.now())
        quiet = TicketTypeFactory(event=EventFactory(), capacity=5)
        paid_order(quiet, 1)
        user = door_user()
        for ticket in tickets[:2]:
            services.ticket_check_in(secret=ticket.code, event_id=ticket_type.event_id, user=user, now=timezone.now())

        counts = {
            count.event.pk: (count.checked_in, count.sold)
            for count in selectors.door_counts(user=user, now=timezone.now())
        }

        assert counts[ticket_type.event_id] == (2, 3)
        assert counts[quiet.event_id] == (0, 1)

    def test_one_query_whatever_the_number_of_events(self, django_assert_num_queries):
        for _ in range(4):
            paid_order(TicketTypeFactory(event=EventFactory(), capacity=5), 2)
        user = door_user()
        with django_assert_num_queries(1):
            assert len(selectors.door_counts(user=user, now=timezone.now())) == 4


@pytest.mark.django_db
class TestDesk:
    def login(self, client: Client, user) -> None:  # type: ignore[no-untyped-def]
        client.force_login(user)

    def scan(self, client: Client, ticket_type, secret: str) -> str:  # type: ignore[no-untyped-def]
        response = client.post(DESK, {"event": ticket_type.event_id, "secret": secret})
        assert response.status_code == 200
        return response.content.decode()

    def test_anonymous_is_sent_to_sign_in(self, client: Client):
        response = client.get(DESK)

        assert response.status_code == 302
        assert response["Location"].startswith("/check-in/login/?next=/check-in/")

    def test_a_plain_user_is_refused(self, client: Client):
        client.force_login(UserFactory())

        assert client.get(DESK).status_code == 302

    def test_door_staff_sign_in_and_see_the_events_with_counters(self, client: Client, ticket_type):
        paid_order(ticket_type, 2)
        door_user()

        response = client.post(
            "/check-in/login/", {"username": "door1", "password": "correct-horse-battery", "next": DESK}
        )
        assert response.status_code == 302
        body = client.get(DESK).content.decode()

        assert ticket_type.event.name in body
        assert "<strong>0</strong> / 2 checked in" in body

    def test_scans_show_big_coloured_words_and_the_counter_moves(self, client: Client, ticket_type):
        order = paid_order(ticket_type, 2)
        first, second = order.tickets.all()
        self.login(client, door_user())

        page = client.get(f"{DESK}?event={ticket_type.event_id}").content.decode()
        assert 'name="secret"' in page
        assert "autofocus" in page
        assert "<strong data-checked-in>0</strong> checked in of <strong data-sold>2</strong> sold" in page

        body = self.scan(client, ticket_type, first.code)
        assert 'class="checkin-result checkin-result--valid"' in body
        assert "Valid — admit" in body
        assert "<strong data-checked-in>1</strong> checked in of <strong data-sold>2</strong> sold" in body

        body = self.scan(client, ticket_type, first.code)
        assert "checkin-result--already_checked_in" in body
        assert "by door1" in body

        body = self.scan(client, ticket_type, "NOPE")
        assert "checkin-result--not_found" in body

        other = TicketTypeFactory(event=EventFactory(), capacity=5)
        body = self.scan(client, other, second.code)
        assert "checkin-result--wrong_event" in body

        services.order_cancel(order_id=order.pk, now=timezone.now())
        body = self.scan(client, ticket_type, second.code)
        assert "checkin-result--ticket_cancelled" in body
        assert CheckIn.objects.count() == 1

    def test_no_inline_style_or_script(self, client: Client, ticket_type):
        ticket = paid_order(ticket_type).tickets.get()
        self.login(client, door_user())

        body = self.scan(client, ticket_type, ticket.code)

        assert "style=" not in body
        assert "<script>" not in body.replace(" ", "")

    def test_the_live_counter_endpoint_answers_door_staff_only(self, client: Client, ticket_type):
        ticket = paid_order(ticket_type, 3).tickets.first()
        user = door_user()
        services.ticket_check_in(secret=ticket.code, event_id=ticket_type.event_id, user=user, now=timezone.now())
        url = f"/check-in/count/?event={ticket_type.event_id}"

        assert client.get(url).status_code == 302
        self.login(client, user)
        response = client.get(url)

        assert response.json() == {"event_id": ticket_type.event_id, "checked_in": 1, "sold": 3}
        assert client.get("/check-in/count/?event=999999").status_code == 404

    def test_an_unknown_event_is_a_404(self, client: Client):
        self.login(client, door_user())

        assert client.get(f"{DESK}?event=999999").status_code == 404


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_doors_scanning_the_same_ticket_at_once_admit_it_once():
    """Twelve doors, one ticket, released by a barrier: exactly one 201; every other door gets a clean 409."""
    ticket_type = TicketTypeFactory(event=EventFactory(), capacity=10)
    ticket = paid_order(ticket_type).tickets.get()
    doors = [token_client(door_user(f"door{i}")) for i in range(12)]

    results = run_at_once(
        len(doors),
        lambda i: doors[i].post(URL, {"secret": ticket.code, "event_id": ticket_type.event_id}, format="json"),
    )

    assert not [r for r in results if isinstance(r, Exception)]
    statuses = Counter(r.status_code for r in results)
    assert statuses == {201: 1, 409: 11}
    codes = {r.json()["code"] for r in results if r.status_code == 409}
    assert codes == {"already_checked_in"}
    check_in = CheckIn.objects.select_related("checked_in_by").get()
    winner = next(r for r in results if r.status_code == 201)
    assert {r.json()["checked_in_by"] for r in results if r.status_code == 409} == {check_in.checked_in_by.username}
    assert winner.json()["ticket"]["code"] == ticket.code
    assert Ticket.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_control_without_the_unique_constraint_the_same_race_admits_twice():
    """The control: drop the constraint and the same scans admit the ticket many times, so the test above
    would catch a check-in that relied on anything weaker than the database."""
    ticket_type = TicketTypeFactory(event=EventFactory(), capacity=10)
    ticket = paid_order(ticket_type).tickets.get()
    doors = [token_client(door_user(f"door{i}")) for i in range(6)]
    table = CheckIn._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT checkin_one_per_ticket")
    try:
        results = run_at_once(
            len(doors),
            lambda i: doors[i].post(URL, {"secret": ticket.code, "event_id": ticket_type.event_id}, format="json"),
        )
        admitted = [r for r in results if not isinstance(r, Exception) and r.status_code == 201]
        assert len(admitted) > 1
        assert CheckIn.objects.filter(ticket=ticket).count() == len(admitted)
    finally:
        CheckIn.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT checkin_one_per_ticket UNIQUE (ticket_id)")
