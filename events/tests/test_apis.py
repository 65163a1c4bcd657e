"""Catalog API: public reads and organizer writes, their happy paths and their errors."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.models import Event, TicketType
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, UserFactory, main_organizer
from orders import checkout
from orders import services as order_services

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def assert_problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["title"]
    assert body["detail"]
    return body


# --- GET /api/events ----------------------------------------------------------------------------------


def test_list_shows_upcoming_published_events_soonest_first(api):
    now = timezone.now()
    later = EventFactory(name="Later", starts_at=now + timedelta(days=20))
    sooner = EventFactory(name="Sooner", starts_at=now + timedelta(days=2))
    EventFactory(name="Hidden", is_published=False)
    EventFactory(name="Over", starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    TicketTypeFactory(event=sooner, price=Decimal("30.00"), capacity=10)
    TicketTypeFactory(event=sooner, price=Decimal("12.50"), capacity=5)

    response = api.get("/api/events")

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    assert [e["name"] for e in body["events"]] == ["Sooner", "Later"]
    first = body["events"][0]
    assert set(first) == {
        "id", "slug", "name", "venue", "city", "starts_at", "ends_at",
        "price_from", "currency", "available", "sold_out", "url",
    }  # fmt: skip
    assert first["price_from"] == "12.50"
    assert first["currency"] == "EUR"
    assert first["available"] == 15
    assert first["sold_out"] is False
    assert first["url"] == f"/events/{sooner.slug}/"
    assert body["events"][1]["id"] == later.pk


def test_list_availability_counts_holds_and_sales(api):
    ticket_type = TicketTypeFactory(capacity=3)
    now = timezone.now()
    basket = order_services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=2, now=now)
    checkout.order_place(token=basket.token, name="A", email="a@example.com", payment_method="test", now=now)
    order_services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now)
    event = api.get("/api/events").json()["events"][0]
    assert (event["available"], event["sold_out"]) == (0, True)


def test_list_search_matches_name_venue_and_city(api):
    EventFactory(name="Jazz Night", venue="Blue Note", city="Munich")
    EventFactory(name="Rock Show", venue="Arena", city="Hamburg")
    assert [e["name"] for e in api.get("/api/events", {"search": "jazz"}).json()["events"]] == ["Jazz Night"]
    assert [e["name"] for e in api.get("/api/events", {"search": "arena"}).json()["events"]] == ["Rock Show"]
    assert [e["name"] for e in api.get("/api/events", {"search": "MUNICH"}).json()["events"]] == ["Jazz Night"]
    assert api.get("/api/events", {"search": "nothing"}).json()["count"] == 0


def test_list_is_paginated(api, settings):
    settings.EVENTS_PAGE_SIZE = 2
    EventFactory.create_batch(5)
    first = api.get("/api/events").json()
    assert (first["count"], len(first["events"]), first["previous"]) == (5, 2, None)
    assert first["next"].endswith("/api/events?page=2")
    last = api.get("/api/events", {"page": 3}).json()
    assert (len(last["events"]), last["next"]) == (1, None)
    assert_problem(api.get("/api/events", {"page": 9}), 404, "not_found")


def test_list_runs_a_constant_number_of_queries(api):
    def queries_for_list():
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/api/events").status_code == 200
        return len(ctx)

    TicketTypeFactory.create_batch(2)
    few = queries_for_list()
    for event in EventFactory.create_batch(8):
        TicketTypeFactory.create_batch(3, event=event)
    assert queries_for_list() == few == 2


@pytest.mark.parametrize("search", ["x" * 101, "a\x00b"])
def test_list_rejects_bad_search(api, search):
    body = assert_problem(api.get("/api/events", {"search": search}), 400, "validation_error")
    assert "search" in body["errors"]


@pytest.mark.parametrize("page", ["", "abc", "0", "-1", "last", "1e3"])
def test_list_rejects_a_page_that_is_not_a_positive_integer(api, page):
    """Found by `make fuzz` (ST201): `?page=` (empty) was taken for page 1 and `?page=last` for the last page,
    though the schema documents a positive integer; anything else was a 404 for a page that was never asked for."""
    EventFactory()
    body = assert_problem(api.get("/api/events", {"page": page}), 400, "validation_error")
    assert "page" in body["errors"]


# --- GET /api/events/{id} -----------------------------------------------------------------------------


def test_detail_shows_ticket_types_with_live_availability(api):
    now = timezone.now()
    event = EventFactory(description="Bring earplugs.")
    standard = TicketTypeFactory(event=event, name="Standard", price=Decimal("20.00"), capacity=10, position=0)
    TicketTypeFactory(event=event, name="Early", capacity=5, position=1, sale_starts_at=now + timedelta(days=1))
    order_services.basket_add(token=None, ticket_type_id=standard.pk, quantity=4, now=now)

    response = api.get(f"/api/events/{event.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "Bring earplugs."
    assert body["available"] == 11
    first, second = body["ticket_types"]
    assert set(first) == {
        "id", "name", "description", "price", "currency", "available", "max_per_order",
        "on_sale", "sale_starts_at", "sale_ends_at",
    }  # fmt: skip
    assert (first["name"], first["price"], first["available"], first["on_sale"]) == ("Standard", "20.00", 6, True)
    assert (second["name"], second["on_sale"]) == ("Early", False)
    assert second["sale_starts_at"] is not None


def test_detail_runs_a_constant_number_of_queries(api):
    event = EventFactory()
    TicketTypeFactory(event=event)
    with CaptureQueriesContext(connection) as few:
        api.get(f"/api/events/{event.pk}")
    TicketTypeFactory.create_batch(10, event=event)
    with CaptureQueriesContext(connection) as many:
        api.get(f"/api/events/{event.pk}")
    assert len(few) == len(many) == 2


@pytest.mark.parametrize("path", ["/api/events/999999", "/api/events/99999999999999999999999", "/api/events/abc"])
def test_detail_of_unknown_event_is_404(api, path):
    assert_problem(api.get(path), 404, "not_found")


def test_detail_of_unpublished_event_is_404(api):
    assert_problem(api.get(f"/api/events/{EventFactory(is_published=False).pk}"), 404, "not_found")


# --- organizer: auth ----------------------------------------------------------------------------------

ORGANIZER_CALLS = [
    ("post", "/api/events", {}),
    ("patch", "/api/events/{event}", {}),
    ("post", "/api/events/{event}/ticket-types", {}),
    ("get", "/api/ticket-types/{ticket_type}", None),
    ("patch", "/api/ticket-types/{ticket_type}", {}),
    ("get", "/api/orders", None),
    ("get", "/api/orders/AT-XXXXXX", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ORGANIZER_CALLS)
def test_organizer_endpoints_need_a_token(api, ticket_type, method, path, body):
    url = path.format(event=ticket_type.event_id, ticket_type=ticket_type.pk)
    response = getattr(api, method)(url, body, format="json")
    assert_problem(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize(("method", "path", "body"), ORGANIZER_CALLS)
def test_organizer_endpoints_refuse_non_staff(api, ticket_type, method, path, body):
    token = Token.objects.create(user=UserFactory(is_staff=False))
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    url = path.format(event=ticket_type.event_id, ticket_type=ticket_type.pk)
    assert_problem(getattr(api, method)(url, body, format="json"), 403, "permission_denied")


def test_a_wrong_token_is_401(api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_problem(api.get("/api/orders"), 401, "authentication_failed")


# --- organizer: events and ticket types ---------------------------------------------------------------

EVENT_BODY = {
    "name": "Summer Festival",
    "venue": "Tempelhofer Feld",
    "city": "Berlin",
    "starts_at": "2030-07-01T18:00:00+02:00",
    "ends_at": "2030-07-01T23:00:00+02:00",
    "description": "Open air.",
}


def test_create_event(staff_api):
    response = staff_api.post("/api/events", EVENT_BODY, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    event = Event.objects.get(pk=body["id"])
    assert (event.name, event.slug, event.is_published) == ("Summer Festival", "summer-festival", False)
    assert body["url"] == "/events/summer-festival/"
    second = staff_api.post("/api/events", EVENT_BODY, format="json").json()
    assert second["slug"] == "summer-festival-2"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": "2030-07-01T17:00:00+02:00"}, "ends_at"),
        ({"starts_at": "tomorrow"}, "starts_at"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"venue": None}, "venue"),
        ({"slug": "not a slug!"}, "slug"),
        ({"is_published": "maybe"}, "is_published"),
    ],
)
def test_create_event_validation(staff_api, change, field):
    body = assert_problem(
        staff_api.post("/api/events", {**EVENT_BODY, **change}, format="json"), 400, "validation_error"
    )
    assert field in body["errors"]
    assert not Event.objects.exists()


def test_update_event(staff_api, event):
    response = staff_api.patch(f"/api/events/{event.pk}", {"is_published": False, "city": "Köln"}, format="json")
    assert response.status_code == 200
    event.refresh_from_db()
    assert (event.is_published, event.city) == (False, "Köln")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 12}, "name"),
        ({"city": 5.5}, "city"),
        ({"slug": 2030}, "slug"),
        ({"is_published": "true"}, "is_published"),
        ({"is_published": 1}, "is_published"),
    ],
)
def test_update_event_refuses_values_of_the_wrong_json_type(staff_api, event, body, field):
    before = Event.objects.values().get(pk=event.pk)
    response = staff_api.patch(f"/api/events/{event.pk}", body, format="json")
    assert list(assert_problem(response, 400, "validation_error")["errors"]) == [field]
    assert Event.objects.values().get(pk=event.pk) == before


@pytest.mark.parametrize("padding", ["\u0085", " ", "\t", "\n"])
def test_update_event_counts_a_text_length_before_trimming_whitespace(staff_api, event, padding):
    """The schema's maxLength is of the value sent: one character too long is refused even when DRF would trim it
    away (U+0085, NEL, is whitespace to str.strip)."""
    before = Event.objects.values().get(pk=event.pk)
    response = staff_api.patch(f"/api/events/{event.pk}", {"venue": padding + "x" * 200}, format="json")
    assert list(assert_problem(response, 400, "validation_error")["errors"]) == ["venue"]
    assert Event.objects.values().get(pk=event.pk) == before


def test_update_event_cannot_end_before_it_starts(staff_api, event):
    response = staff_api.patch(f"/api/events/{event.pk}", {"ends_at": event.starts_at.isoformat()}, format="json")
    assert_problem(response, 400, "validation_error")


def test_organizers_set_until_when_buyers_may_cancel_at_the_latest_when_it_starts(staff_api, event):
    until = (event.starts_at - timedelta(days=2)).isoformat()
    response = staff_api.patch(f"/api/events/{event.pk}", {"buyer_cancellation_until": until}, format="json")
    assert response.status_code == 200
    assert response.json()["buyer_cancellation_until"] is not None
    event.refresh_from_db()
    assert event.buyer_cancellation_until == event.starts_at - timedelta(days=2)

    late = (event.starts_at + timedelta(minutes=1)).isoformat()
    refused = staff_api.patch(f"/api/events/{event.pk}", {"buyer_cancellation_until": late}, format="json")
    assert list(assert_problem(refused, 400, "validation_error")["errors"]) == ["buyer_cancellation_until"]
    # Moving the start before the deadline is refused too: the deadline is checked against the event as saved.
    earlier = (event.starts_at - timedelta(days=3)).isoformat()
    moved = staff_api.patch(f"/api/events/{event.pk}", {"starts_at": earlier}, format="json")
    assert list(assert_problem(moved, 400, "validation_error")["errors"]) == ["buyer_cancellation_until"]
    cleared = staff_api.patch(f"/api/events/{event.pk}", {"buyer_cancellation_until": None}, format="json")
    assert cleared.json()["buyer_cancellation_until"] is None


def test_update_event_slug_taken(staff_api, event):
    other = EventFactory()
    response = staff_api.patch(f"/api/events/{event.pk}", {"slug": other.slug}, format="json")
    assert "slug" in assert_problem(response, 400, "validation_error")["errors"]


def test_update_unknown_event_is_404(staff_api):
    assert_problem(staff_api.patch("/api/events/424242", {"city": "x"}, format="json"), 404, "not_found")


def test_create_ticket_type(staff_api, event):
    response = staff_api.post(
        f"/api/events/{event.pk}/ticket-types",
        {"name": "VIP", "price": "120.00", "capacity": 20, "max_per_order": 4},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["capacity"] == 20
    assert (body["sold"], body["held"], body["available"]) == (0, 0, 20)
    ticket_type = TicketType.objects.get(pk=body["id"])
    assert (ticket_type.event, ticket_type.price, ticket_type.max_per_order) == (event, Decimal("120.00"), 4)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "A", "price": "-1", "capacity": 1},
        {"name": "A", "price": "1.001", "capacity": 1},
        {"name": "A", "price": "abc", "capacity": 1},
        {"name": "A", "price": "1", "capacity": -1},
        {"name": "A", "price": "1", "capacity": 10**12},
        {"name": "A", "price": "1", "capacity": 1, "max_per_order": 0},
        {
            "name": "A",
            "price": "1",
            "capacity": 1,
            "sale_starts_at": "2030-01-02T00:00Z",
            "sale_ends_at": "2030-01-01T00:00Z",
        },
        {"price": "1", "capacity": 1},
    ],
)
def test_create_ticket_type_validation(staff_api, event, body):
    assert_problem(staff_api.post(f"/api/events/{event.pk}/ticket-types", body, format="json"), 400, "validation_error")
    assert not TicketType.objects.exists()


def test_create_ticket_type_duplicate_name(staff_api, ticket_type):
    body = {"name": ticket_type.name, "price": "1", "capacity": 1}
    response = staff_api.post(f"/api/events/{ticket_type.event_id}/ticket-types", body, format="json")
    assert "name" in assert_problem(response, 400, "validation_error")["errors"]


def test_create_ticket_type_for_unknown_event(staff_api):
    body = {"name": "A", "price": "1", "capacity": 1}
    assert_problem(staff_api.post("/api/events/424242/ticket-types", body, format="json"), 404, "not_found")


def test_update_ticket_type_price_and_capacity(staff_api, ticket_type):
    response = staff_api.patch(f"/api/ticket-types/{ticket_type.pk}", {"price": "30.00", "capacity": 50}, format="json")
    assert response.status_code == 200
    assert (response.json()["price"], response.json()["capacity"]) == ("30.00", 50)


def test_capacity_cannot_drop_below_sold_plus_held(staff_api, ticket_type):
    now = timezone.now()
    basket = order_services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=3, now=now)
    checkout.order_place(token=basket.token, name="A", email="a@example.com", payment_method="test", now=now)
    order_services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=2, now=now)
    response = staff_api.patch(f"/api/ticket-types/{ticket_type.pk}", {"capacity": 4}, format="json")
    assert "capacity" in assert_problem(response, 400, "validation_error")["errors"]
    ticket_type.refresh_from_db()
    assert ticket_type.capacity == 10
    assert staff_api.patch(f"/api/ticket-types/{ticket_type.pk}", {"capacity": 5}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": 5}, "description"),  # found by `make fuzz` (ST201): stored as "5"
        ({"name": 12}, "name"),
        ({"price": 12.5}, "price"),  # documented as a decimal string ("12.50"), as the API answers it
        ({"capacity": "20"}, "capacity"),
        ({"position": "1"}, "position"),
        ({"max_per_order": 4.0}, "max_per_order"),
    ],
)
def test_update_ticket_type_refuses_values_of_the_wrong_json_type(staff_api, ticket_type, body, field):
    """DRF's fields coerce (5 → "5", "20" → 20, 12.5 → Decimal): a value must have the type the schema documents."""
    before = TicketType.objects.values().get(pk=ticket_type.pk)
    response = staff_api.patch(f"/api/ticket-types/{ticket_type.pk}", body, format="json")
    assert list(assert_problem(response, 400, "validation_error")["errors"]) == [field]
    assert TicketType.objects.values().get(pk=ticket_type.pk) == before


def test_create_ticket_type_refuses_a_price_given_as_a_json_number(staff_api, event):
    body = {"name": "VIP", "price": 120, "capacity": 20}
    response = staff_api.post(f"/api/events/{event.pk}/ticket-types", body, format="json")
    assert list(assert_problem(response, 400, "validation_error")["errors"]) == ["price"]
    assert not TicketType.objects.exists()


def test_organizer_reads_the_seat_truth(staff_api, ticket_type):
    now = timezone.now()
    order_services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=2, now=now)
    body = staff_api.get(f"/api/ticket-types/{ticket_type.pk}").json()
    assert (body["capacity"], body["sold"], body["held"], body["available"]) == (10, 0, 2, 8)


def test_sold_is_not_writable_through_the_api(staff_api, ticket_type):
    response = staff_api.patch(f"/api/ticket-types/{ticket_type.pk}", {"sold": 9}, format="json")
    assert response.status_code == 200
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 0


# --- transport-level bad input ------------------------------------------------------------------------


def test_malformed_json_is_400(staff_api):
    response = staff_api.post("/api/events", "{not json", content_type="application/json")
    assert_problem(response, 400, "validation_error")


def test_wrong_content_type_is_415(staff_api):
    response = staff_api.post("/api/events", "name=x", content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415, "unsupported_media_type")


def test_a_json_array_instead_of_an_object_is_400(staff_api):
    assert_problem(staff_api.post("/api/events", [1, 2], format="json"), 400, "validation_error")


def test_unknown_method_is_405(api):
    assert_problem(api.delete("/api/events"), 405, "method_not_allowed")


def test_unknown_api_path_is_problem_json(api):
    assert_problem(api.get("/api/nope"), 404, "not_found")


def test_non_json_accept_header_is_406(api):
    assert_problem(api.get("/api/events", HTTP_ACCEPT="text/html"), 406, "not_acceptable")


def test_public_endpoints_work_without_any_credentials():
    assert APIClient().get("/api/events").status_code == 200


def test_an_unexpected_error_is_a_problem_json_500_not_a_html_page(monkeypatch):
    from events import selectors

    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(selectors, "events_upcoming", broken)
    client = APIClient(raise_request_exception=False)
    assert_problem(client.get("/api/events"), 500, "internal_error")


def test_an_event_stays_with_its_organizer_and_the_schema_does_not_offer_to_move_it(staff_api, event):
    """Like any field the update does not take, organizer_id is ignored; only the admin moves an event."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    update = schema["components"]["schemas"]["PatchedEventUpdateInputRequest"]["properties"]

    response = staff_api.patch(f"/api/events/{event.pk}", {"organizer_id": 999}, format="json")

    assert "organizer_id" not in update
    assert response.status_code == 200
    event.refresh_from_db()
    assert event.organizer.slug == "main"


def test_a_new_events_organizer_is_the_one_named_or_the_users_only_membership(db):
    boss = UserFactory(is_staff=True, is_superuser=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=boss).key}")
    body = {
        "name": "Gala",
        "venue": "Hall",
        "city": "Bonn",
        "starts_at": "2031-05-01T19:00:00Z",
        "ends_at": "2031-05-01T23:00:00Z",
    }
    other = OrganizerFactory()

    unnamed = client.post("/api/events", body, format="json")
    main_organizer().members.add(boss)
    member = client.post("/api/events", body, format="json")
    named = client.post("/api/events", {**body, "organizer_id": other.pk}, format="json")

    assert (unnamed.status_code, unnamed.json()["errors"]) == (
        400,
        {"organizer_id": ["You are a member of no organizer."]},
    )
    assert (member.status_code, member.json()["organizer_id"]) == (201, main_organizer().pk)
    assert (named.status_code, named.json()["organizer_id"]) == (201, other.pk)  # a superuser may name any
