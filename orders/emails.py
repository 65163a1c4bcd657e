"""Emails to buyers. Sent after the order's transaction commits (never inside it), and a failure to send
never undoes or fails the purchase: it is logged, and staff can resend from the admin."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from orders import selectors
from orders.models import Order
from orders.tickets import tickets_pdf

logger = logging.getLogger(__name__)


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
    message.attach(f"tickets-{order.code}.pdf", tickets_pdf(order), "application/pdf")
    return message


def order_confirmation_send(*, order_id: int) -> bool:
    """Sends the confirmation of a paid order; True if the backend accepted it. Never raises."""
    try:
        order = selectors.order_for_staff_by_id(order_id=order_id)
        order_confirmation_message(order).send()
    except Exception:
        logger.exception("order confirmation email failed", extra={"order_id": order_id})
        return False
    logger.info("order confirmation email sent", extra={"order_id": order_id})
    return True


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


def order_cancellation_send(*, order_id: int) -> bool:
    """Sends the cancellation notice; True if the backend accepted it. Never raises."""
    try:
        order = selectors.order_for_staff_by_id(order_id=order_id)
        order_cancellation_message(order).send()
    except Exception:
        logger.exception("order cancellation email failed", extra={"order_id": order_id})
        return False
    logger.info("order cancellation email sent", extra={"order_id": order_id})
    return True
