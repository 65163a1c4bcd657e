"""A shopper who lost their confirmation finds their order by email in a real browser, has the confirmation sent
again and changes a name on a ticket (Debian's Chromium driven by Playwright, against live_server).

Screenshots land in test-results/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import caches
from django.utils import timezone

from events.models import Event
from orders import outbox
from orders.models import Order
from orders.tests.test_browser import VIEWPORTS, _screenshot, browser, shop  # noqa: F401 - fixtures
from orders.tests.test_selfservice import named_order

pytestmark = [pytest.mark.browser]

sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (requirements-dev.txt)")
expect = sync_api.expect


def send_emails() -> None:
    """What the outbox worker (`manage.py send_emails`) does."""
    outbox.outbox_send_due(now=timezone.now(), limit=100)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_shopper_finds_their_order_by_email_resends_and_renames(browser, live_server, shop, viewport):  # noqa: F811
    event, standard = shop
    Event.objects.filter(pk=event.pk).update(
        attendee_data=Event.AttendeeData.NAME, attendee_changes_until=timezone.now() + timedelta(days=3)
    )
    order = named_order(standard, "Ada Lovelace", "Charles Babbage", email="Ada@Example.com")
    send_emails()
    mail.outbox.clear()  # the confirmation the shopper lost
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def snap(name: str) -> None:
        _screenshot(page, f"{viewport}-{name}")

    # From any page's footer to "Find my orders".
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Find my orders").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Find my orders")
    page.get_by_label("Email address").fill("ada@example.com")
    snap("20-find-orders")
    page.get_by_role("button", name="Email me my orders").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    expect(page.get_by_role("status")).to_contain_text("If orders were placed with that address")
    snap("21-find-orders-sent")

    # The worker sends the list; the shopper opens the link in it.
    send_emails()
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"]
    link = re.search(r"https?://\S+/orders/(AT-[A-Z0-9]{6})/\S+/", message.body).group(0)
    assert order.code in link
    page.goto(live_server.url + "/orders/" + link.split("/orders/", 1)[1])  # the link names SITE_URL
    expect(page.get_by_role("heading", level=1)).to_contain_text(order.code)
    panel = page.get_by_role("region", name="Manage your order")
    expect(panel.get_by_role("link", name=re.compile("Add to calendar"))).to_have_attribute(
        "href", f"/events/{event.slug}/event.ics"
    )
    snap("22-order-self-service")

    # The confirmation again, to the order's own address.
    mail.outbox.clear()
    panel.get_by_role("button", name="Email my confirmation again").click()
    expect(page.get_by_role("status")).to_contain_text("We are sending your confirmation again")
    send_emails()
    (confirmation,) = mail.outbox
    assert confirmation.to == ["Ada@Example.com"]
    attached = [name for name, _, _ in confirmation.attachments]
    assert attached == [f"tickets-{order.code}.pdf", f"events-{order.code}.ics"]

    # A friend goes instead of Charles.
    names = page.get_by_role("form", name="Change the names on your tickets")
    names.get_by_label("Ticket 2 (Standard)").fill("Grace Hopper")
    names.get_by_role("button", name="Save the names").click()
    expect(page.get_by_role("status")).to_contain_text("The names on your tickets are changed")
    expect(page.locator(".ticket-stub").nth(1)).to_contain_text("For Grace Hopper")
    assert list(Order.objects.get().tickets.order_by("pk").values_list("attendee_name", flat=True)) == [
        "Ada Lovelace",
        "Grace Hopper",
    ]
    snap("23-order-renamed")
    assert problems == []
    context.close()


def test_asking_too_often_says_so_and_the_event_page_offers_the_calendar(browser, live_server, shop, settings):  # noqa: F811
    event, _ = shop
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "lookup_email": "1/h"}
    caches[settings.RATELIMIT_USE_CACHE].clear()
    context = browser.new_context(viewport=VIEWPORTS["mobile"], locale="en-GB")
    page = context.new_page()
    page.goto(live_server.url + f"/events/{event.slug}/")
    calendar = page.get_by_role("link", name="Add to calendar")
    expect(calendar).to_have_attribute("href", f"/events/{event.slug}/event.ics")
    for _ in range(2):
        page.goto(live_server.url + "/orders/find/")
        page.get_by_label("Email address").fill("ada@example.com")
        page.get_by_role("button", name="Email me my orders").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Please try again later")
    expect(page.locator("main")).to_contain_text(re.compile(r"Please try again in about \d+ minutes?\."))
    _screenshot(page, "mobile-24-find-orders-limited")
    context.close()
