"""Emails to buyers: how each message is built. They are queued in the order's own transaction and sent by the
outbox worker (orders/outbox.py, `manage.py send_emails`), never in the request: a failure to send never undoes
or fails the purchase; it is retried, and staff see it in the admin."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from orders import selectors
from orders.models import Order, OutboundEmail
from orders.tickets import tickets_pdf


def order_page_url(order: Order) -> str:
    """The absolute private link to the order page (SITE_URL + path)."""
    site: str = settings.SITE_URL
    return site.rstrip("/") + reverse("orders:detail", kwargs={"code": order.code, "secret": order.secret})


def _events(order: Order) -> list[str]:
    names: list[str] = []
    for line in order.lines.all():
        if line.ticket_type.event.name not in names:
            names.append(line.ticket_type.event.name)
    return names


def order_confirmation_message(order: Order) -> EmailMultiAlternatives:
    """Subject with event and order code, plain text + HTML, the private link, the tickets PDF attached."""
    events = _events(order)
    context = {"order": order, "events": events, "order_url": order_page_url(order)}
    subject = f"Your tickets for {', '.join(events)} - order {order.code}"
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split())[:200],
        body=render_to_string("orders/email/confirmation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
    )
    message.attach_alternative(render_to_string("orders/email/confirmation.html", context), "text/html")
    message.attach(f"tickets-{order.code}.pdf", tickets_pdf(order, list(order.tickets.all())), "application/pdf")
    return message


def order_cancellation_message(order: Order) -> EmailMultiAlternatives:
    """Tells the buyer the order is cancelled, its tickets void, and where the refund stands."""
    refund = order.refunds.order_by("-id").first()
    events = _events(order)
    context = {"order": order, "events": events, "order_url": order_page_url(order), "refund": refund}
    message = EmailMultiAlternatives(
        subject=" ".join(f"Cancelled: {', '.join(events)} - order {order.code}".split())[:200],
        body=render_to_string("orders/email/cancellation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
    )
    message.attach_alternative(render_to_string("orders/email/cancellation.html", context), "text/html")
    return message


def order_not_completed_message(order: Order) -> EmailMultiAlternatives:
    """Tells the buyer a payment came too late or failed for good: no tickets, and the reserved amount released."""
    events = _events(order)
    context = {"order": order, "events": events, "order_url": order_page_url(order)}
    message = EmailMultiAlternatives(
        subject=" ".join(f"Not completed: {', '.join(events)} - order {order.code}".split())[:200],
        body=render_to_string("orders/email/not_completed.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
    )
    message.attach_alternative(render_to_string("orders/email/not_completed.html", context), "text/html")
    return message


MESSAGES: dict[str, Callable[[Order], EmailMultiAlternatives]] = {
    OutboundEmail.Kind.ORDER_CONFIRMATION: order_confirmation_message,
    OutboundEmail.Kind.ORDER_CANCELLATION: order_cancellation_message,
    OutboundEmail.Kind.ORDER_NOT_COMPLETED: order_not_completed_message,
}


def outbound_message(*, kind: str, order_id: int) -> EmailMultiAlternatives:
    """The message of one queued email, built from the order as it is now (its refund's latest state)."""
    return MESSAGES[kind](selectors.order_for_staff_by_id(order_id=order_id))
