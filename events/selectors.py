"""Catalog reads. They never lock; every listing runs a fixed number of queries whatever its size."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.core.paginator import Paginator
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Model,
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
from django.utils.translation import gettext as _

from aegistickets.errors import NotFoundError, ValidationFailedError, VoucherExpiredError, VoucherInvalidError
from events.availability import held_per
from events.models import Event, Organizer, Question, TicketType, Voucher

M = TypeVar("M", bound=Model)


def ticket_types_with_availability(queryset: QuerySet[TicketType], *, now: datetime) -> QuerySet[TicketType]:
    """Annotates `held` and `available` (= capacity − sold − unexpired holds − seats the waiting list wants, never
    below 0: what the public can buy)."""
    return queryset.annotate(held=held_per("ticket_type", now)).annotate(
        available=Greatest(F("capacity") - F("sold") - F("held") - F("waiting"), Value(0))
    )


def organizers_of(user: Any) -> QuerySet[Organizer]:
    """The organizers whose events a staff user runs: those they are a member of, every one for a superuser."""
    if user.is_superuser:
        return Organizer.objects.all()
    return Organizer.objects.filter(members=user)


def _crosses_to_many(model: type[Model], path: str) -> bool:
    """Whether a lookup path goes through a to-many relation (and a join on it would repeat rows)."""
    for name in path.split("__"):
        field = model._meta.get_field(name)
        if field.one_to_many or field.many_to_many:
            return True
        if field.related_model is None:
            return False
        model = field.related_model
    return False


def in_organizer_scope(queryset: QuerySet[M], *, user: Any, path: str) -> QuerySet[M]:
    """Only the rows whose `path` (a lookup from the queryset's model to an Organizer: "organizer",
    "event__organizer", "lines__ticket_type__event__organizer") leads to one of the user's organizers; every row for a
    superuser. A subquery in the same query, so a list costs no extra round trip; a path through a to-many relation
    (an order's lines) keeps each row once."""
    if user.is_superuser:
        return queryset
    lookup = {f"{path}__in": organizers_of(user).values("pk")}
    if not _crosses_to_many(queryset.model, path):
        return queryset.filter(**lookup)
    return queryset.filter(pk__in=queryset.model._default_manager.filter(**lookup).values("pk"))


def events_of(user: Any) -> QuerySet[Event]:
    """The events a staff user (or door staff) works on: those of their organizers; every event for a superuser."""
    return in_organizer_scope(Event.objects.all(), user=user, path="organizer")


def ticket_types_of(user: Any) -> QuerySet[TicketType]:
    """The ticket types of the user's events."""
    return in_organizer_scope(TicketType.objects.all(), user=user, path="event__organizer")


def event_for_organizer(*, pk: int, user: Any) -> Event:
    """One of the user's events (published or not); another organizer's is as unknown as a made-up id."""
    event = events_of(user).filter(pk=pk).first()
    if event is None:
        raise NotFoundError(_("No such event."))
    return event


def organizer_for_new_event(*, user: Any, organizer_id: int | None) -> Organizer:
    """Whose event a staff user creates: the organizer named, if it is theirs (any, for a superuser), else the one
    organizer they are a member of (a superuser too: one who runs a single organizer's events needs not name it)."""
    if organizer_id is not None:
        organizer = organizers_of(user).filter(pk=organizer_id).first()
        if organizer is None:
            raise ValidationFailedError(errors={"organizer_id": ["Not an organizer you are a member of."]})
        return organizer
    first_two = list(Organizer.objects.filter(members=user)[:2])
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
    """Annotates price_from, seats_sold, available (unsold seats neither held right now nor wanted by a waiting
    list) and sold_out."""
    return queryset.annotate(**_event_annotations(now))


def _event_annotations(now: datetime) -> dict[str, object]:
    # Hidden ticket types (for voucher holders only) are no part of what the public catalog says about an event.
    types = TicketType.objects.filter(event=OuterRef("pk"), requires_voucher=False).order_by().values("event")
    unsold = types.annotate(total=Sum(F("capacity") - F("sold") - F("waiting"))).values("total")
    sold = types.annotate(total=Sum("sold")).values("total")
    # "From €X": the cheapest type a shopper can buy now; the cheapest of all when none can be bought.
    buyable = types.filter(
        Q(sale_starts_at__isnull=True) | Q(sale_starts_at__lte=now),
        Q(sale_ends_at__isnull=True) | Q(sale_ends_at__gt=now),
        capacity__gt=F("sold") + F("waiting"),
    )
    cheapest_buyable = buyable.order_by("price").values("price")[:1]
    cheapest = types.order_by("price").values("price")[:1]
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


def event_published(*, slug: str) -> Event:
    """A published event by its slug, without its ticket types (one query): what its calendar file shows."""
    event = Event.objects.filter(is_published=True, slug=slug).first()
    if event is None:
        raise NotFoundError(_("No such event."))
    return event


def event_detail(
    *,
    now: datetime,
    pk: int | None = None,
    slug: str | None = None,
    voucher: Voucher | None = None,
    with_questions: bool = False,
) -> Event:
    """A published event with the ticket types anyone may buy (and, with a voucher, those it unlocks, each priced
    with it as `voucher_price`) and their live availability (two queries), and, `with_questions`, its questions
    (two more, only for an event that has some)."""
    lookup = {"pk": pk} if pk is not None else {"slug": slug}
    types = ticket_types_with_availability(TicketType.objects.all(), now=now)
    if voucher is None:
        types = types.filter(requires_voucher=False)
    else:
        types = types.filter(Q(requires_voucher=False) | Q(pk__in=[t.pk for t in voucher.ticket_types.all()]))
    try:
        event = (
            events_with_availability(Event.objects.filter(is_published=True, **lookup), now=now)
            .prefetch_related(Prefetch("ticket_types", queryset=types))
            .get()
        )
    except Event.DoesNotExist:
        raise NotFoundError(_("No such event.")) from None
    for ticket_type in event.ticket_types.all():
        ticket_type.is_on_sale = ticket_type_is_on_sale(ticket_type, now=now)  # type: ignore[attr-defined]
        ticket_type.voucher_price = (  # type: ignore[attr-defined]
            voucher.price_for(ticket_type.price) if voucher and voucher_applies(voucher, ticket_type) else None
        )
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


def voucher_code(code: str) -> str:
    """A code as stored: shoppers type codes in any case, with stray spaces."""
    return code.strip().upper()


def voucher_for(*, code: str, organizer_ids: Collection[int], now: datetime) -> Voucher:
    """The voucher of one of these organizers with this code, valid now, with the ticket types it names (two
    queries). An unknown code and one of another organizer are the same answer: nothing to learn from it."""
    voucher = (
        Voucher.objects.filter(organizer_id__in=organizer_ids, code=voucher_code(code))
        .prefetch_related("ticket_types")
        .order_by("pk")
        .first()
    )
    if voucher is None:
        raise VoucherInvalidError(_("This voucher code is not valid."))
    voucher_check_window(voucher, now=now)
    return voucher


def voucher_check_window(voucher: Voucher, *, now: datetime) -> None:
    """A voucher is good only within its window (voucher_expired outside it)."""
    if (voucher.valid_from is not None and now < voucher.valid_from) or (
        voucher.valid_until is not None and now >= voucher.valid_until
    ):
        raise VoucherExpiredError(_("The voucher code %(code)s is not valid at this time.") % {"code": voucher.code})


def voucher_for_event(*, code: str, event: Event, now: datetime) -> Voucher:
    """The voucher with this code valid now for some ticket type of this event (its organizer's, for all its events
    or this one)."""
    voucher = voucher_for(code=code, organizer_ids=[event.organizer_id], now=now)
    if voucher.event_id not in (None, event.pk):
        raise VoucherInvalidError(
            _("The voucher code %(code)s is not valid for %(event)s.") % {"code": voucher.code, "event": event.name}
        )
    return voucher


def voucher_applies(voucher: Voucher, ticket_type: TicketType) -> bool:
    """Whether the voucher prices (or unlocks) this ticket type: of its organizer, its event if it names one, and its
    ticket types if it names some; a hidden ticket type only if it names it (a general discount unlocks nothing)."""
    if ticket_type.event.organizer_id != voucher.organizer_id:
        return False
    if voucher.event_id is not None and voucher.event_id != ticket_type.event_id:
        return False
    named = {t.pk for t in voucher.ticket_types.all()}
    return ticket_type.pk in named if named else not ticket_type.requires_voucher


def ticket_type_for_organizer(*, pk: int, user: Any, now: datetime) -> TicketType:
    """A ticket type of the user's events (published or not) with sold, held and available seats; another
    organizer's is as unknown as a made-up id."""
    queryset = ticket_types_with_availability(ticket_types_of(user).select_related("event"), now=now)
    try:
        return queryset.get(pk=pk)
    except TicketType.DoesNotExist:
        raise NotFoundError(_("No such ticket type.")) from None
