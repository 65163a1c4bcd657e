"""A German-speaking shopper, in a real browser set to German (Debian's Chromium driven by Playwright, against
live_server): joins the waiting list of a sold-out event, receives the offer by email when a seat comes free and
buys with it, then finds the order again by email. Every page and email on the way is in German.

Screenshots land in test-results/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from events.tests.factories import EventFactory, TicketTypeFactory
from orders import outbox, services
from orders import waiting_list as wl
from orders.models import Order, WaitingListEntry
from orders.tests.test_admin import place_order
from orders.tests.test_browser import VIEWPORTS, _screenshot, browser, watch  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser]

sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (requirements-dev.txt)")
expect = sync_api.expect


def send_emails() -> list[mail.EmailMessage]:
    """What the worker (`manage.py send_emails`) does in one round: the waiting list's sweep, then the due emails;
    returns the emails it sent."""
    mail.outbox.clear()
    now = timezone.now()
    wl.waiting_list_sweep(now=now)
    outbox.outbox_send_due(now=now, limit=100)
    return list(mail.outbox)


def link_in(message: mail.EmailMessage, path: str) -> str:
    """The path of the first link to `path` (a regular expression) in an email's text (links name SITE_URL)."""
    found = re.search(rf"https?://[^/\s]+({path})", message.body)
    assert found, f"no link to {path} in:\n{message.body}"
    return found.group(1)


@pytest.fixture
def sold_out_concert(transactional_db: None):  # type: ignore[no-untyped-def]
    event = EventFactory(name="Nachtklang: Streichquartett", slug="nachtklang", venue="Boulez-Saal", city="Berlin")
    standing = TicketTypeFactory(event=event, name="Stehplatz", price=Decimal("24.50"), capacity=2, max_per_order=4)
    orders = [place_order((standing, 1), email=f"kaeufer{i}@example.de") for i in range(2)]
    send_emails()  # their confirmations
    return event, standing, orders


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_in_german_a_shopper_waits_buys_from_an_offer_and_finds_the_order(
    browser,  # noqa: F811 - the fixture
    live_server,
    sold_out_concert,
    viewport,
):  # type: ignore[no-untyped-def]
    event, standing, orders = sold_out_concert
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="de-DE")
    page = context.new_page()
    problems = watch(page)

    def snap(name: str) -> None:
        _screenshot(page, f"{viewport}-de-{name}")

    def go(path: str) -> None:
        page.goto(live_server.url + path)

    # The sold-out event page, in German from the browser's Accept-Language, offers the waiting list.
    go(f"/events/{event.slug}/")
    assert page.evaluate("document.documentElement.lang") == "de"
    expect(page.locator(f"#ticket-{standing.pk}")).to_contain_text("24,50\u00a0€")
    form = page.locator("form.waiting-list-form")
    form.get_by_label("E-Mail").fill("lena@example.de")
    form.get_by_label("Gewünschte Tickets").fill("1")
    info = page.locator(f"#ticket-{standing.pk} .ticket-type__info").bounding_box()
    below = form.bounding_box()
    assert info["y"] + info["height"] <= below["y"], "the waiting-list form covers the ticket's name and price"
    snap("30-event-sold-out")
    form.get_by_role("button", name=re.compile("Auf die Warteliste setzen")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Prüfen Sie Ihre E-Mails")
    snap("31-waiting-list-joined")

    # Double opt-in: the confirmation email, in German, and its link.
    (confirm,) = send_emails()
    assert confirm.to == ["lena@example.de"]
    assert "Warteliste" in confirm.subject
    go(link_in(confirm, r"/waiting-list/[^/\s]+/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Platz auf der Warteliste")
    page.get_by_role("button", name="Meinen Platz bestätigen").click()
    expect(page.get_by_role("status")).to_contain_text("Sie sind Nummer 1 in der Warteschlange.")
    snap("32-waiting-list-in-line")

    # A buyer cancels: the freed seat is offered to the waiting list, not to the public.
    services.order_cancel(order_id=orders[0].pk, now=timezone.now())
    (offer,) = send_emails()
    assert offer.to == ["lena@example.de"]
    assert "Gute Nachricht" in offer.body
    go(link_in(offer, r"/waiting-list/[^/\s]+/offer/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Warenkorb")
    expect(page.locator(".basket-total")).to_have_text("24,50\u00a0€")
    snap("33-offer-basket")
    page.get_by_role("link", name="Zur Kasse").click()
    page.get_by_label("Vollständiger Name").fill("Lena Schäfer")
    page.get_by_label("E-Mail").fill("lena@example.de")
    expect(page.get_by_label("Testzahlung (es fließt kein Geld)")).to_be_checked()
    snap("34-checkout")
    page.get_by_role("button", name="Bezahlen und bestellen").click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Vielen Dank – Ihre Bestellung AT-[0-9A-Z]{6} ist bestätigt$"))
    snap("35-order")
    order = Order.objects.get(email="lena@example.de")
    assert order.language == "de"
    assert WaitingListEntry.objects.get(email="lena@example.de").status == WaitingListEntry.Status.USED
    confirmation = send_emails()
    assert [m.to for m in confirmation] == [["lena@example.de"]]
    assert order.code in confirmation[0].subject
    assert "Bestellung" in confirmation[0].subject

    # Later, on another device, the confirmation lost: find the order by email.
    assert problems == []
    context.close()
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="de-DE")
    page = context.new_page()
    problems = watch(page)
    go("/")
    page.get_by_role("link", name="Meine Bestellungen finden").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Meine Bestellungen finden")
    page.get_by_label("E-Mail-Adresse").fill("Lena@Example.de")
    snap("36-find-orders")
    page.get_by_role("button", name="Meine Bestellungen per E-Mail senden").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Prüfen Sie Ihr Postfach")
    snap("37-find-orders-sent")
    (found,) = send_emails()
    assert found.to == ["lena@example.de"]
    go(link_in(found, rf"/orders/{order.code}/[^/\s]+/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(order.code)
    assert page.evaluate("document.documentElement.lang") == "de"
    snap("38-order-found")
    assert problems == []
    context.close()
