"""The waiting list: shoppers in line for a sold-out ticket type are offered freed seats strictly in turn.

A shopper joins with an address and a quantity, and confirms by the emailed link (double opt-in); from then on the
seats they want count in the ticket type's `waiting`, which the public can't buy (orders/seats.py). Seats come free
when an order or tickets are cancelled, or a hold or a pending order expires. The sweep (`waiting_list_sweep`, run by
the outbox worker between batches, or `manage.py offer_waiting_list`) then offers them to the first in line: it holds
them in a basket of the shopper's own for WAITING_LIST_OFFER_MINUTES and emails the link that opens it. An offer not
used in time expires, and its seats go to the next. Strict first-come: when the first in line wants more seats than
are free, nobody behind them is served first.

Locks follow the seat protocol's order, with waiting-list entries after events and before vouchers and ticket types:
an offer's checkout locks its basket, then its entry (`offer_used`), then the ticket types it sells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from aegistickets.errors import (
    MaxPerOrderExceededError,
    NotFoundError,
    OfferEndedError,
    TicketsAvailableError,
    ValidationFailedError,
    WaitingListClosedError,
)
from events.availability import held_per
from events.models import TicketType
from events.selectors import ticket_type_is_on_sale, ticket_types_with_availability
from orders import seats
from orders.models import Basket, Order, OutboundEmail, WaitingListEntry
from orders.outbox import outbox_enqueue

Status = WaitingListEntry.Status


def offer_window() -> timedelta:
    return timedelta(minutes=settings.WAITING_LIST_OFFER_MINUTES)


# --- joining and leaving ----------------------------------------------------------------------------------------


def waiting_list_join(
    *, ticket_type_id: int, email: str, quantity: int, language: str, now: datetime
) -> WaitingListEntry:
    """Puts an address in line for a sold-out ticket type, unconfirmed until its owner opens the emailed link. One
    place per address and ticket type: joining again changes nothing but sends the link again."""
    ticket_type = _joinable(ticket_type_id=ticket_type_id, quantity=quantity, now=now)
    address = email.strip().lower()
    with transaction.atomic():
        entry = _active_entry(ticket_type_id=ticket_type.pk, email=address)
        if entry is None:
            try:
                with transaction.atomic():
                    entry = WaitingListEntry.objects.create(
                        ticket_type=ticket_type, email=address, quantity=quantity, language=language, created_at=now
                    )
            except IntegrityError:  # the same address joined at the same moment: its place is the one place
                entry = _active_entry(ticket_type_id=ticket_type.pk, email=address)
                if entry is None:
                    raise
        outbox_enqueue(
            kind=OutboundEmail.Kind.WAITING_LIST_CONFIRM,
            now=now,
            recipient=entry.email,
            language=entry.language,
            waiting_entry_id=entry.pk,
        )
    return entry


def _active_entry(*, ticket_type_id: int, email: str) -> WaitingListEntry | None:
    return WaitingListEntry.objects.filter(
        ticket_type_id=ticket_type_id, email=email, status__in=WaitingListEntry.ACTIVE
    ).first()


def _joinable(*, ticket_type_id: int, quantity: int, now: datetime) -> TicketType:
    """The ticket type, if a shopper may wait for it: published, public, on sale, its event's list on, and too few
    seats for them now (else they should buy them)."""
    found = (
        ticket_types_with_availability(TicketType.objects.select_related("event"), now=now)
        .filter(pk=ticket_type_id, event__is_published=True, requires_voucher=False)
        .first()
    )
    if found is None:
        raise NotFoundError(_("No such ticket type."))
    if not found.event.waiting_list_enabled or found.event.ends_at <= now:
        raise WaitingListClosedError(_("This event has no waiting list."))
    if not ticket_type_is_on_sale(found, now=now):
        raise WaitingListClosedError(
            _("%(name)s tickets are not on sale: there is no waiting list.") % {"name": found.name}
        )
    if quantity < 1:
        raise ValidationFailedError(errors={"quantity": [_("Must be at least 1.")]})
    if quantity > found.max_per_order:
        raise MaxPerOrderExceededError(
            _("At most %(count)s tickets per order.") % {"count": found.max_per_order},
            extra={"max_per_order": found.max_per_order},
        )
    if found.available >= quantity:  # type: ignore[attr-defined]
        raise TicketsAvailableError(
            _("%(name)s tickets are available: buy them instead of waiting.") % {"name": found.name},
            extra={"available": found.available},  # type: ignore[attr-defined]
        )
    return found


def waiting_entry(token: str) -> WaitingListEntry:
    """The entry a private link names, with its ticket type, event and offer basket."""
    entry = WaitingListEntry.objects.select_related("ticket_type__event", "basket").filter(token=token).first()
    if entry is None:
        raise NotFoundError(_("No such waiting list entry."))
    return entry


def _locked_entry(token: str) -> WaitingListEntry:
    entry = WaitingListEntry.objects.select_for_update(no_key=True, of=("self",)).filter(token=token).first()
    if entry is None:
        raise NotFoundError(_("No such waiting list entry."))
    return entry


def waiting_list_confirm(*, token: str, now: datetime) -> WaitingListEntry:
    """Puts a confirmed entry in line (its place: the moment it confirms) and counts its seats as the list's; a
    second confirmation changes nothing. A list closed meanwhile closes the entry and refuses it."""
    with transaction.atomic():
        entry = _locked_entry(token)
        if entry.status != Status.UNCONFIRMED:
            return waiting_entry(token)
        event = entry.ticket_type.event
        closed = not event.waiting_list_enabled or event.ends_at <= now
        if closed:
            _end(entry, status=Status.CLOSED, now=now)
        else:
            seats.lock_ticket_type(entry.ticket_type_id)
            seats.wait({entry.ticket_type_id: entry.quantity})
            entry.status, entry.confirmed_at = Status.WAITING, now
            entry.save(update_fields=["status", "confirmed_at"])
    if closed:  # refused after the commit: the entry stays closed
        raise WaitingListClosedError(_("This event has no waiting list."))
    return waiting_entry(token)


def waiting_list_leave(*, token: str, now: datetime) -> WaitingListEntry:
    """Takes an entry out of line; the seats it wanted, or was offered, go to the next in line. Leaving twice, or
    after buying, changes nothing."""
    with transaction.atomic():
        basket_id = waiting_entry(token).basket_id
        if basket_id is not None:
            seats.lock_basket(pk=basket_id)  # first in the lock order: the offer's checkout locks it first too
        entry = _locked_entry(token)
        if entry.status not in WaitingListEntry.ACTIVE:
            return waiting_entry(token)
        if entry.status == Status.WAITING:
            seats.lock_ticket_type(entry.ticket_type_id)
            seats.wait({entry.ticket_type_id: -entry.quantity})
        elif entry.status == Status.OFFERED and entry.basket_id is not None:
            seats.release_holds(entry.basket_id)
        _end(entry, status=Status.LEFT, now=now)
    return waiting_entry(token)


def _end(entry: WaitingListEntry, *, status: str, now: datetime) -> None:
    entry.status, entry.ended_at = status, now
    entry.save(update_fields=["status", "ended_at"])


# --- offers -----------------------------------------------------------------------------------------------------


def waiting_list_offer(*, ticket_type_id: int, now: datetime) -> list[WaitingListEntry]:
    """Offers the seats nobody holds or bought to the entries in line, in line order, as many as fit; it stops at
    the first that wants more than are free (strict first-come: nobody jumps the line by wanting fewer). Each offer
    holds its seats in a basket of its own until the offer expires, and queues the email with its link."""
    with transaction.atomic():
        line = WaitingListEntry.objects.select_for_update(no_key=True, of=("self",)).filter(
            ticket_type_id=ticket_type_id, status=Status.WAITING
        )
        entries = list(line.order_by("confirmed_at", "id"))
        locked = seats.lock_ticket_type(ticket_type_id)
        free = seats.free_for_waiting_list(seats=locked, now=now)
        offered = []
        for entry in entries:
            if entry.quantity > free:
                break
            _make_offer(entry, now=now)
            free -= entry.quantity
            offered.append(entry)
        seats.wait({ticket_type_id: -sum(entry.quantity for entry in offered)})
    return offered


def _make_offer(entry: WaitingListEntry, *, now: datetime) -> None:
    """Holds the entry's seats in a new basket, until the offer expires, and queues the offer's email."""
    basket = Basket.objects.create(for_offer=True)
    expires = now + offer_window()
    seats.hold(
        basket=basket, ticket_type_id=entry.ticket_type_id, held=None, quantity=entry.quantity, expires_at=expires
    )
    entry.status, entry.offered_at, entry.offer_expires_at, entry.basket = Status.OFFERED, now, expires, basket
    entry.save(update_fields=["status", "offered_at", "offer_expires_at", "basket"])
    outbox_enqueue(
        kind=OutboundEmail.Kind.WAITING_LIST_OFFER,
        now=now,
        recipient=entry.email,
        language=entry.language,
        waiting_entry_id=entry.pk,
    )


def waiting_offer_basket(*, token: str, now: datetime) -> Basket:
    """The basket holding an entry's offered seats, while the offer is open."""
    entry = waiting_entry(token)
    if not waiting_entry_state(entry, now=now).offer_open or entry.basket is None:
        raise OfferEndedError(_("This offer of seats is no longer open."), extra={"status": entry.status})
    return entry.basket


def offer_used(*, basket: Basket, order: Order, now: datetime) -> None:
    """Within checkout's transaction, with the basket locked: the order took the offer's seats. An offer that
    expired before is left as it is (its seats were sold as anyone's)."""
    WaitingListEntry.objects.select_for_update(no_key=True, of=("self",)).filter(
        basket_id=basket.pk, status=Status.OFFERED
    ).update(status=Status.USED, order=order, ended_at=now)


# --- the sweep --------------------------------------------------------------------------------------------------


@dataclass
class Sweep:
    """What one sweep did: offers expired, entries closed or lapsed, offers made."""

    expired: int = 0
    closed: int = 0
    lapsed: int = 0
    offered: list[WaitingListEntry] = field(default_factory=list)


def waiting_list_sweep(*, now: datetime) -> Sweep:
    """Ends what has ended (offers not used in time, entries whose list closed, links never confirmed), then
    offers the seats that are free to whoever is first in line for them."""
    sweep = Sweep(expired=_expire_offers(now=now), closed=_close_ended(now=now), lapsed=_lapse_unconfirmed(now=now))
    for ticket_type_id in _needing_an_offer(now=now):
        sweep.offered += waiting_list_offer(ticket_type_id=ticket_type_id, now=now)
    return sweep


def _expire_offers(*, now: datetime) -> int:
    """Offers past their time: their seats stopped being held when the offer's hold expired; now the entry ends."""
    ended = WaitingListEntry.objects.filter(status=Status.OFFERED, offer_expires_at__lte=now)
    # A plain read first, in this and the other steps: an idle sweep opens no write transaction (on SQLite that
    # takes the database's one write lock, which checkouts wait for).
    return ended.update(status=Status.EXPIRED, ended_at=now) if ended.exists() else 0


def _ended_lists(now: datetime) -> Q:
    event = "ticket_type__event__"
    return (
        Q(**{f"{event}waiting_list_enabled": False})
        | Q(**{f"{event}ends_at__lte": now})
        | Q(ticket_type__sale_ends_at__lte=now)
    )


def _close_ended(*, now: datetime) -> int:
    """Entries in line for a list the organizer switched off, or for tickets no longer sold: closed, their seats
    no longer the list's."""
    waiting = WaitingListEntry.objects.filter(_ended_lists(now), status__in=[Status.UNCONFIRMED, Status.WAITING])
    closed = 0
    for ticket_type_id in set(waiting.values_list("ticket_type_id", flat=True)):
        with transaction.atomic():
            ended = list(waiting.filter(ticket_type_id=ticket_type_id).select_for_update(no_key=True, of=("self",)))
            seats.lock_ticket_type(ticket_type_id)
            seats.wait({ticket_type_id: -sum(e.quantity for e in ended if e.status == Status.WAITING)})
            closed += WaitingListEntry.objects.filter(pk__in=[e.pk for e in ended]).update(
                status=Status.CLOSED, ended_at=now
            )
    return closed


def _lapse_unconfirmed(*, now: datetime) -> int:
    """Places never confirmed within WAITING_LIST_CONFIRM_HOURS: they never counted, so ending them frees nothing."""
    deadline = now - timedelta(hours=settings.WAITING_LIST_CONFIRM_HOURS)
    lapsed = WaitingListEntry.objects.filter(status=Status.UNCONFIRMED, created_at__lte=deadline)
    return lapsed.update(status=Status.EXPIRED, ended_at=now) if lapsed.exists() else 0


def _needing_an_offer(*, now: datetime) -> list[int]:
    """Ticket types with someone in line and a seat nobody holds or bought (read without locks; the offer decides
    under them)."""
    in_line = WaitingListEntry.objects.filter(status=Status.WAITING).values("ticket_type_id")
    free = TicketType.objects.filter(pk__in=in_line).annotate(held=held_per("ticket_type", now))
    return list(free.filter(capacity__gt=F("sold") + F("held")).order_by("pk").values_list("pk", flat=True))


# --- for organizers -------------------------------------------------------------------------------------------


def _ahead_of(entry: WaitingListEntry | None) -> QuerySet[WaitingListEntry]:
    """Entries in line for the same ticket type up to and including `entry` (None: the outer query's row)."""

    def get(name: str) -> Any:
        return OuterRef(name) if entry is None else getattr(entry, name)

    return WaitingListEntry.objects.filter(ticket_type_id=get("ticket_type_id"), status=Status.WAITING).filter(
        Q(confirmed_at__lt=get("confirmed_at")) | Q(confirmed_at=get("confirmed_at"), pk__lte=get("pk"))
    )


def waiting_position(entry: WaitingListEntry) -> int | None:
    """An entry's place in line (1: offered the next seats that come free), None when it is not in line."""
    return _ahead_of(entry).count() if entry.status == Status.WAITING else None


@dataclass(frozen=True)
class EntryState:
    """What a shopper sees of their entry: its place in line, and whether an offer is open for them now."""

    entry: WaitingListEntry
    position: int | None
    offer_open: bool

    @property
    def offer_basket(self) -> str | None:
        return self.entry.basket.token if self.offer_open and self.entry.basket is not None else None


def waiting_entry_state(entry: WaitingListEntry, *, now: datetime) -> EntryState:
    offered = entry.status == Status.OFFERED and entry.offer_expires_at is not None and entry.offer_expires_at > now
    return EntryState(entry=entry, position=waiting_position(entry), offer_open=offered)


def waiting_list_with_positions(queryset: QuerySet[WaitingListEntry]) -> QuerySet[WaitingListEntry]:
    """Annotates `position`, as `waiting_position`, in the same query."""
    ahead = _ahead_of(None).order_by().values("ticket_type_id").annotate(n=Count("pk")).values("n")
    in_line = Coalesce(Subquery(ahead, output_field=IntegerField()), 0)
    return queryset.annotate(position=Case(When(status=Status.WAITING, then=in_line), default=None))


def waiting_list_summary(queryset: QuerySet[WaitingListEntry]) -> dict[str, int]:
    """Entries waiting and the seats they want; offers sent, open, used and expired."""
    offered = Q(offered_at__isnull=False)
    totals = queryset.aggregate(
        waiting=Count("pk", filter=Q(status=Status.WAITING)),
        seats=Sum("quantity", filter=Q(status=Status.WAITING), default=0),
        sent=Count("pk", filter=offered),
        open=Count("pk", filter=Q(status=Status.OFFERED)),
        used=Count("pk", filter=offered & Q(status=Status.USED)),
        expired=Count("pk", filter=offered & Q(status=Status.EXPIRED)),
    )
    return {name: int(value or 0) for name, value in totals.items()}
