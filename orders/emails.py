"""Emails to buyers: how each message is built. They are queued in the order's own transaction and sent by the
outbox worker (orders/outbox.py, `manage.py send_emails`), never in the request: a failure to send never undoes
or fails the purchase; it is retried, and staff see it in the admin."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import prefetch_related_objects
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

from aegistickets.http import site_url
from events.calendar import events_ics
from orders import selectors
from orders.models import Order, OutboundEmail, Refund, WaitingListEntry
from orders.tickets import tickets_pdf


def order_page_url(order: Order) -> str:
    """The absolute private link to the order page."""
    return site_url("orders:detail", code=order.code, secret=order.secret)


def _events(order: Order) -> list[str]:
    names: list[str] = []
    for line in order.lines.all():
        if line.ticket_type.event.name not in names:
            names.append(line.ticket_type.event.name)
    return names


def _message(order: Order, *, subject: str, template: str, **extra: object) -> EmailMultiAlternatives:
    """Plain text and HTML from `orders/email/<template>.txt|html`, to the buyer; `subject` (translated, with
    %(events)s and %(code)s) names the order's events and code."""
    events = _events(order)
    context = {
        "order": order,
        "events": events,
        "order_url": order_page_url(order),
        "LANGUAGE_CODE": translation.get_language(),  # the page's lang; no request, so no context processor
        **extra,
    }
    message = EmailMultiAlternatives(
        subject=" ".join((subject % {"events": ", ".join(events), "code": order.code}).split())[:200],
        body=render_to_string(f"orders/email/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
    )
    message.attach_alternative(render_to_string(f"orders/email/{template}.html", context), "text/html")
    return message


def order_confirmation_message(order: Order) -> EmailMultiAlternatives:
    """The private link, the tickets PDF and the order's events as a calendar file attached."""
    message = _message(order, subject=gettext("Your tickets for %(events)s - order %(code)s"), template="confirmation")
    message.attach(f"tickets-{order.code}.pdf", tickets_pdf(order, list(order.tickets.all())), "application/pdf")
    events = [line.ticket_type.event for line in order.lines.all()]
    message.attach(f"events-{order.code}.ics", events_ics(events), "text/calendar")
    return message


def order_cancellation_message(order: Order) -> EmailMultiAlternatives:
    """The order is cancelled, its tickets void, and where the refund of what was left stands."""
    refund = order.refunds.filter(reason=Refund.Reason.CANCELLATION).first()
    return _message(
        order, subject=gettext("Cancelled: %(events)s - order %(code)s"), template="cancellation", refund=refund
    )


def order_not_completed_message(order: Order) -> EmailMultiAlternatives:
    """A payment came too late or failed for good: no tickets, and the reserved amount released."""
    return _message(order, subject=gettext("Not completed: %(events)s - order %(code)s"), template="not_completed")


def tickets_cancelled_message(order: Order) -> EmailMultiAlternatives:
    """Some of the order's tickets are cancelled (every one cancelled so far, with where its refund stands); the
    others stay valid."""
    cancelled = [ticket for ticket in order.tickets.all() if ticket.cancelled_at]
    reasons = [Refund.Reason.TICKETS, Refund.Reason.EVENT_CANCELLED]
    refunds = list(order.refunds.filter(reason__in=reasons).order_by("created_at", "id"))
    by_event = {refund.pk for refund in refunds if refund.reason == Refund.Reason.EVENT_CANCELLED}
    events_cancelled = list(dict.fromkeys(t.ticket_type.event.name for t in cancelled if t.refund_id in by_event))
    return _message(
        order,
        subject=gettext("Tickets cancelled: %(events)s - order %(code)s"),
        template="tickets_cancelled",
        cancelled=cancelled,
        refunds=refunds,
        events_cancelled=events_cancelled,
    )


def refund_message(order: Order) -> EmailMultiAlternatives:
    """Part of the order's money returned on staff's word (every such part so far, with where each stands); the
    tickets stay valid unless this returned the last of it. Staff's note is for the records and is not sent."""
    refunds = order.refunds.filter(reason=Refund.Reason.PARTIAL).order_by("created_at", "id")
    return _message(order, subject=gettext("Refund: %(events)s - order %(code)s"), template="refund", refunds=refunds)


ORDER_MESSAGES: dict[str, Callable[[Order], EmailMultiAlternatives]] = {
    OutboundEmail.Kind.ORDER_CONFIRMATION: order_confirmation_message,
    OutboundEmail.Kind.ORDER_CANCELLATION: order_cancellation_message,
    OutboundEmail.Kind.ORDER_NOT_COMPLETED: order_not_completed_message,
    OutboundEmail.Kind.TICKETS_CANCELLED: tickets_cancelled_message,
    OutboundEmail.Kind.REFUND: refund_message,
}


def waiting_entry_url(entry: WaitingListEntry, name: str = "waiting-list-entry") -> str:
    """An absolute private link of a waiting-list entry: its page, or (`name`) its offer or one-click leave."""
    return site_url(f"orders:{name}", token=entry.token)


def _waiting_list_message(
    email: OutboundEmail, *, subject: str, template: str, **extra: object
) -> EmailMultiAlternatives:
    """To the entry's address, with a one-click way out (RFC 8058) that mail programs offer as "unsubscribe"."""
    entry = WaitingListEntry.objects.select_related("ticket_type__event").get(outbound_emails=email.pk)
    context = {
        "entry": entry,
        "event": entry.ticket_type.event,
        "entry_url": waiting_entry_url(entry),
        "leave_url": waiting_entry_url(entry, "waiting-list-leave"),
        "LANGUAGE_CODE": translation.get_language(),
        **extra,
    }
    message = EmailMultiAlternatives(
        subject=f"{subject} {entry.ticket_type.event.name} - {entry.ticket_type.name}"[:200],
        body=render_to_string(f"orders/email/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[entry.email],
        headers={
            "List-Unsubscribe": f"<{context['leave_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(render_to_string(f"orders/email/{template}.html", context), "text/html")
    return message


def waiting_list_confirm_message(email: OutboundEmail) -> EmailMultiAlternatives:
    """The link that confirms a place in line (or shows where it stands, for an address already in line)."""
    return _waiting_list_message(
        email, subject=gettext("Confirm your place on the waiting list:"), template="waiting_list_confirm"
    )


def waiting_list_offer_message(email: OutboundEmail) -> EmailMultiAlternatives | None:
    """Seats are held for the shopper until the offer ends: the link opens a basket with them. Not sent once the
    offer has ended (used, left or expired) before the email went out."""
    entry = WaitingListEntry.objects.filter(outbound_emails=email.pk, status=WaitingListEntry.Status.OFFERED)
    if not entry.exists():
        return None
    offer_url = waiting_entry_url(entry.get(), "waiting-list-offer")
    return _waiting_list_message(
        email, subject=gettext("Tickets are waiting for you:"), template="waiting_list_offer", offer_url=offer_url
    )


def order_lookup_message(email: OutboundEmail) -> EmailMultiAlternatives | None:
    """The private links to the orders of the address it is sent to, as they are when it is sent; None (not sent)
    for an address that has no such order."""
    orders = list(selectors.address_orders(email.recipient))
    if not orders:
        return None
    prefetch_related_objects(orders, "lines__ticket_type__event")
    context = {
        "orders": [{"order": order, "events": _events(order), "url": order_page_url(order)} for order in orders],
        "LANGUAGE_CODE": translation.get_language(),
    }
    message = EmailMultiAlternatives(
        subject=gettext("Your orders at AegisTickets"),
        body=render_to_string("orders/email/order_lookup.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.recipient],
    )
    message.attach_alternative(render_to_string("orders/email/order_lookup.html", context), "text/html")
    return message


# The kinds about something other than an order: built from the queued row itself; None when there is nothing to
# send any more.
OTHER_MESSAGES: dict[str, Callable[[OutboundEmail], EmailMultiAlternatives | None]] = {
    OutboundEmail.Kind.ORDER_LOOKUP: order_lookup_message,
    OutboundEmail.Kind.WAITING_LIST_CONFIRM: waiting_list_confirm_message,
    OutboundEmail.Kind.WAITING_LIST_OFFER: waiting_list_offer_message,
}


def outbound_message(email_id: int) -> EmailMultiAlternatives | None:
    """The message of one queued email, in its language, built from what it is about as that is now (an order's
    refund's latest state, say)."""
    email = OutboundEmail.objects.get(pk=email_id)
    if email.order_id is not None:
        order = selectors.order_for_staff_by_id(order_id=email.order_id)
        # An email queued with no language (before orders recorded one) is written in the buyer's, if known.
        with translation.override(email.language or order.language or settings.LANGUAGE_CODE):
            return ORDER_MESSAGES[email.kind](order)
    with translation.override(email.language or settings.LANGUAGE_CODE):
        return OTHER_MESSAGES[email.kind](email)
