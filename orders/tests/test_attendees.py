"""Who each ticket is for: where an event asks (Event.attendee_data), checkout takes a name (and an email) per seat,
from the page and the API, refuses the order without them, and every place that shows a ticket shows its holder."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from aegistickets.errors import ValidationFailedError
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, services
from orders.models import Order, Payment, Ticket
from orders.tests.test_cancellations import send_queued_emails
from orders.tests.test_pages import _checkout
from orders.tests.test_pending_orders import WINDOW, pay, pending_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def named():  # type: ignore[no-untyped-def]
    """A ticket type of a conference that prints badges: a name and an email per ticket."""
    event = EventFactory(name="PyCon Kraków", attendee_data=Event.AttendeeData.NAME_EMAIL)
    return TicketTypeFactory(event=event, name="Conference", capacity=20)


def api_checkout(api, ticket_type, quantity=2, **fields):  # type: ignore[no-untyped-def]
    body = {"ticket_type_id": ticket_type.pk, "quantity": quantity}
    token = api.post("/api/basket", body, format="json").json()["token"]
    order = {"basket": token, "name": "Ada", "email": "ada@example.com", "payment_method": "test", **fields}
    return api.post("/api/checkout", order, format="json")


def two(ticket_type):  # type: ignore[no-untyped-def]
    return [
        {"ticket_type_id": ticket_type.pk, "name": "Grace Hopper", "email": "grace@example.com"},
        {"ticket_type_id": ticket_type.pk, "name": "Alan Turing", "email": "alan@example.com"},
    ]


def test_each_ticket_gets_the_name_and_email_given_for_its_seat(api, staff_api, named):
    response = api_checkout(api, named, attendees=two(named))

    assert response.status_code == 201, response.content
    tickets = response.json()["order"]["tickets"]
    assert [(t["attendee_name"], t["attendee_email"]) for t in tickets] == [
        ("Grace Hopper", "grace@example.com"),
        ("Alan Turing", "alan@example.com"),
    ]
    code = response.json()["order"]["code"]
    staff_view = staff_api.get(f"/api/orders/{code}").json()["order"]["tickets"]
    assert [t["attendee_name"] for t in staff_view] == ["Grace Hopper", "Alan Turing"]


@pytest.mark.parametrize(
    ("attendees", "problem"),
    [
        ([], "Conference: name 2 attendees, one per ticket."),
        ("one", "Conference: name 2 attendees, one per ticket."),
        ("no email", "Conference: PyCon Kraków asks for each attendee's email."),
        ("blank name", "0: name: This field may not be blank."),
        ("other type", "Not ticket types of this basket: 999."),
    ],
)
def test_missing_or_wrong_attendees_are_400_and_nothing_is_sold(api, named, attendees, problem):
    given = (
        {
            "one": two(named)[:1],
            "no email": [{k: v for k, v in a.items() if k != "email"} for a in two(named)],
            "blank name": [{**a, "name": "  "} for a in two(named)],
            "other type": [*two(named), {"ticket_type_id": 999, "name": "Extra"}],
        }.get(attendees, attendees)
        if isinstance(attendees, str)
        else attendees
    )

    response = api_checkout(api, named, attendees=given)

    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert problem in response.json()["errors"]["attendees"]
    assert not Order.objects.exists()
    assert not Payment.objects.exists()  # refused before the provider was asked


def test_an_event_that_asks_for_nobody_refuses_names(api):
    plain = TicketTypeFactory(capacity=5)
    response = api_checkout(api, plain, quantity=1, attendees=[{"ticket_type_id": plain.pk, "name": "Ada"}])
    assert response.json()["errors"]["attendees"] == [f"{plain.name}: name 0 attendees, one per ticket."]


@pytest.mark.parametrize(
    "attendee", [{"ticket_type_id": "1", "name": "A"}, {"ticket_type_id": 1, "name": 5}, "Ada", {"name": "A"}]
)
def test_attendees_of_the_wrong_json_shape_are_400(api, named, attendee):
    response = api_checkout(api, named, quantity=1, attendees=[attendee])
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert "attendees" in response.json()["errors"]


def test_a_pending_order_keeps_the_names_until_it_is_paid(stripe_shop, named, now):
    attendees = [checkout.Attendee(named.pk, "Grace Hopper", "grace@example.com")]
    basket = services.basket_add(token=None, ticket_type_id=named.pk, quantity=1, now=now)
    result = checkout.order_place(
        token=basket.token, name="Ada", email="ada@example.com", payment_method="stripe", now=now, attendees=attendees
    )
    pay(result.payment)
    checkout.payment_settle(payment=result.payment, now=now + timedelta(minutes=1))
    assert list(Ticket.objects.values_list("attendee_name", "attendee_email")) == [
        ("Grace Hopper", "grace@example.com")
    ]


def buy_on_the_page(client, ticket_type, quantity, fields):  # type: ignore[no-untyped-def]
    """Buys through the basket and checkout pages with these checkout fields: the order and its page's HTML."""
    client.post(f"/events/{ticket_type.event.slug}/basket/", {"ticket_type": ticket_type.pk, "quantity": quantity})
    placed = _checkout(client, **fields)
    order = Order.objects.get()
    assert placed["Location"] == f"/orders/{order.code}/{order.secret}/"
    return order, client.get(placed["Location"]).content.decode()


def pdf_text(client, order) -> str:  # type: ignore[no-untyped-def]
    """The text of the order's tickets PDF, as its buyer downloads it."""
    pdf = client.get(f"/orders/{order.code}/{order.secret}/tickets.pdf").content
    return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def attendee_export(staff_api, event_id: int) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The event's attendee CSV export, as rows by column name."""
    export = b"".join(staff_api.get(f"/api/events/{event_id}/attendees.csv").streaming_content).decode()
    return list(csv.DictReader(io.StringIO(export)))


# --- the checkout page ----------------------------------------------------------------------------------------


def test_the_page_asks_who_is_coming_and_says_what_is_missing_next_to_the_field(client, named):
    client.post(f"/events/{named.event.slug}/basket/", {"ticket_type": named.pk, "quantity": 2})

    html = client.get("/checkout/").content.decode()
    assert "Who's coming?" in html
    assert "Ticket 2 (Conference, PyCon Kraków): email" in html

    refused = _checkout(client, **{f"attendee_{named.pk}_0_name": "Grace Hopper"})
    assert refused.status_code == 200
    assert "This field is required." in refused.content.decode()
    assert not Order.objects.exists()


def test_the_names_reach_the_order_page_pdf_email_door_and_export(client, staff_api, named):
    fields = {}
    for index, attendee in enumerate(two(named)):
        fields[f"attendee_{named.pk}_{index}_name"] = attendee["name"]
        fields[f"attendee_{named.pk}_{index}_email"] = attendee["email"]
    order, page = buy_on_the_page(client, named, 2, fields)

    assert "For Grace Hopper" in page
    assert "For Alan Turing" in page
    text = pdf_text(client, order)
    assert "Name: Grace Hopper" in text
    assert "Bought by: Ada Lovelace" in text
    send_queued_emails()
    assert "for Grace Hopper, Alan Turing" in mail.outbox[0].body

    rows = attendee_export(staff_api, named.event_id)
    assert [(r["attendee_name"], r["attendee_email"]) for r in rows] == [
        ("Grace Hopper", "grace@example.com"),
        ("Alan Turing", "alan@example.com"),
    ]


def test_the_door_sees_the_holders_name(named, now):
    from orders.tests.test_check_in import door_user

    Event.objects.filter(pk=named.event_id).update(starts_at=timezone.now(), ends_at=timezone.now() + WINDOW)
    basket = services.basket_add(token=None, ticket_type_id=named.pk, quantity=1, now=now)
    attendees = [checkout.Attendee(named.pk, "Grace Hopper", "grace@example.com")]
    checkout.order_place(
        token=basket.token, name="Ada", email="ada@example.com", payment_method="test", now=now, attendees=attendees
    )
    door = Client()
    door.force_login(door_user())
    answer = door.post("/check-in/", {"event": named.event_id, "secret": Ticket.objects.get().code})
    html = answer.content.decode()
    assert 'class="checkin-result__name">Grace Hopper<' in html
    assert "bought by Ada" in html


def test_the_rule_holds_on_the_pending_path_too(stripe_shop, named, now):
    """A Stripe checkout without the names is refused before Stripe is asked, as an immediate one is."""
    with pytest.raises(ValidationFailedError):
        pending_order(named, now, quantity=1)
    assert not Payment.objects.exists()


def test_a_blank_name_from_any_caller_is_refused_by_the_service(named, now):
    basket = services.basket_add(token=None, ticket_type_id=named.pk, quantity=1, now=now)
    with pytest.raises(ValidationFailedError) as refused:
        checkout.order_place(
            token=basket.token,
            name="Ada",
            email="ada@example.com",
            payment_method="test",
            now=now,
            attendees=[checkout.Attendee(named.pk, " ", "x@example.com")],
        )
    assert refused.value.errors == {"attendees": ["Every attendee needs a name."]}
