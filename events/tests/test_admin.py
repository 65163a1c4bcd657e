"""The catalog admin: live seat counts without N+1 queries, and ticket-type edits that never undo a sale."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from events.admin import TicketTypeAdminForm
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory, main_organizer
from orders import checkout, services
from orders.models import Hold

pytestmark = pytest.mark.django_db


def sell(ticket_type: TicketType, quantity: int, *, now=None):  # type: ignore[no-untyped-def]
    now = now or timezone.now()
    basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=now)
    return checkout.order_place(
        token=basket.token, name="Ada Lovelace", email="ada@example.com", payment_method="test", now=now
    ).order


def hold(ticket_type: TicketType, quantity: int, *, now=None):  # type: ignore[no-untyped-def]
    return services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=now or timezone.now())


def cells(html: str, column: str) -> list[str]:
    """The text of every cell of one column (change-list rows or tabular-inline rows)."""
    # Leave out the inline's hidden template row that "Add another" clones.
    html = re.sub(r'<tr[^>]*id="[\w-]+-empty".*?</tr>', "", html, flags=re.S)
    return [
        re.sub(r"<[^>]+>", "", text).strip()
        for text in re.findall(rf'<td class="field-{column}[^"]*">(.*?)</td>', html, re.S)
    ]


def inline_values(html: str, field: str) -> list[str]:
    """The read-only value of one field in each saved row of a stacked inline (its "Add another" template left
    out)."""
    html = re.sub(r'<div[^>]*id="[\w-]+-empty".*', "", html, flags=re.S)
    found = re.findall(rf'fieldBox field-{field}".*?<div class="readonly">(.*?)</div>', html, re.S)
    return [re.sub(r"<[^>]+>", "", text).strip() for text in found]


class _FormScraper(HTMLParser):
    """What a browser would submit for the admin's change form, as a dict of field name → value."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in {"submit", "file", "button"}:
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.data[name] = a.get("value") or "on"
            else:
                self.data[name] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value") or ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def form_data(html: str) -> dict[str, str]:
    scraper = _FormScraper()
    scraper.feed(html)
    data = scraper.data
    # Drop the hidden template row the admin's JavaScript clones for "Add another".
    return {key: value for key, value in data.items() if "__prefix__" not in key}


def event_change_url(event: Event) -> str:
    return reverse("admin:events_event_change", args=[event.pk])


@pytest.fixture
def seats(event, now):  # type: ignore[no-untyped-def]
    """One ticket type of 10 seats: 2 sold, 3 held now, 1 held by a hold that has expired."""
    ticket_type = TicketTypeFactory(event=event, name="Standing", capacity=10)
    sell(ticket_type, 2)
    hold(ticket_type, 3)
    hold(ticket_type, 1, now=timezone.now() - timedelta(hours=1))
    return ticket_type


def test_event_changelist_shows_seats_sold_and_available(admin_client, seats):
    response = admin_client.get(reverse("admin:events_event_changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    assert seats.event.name in html
    assert cells(html, "seats_sold") == ["2"]
    assert cells(html, "seats_available") == ["5"]  # 10 − 2 sold − 3 held; the expired hold counts for nothing


def test_event_change_form_shows_sold_held_available_per_ticket_type(admin_client, seats):
    other = TicketTypeFactory(event=seats.event, name="Balcony", capacity=4)

    response = admin_client.get(event_change_url(seats.event))

    assert response.status_code == 200
    html = response.content.decode()
    assert inline_values(html, "sold") == ["2", "0"]
    assert inline_values(html, "held") == ["3", "0"]
    assert inline_values(html, "available") == ["5", "4"]
    assert other.name in html


def test_event_changelist_query_count_does_not_grow_with_rows(admin_client):
    def changelist_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(reverse("admin:events_event_changelist"))
        assert response.status_code == 200
        return len(queries)

    def add_events(count: int) -> None:
        for _ in range(count):
            ticket_type = TicketTypeFactory(capacity=20)
            TicketTypeFactory(event=ticket_type.event, capacity=5)
            sell(ticket_type, 1)
            hold(ticket_type, 2)

    add_events(2)
    few = changelist_queries()
    add_events(8)
    many = changelist_queries()

    assert Event.objects.count() == 10
    assert many == few


def test_event_change_form_query_count_does_not_grow_with_ticket_types(admin_client, event):
    def change_form_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(event_change_url(event))
        assert response.status_code == 200
        return len(queries)

    hold(TicketTypeFactory(event=event), 1)
    few = change_form_queries()
    for _ in range(7):
        hold(TicketTypeFactory(event=event), 1)
    many = change_form_queries()

    assert many == few


def test_event_search_and_filters(admin_client):
    EventFactory(name="Jazz Night", venue="Fabrik", city="Hamburg")
    EventFactory(name="Opera Gala", venue="Semperoper", city="Dresden", is_published=False)
    url = reverse("admin:events_event_changelist")

    by_venue = admin_client.get(url, {"q": "fabrik"})
    by_city = admin_client.get(url, {"city": "Dresden"})
    unpublished = admin_client.get(url, {"is_published__exact": "0"})

    assert [e.name for e in by_venue.context["cl"].result_list] == ["Jazz Night"]
    assert [e.name for e in by_city.context["cl"].result_list] == ["Opera Gala"]
    assert [e.name for e in unpublished.context["cl"].result_list] == ["Opera Gala"]


def test_add_event_with_ticket_type_in_admin(admin_client):
    url = reverse("admin:events_event_add")
    data = form_data(admin_client.get(url).content.decode())
    data.update(
        {
            "organizer": str(main_organizer().pk),
            "name": "Harbour Sessions",
            "slug": "harbour-sessions",
            "venue": "Fabrik",
            "city": "Hamburg",
            "starts_at_0": "2030-05-01",
            "starts_at_1": "19:30:00",
            "ends_at_0": "2030-05-01",
            "ends_at_1": "23:00:00",
            "is_published": "on",
            "ticket_types-TOTAL_FORMS": "1",
            "ticket_types-0-name": "Standing",
            "ticket_types-0-price": "29.00",
            "ticket_types-0-capacity": "250",
            "ticket_types-0-max_per_order": "10",
            "ticket_types-0-position": "0",
        }
    )

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    event = Event.objects.get(slug="harbour-sessions")
    ticket_type = event.ticket_types.get()
    assert (ticket_type.name, ticket_type.capacity, ticket_type.sold) == ("Standing", 250, 0)


def test_event_that_ends_before_it_starts_is_refused(admin_client):
    url = reverse("admin:events_event_add")
    data = form_data(admin_client.get(url).content.decode())
    data.update(
        {
            "name": "Backwards",
            "slug": "backwards",
            "venue": "Fabrik",
            "city": "Hamburg",
            "starts_at_0": "2030-05-01",
            "starts_at_1": "19:30:00",
            "ends_at_0": "2030-05-01",
            "ends_at_1": "18:00:00",
        }
    )

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert not Event.objects.filter(slug="backwards").exists()


def test_capacity_change_in_admin_never_undoes_a_sale_made_meanwhile(admin_client, seats, monkeypatch):
    """A seat sold after the admin read the row but before it wrote must stay sold."""
    url = event_change_url(seats.event)
    data = form_data(admin_client.get(url).content.decode())
    data["ticket_types-0-capacity"] = "20"
    original_clean = TicketTypeAdminForm.clean

    def clean_then_someone_buys(form):  # type: ignore[no-untyped-def]
        cleaned = original_clean(form)
        if form.instance.pk == seats.pk:
            sell(seats, 1)  # commits between the admin's read of the row and its save
        return cleaned

    monkeypatch.setattr(TicketTypeAdminForm, "clean", clean_then_someone_buys)

    response = admin_client.post(url, data)

    assert response.status_code == 302
    seats.refresh_from_db()
    assert seats.capacity == 20
    assert seats.sold == 3  # 2 before + 1 sold meanwhile; a plain model save would write back 2


def test_capacity_below_sold_plus_held_is_refused_in_admin(admin_client, seats):
    url = event_change_url(seats.event)
    data = form_data(admin_client.get(url).content.decode())
    data["ticket_types-0-capacity"] = "4"  # 2 sold + 3 held = 5

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "Cannot be below the 2 seats sold plus 3 held right now." in response.content.decode()
    seats.refresh_from_db()
    assert (seats.capacity, seats.sold) == (10, 2)
    assert Hold.objects.filter(ticket_type=seats).count() == 2


def test_service_refusal_after_form_check_is_reported_not_crashed(admin_client, seats, monkeypatch):
    """If seats are held between the form's check and the locked re-check, the service says no."""
    url = event_change_url(seats.event)
    data = form_data(admin_client.get(url).content.decode())
    data["ticket_types-0-capacity"] = "6"  # fits 2 sold + 3 held, but not one more hold
    original_clean = TicketTypeAdminForm.clean

    def clean_then_someone_holds(form):  # type: ignore[no-untyped-def]
        cleaned = original_clean(form)
        if form.instance.pk == seats.pk:
            hold(seats, 2)
        return cleaned

    monkeypatch.setattr(TicketTypeAdminForm, "clean", clean_then_someone_holds)

    response = admin_client.post(url, data, follow=True)

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("Standing was not saved" in m and "Cannot be below" in m for m in messages)
    seats.refresh_from_db()
    assert seats.capacity == 10


def test_ticket_type_admin_lists_live_availability_and_edits_through_service(admin_client, seats):
    changelist = admin_client.get(reverse("admin:events_tickettype_changelist"))
    assert changelist.status_code == 200
    html = changelist.content.decode()
    assert (cells(html, "sold"), cells(html, "held"), cells(html, "available")) == (["2"], ["3"], ["5"])

    url = reverse("admin:events_tickettype_change", args=[seats.pk])
    data = form_data(admin_client.get(url).content.decode())
    data["price"] = "31.50"
    response = admin_client.post(url, data)

    assert response.status_code == 302
    seats.refresh_from_db()
    assert (str(seats.price), seats.sold) == ("31.50", 2)
    assert admin_client.get(reverse("admin:events_tickettype_add")).status_code == 403
