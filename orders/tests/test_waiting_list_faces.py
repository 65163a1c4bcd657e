"""The waiting list's faces: the event page's form, the entry's private page, the offer link, the API, the admin's
queue and the metrics. The rules themselves are test_waiting_list.py's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from events.models import Event, TicketType
from events.tests.factories import TicketTypeFactory
from orders import waiting_list as wl
from orders.metrics import WaitingListCollector
from orders.models import OutboundEmail, WaitingListEntry
from orders.tests.test_waiting_list import free_a_seat, in_line, join
from orders.views import SESSION_BASKET

pytestmark = pytest.mark.django_db

Status = WaitingListEntry.Status


def join_url(ticket_type):
    return reverse("orders:waiting-list-join", args=[ticket_type.event.slug])


def entry_url(entry, name="waiting-list-entry"):
    return reverse(f"orders:{name}", kwargs={"token": entry.token})


# --- pages ---------------------------------------------------------------------------------------------------


def test_the_event_page_offers_the_waiting_list_only_for_what_is_sold_out(client, sold_out):
    available = TicketTypeFactory(event=sold_out.event, capacity=5, name="Balcony")
    page = client.get(reverse("events:detail", args=[sold_out.event.slug])).content.decode()
    forms = re.findall(r'<form class="waiting-list-form".*?</form>', page, flags=re.DOTALL)
    assert len(forms) == 1
    assert f'name="ticket_type" value="{sold_out.pk}"' in forms[0]
    assert available.pk != sold_out.pk


def test_no_waiting_list_form_when_the_organizer_switched_it_off(client, sold_out):
    Event.objects.filter(pk=sold_out.event_id).update(waiting_list_enabled=False)
    page = client.get(reverse("events:detail", args=[sold_out.event.slug])).content.decode()
    assert "waiting-list-form" not in page


def test_joining_from_the_event_page_asks_to_check_the_email(client, sold_out):
    response = client.post(join_url(sold_out), {"ticket_type": sold_out.pk, "email": "ada@example.com", "quantity": 2})
    assert response.status_code == 200
    assert "ada@example.com" in response.content.decode()
    entry = WaitingListEntry.objects.get()
    assert (entry.email, entry.quantity, entry.status) == ("ada@example.com", 2, Status.UNCONFIRMED)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"email": "not an address", "quantity": 1}, 400),
        ({"email": "ada@example.com", "quantity": 0}, 400),
        ({"email": "ada@example.com", "quantity": 99}, 400),
    ],
)
def test_bad_joins_from_the_page_say_why_and_change_nothing(client, sold_out, data, status):
    response = client.post(join_url(sold_out), {"ticket_type": sold_out.pk, **data})
    assert response.status_code == status
    assert 'role="alert"' in response.content.decode()
    assert not WaitingListEntry.objects.exists()


def test_joining_while_tickets_are_available_says_so(client, ticket_type):
    response = client.post(
        join_url(ticket_type), {"ticket_type": ticket_type.pk, "email": "a@example.com", "quantity": 1}
    )
    assert response.status_code == 409
    assert "buy them instead of waiting" in response.content.decode()


def test_the_confirmation_link_shows_a_button_and_confirming_is_a_post(client, sold_out):
    entry = join(sold_out, "ada@example.com")
    page = client.get(entry_url(entry))
    assert page.status_code == 200
    assert "Confirm my place" in page.content.decode()
    assert WaitingListEntry.objects.get().status == Status.UNCONFIRMED  # a mail scanner's GET confirms nothing
    confirmed = client.post(entry_url(entry), follow=True)
    assert "You are number 1 in line." in confirmed.content.decode()
    assert WaitingListEntry.objects.get().status == Status.WAITING


def test_the_entry_page_has_a_fixed_number_of_queries(client, sold_out, django_assert_max_num_queries):
    entry = in_line(sold_out, "ada@example.com")
    with django_assert_max_num_queries(3):
        assert client.get(entry_url(entry)).status_code == 200


def test_leaving_from_the_page_and_by_one_click(client, sold_out):
    entry = in_line(sold_out, "ada@example.com")
    response = client.post(entry_url(entry, "waiting-list-leave"))  # no CSRF token: a mail program's one click
    assert response.status_code == 200
    assert "You left the waiting list." in response.content.decode()
    assert WaitingListEntry.objects.get().status == Status.LEFT


def test_an_unknown_token_is_404(client, db):
    assert client.get("/waiting-list/nope/").status_code == 404
    assert client.post("/waiting-list/nope/leave/").status_code == 404
    assert client.get("/waiting-list/nope/offer/").status_code == 404


def test_the_offer_link_makes_the_offer_this_browser_s_basket(client, sold_out, now):
    entry = in_line(sold_out, "ada@example.com")
    free_a_seat(sold_out)
    wl.waiting_list_sweep(now=timezone.now())
    response = client.get(entry_url(entry, "waiting-list-offer"))
    assert response.status_code == 302
    assert response["Location"] == reverse("orders:basket")
    entry.refresh_from_db()
    assert client.session[SESSION_BASKET] == entry.basket.token
    assert sold_out.name in client.get(reverse("orders:basket")).content.decode()


def test_an_ended_offer_s_link_says_so(client, sold_out):
    entry = in_line(sold_out, "ada@example.com")
    free_a_seat(sold_out)
    wl.waiting_list_sweep(now=timezone.now())
    wl.waiting_list_sweep(now=timezone.now() + timedelta(minutes=31))
    response = client.get(entry_url(entry, "waiting-list-offer"))
    assert response.status_code == 409
    assert "no longer open" in response.content.decode()
    assert SESSION_BASKET not in client.session


# --- API -----------------------------------------------------------------------------------------------------


def test_api_join_answers_the_same_whether_or_not_the_address_waits(api, sold_out):
    body = {"ticket_type_id": sold_out.pk, "email": "ada@example.com", "quantity": 1}
    first = api.post("/api/waiting-list", body, format="json")
    second = api.post("/api/waiting-list", {**body, "email": "ADA@example.com"}, format="json")
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json() == {"status": "confirmation_sent", "detail": first.json()["detail"]}
    assert "token" not in first.content.decode()  # the token goes to the address only
    assert WaitingListEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "nope", "quantity": 1}, 400, "validation_error"),
        ({"email": "a@example.com", "quantity": "1"}, 400, "validation_error"),
        ({"email": "a@example.com", "quantity": 1, "ticket_type_id": 10**12}, 404, "not_found"),
    ],
)
def test_api_bad_joins_are_problems_and_change_nothing(api, sold_out, body, status, code):
    response = api.post("/api/waiting-list", {"ticket_type_id": sold_out.pk, **body}, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert response["Content-Type"] == "application/problem+json"
    assert not WaitingListEntry.objects.exists()


def test_api_join_of_an_available_ticket_type_is_409(api, ticket_type):
    body = {"ticket_type_id": ticket_type.pk, "email": "a@example.com", "quantity": 1}
    response = api.post("/api/waiting-list", body, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "tickets_available"


def test_api_entry_confirm_read_and_leave(api, sold_out):
    entry = join(sold_out, "ada@example.com")
    confirmed = api.post(f"/api/waiting-list/{entry.token}/confirm")
    assert confirmed.status_code == 200
    assert (confirmed.json()["status"], confirmed.json()["position"]) == ("waiting", 1)
    read = api.get(f"/api/waiting-list/{entry.token}").json()
    assert read["ticket_type_id"] == sold_out.pk
    assert read["offer_basket"] is None
    left = api.delete(f"/api/waiting-list/{entry.token}")
    assert left.json()["status"] == "left"
    assert left.json()["position"] is None
    assert api.get("/api/waiting-list/nope").status_code == 404


def test_api_entry_shows_an_open_offer_s_basket(api, sold_out):
    entry = in_line(sold_out, "ada@example.com")
    free_a_seat(sold_out)
    wl.waiting_list_sweep(now=timezone.now())
    entry.refresh_from_db()
    body = api.get(f"/api/waiting-list/{entry.token}").json()
    assert (body["status"], body["offer_basket"]) == ("offered", entry.basket.token)
    basket = api.get(f"/api/basket/{body['offer_basket']}").json()
    assert [item["ticket_type_id"] for item in basket["items"]] == [sold_out.pk]


def test_joining_is_rate_limited_per_address_and_per_client(api, sold_out, settings):
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "waiting_list_email": "2/h", "waiting_list_ip": "3/h"}
    body = {"ticket_type_id": sold_out.pk, "quantity": 1}
    answers = [api.post("/api/waiting-list", {**body, "email": "ada@example.com"}, format="json") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert answers[2].json()["code"] == "rate_limited"
    other = api.post("/api/waiting-list", {**body, "email": "bob@example.com"}, format="json")
    assert other.status_code == 429  # the client's third: its limit
    assert OutboundEmail.objects.filter(kind=OutboundEmail.Kind.WAITING_LIST_CONFIRM).count() == 2


def test_the_organizer_api_switches_the_list_off(staff_api, sold_out):
    response = staff_api.patch(f"/api/events/{sold_out.event_id}", {"waiting_list_enabled": False}, format="json")
    assert response.status_code == 200
    assert response.json()["waiting_list_enabled"] is False
    assert Event.objects.get(pk=sold_out.event_id).waiting_list_enabled is False


def test_the_organizer_api_shows_what_the_list_wants(staff_api, sold_out):
    in_line(sold_out, "ada@example.com", quantity=2)
    body = staff_api.get(f"/api/ticket-types/{sold_out.pk}").json()
    assert (body["waiting"], body["available"]) == (2, 0)


# --- admin and metrics ---------------------------------------------------------------------------------------


def test_the_admin_queue_shows_places_states_and_offers(admin_client, sold_out, django_assert_max_num_queries):
    entries = [in_line(sold_out, f"p{i}@example.com", now=timezone.now() + timedelta(seconds=i)) for i in range(3)]
    free_a_seat(sold_out)
    wl.waiting_list_sweep(now=timezone.now() + timedelta(seconds=5))
    url = reverse("admin:orders_waitinglistentry_changelist")
    response = admin_client.get(url, {"event": sold_out.event_id})
    assert response.status_code == 200
    rows = {entry.email: entry.position for entry in response.context["cl"].result_list}
    assert rows == {"p0@example.com": None, "p1@example.com": 1, "p2@example.com": 2}
    assert response.context["summary"] == {"waiting": 2, "seats": 2, "sent": 1, "open": 1, "used": 0, "expired": 0}
    assert "offers sent" in response.content.decode()
    assert admin_client.get(reverse("admin:orders_waitinglistentry_add")).status_code == 403
    change = reverse("admin:orders_waitinglistentry_change", args=[entries[0].pk])
    assert admin_client.post(change, {"status": "waiting"}).status_code == 403


def test_metrics_report_the_line_and_the_offers(sold_out, settings):
    settings.METRICS_DB_CACHE_SECONDS = 0
    for i in range(2):
        in_line(sold_out, f"p{i}@example.com", quantity=i + 1, now=timezone.now() + timedelta(seconds=i))
    free_a_seat(sold_out)
    wl.waiting_list_sweep(now=timezone.now() + timedelta(seconds=5))
    registry = CollectorRegistry()
    registry.register(WaitingListCollector())

    samples = {
        (sample.name, sample.labels.get("state", "")): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    assert samples[("aegistickets_waiting_list_length", "")] == 1
    assert samples[("aegistickets_waiting_list_seats", "")] == 2
    assert samples[("aegistickets_waiting_list_offers", "sent")] == 1
    assert samples[("aegistickets_waiting_list_offers", "open")] == 1
    assert samples[("aegistickets_waiting_list_offers", "expired")] == 0


def test_the_ticket_type_s_counter_is_not_editable_in_the_admin(db):
    assert "waiting" not in {field.name for field in TicketType._meta.get_fields() if field.editable}
