"""Tickets the buyer carries: QR codes on the private order page and the A4 tickets PDF."""

from __future__ import annotations

import io
import re

import pytest
from django.test import Client
from PIL import Image
from pypdf import PdfReader

from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, services
from orders.models import Order
from orders.tickets import qr_code

pytestmark = pytest.mark.django_db


def paid_order(now, *quantities: int, name: str = "Ada Lovelace") -> Order:
    """One order with `quantities[i]` tickets of the i-th of fresh ticket types."""
    token = None
    for quantity in quantities:
        ticket_type = TicketTypeFactory(event=EventFactory(name="Jazz — Night", venue="Blue Hall"), capacity=20)
        token = services.basket_add(token=token, ticket_type_id=ticket_type.pk, quantity=quantity, now=now).token
    result = checkout.order_place(token=token, name=name, email="ada@example.com", payment_method="test", now=now)
    return Order.objects.get(pk=result.order.pk)


def page_url(order: Order) -> str:
    return f"/orders/{order.code}/{order.secret}/"


def pdf_url(order: Order) -> str:
    return f"/orders/{order.code}/{order.secret}/tickets.pdf"


def qr_modules(image: Image.Image, size: int) -> list[list[bool]]:
    """Reads a QR image back module by module (dark = True), border of 2 modules included in `size`."""
    gray = image.convert("L")
    step = gray.width / size
    return [
        [gray.getpixel((int((x + 0.5) * step), int((y + 0.5) * step))) < 128 for x in range(size)] for y in range(size)
    ]


def expected_modules(code: str) -> list[list[bool]]:
    qr = qr_code(code)
    matrix = [[bool(cell) for cell in row] for row in qr.matrix]
    width = len(matrix) + 4
    blank = [False] * width
    return [blank, blank] + [[False, False, *row, False, False] for row in matrix] + [blank, blank]


class TestOrderPage:
    def test_every_ticket_shows_its_qr_code_event_date_venue_and_type(self, client: Client, now):
        order = paid_order(now, 2, 1)

        body = client.get(page_url(order)).content.decode()

        tickets = list(order.tickets.select_related("ticket_type__event"))
        assert body.count('<div class="ticket-stub__qr"><svg') == 3
        for ticket in tickets:
            assert f"<title>QR code of ticket {ticket.code}</title>" in body
            assert ticket.ticket_type.name in body
        assert "Blue Hall" in body
        assert "Jazz — Night" in body
        assert f'href="{pdf_url(order)}"' in body

    def test_the_qr_svg_encodes_the_ticket_secret(self, client: Client, now):
        order = paid_order(now, 1)
        ticket = order.tickets.get()
        body = client.get(page_url(order)).content.decode()

        svg = re.search(r'<div class="ticket-stub__qr">(<svg.*?</svg>)', body, re.S).group(1)

        assert svg == qr_code(ticket.code).svg_inline(
            scale=5, border=2, title=f"QR code of ticket {ticket.code}", svgclass="qr-code", lineclass=None
        )

    def test_no_inline_style_or_script_for_a_strict_csp(self, client: Client, now):
        body = client.get(page_url(paid_order(now, 2))).content.decode()

        assert "style=" not in body
        assert "<script>" not in body.replace(" ", "")

    def test_a_cancelled_order_shows_no_qr_code_and_no_pdf_link(self, client: Client, now):
        order = paid_order(now, 1)
        services.order_cancel(order_id=order.pk, now=now)

        body = client.get(page_url(order)).content.decode()

        assert "<svg" not in body.split('class="order-tickets"')[1]
        assert "Download PDF" not in body


class TestTicketsPdf:
    def test_one_a4_page_per_ticket_with_its_code_event_and_holder(self, client: Client, now):
        order = paid_order(now, 2, 1, name="Grace Hopper")

        response = client.get(pdf_url(order))

        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == f'attachment; filename="tickets-{order.code}.pdf"'
        assert "no-store" in response["Cache-Control"]
        reader = PdfReader(io.BytesIO(response.content))
        tickets = list(order.tickets.select_related("ticket_type__event").order_by("id"))
        assert len(reader.pages) == len(tickets) == 3
        for number, (page, ticket) in enumerate(zip(reader.pages, tickets, strict=True), start=1):
            # A4 is 595 × 842 points.
            assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
            text = page.extract_text()
            assert ticket.code in text
            assert f"TICKET {number} OF 3" in text
            assert order.code in text
            assert "Grace Hopper" in text
            assert "Jazz — Night" in text
            assert "Blue Hall" in text
            assert f"Ticket type: {ticket.ticket_type.name}" in text
            assert "VOID" not in text

    def test_each_page_qr_code_is_that_tickets_secret(self, client: Client, now):
        order = paid_order(now, 2)
        reader = PdfReader(io.BytesIO(client.get(pdf_url(order)).content))
        tickets = list(order.tickets.order_by("id"))

        for page, ticket in zip(reader.pages, tickets, strict=True):
            (image,) = page.images
            expected = expected_modules(ticket.code)
            assert qr_modules(image.image, len(expected)) == expected
        assert expected_modules(tickets[0].code) != expected_modules(tickets[1].code)

    def test_a_cancelled_orders_pdf_says_void(self, client: Client, now):
        order = paid_order(now, 1)
        services.order_cancel(order_id=order.pk, now=now)

        text = PdfReader(io.BytesIO(client.get(pdf_url(order)).content)).pages[0].extract_text()

        assert "VOID - order cancelled" in text

    def test_wrong_secret_is_a_404(self, client: Client, now):
        order = paid_order(now, 1)

        response = client.get(f"/orders/{order.code}/{'x' * len(order.secret)}/tickets.pdf")

        assert response.status_code == 404
        assert not response.content.startswith(b"%PDF")
