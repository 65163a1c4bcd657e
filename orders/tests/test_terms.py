"""Terms and conditions: an event's terms are versioned (each changed text a new version, every version kept),
checkout asks the buyer to accept the current version (page and API), and the order records the version accepted."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.forms.models import model_to_dict
from django.test import RequestFactory
from django.utils import timezone

from events.admin import EventAdmin
from events.models import Event, EventTerms
from events.services import event_terms_set
from events.tests.factories import EventFactory, TicketTypeFactory, organizer
from orders.models import Order, Payment
from orders.tests.test_pages import _checkout

pytestmark = pytest.mark.django_db

TERMS = "No refunds after the doors open.\n\nBring a photo ID."


def test_each_changed_text_is_a_new_version_and_every_version_is_kept():
    event = EventFactory()
    assert event_terms_set(event_id=event.pk, text=TERMS).terms_version == 1
    assert event_terms_set(event_id=event.pk, text=TERMS).terms_version == 1  # unchanged: no new version
    assert event_terms_set(event_id=event.pk, text=TERMS + " Or a passport.").terms_version == 2
    assert event_terms_set(event_id=event.pk, text="").terms_version == 0  # no terms to accept
    assert event_terms_set(event_id=event.pk, text=TERMS).terms_version == 3  # numbers never repeat
    assert list(EventTerms.objects.filter(event=event).values_list("version", flat=True)) == [1, 2, 3]
    assert EventTerms.objects.get(event=event, version=2).text == TERMS + " Or a passport."


def test_the_admin_saves_changed_terms_as_a_new_version():
    event = EventFactory()
    event_terms_set(event_id=event.pk, text=TERMS)
    event.refresh_from_db()
    request = RequestFactory().post("/admin/")
    request.user = organizer()
    model_admin = EventAdmin(Event, admin.site)
    form_class = model_admin.get_form(request, event, change=True)
    data = {**model_to_dict(event, exclude=["image", "starts_at", "ends_at"]), "terms": "New house rules."}
    for name in ("starts_at", "ends_at"):  # the admin's split date and time inputs
        moment = timezone.localtime(getattr(event, name))
        data |= {f"{name}_0": moment.strftime("%Y-%m-%d"), f"{name}_1": moment.strftime("%H:%M:%S")}
    form = form_class(data=data, instance=event)
    assert form.is_valid(), form.errors

    model_admin.save_model(request, form.save(commit=False), form, change=True)

    event.refresh_from_db()
    assert (event.terms, event.terms_version) == ("New house rules.", 2)
    assert EventTerms.objects.get(event=event, version=1).text == TERMS


def test_organizers_set_terms_and_buyers_read_them_with_their_version(staff_api, api):
    event = EventFactory(is_published=True)
    TicketTypeFactory(event=event)

    changed = staff_api.patch(f"/api/events/{event.pk}", {"terms": TERMS}, format="json")

    assert (changed.status_code, changed.json()["terms_version"]) == (200, 1)
    public = api.get(f"/api/events/{event.pk}").json()
    assert (public["terms"], public["terms_version"]) == (TERMS, 1)


@pytest.fixture
def with_terms():  # type: ignore[no-untyped-def]
    ticket_type = TicketTypeFactory(capacity=10)
    event_terms_set(event_id=ticket_type.event_id, text=TERMS)
    return ticket_type


def checkout(api, ticket_type, **fields):  # type: ignore[no-untyped-def]
    token = api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1}, format="json").json()["token"]
    body = {"basket": token, "name": "Ada", "email": "ada@example.com", "payment_method": "test", **fields}
    return api.post("/api/checkout", body, format="json")


def test_the_api_checkout_records_the_version_accepted(api, staff_api, with_terms):
    event_id = with_terms.event_id
    response = checkout(api, with_terms, accepted_terms={str(event_id): 1})

    assert response.status_code == 201, response.content
    order = Order.objects.get()
    assert order.accepted_terms == {str(event_id): 1}
    assert staff_api.get(f"/api/orders/{order.code}").json()["order"]["accepted_terms"] == {str(event_id): 1}


@pytest.mark.parametrize(
    ("accepted", "message"),
    [
        (None, "Read and accept the terms of {name} (version 2)."),
        (1, "Read and accept the terms of {name} (version 2). They changed since you accepted them."),
    ],
    ids=["not accepted", "an older version accepted"],
)
def test_terms_not_accepted_in_their_current_version_are_400_before_any_payment(api, with_terms, accepted, message):
    event = with_terms.event
    event_terms_set(event_id=event.pk, text=TERMS + " Version two.")
    fields = {"accepted_terms": {str(event.pk): accepted}} if accepted else {}

    response = checkout(api, with_terms, **fields)

    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert response.json()["errors"]["accepted_terms"] == [message.format(name=event.name)]
    assert not Order.objects.exists()
    assert not Payment.objects.exists()


@pytest.mark.parametrize("accepted", [{"x": 1}, {"1": 0}, {"1": "1"}, ["1"]])
def test_accepted_terms_of_the_wrong_shape_are_400(api, with_terms, accepted):
    response = checkout(api, with_terms, accepted_terms=accepted)
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert "accepted_terms" in response.json()["errors"]


def test_an_event_without_terms_asks_nothing(api):
    assert checkout(api, TicketTypeFactory(capacity=5)).status_code == 201
    assert Order.objects.get().accepted_terms == {}


# --- the checkout page ----------------------------------------------------------------------------------------


def test_the_page_shows_the_terms_and_the_buyer_must_tick_them(client, with_terms):
    event = with_terms.event
    client.post(f"/events/{event.slug}/basket/", {"ticket_type": with_terms.pk, "quantity": 1})

    html = client.get("/checkout/").content.decode()
    assert f"Terms and conditions of {event.name}" in html
    assert "Bring a photo ID." in html

    refused = _checkout(client, **{f"terms_{event.pk}_version": "1"})
    assert "This field is required." in refused.content.decode()
    assert not Order.objects.exists()

    placed = _checkout(client, **{f"terms_{event.pk}": "on", f"terms_{event.pk}_version": "1"})
    assert placed.status_code == 302
    assert Order.objects.get().accepted_terms == {str(event.pk): 1}


def test_terms_changed_while_the_buyer_read_them_must_be_read_again(client, with_terms):
    event = with_terms.event
    client.post(f"/events/{event.slug}/basket/", {"ticket_type": with_terms.pk, "quantity": 1})
    event_terms_set(event_id=event.pk, text="Changed while you were reading.")

    answer = _checkout(client, **{f"terms_{event.pk}": "on", f"terms_{event.pk}_version": "1"})

    assert "They changed since you accepted them." in answer.content.decode()
    assert "Changed while you were reading." in answer.content.decode()  # the page shows the new text
    assert not Order.objects.exists()
