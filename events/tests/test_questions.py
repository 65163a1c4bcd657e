"""Organizers set the questions checkout asks about each ticket: through the API (PATCH /api/events/{id}) and the
admin's event page; buyers' clients read them on the public event; the database refuses a question it cannot ask."""

from __future__ import annotations

import pytest
from django.db import IntegrityError
from django.urls import reverse

from events.models import Event, Question
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db

SIZES = {"text": "T-shirt size", "kind": "choice", "required": True, "options": ["S", "M", "L"]}
DIET = {"text": "Dietary needs", "kind": "text"}


def test_organizers_set_questions_and_buyers_read_them_on_the_public_event(staff_api, api):
    event = EventFactory(is_published=True)
    workshop = TicketTypeFactory(event=event, name="Workshop")
    TicketTypeFactory(event=event, name="Talks")

    changed = staff_api.patch(
        f"/api/events/{event.pk}", {"questions": [SIZES, {**DIET, "ticket_type_ids": [workshop.pk]}]}, format="json"
    )

    assert changed.status_code == 200, changed.content
    sizes, diet = changed.json()["questions"]
    assert (sizes["text"], sizes["kind"], sizes["required"], sizes["options"]) == (
        "T-shirt size",
        "choice",
        True,
        ["S", "M", "L"],
    )
    assert (diet["ticket_type_ids"], diet["required"], diet["options"]) == ([workshop.pk], False, [])
    assert Event.objects.get(pk=event.pk).has_questions
    public = api.get(f"/api/events/{event.pk}").json()["questions"]
    assert [(q["id"], q["text"]) for q in public] == [(sizes["id"], "T-shirt size"), (diet["id"], "Dietary needs")]


def test_the_list_given_replaces_the_questions_and_the_flag_follows(staff_api):
    event = EventFactory()
    first = staff_api.patch(f"/api/events/{event.pk}", {"questions": [SIZES, DIET]}, format="json").json()
    sizes_id = first["questions"][0]["id"]

    kept = staff_api.patch(
        f"/api/events/{event.pk}", {"questions": [{**SIZES, "id": sizes_id, "text": "Shirt size"}]}, format="json"
    )

    assert [(q["id"], q["text"]) for q in kept.json()["questions"]] == [(sizes_id, "Shirt size")]
    assert list(Question.objects.values_list("text", flat=True)) == ["Shirt size"]
    staff_api.patch(f"/api/events/{event.pk}", {"questions": []}, format="json")
    assert not Event.objects.get(pk=event.pk).has_questions
    assert not Question.objects.exists()


@pytest.mark.parametrize(
    ("question", "field", "problem"),
    [
        ({"text": "Size", "kind": "choice", "options": ["S"]}, "questions.0.options", "at least two options"),
        (
            {"text": "Age", "kind": "number", "options": ["1", "2"]},
            "questions.0.options",
            "Only questions with options",
        ),
        ({"text": "Size", "kind": "text", "ticket_type_ids": [999]}, "questions.0.ticket_type_ids", "this event"),
        ({"text": "Size", "kind": "text", "id": 999}, "questions.0.id", "Not a question of this event"),
        ({"text": "Size", "kind": "colour"}, "questions", "not a valid choice"),
    ],
)
def test_a_question_that_cannot_be_asked_is_400_and_nothing_changes(staff_api, question, field, problem):
    event = EventFactory()
    response = staff_api.patch(f"/api/events/{event.pk}", {"questions": [question]}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert problem in " ".join(response.json()["errors"][field])
    assert not Question.objects.exists()
    assert not Event.objects.get(pk=event.pk).has_questions


def test_two_questions_of_one_event_never_share_a_text(staff_api):
    event = EventFactory()
    response = staff_api.patch(f"/api/events/{event.pk}", {"questions": [DIET, DIET]}, format="json")
    assert response.json()["errors"]["questions.1.text"] == ["Each question needs a text of its own."]


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "choice", "options": ""},  # nothing to choose from
        {"kind": "text", "options": "S\nM"},  # options nobody is offered
        {"kind": "colour"},
        {"text": ""},
    ],
)
def test_the_database_refuses_a_question_that_cannot_be_asked(fields):
    with pytest.raises(IntegrityError):
        Question.objects.create(**{"event": EventFactory(), "text": "Size", "kind": "text", **fields})


def test_the_schema_documents_the_questions(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()["components"]["schemas"]
    assert "questions" in schema["EventDetailOutput"]["properties"]
    assert "questions" in schema["PatchedEventUpdateInputRequest"]["properties"]
    assert set(schema["QuestionOutput"]["properties"]) >= {
        "id",
        "text",
        "kind",
        "required",
        "options",
        "ticket_type_ids",
    }


def _admin_form(event: Event, **questions: str) -> dict[str, str]:
    """The event change form as posted, with no ticket type rows and the question rows given."""
    from django.forms.models import model_to_dict
    from django.utils import timezone

    data = {
        k: v
        for k, v in model_to_dict(event, exclude=["image", "starts_at", "ends_at", "organizer"]).items()
        if v is not None
    }
    data["organizer"] = str(event.organizer_id)
    for name in ("starts_at", "ends_at"):
        moment = timezone.localtime(getattr(event, name))
        data |= {f"{name}_0": moment.strftime("%Y-%m-%d"), f"{name}_1": moment.strftime("%H:%M:%S")}
    for prefix, total in (("ticket_types", 0), ("questions", 1 if questions else 0), ("terms_versions", 0)):
        data |= {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": "0"}
    data |= {f"questions-0-{name}": value for name, value in questions.items()}
    return data


def test_the_admin_adds_a_question_on_the_event_page_and_checkout_knows(admin_client):
    event = EventFactory()
    url = reverse("admin:events_event_change", args=[event.pk])
    page = admin_client.get(url).content.decode()
    assert "Questions asked at checkout" in page

    refused = admin_client.post(url, _admin_form(event, text="Size", kind="choice", options="S", position="0"))
    assert "Give at least two options, one per line." in refused.content.decode()

    saved = admin_client.post(url, _admin_form(event, text="Size", kind="choice", options="S\nM", position="0"))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert Question.objects.get().option_list == ["S", "M"]
    assert Event.objects.get(pk=event.pk).has_questions
