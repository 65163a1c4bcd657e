"""Tickets as the buyer carries them: a QR code of each ticket's secret (SVG on pages, PNG in the PDF) and
an A4 PDF with one ticket per page. Rendering only; it reads an order whose lines and tickets are loaded."""

from __future__ import annotations

import io

import segno
from django.utils import timezone
from django.utils.formats import date_format
from fpdf import FPDF

from orders.models import Order, Ticket

# Medium error correction: survives a scuffed phone screen or a creased print-out; 26 symbols fit version 2.
QR_ERROR = "m"

# The PDF's built-in fonts speak Latin-1 only; these common characters get a faithful stand-in.
_LATIN1_STANDINS = str.maketrans({"—": "-", "–": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "…": "...", "€": "EUR "})


def qr_code(secret: str) -> segno.QRCode:
    return segno.make_qr(secret, error=QR_ERROR, boost_error=False)


def qr_svg(secret: str, *, title: str = "") -> str:
    """Inline <svg> markup (no XML declaration, no style attribute: fine under a strict CSP)."""
    return qr_code(secret).svg_inline(scale=5, border=2, title=title or None, svgclass="qr-code", lineclass=None)


def qr_png(secret: str) -> bytes:
    out = io.BytesIO()
    qr_code(secret).save(out, kind="png", scale=10, border=2)
    return out.getvalue()


def _latin1(text: str) -> str:
    return text.translate(_LATIN1_STANDINS).encode("latin-1", errors="replace").decode("latin-1")


def _when(ticket: Ticket) -> str:
    return date_format(timezone.localtime(ticket.ticket_type.event.starts_at), "D j M Y, H:i")


def _void(order: Order, ticket: Ticket) -> str:
    """Why a ticket no longer admits anyone, or "" while it does."""
    if order.status != Order.Status.PAID:
        return f"order {order.get_status_display().lower()}"
    return "ticket cancelled" if ticket.cancelled_at else ""


def tickets_pdf(order: Order, tickets: list[Ticket]) -> bytes:
    """An A4 PDF, one ticket per page (of `tickets`, each with its ticket type and event): event, date, venue, ticket
    type, holder, order code, QR code, secret."""
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_title(f"Tickets for order {order.code}")
    pdf.set_author("AegisTickets")
    pdf.set_auto_page_break(auto=False)
    width = pdf.w - 2 * pdf.l_margin
    for number, ticket in enumerate(tickets, start=1):
        event = ticket.ticket_type.event
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 11)
        pdf.set_text_color(90, 96, 120)
        pdf.cell(
            width,
            8,
            _latin1(f"TICKET {number} OF {len(tickets)}  -  ORDER {order.code}"),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("Helvetica", "B", 24)
        pdf.multi_cell(width, 11, _latin1(event.name), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 14)
        pdf.ln(2)
        for line in (
            _when(ticket),
            f"{event.venue}, {event.city}",
            f"Ticket type: {ticket.ticket_type.name}",
            f"Name: {ticket.attendee_name}" if ticket.attendee_name else f"Name: {order.name}",
            *([f"Bought by: {order.name}"] if ticket.attendee_name else []),
            *(f"{question}: {answer}" for question, answer in ticket.answers_shown),
        ):
            pdf.multi_cell(width, 8, _latin1(line), new_x="LMARGIN", new_y="NEXT")
        void = _void(order, ticket)
        if void:
            pdf.set_font("Helvetica", "B", 18)
            pdf.set_text_color(180, 0, 0)
            pdf.cell(width, 12, _latin1(f"VOID - {void}"), new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
        size = 90
        top = pdf.get_y() + 10
        pdf.image(io.BytesIO(qr_png(ticket.code)), x=(pdf.w - size) / 2, y=top, w=size, h=size)
        pdf.set_y(top + size + 6)
        pdf.set_font("Courier", "B", 16)
        pdf.cell(width, 10, ticket.code, align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        pdf.set_text_color(90, 96, 120)
        pdf.multi_cell(
            width,
            5,
            "Show this code at the door; it admits one person once. Anyone holding it can use it: keep it private.",
            align="C",
        )
        pdf.set_text_color(0, 0, 0)
    return bytes(pdf.output())
