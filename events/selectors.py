"""Catalog reads. They never lock; every listing runs a fixed number of queries whatever its size."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Paginator
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce, Greatest

from aegistickets.errors import NotFoundError, ValidationFailedError
from events.availability import held_per
from events.models import Event, Organizer, Question, TicketType


def ticket_types_with_availability(queryset: QuerySet[TicketType], *, now: datetime) -> QuerySet[TicketType]:
    """Annotates `held` and `available` (= capacity − sold − unexpired holds, never below 0)."""
    return queryset.annotate(held=held_per("ticket_type", now)).annotate(
        available=Greatest(F("capacity") - F("sold") - F("held"), Value(0))
    )


def organizers_of(user: Any) -> QuerySet[Organizer]:
    """The organizers whose events a staff user runs: those they are a member of, every one for a superuser."""
    if user.is_superuser:
        return Organizer.objects.all()
    return Organizer.objects.filter(members=user)


def organizer_for_new_event(*, user: Any, organizer_id: int | None) -> Organizer:
    """Whose event a staff user creates: the organizer named, if they are its member, else their only one."""
    mine = organizers_of(user)
    if organizer_id is not None:
        organizer = mine.filter(pk=organizer_id).first()
        if organizer is None:
            raise ValidationFailedError(errors={"organizer_id": ["Not an organizer you are a member of."]})
        return organizer
    first_two = list(mine[:2])
    if len(first_two) != 1:
        problem = "You are a member of no organizer." if not first_two else "Name the organizer: you have several."
        raise ValidationFailedError(errors={"organizer_id": [problem]})
    return first_two[0]


def buyer_may_cancel(event: Event, *, now: datetime) -> bool:
    """Whether buyers may cancel their own tickets of this event now (from their order page)."""
    return event.buyer_cancellation_until is not None and now < event.buyer_cancellation_until


def ticket_type_is_on_sale(ticket_type: TicketType, *, now: datetime) -> bool:
    """On sale when its event is published and not over, and now is inside its sale window."""
    event = ticket_type.event
    if not event.is_published or event.ends_at <= now:
        return False
    if ticket_type.sale_starts_at is not None and now < ticket_type.sale_starts_at:
        return False
    return ticket_type.sale_ends_at is None or now < ticket_type.sale_ends_at


def events_with_availability(queryset: QuerySet[Event], *, now: datetime) -> QuerySet[Event]:
    """Annotates price_from, seats_sold, available (unsold seats not held right now) and sold_out."""
    return queryset.annotate(**_event_annotations(now))


def _event_annotations(now: datetime) -> dict[str, object]:
    types = TicketType.objects.filter(event=OuterRef("pk")).order_by().values("event")
    unsold = types.annotate(total=Sum(F("capacity") - F("sold"))).values("total")
    sold = types.annotate(total=Sum("sold")).values("total")
    # "From €X": the cheapest type a shopper can buy now; the cheapest of all when none can be bought.
    buyable = types.filter(
        Q(sale_starts_at__isnull=True) | Q(sale_starts_at__lte=now),
        Q(sale_ends_at__isnull=True) | Q(sale_ends_at__gt=now),
        capacity__gt=F("sold"),
    )
    cheapest_buyable = buyable.order_by("price").values("price")[:1]
    cheapest = TicketType.objects.filter(event=OuterRef("pk")).order_by("price").values("price")[:1]
    available = Greatest(
        Coalesce(Subquery(unsold, output_field=IntegerField()), 0) - held_per("ticket_type__event", now), Value(0)
    )
    return {
        "price_from": Coalesce(Subquery(cheapest_buyable), Subquery(cheapest)),
        "seats_sold": Coalesce(Subquery(sold, output_field=IntegerField()), 0),
        "available": available,
        # An event with no ticket types yet is not "sold out"; it just has nothing to sell.
        "sold_out": ExpressionWrapper(Q(available=0) & Exists(types), output_field=BooleanField()),
    }


def events_upcoming(*, now: datetime, search: str = "") -> QuerySet[Event]:
    """Published events that have not ended yet, soonest first, with price_from and seats available."""
    queryset = Event.objects.filter(is_published=True, ends_at__gt=now)
    search = search.strip()
    if search:
        queryset = queryset.filter(Q(name__icontains=search) | Q(venue__icontains=search) | Q(city__icontains=search))
    return events_with_availability(queryset, now=now).order_by("starts_at", "id")


@dataclass(frozen=True)
class EventsPage:
    """One page of the event list, as plain values (safe to cache)."""

    events: list[Event]
    number: int
    num_pages: int
    count: int

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def has_other_pages(self) -> bool:
        return self.num_pages > 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def events_upcoming_page(*, now: datetime, search: str = "", page: str | int | None, per_page: int) -> EventsPage:
    """A page of upcoming events (two queries); an out-of-range or malformed page number gives the nearest page."""
    paginated = Paginator(events_upcoming(now=now, search=search), per_page).get_page(page)
    return EventsPage(
        events=list(paginated.object_list),
        number=paginated.number,
        num_pages=paginated.paginator.num_pages,
        count=paginated.paginator.count,
    )


def event_detail(
    *, now: datetime, pk: int | None = None, slug: str | None = None, with_questions: bool = False
) -> Event:
    """A published event with its ticket types and their live availability (two queries), and, `with_questions`, its
    questions (two more, only for an event that has some)."""
    lookup = {"pk": pk} if pk is not None else {"slug": slug}
    types = ticket_types_with_availability(TicketType.objects.all(), now=now)
    try:
        event = (
            events_with_availability(Event.objects.filter(is_published=True, **lookup), now=now)
            .prefetch_related(Prefetch("ticket_types", queryset=types))
            .get()
        )
    except Event.DoesNotExist:
        raise NotFoundError("No such event.") from None
    for ticket_type in event.ticket_types.all():
        ticket_type.is_on_sale = ticket_type_is_on_sale(ticket_type, now=now)  # type: ignore[attr-defined]
    return event_with_questions(event) if with_questions else event


def _questions() -> QuerySet[Question]:
    return Question.objects.prefetch_related(Prefetch("ticket_types", queryset=TicketType.objects.only("pk")))


def event_with_questions(event: Event) -> Event:
    """The event with its questions and the ticket types each names, read for `Event.asked_questions`: two queries
    for an event with questions, none for one without."""
    if event.has_questions:
        prefetch_related_objects([event], Prefetch("questions", queryset=_questions()))
    return event


def event_question_texts(*, event_id: int) -> list[tuple[int, str]]:
    """An event's questions, as (id, text), in the order asked (one query)."""
    return list(Question.objects.filter(event_id=event_id).order_by("position", "id").values_list("pk", "text"))


def questions_of_events(*, event_ids: Iterable[int]) -> list[Question]:
    """The questions of these events, in order, each with the ticket types it names (two queries): what checkout
    asks."""
    return list(_questions().filter(event_id__in=set(event_ids)).order_by("event_id", "position", "id"))


def ticket_type_for_organizer(*, pk: int, now: datetime) -> TicketType:
    """Any ticket type (published event or not) with sold, held and available seats."""
    queryset = ticket_types_with_availability(TicketType.objects.select_related("event"), now=now)
    try:
        return queryset.get(pk=pk)
    except TicketType.DoesNotExist:
        raise NotFoundError("No such ticket type.") from None
