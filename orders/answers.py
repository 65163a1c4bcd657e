"""The buyer's answers to the events' questions (events.models.Question): checked per seat at checkout, and stored
as the tickets keep them, with each question's text as it was asked.

Errors name the seat and the question in their key, `answer_<ticket type id>_<seat>_<question id>` (the seat counted
from 0 within its ticket type): the checkout page's field for that answer has the same name, so the message shows
next to it; seat-level problems are under `answers`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from aegistickets.errors import ValidationFailedError
from events.models import Question, TicketType
from orders.models import Hold

NEEDS_ANSWER = gettext_lazy("This question needs an answer.")
TEXT_MAX = 1000

# Per ticket type, per seat in seat order: the answers as a Ticket stores them.
StoredAnswers = dict[int, list[list[dict[str, Any]]]]


@dataclass(frozen=True)
class SeatAnswers:
    """The answers about one seat, a ticket of `ticket_type_id`, by question id; in seat order per ticket type, as
    attendees are."""

    ticket_type_id: int
    values: Mapping[int, object] = field(default_factory=dict)


def answer_field(ticket_type_id: int, seat: int, question_id: int) -> str:
    return f"answer_{ticket_type_id}_{seat}_{question_id}"


def answers_checked(
    *, holds: Sequence[Hold], given: Sequence[SeatAnswers], questions: Sequence[Question]
) -> StoredAnswers:
    """Every seat's answers as stored, if each is an answer its question takes, every required question of its ticket
    type is answered, and nothing else is answered; refused as a whole, each problem named."""
    problems: dict[str, list[str]] = {}
    per_type: dict[int, list[SeatAnswers]] = {}
    for seat in given:
        per_type.setdefault(seat.ticket_type_id, []).append(seat)
    stored: StoredAnswers = {}
    for hold in holds:
        ticket_type = hold.ticket_type
        asked = [q for q in questions if q.event_id == ticket_type.event_id and q.applies_to(ticket_type.pk)]
        seats = per_type.pop(ticket_type.pk, [])
        if len(seats) > hold.quantity:
            problems.setdefault("answers", []).append(
                _("%(ticket_type)s: answers for at most %(count)d tickets, one entry per ticket.")
                % {"ticket_type": ticket_type.name, "count": hold.quantity}
            )
        stored[ticket_type.pk] = [
            _seat(ticket_type, index, asked, seats[index].values if index < len(seats) else {}, problems)
            for index in range(hold.quantity)
        ]
    if per_type:
        problems.setdefault("answers", []).append(
            _("Not ticket types of this basket: %(ids)s.") % {"ids": ", ".join(map(str, sorted(per_type)))}
        )
    if problems:
        raise ValidationFailedError(errors=problems)
    return stored


def _seat(
    ticket_type: TicketType,
    index: int,
    asked: list[Question],
    given: Mapping[int, object],
    problems: dict[str, list[str]],
) -> list[dict[str, Any]]:
    """One seat's answers as stored; its problems added to `problems`."""
    asked_ids = {question.pk for question in asked}
    unknown = sorted(set(given) - asked_ids)
    if unknown:
        problems.setdefault("answers", []).append(
            _(
                "%(ticket_type)s ticket %(number)d: question %(questions)s is not asked about it "
                "(unknown, or only for other ticket types)."
            )
            % {"ticket_type": ticket_type.name, "number": index + 1, "questions": ", ".join(map(str, unknown))}
        )
    stored = []
    for question in asked:
        try:
            value = _value(question, given.get(question.pk))
        except ValueError as wrong:
            problems[answer_field(ticket_type.pk, index, question.pk)] = [str(wrong)]
            continue
        if value is not None:
            stored.append(
                {"question_id": question.pk, "question": question.text, "kind": question.kind, "value": value}
            )
    return stored


def _value(question: Question, raw: object) -> object:
    """The answer as stored (None: unanswered), or ValueError saying what is wrong with it."""
    if raw is None or raw == [] or (isinstance(raw, str) and not raw.strip()):
        if question.required:
            raise ValueError(str(NEEDS_ANSWER))
        return None
    kind, options = question.kind, question.option_list
    if kind == Question.Kind.TEXT:
        if not isinstance(raw, str) or len(raw) > TEXT_MAX:
            raise ValueError(_("Answer with a text of at most %(max)d characters.") % {"max": TEXT_MAX})
        return raw.strip()
    if kind == Question.Kind.NUMBER:
        return _number(raw)
    if kind == Question.Kind.CHOICE:
        if not isinstance(raw, str) or raw not in options:
            raise ValueError(_("Choose one of: %(options)s.") % {"options": ", ".join(options)})
        return raw
    if kind == Question.Kind.MULTIPLE:
        if not isinstance(raw, list) or not all(isinstance(choice, str) and choice in options for choice in raw):
            raise ValueError(_("Choose any of: %(options)s.") % {"options": ", ".join(options)})
        return [option for option in options if option in raw]  # in the question's order, each once
    if not isinstance(raw, bool):
        raise ValueError(_("Answer yes (true) or no (false)."))
    return raw


def _number(raw: object) -> str:
    """A number, as a decimal string (exact, unlike a float); a boolean is not one."""
    wrong = ValueError(_("Answer with a number, such as 42 or 3.5."))
    if isinstance(raw, bool) or not isinstance(raw, int | float | str) or len(str(raw)) > 30:
        raise wrong
    if isinstance(raw, float) and not math.isfinite(raw):
        raise wrong
    try:
        number = Decimal(str(raw).strip())
    except InvalidOperation:
        raise wrong from None
    if not number.is_finite():
        raise wrong
    return format(number, "f")
