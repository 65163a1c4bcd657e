"""The catalog pages a shopper sees: the event list and the event page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.urls import reverse

from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import Basket, Hold

pytestmark = pytest.mark.django_db

# Count, then one page of events with their prices and seats as subqueries.
LIST_QUERIES = 2
# The event with its annotations, then its ticket types with availability.
DETAIL_QUERIES = 2


def _hold(ticket_type, *, quantity, expires_at):  # type: ignore[no-untyped-def]
    return Hold.objects.create(
        basket=Basket.objects.create(), ticket_type=ticket_type, quantity=quantity, expires_at=expires_at
    )


class TestEventList:
    def test_shows_published_upcoming_events_and_hides_unpublished_and_past(self, client, now):
        upcoming = EventFactory(name="Brahms Night", venue="Elbphilharmonie", city="Hamburg")
        TicketTypeFactory(event=upcoming, price=Decimal("39.50"))
        EventFactory(name="Secret Rehearsal", is_published=False)
        EventFactory(name="Last Year's Gala", starts_at=now - timedelta(days=30))

        response = client.get("/")

        assert response.status_code == 200
        body = response.content.decode()
        assert "Brahms Night" in body
        assert "Elbphilharmonie, Hamburg" in body
        assert "from <strong>€39.50</strong>" in body
        assert reverse("events:detail", args=[upcoming.slug]) in body
        assert "Secret Rehearsal" not in body
        assert "Last Year&#x27;s Gala" not in body
        assert "Last Year's Gala" not in body

    def test_an_event_in_progress_is_still_listed(self, client, now):
        EventFactory(name="Already Started", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2))

        assert "Already Started" in client.get("/").content.decode()

    def test_search_filters_by_name_venue_or_city(self, client):
        EventFactory(name="Jazz Brunch", city="Vienna")
        EventFactory(name="Opera Gala", city="Berlin")

        by_name = client.get("/", {"q": "jazz"}).content.decode()
        by_city = client.get("/", {"q": "berlin"}).content.decode()

        assert "Jazz Brunch" in by_name
        assert "Opera Gala" not in by_name
        assert "1 event matching “jazz”" in by_name
        assert "Opera Gala" in by_city
        assert "Jazz Brunch" not in by_city

    def test_search_with_no_match_shows_an_empty_state(self, client):
        EventFactory(name="Jazz Brunch")

        body = client.get("/", {"q": "polka"}).content.decode()

        assert "No events match “polka”" in body
        assert "Jazz Brunch" not in body

    def test_search_box_is_labelled_and_keeps_the_query(self, client):
        body = client.get("/", {"q": "jazz"}).content.decode()

        assert '<label class="search__label" for="id_q">Search events</label>' in body
        assert 'name="q" value="jazz"' in body

    def test_no_events_shows_an_empty_state(self, client):
        assert "No upcoming events yet" in client.get("/").content.decode()

    def test_sold_out_badge_and_few_seats_left(self, client, now):
        sold_out = EventFactory(name="Sold Out Show")
        TicketTypeFactory(event=sold_out, capacity=5, sold=5)
        scarce = EventFactory(name="Scarce Show")
        scarce_type = TicketTypeFactory(event=scarce, capacity=10, sold=4)
        _hold(scarce_type, quantity=3, expires_at=now + timedelta(minutes=5))
        plenty = EventFactory(name="Plenty Show")
        TicketTypeFactory(event=plenty, capacity=500)

        body = client.get("/").content.decode()

        cards = {name: _card(body, name) for name in ("Sold Out Show", "Scarce Show", "Plenty Show")}
        assert "Sold out" in cards["Sold Out Show"]
        assert "Only 3 left" in cards["Scarce Show"]
        assert "Sold out" not in cards["Scarce Show"]
        assert "Sold out" not in cards["Plenty Show"]
        assert "left" not in cards["Plenty Show"]

    def test_paginates_twelve_events_a_page_and_keeps_the_search(self, client, now):
        for day in range(14):
            EventFactory(name=f"Rock Night {day:02d}", starts_at=now + timedelta(days=day + 1))

        first = client.get("/", {"q": "rock"}).content.decode()
        second = client.get("/", {"q": "rock", "page": 2}).content.decode()

        assert "Rock Night 11" in first
        assert "Rock Night 12" not in first
        assert "Page 1 of 2" in first
        assert 'href="?q=rock&amp;page=2"' in first
        assert "Rock Night 12" in second
        assert "Rock Night 13" in second
        assert "Rock Night 00" not in second

    def test_runs_a_fixed_number_of_queries_whatever_the_number_of_events(self, client, django_assert_num_queries):
        for _ in range(3):
            TicketTypeFactory.create_batch(2, event=EventFactory())
        with django_assert_num_queries(LIST_QUERIES):
            assert client.get("/").status_code == 200

        for _ in range(12):
            TicketTypeFactory.create_batch(4, event=EventFactory())
        with django_assert_num_queries(LIST_QUERIES):
            response = client.get("/")
        assert response.content.decode().count('<li class="event-card') == 12


class TestEventDetail:
    def test_shows_the_event_and_its_ticket_types(self, client, event):
        TicketTypeFactory(event=event, name="Standing", price=Decimal("25.00"), description="Close to the stage.")
        TicketTypeFactory(event=event, name="Balcony", price=Decimal("59.90"), max_per_order=4)

        response = client.get(f"/events/{event.slug}/")

        assert response.status_code == 200
        body = response.content.decode()
        assert f'<h1 class="event__title">{event.name}</h1>' in body
        assert "Philharmonie, Berlin" in body
        assert "An evening of music." in body
        assert "Standing" in body
        assert "Close to the stage." in body
        assert "€25.00" in body
        assert "Balcony" in body
        assert "€59.90" in body
        assert "up to 4 per order" in body
        assert body.count("Add to basket") == 2
        # one per ticket type's form, one for the header's language switcher
        assert body.count('name="csrfmiddlewaretoken"') == 3

    def test_each_form_posts_its_ticket_type_with_a_labelled_quantity(self, client, ticket_type):
        body = client.get(f"/events/{ticket_type.event.slug}/").content.decode()

        assert f'<input type="hidden" name="ticket_type" value="{ticket_type.pk}">' in body
        assert f'<label for="tt{ticket_type.pk}_quantity">Quantity</label>' in body
        assert f'id="tt{ticket_type.pk}_quantity"' in body
        assert 'max="10"' in body

    def test_sold_out_ticket_type_has_no_add_button(self, client, event, now):
        TicketTypeFactory(event=event, name="Front Row", capacity=4, sold=2)
        held = TicketTypeFactory(event=event, name="Back Row", capacity=2)
        _hold(held, quantity=2, expires_at=now + timedelta(minutes=5))

        body = client.get(f"/events/{event.slug}/").content.decode()

        assert "Sold out" in _ticket(body, "Back Row")
        assert "Add to basket" not in _ticket(body, "Back Row")
        assert "Only 2 left" in _ticket(body, "Front Row")
        assert "Add to basket" in _ticket(body, "Front Row")

    def test_expired_holds_do_not_make_a_ticket_type_sold_out(self, client, event, now):
        ticket_type = TicketTypeFactory(event=event, name="Floor", capacity=2)
        _hold(ticket_type, quantity=2, expires_at=now - timedelta(seconds=1))

        body = client.get(f"/events/{event.slug}/").content.decode()

        assert "Sold out" not in _ticket(body, "Floor")
        assert "Add to basket" in _ticket(body, "Floor")

    def test_ticket_types_not_yet_or_no_longer_on_sale(self, client, event, now):
        TicketTypeFactory(event=event, name="Early Bird", sale_ends_at=now - timedelta(days=1))
        TicketTypeFactory(event=event, name="Late Release", sale_starts_at=now + timedelta(days=3))

        body = client.get(f"/events/{event.slug}/").content.decode()

        assert "Sale ended" in _ticket(body, "Early Bird")
        assert "Add to basket" not in _ticket(body, "Early Bird")
        assert "On sale from" in _ticket(body, "Late Release")
        assert "Add to basket" not in _ticket(body, "Late Release")

    def test_unknown_slug_is_a_404_page(self, client):
        response = client.get("/events/no-such-event/")

        assert response.status_code == 404
        assert "Page not found" in response.content.decode()

    def test_unpublished_event_is_a_404(self, client):
        hidden = EventFactory(is_published=False)

        assert client.get(f"/events/{hidden.slug}/").status_code == 404

    def test_runs_a_fixed_number_of_queries_whatever_the_number_of_ticket_types(
        self, client, django_assert_num_queries
    ):
        few = EventFactory()
        TicketTypeFactory.create_batch(3, event=few)
        many = EventFactory()
        TicketTypeFactory.create_batch(12, event=many)

        with django_assert_num_queries(DETAIL_QUERIES):
            few_body = client.get(f"/events/{few.slug}/").content.decode()
        with django_assert_num_queries(DETAIL_QUERIES):
            many_body = client.get(f"/events/{many.slug}/").content.decode()

        assert few_body.count("Add to basket") == 3
        assert many_body.count("Add to basket") == 12


class TestPageShell:
    def test_layout_is_accessible_and_loads_only_static_assets(self, client):
        body = client.get("/").content.decode()

        assert '<html lang="en">' in body
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in body
        assert '<a class="skip-link" href="#main">' in body
        assert '<main id="main"' in body
        assert 'href="/static/css/site.css"' in body
        assert '<script src="/static/js/hold-countdown.js" defer></script>' in body
        assert f'href="{reverse("orders:basket")}"' in body
        # A strict Content-Security-Policy (no unsafe-inline) must not break the page.
        assert body.count("<script") == 1
        assert "style=" not in body
        assert "<style" not in body

    def test_the_500_page_renders_without_a_request(self):
        html = render_to_string("500.html")

        assert "Something went wrong on our side" in html
        assert 'href="/static/css/site.css"' in html

    def test_static_assets_exist(self):
        assert finders.find("css/site.css")
        assert finders.find("js/hold-countdown.js")


def _card(body: str, name: str) -> str:
    """The HTML of the event card whose title is `name`."""
    start = body.rindex('<li class="event-card', 0, body.index(f">{name}</a>"))
    return body[start : body.index("</li>", start)]


def _ticket(body: str, name: str) -> str:
    """The HTML of the ticket type block whose heading is `name`."""
    start = body.rindex('<div class="ticket-type', 0, body.index(f'<h3 class="ticket-type__name">{name}</h3>'))
    end = body.find('<div class="ticket-type', start + 1)
    return body[start : end if end != -1 else body.index("</section>", start)]
