"""Organizer CSV exports of an event's orders and attendees, streamed row by row (StreamingHttpResponse)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

from aegistickets.errors import NotFoundError
from events.models import Event
from events.selectors import event_question_texts
from orders import selectors
from orders.models import answer_text

ORDERS_HEADER = (
    "order",
    "status",
    "created_at",
    "name",
    "email",
    "tickets",
    "amount",
    "currency",
    "payment_method",
    "refund",
)
# name and email are the buyer's; attendee_name and attendee_email whom the ticket is for, where the event asks.
ATTENDEES_HEADER = (
    "ticket_id",
    "order",
    "name",
    "email",
    "ticket_type",
    "checked_in_at",
    "attendee_name",
    "attendee_email",
)

# A cell starting with one of these is a formula to spreadsheet programs (CSV injection): buyers type names.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"  # money; SQLite's SUM drops the scale
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


def _response(lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _require_event(event_id: int) -> None:
    if not Event.objects.filter(pk=event_id).exists():
        raise NotFoundError("No such event.")


def event_orders_csv(*, event_id: int) -> StreamingHttpResponse:
    _require_event(event_id)
    rows = selectors.event_orders_export(event_id=event_id)
    return _response(csv_lines(ORDERS_HEADER, rows), f"event-{event_id}-orders.csv")


def event_attendees_csv(*, event_id: int) -> StreamingHttpResponse:
    """The attendee columns, then one per question the event asks now, in the order asked, headed by its text (an
    answer to a question deleted since is not exported)."""
    _require_event(event_id)
    questions = event_question_texts(event_id=event_id)
    header = (*ATTENDEES_HEADER, *(text for _, text in questions))
    rows = _with_answers(selectors.event_attendees_export(event_id=event_id), [pk for pk, _ in questions])
    return _response(csv_lines(header, rows), f"event-{event_id}-attendees.csv")


def _with_answers(rows: Iterable[tuple[Any, ...]], question_ids: list[int]) -> Iterator[tuple[Any, ...]]:
    """Each row's answers (its last value) spread into one cell per question."""
    for *row, answers in rows:
        given = {answer["question_id"]: answer_text(answer["value"]) for answer in answers or []}
        yield (*row, *(given.get(pk, "") for pk in question_ids))
