"""Tickets as the buyer carries them: a QR code of each ticket's secret (SVG on pages, PNG in the PDF) and
an A4 PDF with one ticket per page. Rendering only; it reads an order whose lines and tickets are loaded."""

from __future__ import annotations

import functools
import io
import logging
import os
import tempfile
from pathlib import Path

import segno
from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from fontTools import subset
from fontTools.ttLib import TTFont
from fpdf import FPDF

from orders.models import Order, Ticket

logger = logging.getLogger(__name__)

# Medium error correction: survives a scuffed phone screen or a creased print-out; 26 symbols fit version 2.
QR_ERROR = "m"

# The PDF's fonts: DejaVu Sans prints Latin, Greek and Cyrillic; Droid Sans Fallback, added only for a ticket whose
# text DejaVu lacks glyphs for (reading it costs ~0.4 s), prints Chinese, Japanese and Korean. Debian's
# fonts-dejavu-core and fonts-droid-fallback put them here (the image copies them; .ci/run installs them).
FONT_FILES = {
    ("dejavu", ""): "dejavu/DejaVuSans.ttf",
    ("dejavu", "B"): "dejavu/DejaVuSans-Bold.ttf",
    ("cjk", ""): "droid/DroidSansFallbackFull.ttf",
}
FONT = "dejavu"
CJK_FONT = "cjk"
# Without the font files (a developer machine without them), the built-in Helvetica, which speaks Latin-1 only:
# these common characters get a faithful stand-in, others print as "?".
_LATIN1_STANDINS = str.maketrans({"—": "-", "–": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "…": "...", "€": "EUR "})


def font_path(family: str, style: str = "") -> Path:
    return Path(settings.TICKET_FONTS_DIR) / FONT_FILES[(family, style)]


@functools.cache
def _dejavu_characters(path: Path) -> frozenset[int]:
    """The code points DejaVu Sans has glyphs for (read once per process)."""
    with TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap())


def _needs_cjk_font(texts: list[str]) -> bool:
    covered = _dejavu_characters(font_path(FONT))
    return any(ord(char) not in covered for text in texts for char in text if not char.isspace())


# fpdf2 parses a font file whole for every document: DejaVu Sans's ~6,000 glyphs made a two-ticket PDF cost 124 ms
# against 15 ms in Helvetica (and the email worker, which attaches it to each confirmation, 4x slower). The scripts
# tickets nearly always need (Latin, Greek, Cyrillic, punctuation, currency signs) are cut out of it once per
# process into a file a quarter its size, which brings the PDF to the figure in docs/performance.md; a ticket whose
# text the cut lacks gets the whole font.
CUT_RANGES = ((0x20, 0x24F), (0x370, 0x3FF), (0x400, 0x52F), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20CF))
CUT_CHARACTERS = frozenset(code for first, last in CUT_RANGES for code in range(first, last + 1))


@functools.cache
def _cut_font(source: Path) -> Path:
    """`source` cut down to CUT_CHARACTERS, in the temporary directory (written once per process, then renamed into
    place, so that processes sharing the directory never read a half-written file)."""
    options = subset.Options()
    options.layout_features = ["*"]
    options.glyph_names = False
    options.drop_tables = [*options.drop_tables, "FFTM"]
    font = TTFont(source)
    cutter = subset.Subsetter(options)
    cutter.populate(unicodes=sorted(CUT_CHARACTERS))
    cutter.subset(font)
    target = Path(tempfile.gettempdir()) / f"aegistickets-{source.stem}-{os.stat(source).st_size}.ttf"
    partial = target.with_suffix(f".{os.getpid()}.part")
    font.save(partial)
    partial.replace(target)
    return target


def _font_file(style: str, texts: list[str]) -> str:
    whole = font_path(FONT, style)
    if all(ord(char) in CUT_CHARACTERS for text in texts for char in text if not char.isspace()):
        return str(_cut_font(whole))
    return str(whole)


def qr_code(secret: str) -> segno.QRCode:
    return segno.make_qr(secret, error=QR_ERROR, boost_error=False)


def qr_svg(secret: str, *, title: str = "") -> str:
    """Inline <svg> markup (no XML declaration, no style attribute: fine under a strict CSP)."""
    return qr_code(secret).svg_inline(scale=5, border=2, title=title or None, svgclass="qr-code", lineclass=None)


def qr_png(secret: str) -> bytes:
    out = io.BytesIO()
    qr_code(secret).save(out, kind="png", scale=10, border=2)
    return out.getvalue()


def _when(ticket: Ticket) -> str:
    return date_format(timezone.localtime(ticket.ticket_type.event.starts_at), "SHORT_DATETIME_FORMAT")


def _void(order: Order, ticket: Ticket) -> str:
    """Why a ticket no longer admits anyone, or "" while it does."""
    if order.status != Order.Status.PAID:
        return gettext("order %(status)s") % {"status": order.get_status_display().lower()}
    return gettext("ticket cancelled") if ticket.cancelled_at else ""


def _lines(order: Order, ticket: Ticket) -> list[str]:
    """The lines under the event's name: when, where, ticket type, who, the answers."""
    event = ticket.ticket_type.event
    holder = ticket.attendee_name or order.name
    return [
        _when(ticket),
        f"{event.venue}, {event.city}",
        gettext("Ticket type: %(name)s") % {"name": ticket.ticket_type.name},
        gettext("Name: %(name)s") % {"name": holder},
        *([gettext("Bought by: %(name)s") % {"name": order.name}] if ticket.attendee_name else []),
        *(f"{question}: {answer}" for question, answer in ticket.answers_shown),
    ]


class _TicketsPdf:
    """One A4 document, in DejaVu Sans where its files are installed (and Droid Sans Fallback where the text needs
    it), else in the built-in Helvetica with the text narrowed to Latin-1."""

    def __init__(self, *, texts: list[str]) -> None:
        self.pdf = FPDF(orientation="portrait", unit="mm", format="A4")
        self.unicode = font_path(FONT).is_file() and font_path(FONT, "B").is_file()
        if self.unicode:
            self.pdf.add_font(FONT, "", _font_file("", texts))
            self.pdf.add_font(FONT, "B", _font_file("B", texts))
            if font_path(CJK_FONT).is_file() and _needs_cjk_font(texts):
                self.pdf.add_font(CJK_FONT, "", str(font_path(CJK_FONT)))
                self.pdf.set_fallback_fonts([CJK_FONT], exact_match=False)
        else:
            logger.warning("tickets PDF: no DejaVu Sans under %s; names outside Latin-1 print as ?", font_path(FONT))

    def text(self, text: str) -> str:
        if self.unicode:
            return text
        return text.translate(_LATIN1_STANDINS).encode("latin-1", errors="replace").decode("latin-1")

    def font(self, style: str, size: int) -> None:
        self.pdf.set_font(FONT if self.unicode else "Helvetica", style, size)

    def line(self, height: float, text: str, *, cell: bool = False, align: str = "L") -> None:
        width = self.pdf.w - 2 * self.pdf.l_margin
        if cell:
            self.pdf.cell(width, height, self.text(text), align=align, new_x="LMARGIN", new_y="NEXT")
        else:
            self.pdf.multi_cell(width, height, self.text(text), align=align, new_x="LMARGIN", new_y="NEXT")


def _ticket_page(doc: _TicketsPdf, order: Order, ticket: Ticket, *, number: int, count: int) -> None:
    pdf = doc.pdf
    pdf.add_page()
    doc.font("B", 11)
    pdf.set_text_color(90, 96, 120)
    heading = gettext("TICKET %(number)d OF %(count)d  -  ORDER %(code)s")
    doc.line(8, heading % {"number": number, "count": count, "code": order.code}, cell=True)
    pdf.set_text_color(0, 0, 0)
    doc.font("B", 24)
    doc.line(11, ticket.ticket_type.event.name)
    doc.font("", 14)
    pdf.ln(2)
    for line in _lines(order, ticket):
        doc.line(8, line)
    void = _void(order, ticket)
    if void:
        doc.font("B", 18)
        pdf.set_text_color(180, 0, 0)
        doc.line(12, gettext("VOID - %(reason)s") % {"reason": void}, cell=True)
        pdf.set_text_color(0, 0, 0)
    size = 90
    top = pdf.get_y() + 10
    pdf.image(io.BytesIO(qr_png(ticket.code)), x=(pdf.w - size) / 2, y=top, w=size, h=size)
    pdf.set_y(top + size + 6)
    pdf.set_font("Courier", "B", 16)
    doc.line(10, ticket.code, cell=True, align="C")
    doc.font("", 10)
    pdf.set_text_color(90, 96, 120)
    advice = gettext(
        "Show this code at the door; it admits one person once. Anyone holding it can use it: keep it private."
    )
    doc.line(5, advice, align="C")
    pdf.set_text_color(0, 0, 0)


def tickets_pdf(order: Order, tickets: list[Ticket]) -> bytes:
    """An A4 PDF, one ticket per page (of `tickets`, each with its ticket type and event): event, date, venue, ticket
    type, holder, order code, QR code, secret; in the active language, any name printed as written."""
    texts = [order.name, *(text for ticket in tickets for text in _lines(order, ticket)), "€"]
    texts += [ticket.ticket_type.event.name for ticket in tickets]
    doc = _TicketsPdf(texts=texts)
    doc.pdf.set_title(gettext("Tickets for order %(code)s") % {"code": order.code})
    doc.pdf.set_author("AegisTickets")
    doc.pdf.set_auto_page_break(auto=False)
    for number, ticket in enumerate(tickets, start=1):
        _ticket_page(doc, order, ticket, number=number, count=len(tickets))
    return bytes(doc.pdf.output())
