"""Catalog writes for organizers."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.text import slugify
from django.utils.translation import gettext as _

from aegistickets.errors import NotFoundError, ValidationFailedError
from events.availability import held_for
from events.cache import catalog_invalidate
from events.models import Event, EventTerms, Organizer, Question, TicketType, Voucher
from events.selectors import voucher_code

EVENT_FIELDS = frozenset(
    {
        "name",
        "slug",
        "description",
        "venue",
        "city",
        "starts_at",
        "ends_at",
        "is_published",
        "buyer_cancellation_until",
        "attendee_changes_until",
        "attendee_data",
        "waiting_list_enabled",
        "terms",
        "questions",
    }
)
TICKET_TYPE_FIELDS = frozenset(
    {
        "name",
        "description",
        "price",
        "capacity",
        "max_per_order",
        "sale_starts_at",
        "sale_ends_at",
        "position",
        "requires_voucher",
    }
)


def _unique_slug(base: str) -> str:
    root = slugify(base)[:180] or "event"
    slug, n = root, 1
    while Event.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{root}-{n}"
    return slug


def _check_event_times(starts_at: datetime, ends_at: datetime, cancellable_until: datetime | None = None) -> None:
    if ends_at <= starts_at:
        raise ValidationFailedError(errors={"ends_at": ["Must be after starts_at."]})
    if cancellable_until is not None and cancellable_until > starts_at:
        raise ValidationFailedError(errors={"buyer_cancellation_until": ["Must be at or before starts_at."]})


def event_create(
    *,
    organizer: Organizer,
    name: str,
    venue: str,
    city: str,
    starts_at: datetime,
    ends_at: datetime,
    slug: str = "",
    terms: str = "",
    **details: Any,
) -> Event:
    """Creates an event with a unique slug (derived from the name unless given). `details` are its other fields
    (EVENT_FIELDS: description, is_published, buyer_cancellation_until, attendee_data, waiting_list_enabled…), each
    left at the model's default when not given."""
    unknown = set(details) - EVENT_FIELDS
    if unknown:
        raise ValidationFailedError(errors={field: ["Unknown field."] for field in sorted(unknown)})
    _check_event_times(starts_at, ends_at, details.get("buyer_cancellation_until"))
    if slug and Event.objects.filter(slug=slug).exists():
        raise ValidationFailedError(errors={"slug": ["An event with this slug already exists."]})
    try:
        with transaction.atomic():
            catalog_invalidate()
            event = Event.objects.create(
                organizer=organizer,
                name=name,
                slug=slug or _unique_slug(name),
                venue=venue,
                city=city,
                starts_at=starts_at,
                ends_at=ends_at,
                **details,
            )
            if terms:
                event.save(update_fields=_new_terms(event, terms))
            return event
    except IntegrityError:
        raise ValidationFailedError(errors={"slug": ["An event with this slug already exists."]}) from None


def event_update(*, event_id: int, data: dict[str, Any]) -> Event:
    """Applies a partial update; the event must still end after it starts."""
    unknown = set(data) - EVENT_FIELDS
    if unknown:
        raise ValidationFailedError(errors={field: ["Unknown field."] for field in sorted(unknown)})
    try:
        with transaction.atomic():
            try:
                event = Event.objects.select_for_update().get(pk=event_id)
            except Event.DoesNotExist:
                raise NotFoundError(_("No such event.")) from None
            terms, questions = data.pop("terms", event.terms), data.pop("questions", None)
            for field, value in data.items():
                setattr(event, field, value)
            _check_event_times(event.starts_at, event.ends_at, event.buyer_cancellation_until)
            event.save(update_fields=[*data, *_new_terms(event, terms), "updated_at"])
            if questions is not None:
                _questions_replace(event, questions)
            catalog_invalidate()
            return event
    except IntegrityError:
        raise ValidationFailedError(errors={"slug": ["An event with this slug already exists."]}) from None


def event_terms_set(*, event_id: int, text: str) -> Event:
    """Sets an event's terms: a changed text becomes a new version (kept in EventTerms), under the event's row lock,
    so two editors never make the same version number."""
    with transaction.atomic():
        event = Event.objects.select_for_update().filter(pk=event_id).first()
        if event is None:
            raise NotFoundError(_("No such event."))
        changed = _new_terms(event, text)
        if changed:
            event.save(update_fields=[*changed, "updated_at"])
            catalog_invalidate()
        return event


def _new_terms(event: Event, text: str) -> list[str]:
    """The event's terms set to `text` (in memory, for the caller to save): a new version if the text changed and
    is not empty, no terms (version 0) if it is empty. The fields changed."""
    if text == event.terms:
        return []
    event.terms = text
    if not text:
        event.terms_version = 0
    else:
        latest = EventTerms.objects.filter(event=event).aggregate(latest=Max("version"))["latest"] or 0
        event.terms_version = latest + 1
        EventTerms.objects.create(event=event, version=event.terms_version, text=text)
    return ["terms", "terms_version"]


def question_problems(*, kind: str, options: str) -> dict[str, list[str]]:
    """What is wrong with a question's options for its kind: the choice kinds need at least two to choose from, the
    others take none."""
    count = len([line for line in options.splitlines() if line.strip()])
    if kind in Question.CHOICE_KINDS and count < 2:
        return {"options": ["Give at least two options, one per line."]}
    if kind not in Question.CHOICE_KINDS and options.strip():
        return {"options": ["Only questions with options to choose from take options."]}
    return {}


def _questions_replace(event: Event, questions: Sequence[Mapping[str, Any]]) -> None:
    """The event's questions become `questions`, in the caller's transaction: an entry with an `id` changes that
    question, one without adds one, and the event's other questions are deleted (answers given keep their own copy
    of the text asked). Each entry: text, kind, required, options (a list), ticket_type_ids, position."""
    existing = {question.pk: question for question in Question.objects.filter(event=event)}
    own_types = set(TicketType.objects.filter(event=event).values_list("pk", flat=True))
    _check_questions(questions, existing=set(existing), ticket_types=own_types)
    kept = {entry["id"] for entry in questions if entry.get("id")}
    Question.objects.filter(pk__in=set(existing) - kept).delete()
    for index, entry in enumerate(questions):
        question = existing.get(entry.get("id") or 0) or Question(event=event)
        question.text, question.kind = entry["text"].strip(), entry["kind"]
        question.required = entry.get("required", False)
        question.options = "\n".join(option.strip() for option in entry.get("options", []))
        question.position = entry.get("position", index)
        question.save()
        question.ticket_types.set(entry.get("ticket_type_ids", []))
    event.has_questions = event_questions_changed(event_id=event.pk)


def _check_questions(questions: Sequence[Mapping[str, Any]], *, existing: set[int], ticket_types: set[int]) -> None:
    problems: dict[str, list[str]] = {}
    texts = [entry["text"].strip() for entry in questions]
    for index, entry in enumerate(questions):
        found = question_problems(kind=entry["kind"], options="\n".join(entry.get("options", [])))
        if entry.get("id") and entry["id"] not in existing:
            found["id"] = ["Not a question of this event."]
        if set(entry.get("ticket_type_ids", [])) - ticket_types:
            found["ticket_type_ids"] = ["Only ticket types of this event."]
        if not texts[index] or texts.count(texts[index]) > 1:
            found["text"] = ["Each question needs a text of its own."]
        problems |= {f"questions.{index}.{field}": messages for field, messages in found.items()}
    if problems:
        raise ValidationFailedError(errors=problems)


def event_questions_changed(*, event_id: int) -> bool:
    """After an event's questions were written (here or by the admin): Event.has_questions says whether it has any
    (returned), and the catalog, which lists them, is read afresh."""
    has_questions = Question.objects.filter(event_id=event_id).exists()
    Event.objects.filter(pk=event_id).update(has_questions=has_questions)
    catalog_invalidate()
    return has_questions


def _check_sale_window(starts: datetime | None, ends: datetime | None) -> None:
    if starts is not None and ends is not None and ends <= starts:
        raise ValidationFailedError(errors={"sale_ends_at": ["Must be after sale_starts_at."]})


def ticket_type_create(
    *,
    event_id: int,
    name: str,
    price: Decimal,
    capacity: int,
    description: str = "",
    max_per_order: int = 10,
    sale_starts_at: datetime | None = None,
    sale_ends_at: datetime | None = None,
    position: int = 0,
    requires_voucher: bool = False,
) -> TicketType:
    """Adds a ticket type to an event; names are unique within the event."""
    _check_sale_window(sale_starts_at, sale_ends_at)
    if not Event.objects.filter(pk=event_id).exists():
        raise NotFoundError(_("No such event."))
    try:
        with transaction.atomic():
            catalog_invalidate()
            return TicketType.objects.create(
                event_id=event_id,
                name=name,
                description=description,
                price=price,
                capacity=capacity,
                max_per_order=max_per_order,
                sale_starts_at=sale_starts_at,
                sale_ends_at=sale_ends_at,
                position=position,
                requires_voucher=requires_voucher,
            )
    except IntegrityError:
        raise ValidationFailedError(errors={"name": ["This event already has a ticket type with this name."]}) from None


def ticket_type_update(*, ticket_type_id: int, data: dict[str, Any], now: datetime) -> TicketType:
    """Never lowers capacity below the seats already sold or held."""
    unknown = set(data) - TICKET_TYPE_FIELDS
    if unknown:
        raise ValidationFailedError(errors={field: ["Unknown field."] for field in sorted(unknown)})
    try:
        with transaction.atomic():
            # The same row lock the seat protocol takes: capacity cannot shrink under a sale in flight.
            try:
                ticket_type = TicketType.objects.select_for_update().get(pk=ticket_type_id)
            except TicketType.DoesNotExist:
                raise NotFoundError(_("No such ticket type.")) from None
            for field, value in data.items():
                setattr(ticket_type, field, value)
            _check_sale_window(ticket_type.sale_starts_at, ticket_type.sale_ends_at)
            if "capacity" in data:
                held = held_for(ticket_type.pk, now)
                if ticket_type.capacity < ticket_type.sold + held:
                    raise ValidationFailedError(
                        errors={
                            "capacity": [
                                f"Cannot be below the {ticket_type.sold} seats sold plus {held} held right now."
                            ]
                        }
                    )
            ticket_type.save(update_fields=[*data, "updated_at"])
            catalog_invalidate()
            return ticket_type
    except IntegrityError:
        raise ValidationFailedError(errors={"name": ["This event already has a ticket type with this name."]}) from None


# Voucher codes shoppers type: no 0/O, 1/I/L, 5/S, 2/Z; 10 symbols of 27 are 47 bits, far beyond guessing at the
# rate limit on tries.
VOUCHER_CODE_ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"  # pragma: allowlist secret - an alphabet
VOUCHER_CODE_LENGTH = 10
MAX_VOUCHERS_PER_REQUEST = 1000


@dataclass(frozen=True)
class VoucherSpec:
    """What each voucher of a batch is: its effect, scope, window and limit."""

    discount_type: str
    value: Decimal
    max_redemptions: int
    ticket_type_ids: tuple[int, ...] = ()
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    comment: str = ""


def vouchers_create(
    *, organizer: Organizer, event: Event | None, spec: VoucherSpec, code: str = "", count: int = 1
) -> list[Voucher]:
    """Creates one voucher with the code given, or `count` with new random codes, all alike; for one event of the
    organizer or (`event=None`) all its events, limited to ticket types of that scope."""
    _check_voucher(organizer=organizer, event=event, spec=spec, code=code, count=count)
    codes = [voucher_code(code)] if code else _new_voucher_codes(organizer, count)
    with transaction.atomic():
        try:
            vouchers = Voucher.objects.bulk_create(
                [Voucher(organizer=organizer, event=event, code=each, **_voucher_fields(spec)) for each in codes]
            )
        except IntegrityError:
            raise ValidationFailedError(errors={"code": ["This organizer has a voucher with this code."]}) from None
        Voucher.ticket_types.through.objects.bulk_create(
            Voucher.ticket_types.through(voucher_id=voucher.pk, tickettype_id=type_id)
            for voucher in vouchers
            for type_id in spec.ticket_type_ids
        )
    return vouchers


def _voucher_fields(spec: VoucherSpec) -> dict[str, Any]:
    fields = {name: getattr(spec, name) for name in ("discount_type", "value", "max_redemptions", "comment")}
    return {**fields, "valid_from": spec.valid_from, "valid_until": spec.valid_until}


def _check_voucher(*, organizer: Organizer, event: Event | None, spec: VoucherSpec, code: str, count: int) -> None:
    """Every refusal of a batch, each named: it is created whole or not at all."""
    errors: dict[str, list[str]] = {}
    if code and count != 1:
        errors["count"] = ["Give a code or a count of codes to make, not both."]
    if not 1 <= count <= MAX_VOUCHERS_PER_REQUEST:
        errors["count"] = [f"Between 1 and {MAX_VOUCHERS_PER_REQUEST}."]
    if code and (len(code.strip()) < 3 or not code.strip().isalnum()):
        errors["code"] = ["3 to 64 letters and digits."]
    if spec.discount_type == Voucher.DiscountType.PERCENT and not 0 <= spec.value <= 100:
        errors["discount"] = ["A percentage is between 0 and 100."]
    if spec.value < 0:
        errors["discount"] = ["Must not be negative."]
    if spec.valid_from and spec.valid_until and spec.valid_until <= spec.valid_from:
        errors["valid_until"] = ["Must be after valid_from."]
    if event is not None and event.organizer_id != organizer.pk:
        errors["event"] = ["Not an event of this organizer."]
    scope = TicketType.objects.filter(event=event) if event else TicketType.objects.filter(event__organizer=organizer)
    if set(spec.ticket_type_ids) - set(scope.filter(pk__in=spec.ticket_type_ids).values_list("pk", flat=True)):
        errors["ticket_type_ids"] = ["Only ticket types of the voucher's events."]
    if errors:
        raise ValidationFailedError(errors=errors)


def _new_voucher_codes(organizer: Organizer, count: int) -> list[str]:
    """`count` random codes the organizer has none of yet."""
    codes: set[str] = set()
    while len(codes) < count:
        wanted = count - len(codes)
        fresh = {
            "".join(secrets.choice(VOUCHER_CODE_ALPHABET) for _ in range(VOUCHER_CODE_LENGTH)) for _ in range(wanted)
        }
        codes |= fresh - set(Voucher.objects.filter(organizer=organizer, code__in=fresh).values_list("code", flat=True))
    return sorted(codes)
