"""What a shopper can do on their own after buying: find their orders again by email, have the confirmation sent
again, and change the names on their tickets while the event allows it.

"Find my orders" tells nobody who bought what: a request queues one email to the address given, whatever the address
is, on the same path with the same queries; the worker builds the email when it sends it (orders/emails.py) and
skips it when the address has no orders. So the answer, its timing and the database writes do not depend on whether
the address has bought anything, and only the address's owner learns the private links.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from aegistickets.errors import AttendeeChangesClosedError, ConfirmationUnavailableError, ValidationFailedError
from events.models import Event
from orders import seats
from orders.models import Order, OutboundEmail, Ticket
from orders.outbox import outbox_enqueue
from orders.selectors import lookup_address

ATTENDEE_NAME_MAX = 200


def order_lookup_request(*, email: str, language: str, now: datetime) -> OutboundEmail:
    """Queues the one email that lists an address's orders, to that address; the same single INSERT whether it has
    orders or not (the worker decides at send time, and skips an address without any)."""
    return outbox_enqueue(
        kind=OutboundEmail.Kind.ORDER_LOOKUP, now=now, recipient=lookup_address(email), language=language
    )


def order_confirmation_resend(*, order_id: int, now: datetime) -> OutboundEmail:
    """Queues the order's confirmation again, to the order's own address only; only a paid order has one. Decided
    under the order's lock, so that a cancellation committing meanwhile withdraws it (or comes first and refuses
    it)."""
    with transaction.atomic():
        order = seats.lock_order(order_id)
        if order.status != Order.Status.PAID:
            raise ConfirmationUnavailableError(
                _("Order %(code)s is not paid: there is no confirmation to send.") % {"code": order.code}
            )
        return outbox_enqueue(
            kind=OutboundEmail.Kind.ORDER_CONFIRMATION, now=now, order_id=order.pk, language=order.language
        )


def attendee_changes_open(event: Event, *, now: datetime) -> bool:
    """Whether buyers may change the names on this event's tickets now: the event asks for names and its organizer
    set a deadline that has not passed."""
    until = event.attendee_changes_until
    return event.asks_attendee_name and until is not None and now < until


def renamable_tickets(tickets: list[Ticket], *, order: Order, now: datetime) -> list[Ticket]:
    """Of an order's tickets (loaded with their ticket type and event), those whose names the buyer may change
    now: valid tickets of a paid order whose event's changes are open."""
    if order.status != Order.Status.PAID:
        return []
    return [t for t in tickets if not t.cancelled_at and attendee_changes_open(t.ticket_type.event, now=now)]


def tickets_rename(*, order_id: int, names: Mapping[str, str], now: datetime) -> list[Ticket]:
    """Changes the attendee names of some of an order's valid tickets (`names`: ticket code -> new name), where each
    ticket's event still allows it; all or nothing, decided under the order's lock (which orders it with a
    cancellation of the same tickets). Returns the tickets changed."""
    cleaned = _names_checked(names)
    with transaction.atomic():
        order = seats.lock_order(order_id)
        tickets = list(order.tickets.select_related("ticket_type__event").filter(code__in=list(cleaned)))
        unknown = sorted(set(cleaned) - {ticket.code for ticket in tickets})
        if unknown:
            raise ValidationFailedError(
                errors={"tickets": [_("Not tickets of this order: %(codes)s.") % {"codes": ", ".join(unknown)}]}
            )
        open_codes = {ticket.code for ticket in renamable_tickets(tickets, order=order, now=now)}
        closed = sorted(ticket.code for ticket in tickets if ticket.code not in open_codes)
        if closed:
            raise AttendeeChangesClosedError(
                _("The names on these tickets can no longer be changed here: %(codes)s. Ask the organizer.")
                % {"codes": ", ".join(closed)},
                extra={"tickets": closed},
            )
        changed = [ticket for ticket in tickets if ticket.attendee_name != cleaned[ticket.code]]
        for ticket in changed:
            ticket.attendee_name = cleaned[ticket.code]
        Ticket.objects.bulk_update(changed, ["attendee_name"])
    return changed


def _names_checked(names: Mapping[str, str]) -> dict[str, str]:
    """The new names, stripped, if each is one as checkout takes it (not empty, at most ATTENDEE_NAME_MAX
    characters); refused as a whole otherwise."""
    cleaned = {code: str(name).strip() for code, name in names.items()}
    problems: dict[str, list[str]] = {}
    if not cleaned:
        problems["tickets"] = [_("Choose the tickets to change.")]
    for code, name in cleaned.items():
        if not name:
            problems[f"name_{code}"] = [_("Every attendee needs a name.")]
        elif len(name) > ATTENDEE_NAME_MAX:
            problems[f"name_{code}"] = [
                _("Ensure this value has at most %(max)s characters.") % {"max": ATTENDEE_NAME_MAX}
            ]
    if problems:
        raise ValidationFailedError(errors=problems)
    return cleaned
