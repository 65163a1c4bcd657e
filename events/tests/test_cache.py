"""The catalog cache: listings may lag by at most CATALOG_CACHE_SECONDS; decisions never use it."""

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import caches
from django.utils import timezone

from events.cache import _CSRF_PLACEHOLDER
from events.tests.factories import TicketTypeFactory
from orders import services as order_services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalog_cache(settings):
    settings.CATALOG_CACHE_SECONDS = 2
    caches["catalog"].clear()
    yield
    caches["catalog"].clear()


def hold(ticket_type, quantity):
    order_services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=timezone.now())


def test_list_availability_lags_by_at_most_the_ttl(api, ticket_type):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert api.get("/api/events").json()["events"][0]["available"] == 10
        hold(ticket_type, 4)
        clock.shift(timedelta(seconds=1))
        assert api.get("/api/events").json()["events"][0]["available"] == 10  # cached
        clock.shift(timedelta(seconds=1.5))
        assert api.get("/api/events").json()["events"][0]["available"] == 6  # fresh after 2 s


def test_a_cache_hit_runs_no_query(api, ticket_type, django_assert_num_queries):
    api.get(f"/api/events/{ticket_type.event_id}")
    with django_assert_num_queries(0):
        assert api.get(f"/api/events/{ticket_type.event_id}").status_code == 200


def test_detail_pages_are_cached_per_event(client, api, ticket_type):
    other = TicketTypeFactory(capacity=5)
    api.get(f"/api/events/{ticket_type.event_id}")
    assert api.get(f"/api/events/{other.event_id}").json()["ticket_types"][0]["available"] == 5
    page = client.get(f"/events/{other.event.slug}/")
    assert other.name in page.content.decode()


@pytest.mark.django_db(transaction=True)  # the cache is cleared on commit: let it commit
def test_an_organizer_write_shows_at_once(api, staff_api, ticket_type):
    assert api.get(f"/api/events/{ticket_type.event_id}").json()["ticket_types"][0]["price"] == "25.00"
    staff_api.patch(f"/api/ticket-types/{ticket_type.pk}", {"price": "30.00"}, format="json")
    assert api.get(f"/api/events/{ticket_type.event_id}").json()["ticket_types"][0]["price"] == "30.00"
    staff_api.patch(f"/api/events/{ticket_type.event_id}", {"name": "Renamed"}, format="json")
    assert api.get("/api/events").json()["events"][0]["name"] == "Renamed"


@pytest.mark.django_db(transaction=True)
def test_a_failed_organizer_write_keeps_the_cache(api, staff_api, ticket_type, django_assert_num_queries):
    api.get(f"/api/events/{ticket_type.event_id}")
    staff_api.patch(f"/api/ticket-types/{ticket_type.pk}", {"capacity": -1}, format="json")
    with django_assert_num_queries(0):  # nothing committed, nothing cleared: still a cache hit
        api.get(f"/api/events/{ticket_type.event_id}")


def test_basket_decides_on_the_database_not_the_cache(api, client, ticket_type):
    assert api.get(f"/api/events/{ticket_type.event_id}").json()["ticket_types"][0]["available"] == 10
    client.get(f"/events/{ticket_type.event.slug}/")
    hold(ticket_type, 10)
    # The listing still says 10 are left, but adding one is refused: the lock re-reads the truth.
    assert api.get(f"/api/events/{ticket_type.event_id}").json()["ticket_types"][0]["available"] == 10
    response = api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "sold_out"
    page = client.post(f"/events/{ticket_type.event.slug}/basket/", {"ticket_type": ticket_type.pk, "quantity": 1})
    assert page.status_code == 200
    assert "sold out" in page.content.decode().lower()


def test_list_pages_and_searches_have_their_own_entries(client, ticket_type):
    TicketTypeFactory(event__name="Jazz Night")
    assert "Jazz Night" in client.get("/", {"q": "jazz"}).content.decode()
    assert ticket_type.event.name not in client.get("/", {"q": "jazz"}).content.decode()
    assert ticket_type.event.name in client.get("/").content.decode()


def test_cache_off(settings, api, ticket_type):
    settings.CATALOG_CACHE_SECONDS = 0
    api.get("/api/events")
    hold(ticket_type, 3)
    assert api.get("/api/events").json()["events"][0]["available"] == 7


def test_a_cached_event_page_carries_each_visitors_own_csrf_token(ticket_type):
    from django.test import Client

    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    url = f"/events/{ticket_type.event.slug}/"
    page_one = first.get(url)
    page_two = second.get(url)  # served from the cache
    token_one = page_one.context and page_one.context["csrf_token"]
    assert page_two.context is None  # no template rendered: a cache hit
    html_two = page_two.content.decode()
    assert _CSRF_PLACEHOLDER not in html_two
    token_two = html_two.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert token_two != str(token_one)
    form = {"csrfmiddlewaretoken": token_two, "ticket_type": ticket_type.pk, "quantity": 1}
    response = second.post(f"{url}basket/", form)
    assert response.status_code == 302  # the token works: added to the basket


def test_pages_with_flash_messages_are_rendered_fresh(client, ticket_type):
    url = f"/events/{ticket_type.event.slug}/"
    client.get(url)
    client.post(f"{url}basket/", {"ticket_type": ticket_type.pk, "quantity": 1})  # leaves a "reserved" message
    response = client.get("/")
    assert response.context is not None  # rendered, not cached
    assert "reserved for you" in response.content.decode()
    assert "reserved for you" not in client.get("/").content.decode()  # shown once


def test_a_sold_out_answer_is_remembered_for_a_second_without_a_query(ticket_type, django_assert_num_queries):
    from aegistickets.errors import SoldOutError
    from orders.models import Hold

    with time_machine.travel(timezone.now(), tick=False) as clock:
        hold(ticket_type, 10)
        with pytest.raises(SoldOutError):
            hold(ticket_type, 1)  # decided under the lock: remembered
        Hold.objects.all().delete()  # seats freed
        with django_assert_num_queries(0), pytest.raises(SoldOutError):
            hold(ticket_type, 1)  # refused from memory: it may lag a freed seat by a second
        clock.shift(timedelta(seconds=1.1))
        hold(ticket_type, 1)  # decided on the database again
    assert Hold.objects.get().quantity == 1


def test_a_basket_add_prices_its_answer_under_the_lock_not_from_the_cache(api, ticket_type):
    """The add reads the ticket type from the cache for its cheap refusals, but the price it shows comes with
    the seat lock: an organizer's price change is never hidden by the cache."""
    first = api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1}, format="json")
    assert first.json()["items"][0]["unit_price"] == "25.00"  # the ticket type is in the cache now
    type(ticket_type).objects.filter(pk=ticket_type.pk).update(price="31.00")  # no invalidation: a raw update

    second = api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 2}, format="json").json()

    assert (second["items"][0]["unit_price"], second["items"][0]["line_total"], second["total"]) == (
        "31.00",
        "62.00",
        "62.00",
    )
