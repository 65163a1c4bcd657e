"""Organizer CSV exports of an event's orders and attendees, streamed row by row (StreamingHttpResponse)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

from events.models import Voucher
from events.selectors import event_for_organizer, event_question_texts
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


def event_orders_csv(*, event_id: int, user: Any) -> StreamingHttpResponse:
    event_for_organizer(pk=event_id, user=user)  # another organizer's event is unknown
    rows = selectors.event_orders_export(event_id=event_id)
    return _response(csv_lines(ORDERS_HEADER, rows), f"event-{event_id}-orders.csv")


def event_attendees_csv(*, event_id: int, user: Any) -> StreamingHttpResponse:
    """The attendee columns, then one per question the event asks now, in the order asked, headed by its text (an
    answer to a question deleted since is not exported)."""
    event_for_organizer(pk=event_id, user=user)
    questions = event_question_texts(event_id=event_id)
    header = (*ATTENDEES_HEADER, *(text for _, text in questions))
    rows = _with_answers(selectors.event_attendees_export(event_id=event_id), [pk for pk, _ in questions])
    return _response(csv_lines(header, rows), f"event-{event_id}-attendees.csv")


def _with_answers(rows: Iterable[tuple[Any, ...]], question_ids: list[int]) -> Iterator[tuple[Any, ...]]:
    """Each row's answers (its last value) spread into one cell per question."""
    for *row, answers in rows:
        given = {answer["question_id"]: answer_text(answer["value"]) for answer in answers or []}
        yield (*row, *(given.get(pk, "") for pk in question_ids))


VOUCHERS_HEADER = (
    "code",
    "event",
    "ticket_types",
    "effect",
    "max_redemptions",
    "redemptions",
    "held",
    "revenue",
    "valid_from",
    "valid_until",
    "comment",
    "orders",
)


def vouchers_csv(vouchers: list[Voucher]) -> StreamingHttpResponse:
    """These vouchers (annotated by `selectors.vouchers_with_usage`, ticket types prefetched) with their
    redemptions: each voucher's paid orders and how many tickets each bought with it."""
    redemptions = selectors.voucher_redemptions([voucher.pk for voucher in vouchers])
    rows = (
        (
            voucher.code,
            voucher.event.name if voucher.event else "all events",
            "; ".join(ticket_type.name for ticket_type in voucher.ticket_types.all()) or "all",
            voucher.describe(),
            voucher.max_redemptions,
            voucher.redeemed,
            voucher.held,  # type: ignore[attr-defined]
            voucher.revenue,  # type: ignore[attr-defined]
            voucher.valid_from,
            voucher.valid_until,
            voucher.comment,
            " ".join(redemptions.get(voucher.pk, [])),
        )
        for voucher in vouchers
    )
    return _response(csv_lines(VOUCHERS_HEADER, rows), "vouchers.csv")
