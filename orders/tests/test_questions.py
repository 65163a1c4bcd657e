"""Answers to an event's questions: checkout takes them per seat (page and API), refuses a wrong or missing one before
any payment with the problem named next to its field, stores them on each ticket with the question as asked, and
every place that shows a ticket shows them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from aegistickets.errors import ValidationFailedError
from events.models import Event, Question
from events.services import event_update
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, services
from orders.answers import SeatAnswers
from orders.models import Order, OrderLine, Payment, Ticket
from orders.tests.test_attendees import attendee_export, buy_on_the_page, pdf_text
from orders.tests.test_cancellations import send_queued_emails
from orders.tests.test_pages import _checkout
from orders.tests.test_pending_orders import WINDOW, pay

pytestmark = pytest.mark.django_db

QUESTIONS = [
    {"text": "T-shirt size", "kind": "choice", "required": True, "options": ["S", "M", "L"]},
    {"text": "Dietary needs", "kind": "text"},
    {"text": "Age", "kind": "number"},
    {"text": "Workshops", "kind": "multiple", "options": ["CSS", "Web components", "Testing"]},
    {"text": "First time here?", "kind": "yes_no", "required": True},
]


@pytest.fixture
def conference():  # type: ignore[no-untyped-def]
    """A conference's two ticket types and its questions, by text; the dietary one only for the workshop tickets."""
    event = EventFactory(name="Web Craft Day")
    talks = TicketTypeFactory(event=event, name="Talks", capacity=20)
    workshop = TicketTypeFactory(event=event, name="Workshop", capacity=20)
    asked = [{**q, "ticket_type_ids": [workshop.pk]} if q["text"] == "Dietary needs" else q for q in QUESTIONS]
    event_update(event_id=event.pk, data={"questions": asked})
    questions = {q.text: q for q in Question.objects.filter(event=event)}
    return talks, workshop, questions


def good(questions, **changes):  # type: ignore[no-untyped-def]
    """Answers to every question asked about a Talks ticket, as the API takes them."""
    values = {"T-shirt size": "M", "Age": 42, "Workshops": ["Testing", "CSS"], "First time here?": True, **changes}
    return {str(questions[text].pk): value for text, value in values.items()}


def api_checkout(api, ticket_type, answers, quantity=1):  # type: ignore[no-untyped-def]
    body = {"ticket_type_id": ticket_type.pk, "quantity": quantity}
    token = api.post("/api/basket", body, format="json").json()["token"]
    order = {"basket": token, "name": "Ada", "email": "ada@example.com", "payment_method": "test", "answers": answers}
    return api.post("/api/checkout", order, format="json")


def test_each_ticket_keeps_the_answers_about_it_with_the_question_as_asked(api, staff_api, conference):
    talks, _, questions = conference
    seats = [
        {"ticket_type_id": talks.pk, "values": good(questions)},
        {"ticket_type_id": talks.pk, "values": good(questions, **{"T-shirt size": "L", "First time here?": False})},
    ]

    response = api_checkout(api, talks, seats, quantity=2)

    assert response.status_code == 201, response.content
    first, second = response.json()["order"]["tickets"]
    assert [(a["question"], a["value"]) for a in first["answers"]] == [
        ("T-shirt size", "M"),
        ("Age", "42"),
        ("Workshops", ["CSS", "Testing"]),  # in the question's order
        ("First time here?", True),
    ]
    assert [a["value"] for a in second["answers"]][::3] == ["L", False]
    # Changing a question later changes no answer given.
    event_update(event_id=talks.event_id, data={"questions": [{**QUESTIONS[0], "text": "Size"}]})
    code = response.json()["order"]["code"]
    staff_view = staff_api.get(f"/api/orders/{code}").json()["order"]["tickets"][0]["answers"]
    assert staff_view[0] == {
        "question_id": questions["T-shirt size"].pk,
        "question": "T-shirt size",
        "kind": "choice",
        "value": "M",
    }


@pytest.mark.parametrize(
    ("question", "value", "problem"),
    [
        ("T-shirt size", "XXL", "Choose one of: S, M, L."),
        ("T-shirt size", None, "This question needs an answer."),
        ("Age", "forty", "Answer with a number, such as 42 or 3.5."),
        ("Age", True, "Answer with a number, such as 42 or 3.5."),
        ("Workshops", ["CSS", "Cooking"], "Choose any of: CSS, Web components, Testing."),
        ("Workshops", "CSS", "Choose any of: CSS, Web components, Testing."),
        ("First time here?", "yes", "Answer yes (true) or no (false)."),
        ("First time here?", None, "This question needs an answer."),
    ],
)
def test_a_wrong_answer_is_400_named_after_its_field_and_nothing_is_sold(api, conference, question, value, problem):
    talks, _, questions = conference
    values = good(questions, **{question: value})

    response = api_checkout(api, talks, [{"ticket_type_id": talks.pk, "values": values}])

    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert response.json()["errors"] == {f"answer_{talks.pk}_0_{questions[question].pk}": [problem]}
    assert not Order.objects.exists()
    assert not Payment.objects.exists()  # refused before the provider was asked


def test_a_text_answer_is_a_string(api, conference):
    _, workshop, questions = conference
    values = {**good(questions), str(questions["Dietary needs"].pk): 5}
    response = api_checkout(api, workshop, [{"ticket_type_id": workshop.pk, "values": values}])
    assert response.json()["errors"] == {
        f"answer_{workshop.pk}_0_{questions['Dietary needs'].pk}": ["Answer with a text of at most 1000 characters."]
    }


def test_questions_unknown_or_not_asked_about_the_ticket_are_refused(api, conference):
    talks, _, questions = conference
    values = {**good(questions), str(questions["Dietary needs"].pk): "vegan", "999": "?"}
    response = api_checkout(api, talks, [{"ticket_type_id": talks.pk, "values": values}])
    assert response.json()["errors"] == {
        "answers": [
            f"Talks ticket 1: question {questions['Dietary needs'].pk}, 999 is not asked about it (unknown, or only "
            "for other ticket types)."
        ]
    }
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("seats", "problem"),
    [
        ("two for one", "Talks: answers for at most 1 tickets, one entry per ticket."),
        ("other type", "Not ticket types of this basket: 999."),
    ],
)
def test_more_seats_than_bought_or_other_ticket_types_are_refused(api, conference, seats, problem):
    talks, _, questions = conference
    entry = {"ticket_type_id": talks.pk, "values": good(questions)}
    given = [entry, entry] if seats == "two for one" else [entry, {"ticket_type_id": 999, "values": {}}]
    response = api_checkout(api, talks, given)
    assert problem in response.json()["errors"]["answers"]


def test_a_required_question_left_unanswered_is_refused_for_each_seat(api, conference):
    talks, _, questions = conference
    response = api_checkout(api, talks, [], quantity=2)
    errors = response.json()["errors"]
    assert errors[f"answer_{talks.pk}_1_{questions['T-shirt size'].pk}"] == ["This question needs an answer."]
    assert len(errors) == 4  # two required questions, two seats


@pytest.mark.parametrize("values", [{"x": "M"}, ["M"]])
def test_answers_of_the_wrong_json_shape_are_400(api, conference, values):
    talks, _, _ = conference
    response = api_checkout(api, talks, [{"ticket_type_id": talks.pk, "values": values}])
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert "answers" in response.json()["errors"]


def test_an_event_without_questions_refuses_answers(api):
    plain = TicketTypeFactory(capacity=5)
    response = api_checkout(api, plain, [{"ticket_type_id": plain.pk, "values": {"1": "M"}}])
    assert response.status_code == 400
    assert "is not asked about it" in response.json()["errors"]["answers"][0]


def test_the_schema_documents_the_answers(api):
    schemas = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()["components"]["schemas"]
    assert (
        "answer_<ticket type id>_<seat, from 0>_<question id>"
        in schemas["CheckoutInputRequest"]["properties"]["answers"]["description"]
    )
    assert set(schemas["SeatAnswersInputRequest"]["properties"]) == {"ticket_type_id", "values"}
    assert "answers" in schemas["TicketOutput"]["properties"]


def _checkout_queries(ticket_type, now, answers=()):  # type: ignore[no-untyped-def]
    token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now).token
    with CaptureQueriesContext(connection) as queries:
        checkout.order_place(
            token=token, name="Ada", email="ada@example.com", payment_method="test", now=now, answers=answers
        )
    return [query["sql"] for query in queries]


def test_checkout_reads_the_questions_only_for_events_that_have_some(conference, now):
    """The basket's read gives each event's has_questions: an event without questions costs no query for them, one
    with questions two (the questions, the ticket types each names)."""
    plain = TicketTypeFactory(capacity=5)
    talks, _, questions = conference

    without = _checkout_queries(plain, now)
    asked = _checkout_queries(
        talks, now, [SeatAnswers(talks.pk, {questions["T-shirt size"].pk: "S", questions["First time here?"].pk: True})]
    )

    assert not [sql for sql in without if "events_question" in sql]
    assert len(asked) == len(without) + 2
    assert len([sql for sql in asked if "events_question" in sql]) == 2


def test_a_pending_order_keeps_the_answers_until_it_is_paid(stripe_shop, conference, now):
    talks, _, questions = conference
    basket = services.basket_add(token=None, ticket_type_id=talks.pk, quantity=1, now=now)
    answers = [SeatAnswers(talks.pk, {questions["T-shirt size"].pk: "S", questions["First time here?"].pk: False})]
    result = checkout.order_place(
        token=basket.token, name="Ada", email="ada@example.com", payment_method="stripe", now=now, answers=answers
    )
    assert not Ticket.objects.exists()
    assert [a["value"] for a in OrderLine.objects.get().answers[0]] == ["S", False]

    pay(result.payment)
    checkout.payment_settle(payment=result.payment, now=now + timedelta(minutes=1))

    assert [a["value"] for a in Ticket.objects.get().answers] == ["S", False]


def test_the_service_refuses_a_wrong_answer_from_any_caller(conference, now):
    talks, _, questions = conference
    basket = services.basket_add(token=None, ticket_type_id=talks.pk, quantity=1, now=now)
    answers = [SeatAnswers(talks.pk, {questions["T-shirt size"].pk: "XXL", questions["First time here?"].pk: True})]
    with pytest.raises(ValidationFailedError) as refused:
        checkout.order_place(
            token=basket.token, name="Ada", email="ada@example.com", payment_method="test", now=now, answers=answers
        )
    assert refused.value.errors == {f"answer_{talks.pk}_0_{questions['T-shirt size'].pk}": ["Choose one of: S, M, L."]}


# --- the checkout page and every place that shows a ticket ---------------------------------------------------------


def _fields(ticket_type, questions, seat=0, **values):  # type: ignore[no-untyped-def]
    return {f"answer_{ticket_type.pk}_{seat}_{questions[text].pk}": value for text, value in values.items()}


def test_the_page_asks_each_question_with_its_widget_and_says_what_is_wrong_next_to_it(client, conference):
    _, workshop, questions = conference
    client.post(f"/events/{workshop.event.slug}/basket/", {"ticket_type": workshop.pk, "quantity": 1})

    html = client.get("/checkout/").content.decode()
    assert "About your tickets" in html
    assert "<legend>Ticket 1 (Workshop, Web Craft Day)</legend>" in html
    size = f"answer_{workshop.pk}_0_{questions['T-shirt size'].pk}"
    assert f'<select name="{size}" aria-required="true" id="id_{size}">' in html
    assert 'type="number" name="answer_' in html
    assert 'type="checkbox" name="answer_' in html
    assert 'type="radio" name="answer_' in html

    fields = _fields(workshop, questions, **{"Dietary needs": "vegan", "Age": "forty", "First time here?": "yes"})
    refused = _checkout(client, **fields).content.decode()

    assert "This question needs an answer." in refused  # the size
    assert "Answer with a number, such as 42 or 3.5." in refused
    assert 'value="vegan"' in refused  # what the buyer typed stays
    assert not Order.objects.exists()


def test_the_answers_reach_the_order_page_pdf_email_export_and_admin(client, admin_client, staff_api, conference):
    _, workshop, questions = conference
    fields = _fields(
        workshop, questions, **{"T-shirt size": "L", "Dietary needs": "vegan", "First time here?": "no"}
    ) | {f"answer_{workshop.pk}_0_{questions['Workshops'].pk}": ["CSS", "Testing"]}
    order, page = buy_on_the_page(client, workshop, 1, fields)

    assert "<dt>T-shirt size</dt> <dd>L</dd>" in page
    assert "<dt>Workshops</dt> <dd>CSS, Testing</dd>" in page
    text = pdf_text(client, order)
    assert "Dietary needs: vegan" in text
    assert "First time here?: No" in text
    send_queued_emails()
    assert "T-shirt size: L; Dietary needs: vegan; Workshops: CSS, Testing; First time here?: No" in mail.outbox[0].body

    (row,) = attendee_export(staff_api, workshop.event_id)
    assert [row[text] for text in ("T-shirt size", "Dietary needs", "Age", "Workshops", "First time here?")] == [
        "L",
        "vegan",
        "",
        "CSS, Testing",
        "No",
    ]
    admin_page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "T-shirt size: L; Dietary needs: vegan" in admin_page


def test_the_export_has_one_column_per_question_in_the_order_asked(staff_api, conference):
    talks, _, _ = conference
    export = b"".join(staff_api.get(f"/api/events/{talks.event_id}/attendees.csv").streaming_content).decode()
    header = next(csv.reader(io.StringIO(export)))
    assert header[-5:] == [q["text"] for q in QUESTIONS]


def test_the_door_sees_the_answers(conference, now):
    from orders.tests.test_check_in import door_user

    talks, _, questions = conference
    Event.objects.filter(pk=talks.event_id).update(starts_at=timezone.now(), ends_at=timezone.now() + WINDOW)
    basket = services.basket_add(token=None, ticket_type_id=talks.pk, quantity=1, now=now)
    answers = [SeatAnswers(talks.pk, {questions["T-shirt size"].pk: "S", questions["First time here?"].pk: True})]
    checkout.order_place(
        token=basket.token, name="Ada", email="ada@example.com", payment_method="test", now=now, answers=answers
    )
    door = Client()
    door.force_login(door_user())
    html = door.post("/check-in/", {"event": talks.event_id, "secret": Ticket.objects.get().code}).content.decode()
    assert 'class="checkin-result__answer">T-shirt size: <strong>S</strong>' in html
