"""A shopper buys two tickets in a real browser: Debian's Chromium driven by Playwright, against live_server.

Screenshots of every step land in test-results/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone
from pypdf import PdfReader

from events.services import event_update
from events.tests.factories import EventFactory, TicketTypeFactory, VoucherFactory
from orders.models import Hold, Order
from orders.payments import TEST_DECLINE_EMAIL
from orders.tests.test_cancellations import paid_order

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
QUESTIONS = [
    {"text": "Seat cushion", "kind": "choice", "required": True, "options": ["Yes, a cushion", "No, thanks"]},
    {"text": "Dietary needs", "kind": "text"},
    {"text": "Programme booklet", "kind": "yes_no", "required": True},
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "mobile": {"width": 375, "height": 812}}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    ),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (requirements-dev.txt)")
expect = sync_api.expect


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    # Playwright's sync API runs an asyncio loop in this thread; the ORM calls made by the test itself
    # (factories, assertions) are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # The ORM calls made while Playwright ran opened a connection of their own; close it, or PostgreSQL
        # refuses to drop the test database at the end of the run ("being accessed by other users").
        connections.close_all()


@pytest.fixture
def shop(transactional_db: None):  # type: ignore[no-untyped-def]
    """A small catalog: the event we buy, plus neighbours in each state a shopper can meet."""
    event = EventFactory(
        name="Aurora Quartet: Late Beethoven",
        slug="aurora-quartet",
        venue="Pierre Boulez Saal",
        city="Berlin",
        description="The string quartets Op. 131 and Op. 132, played on period instruments.\n\n"
        "Doors open 45 minutes before the concert.",
    )
    standard = TicketTypeFactory(
        event=event,
        name="Standard",
        price=Decimal("35.00"),
        capacity=200,
        position=0,
        description="Unreserved seating in the stalls.",
    )
    TicketTypeFactory(event=event, name="Front rows", price=Decimal("79.00"), capacity=8, max_per_order=4, position=1)
    TicketTypeFactory(event=event, name="Early bird", price=Decimal("25.00"), capacity=50, sold=50, position=2)
    sold_out = EventFactory(name="Midnight Jazz Session", venue="A-Trane", city="Berlin")
    TicketTypeFactory(event=sold_out, price=Decimal("22.00"), capacity=40, sold=40)
    scarce = EventFactory(name="Opera Gala", venue="Staatsoper", city="Vienna")
    TicketTypeFactory(event=scarce, price=Decimal("120.00"), capacity=100, sold=97)
    return event, standard


def watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    """What goes wrong on a page as the test goes on: console errors, script errors, HTTP errors (a list that fills)."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    return problems


def _screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot and check that the page does not scroll sideways."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert fits, f"{name}: the page scrolls sideways"


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_shopper_buys_two_tickets(browser, live_server, shop, viewport):  # type: ignore[no-untyped-def]
    event, standard = shop
    type(event).objects.filter(pk=event.pk).update(attendee_data="name")  # the quartet prints a name on each ticket
    event_update(event_id=event.pk, data={"questions": QUESTIONS})
    VoucherFactory(code="FRIENDS10", value=Decimal("10"), organizer=event.organizer)
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-GB")
    page = context.new_page()
    problems = watch(page)

    def snap(name: str) -> None:
        _screenshot(page, f"{viewport}-{name}")

    # The event list, styled by our own stylesheet.
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Upcoming events")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(246, 247, 251)", "site.css did not load"
    expect(page.locator("li.event-card", has_text="Midnight Jazz Session")).to_contain_text("Sold out")
    expect(page.locator("li.event-card", has_text="Opera Gala")).to_contain_text("Only 3 left")
    snap("01-events")

    # The event page.
    page.get_by_role("link", name=event.name).click()
    expect(page).to_have_url(re.compile(r"/events/aurora-quartet/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(event.name)
    expect(page.locator(".ticket-type", has_text="Early bird")).to_contain_text("Sold out")
    standard_block = page.locator(f"#ticket-{standard.pk}")
    standard_block.get_by_label("Quantity").fill("2")
    snap("02-event")
    standard_block.get_by_role("button", name=re.compile("Add to basket")).click()

    # The basket, with a live countdown.
    # The form posts to "#ticket-<pk>" so that an error is scrolled into view; the redirect keeps it.
    expect(page).to_have_url(re.compile(r"/basket/(#ticket-\d+)?$"))
    expect(page.get_by_role("status")).to_contain_text("2 × Standard reserved for you.")
    expect(page.locator(".basket-total")).to_have_text("€70.00")
    expect(page.get_by_role("timer")).to_have_text(re.compile(r"^Your tickets are held for (09:5\d|10:00)$"))
    # A friend's voucher, applied in the basket: 10 % off both seats.
    page.get_by_label("Voucher code").fill("friends10")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("status")).to_contain_text("Voucher FRIENDS10 applied.")
    expect(page.locator(".basket-total")).to_have_text("€63.00")
    snap("03-basket")
    page.get_by_role("link", name="Check out").click()

    # Checkout: a declined payment first, then a good one.
    expect(page).to_have_url(re.compile(r"/checkout/$"))
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Email").fill(TEST_DECLINE_EMAIL)
    who = page.get_by_role("group", name="Who's coming?")
    who.get_by_label("Ticket 1 (Standard, Aurora Quartet: Late Beethoven): name").fill("Ada Lovelace")
    who.get_by_label("Ticket 2 (Standard, Aurora Quartet: Late Beethoven): name").fill("Charles Babbage")
    questions = page.get_by_role("region", name="About your tickets")
    first = questions.get_by_role("group", name="Ticket 1 (Standard, Aurora Quartet: Late Beethoven)")
    first.get_by_label("Seat cushion").select_option("Yes, a cushion")
    first.get_by_label("Dietary needs").fill("vegetarian")
    first.get_by_role("group", name="Programme booklet").get_by_label("Yes").check()
    second = questions.get_by_role("group", name="Ticket 2 (Standard, Aurora Quartet: Late Beethoven)")
    second.get_by_label("Seat cushion").select_option("No, thanks")
    second.get_by_role("group", name="Programme booklet").get_by_label("No").check()
    expect(page.get_by_label("Test payment (no money moves)")).to_be_checked()
    page.get_by_role("button", name="Pay and place order").click()
    expect(page.get_by_role("alert")).to_contain_text("Card declined (test provider).")
    snap("04-checkout-declined")
    assert not Order.objects.exists()
    expect(first.get_by_label("Dietary needs")).to_have_value("vegetarian")  # the answers stay after an error
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_role("button", name="Pay and place order").click()

    # The private order page.
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Thank you — your order AT-[0-9A-Z]{6} is confirmed$"))
    code = re.search(r"AT-[0-9A-Z]{6}", heading.inner_text()).group(0)
    tickets = page.locator(".ticket-stub")
    expect(tickets).to_have_count(2)
    expect(tickets.nth(1)).to_contain_text("For Charles Babbage")
    expect(tickets.nth(0)).to_contain_text("Dietary needs vegetarian")
    expect(tickets.nth(1)).to_contain_text("Seat cushion No, thanks")
    snap("05-confirmation")

    order = Order.objects.get()
    assert order.code == code
    assert page.url.endswith(f"/orders/{order.code}/{order.secret}/")
    assert order.total == Decimal("63.00")
    assert order.lines.get().voucher.code == "FRIENDS10"
    assert order.tickets.count() == 2
    for ticket in order.tickets.all():
        expect(tickets.filter(has_text=ticket.code)).to_have_count(1)
        # Each ticket shows its QR code as inline SVG, rendered at a scannable size.
        qr = tickets.filter(has_text=ticket.code).locator(".ticket-stub__qr svg")
        expect(qr).to_be_visible()
        expect(qr.locator("title")).to_have_text(f"QR code of ticket {ticket.code}")
        box = qr.bounding_box()
        assert box is not None
        assert min(box["width"], box["height"]) >= 120
    snap("05b-tickets-qr")

    # The tickets PDF: one page per ticket, each with its code.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"tickets-{order.code}.pdf"
    pdf = PdfReader(download.path())
    assert [ticket.code in p.extract_text() for ticket, p in zip(order.tickets.all(), pdf.pages, strict=True)] == [
        True,
        True,
    ]
    standard.refresh_from_db()
    assert standard.sold == 2
    assert not standard.holds.exists()

    # The basket is empty again.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Basket").click()
    expect(page.get_by_role("heading", name="Your basket is empty")).to_be_visible()
    assert problems == []
    context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_hold_countdown_runs_out_and_works_without_javascript(browser, live_server, shop, viewport):  # type: ignore[no-untyped-def]
    event, standard = shop
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_server.url}/events/{event.slug}/")
    page.locator(f"#ticket-{standard.pk}").get_by_role("button", name=re.compile("Add to basket")).click()
    expect(page.get_by_role("timer")).to_have_text(re.compile(r"^Your tickets are held for (09:5\d|10:00)$"))

    # Without JavaScript the server's sentence stays.
    expires_at = timezone.localtime(Hold.objects.get().expires_at)
    no_js = browser.new_context(
        viewport=VIEWPORTS[viewport], java_script_enabled=False, storage_state=context.storage_state()
    )
    static_page = no_js.new_page()
    static_page.goto(f"{live_server.url}/basket/")
    expect(static_page.get_by_role("timer")).to_have_text(f"Your tickets are held until {expires_at:%H:%M}.")
    no_js.close()

    # The countdown reaches zero and says what happens next.
    Hold.objects.update(expires_at=timezone.now() + timedelta(seconds=3))
    page.reload()
    timer = page.get_by_role("timer")
    expect(timer).to_have_text(re.compile(r"^Your tickets are held for 00:0[1-3]$"))
    expect(timer).to_have_text("Your hold has expired. We'll try to re-reserve your tickets at checkout.", timeout=8000)

    # After a reload the server marks the line too; checkout is still offered.
    page.reload()
    expect(page.locator("tbody tr.is-expired")).to_contain_text(
        "Reservation expired — we'll try to re-reserve at checkout"
    )
    expect(page.get_by_role("link", name="Check out")).to_be_visible()
    _screenshot(page, f"{viewport}-06-basket-expired")

    response = page.goto(f"{live_server.url}/events/no-such-event/")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    _screenshot(page, f"{viewport}-07-not-found")
    context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_buyer_who_cannot_come_cancels_a_ticket_from_the_order_page(browser, live_server, shop, viewport):  # type: ignore[no-untyped-def]
    """The event lets buyers cancel until two days before: one of two tickets, reviewed, then confirmed."""
    event, standard = shop
    type(event).objects.filter(pk=event.pk).update(buyer_cancellation_until=event.starts_at - timedelta(days=2))
    order = paid_order(standard, quantity=2)
    first, second = order.tickets.order_by("pk")
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    page.goto(f"{live_server.url}/orders/{order.code}/{order.secret}/")
    section = page.get_by_role("region", name="Can't make it?")
    expect(section).to_contain_text("You can cancel tickets until")
    section.get_by_label(re.compile(first.code)).check()
    _screenshot(page, f"{viewport}-13-order-cancel-choose")
    section.get_by_role("button", name="Review cancellation").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel 1 ticket?")
    expect(page.locator(".summary-total")).to_have_text("€35.00 will be refunded")
    _screenshot(page, f"{viewport}-14-order-cancel-review")
    page.get_by_role("button", name="Cancel 1 ticket").click()

    expect(page.get_by_role("status")).to_contain_text("1 ticket cancelled. €35.00 will be refunded")
    expect(page.locator(".ticket-stub--void")).to_have_count(1)
    expect(page.get_by_role("region", name="Can't make it?").get_by_role("checkbox")).to_have_count(1)
    _screenshot(page, f"{viewport}-15-order-cancelled-ticket")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.cancelled_at is not None, second.cancelled_at) == (True, None)
    assert problems == []
    context.close()


def test_seats_sold_while_the_shopper_looks_are_refused_next_to_the_ticket(browser, live_server, shop):  # type: ignore[no-untyped-def]
    event, standard = shop
    context = browser.new_context(viewport=VIEWPORTS["mobile"], locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_server.url}/events/{event.slug}/")
    block = page.locator(f"#ticket-{standard.pk}")
    block.get_by_label("Quantity").fill("3")
    type(standard).objects.filter(pk=standard.pk).update(sold=standard.capacity - 1)  # others bought them meanwhile

    block.get_by_role("button", name=re.compile("Add to basket")).click()

    expect(page).to_have_url(re.compile(rf"/events/{event.slug}/basket/#ticket-{standard.pk}$"))
    error = page.locator(f"#ticket-{standard.pk}").get_by_role("alert")
    expect(error).to_have_text("Only 1 more Standard ticket is available.")
    expect(error).to_be_in_viewport()
    expect(page.locator(f"#ticket-{standard.pk}").get_by_label("Quantity")).to_have_value("3")
    assert not Hold.objects.exists()
    _screenshot(page, "mobile-08-event-error")
    context.close()


def test_door_staff_scan_tickets_and_the_counter_follows_other_doors(browser, live_server, shop):  # type: ignore[no-untyped-def]
    """The check-in desk: sign in, pick the event, type codes like a USB scanner (code + Enter)."""
    from django.contrib.auth.models import Group

    from events.tests.factories import UserFactory
    from orders import checkout, services

    event, standard = shop
    now = timezone.now()
    token = services.basket_add(token=None, ticket_type_id=standard.pk, quantity=3, now=now).token
    order = checkout.order_place(
        token=token, name="Ada Lovelace", email="ada@example.com", payment_method="test", now=now
    ).order
    first, second, third = order.tickets.all()
    user = UserFactory(username="door-north")
    user.save()
    user.groups.add(Group.objects.get_or_create(name="door staff")[0])
    event.organizer.members.add(user)

    context = browser.new_context(viewport=VIEWPORTS["desktop"], locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(f"{live_server.url}/check-in/")
    page.get_by_label("Username").fill("door-north")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check-in")
    page.get_by_role("link", name=event.name).click()

    code_box = page.get_by_label("Ticket code")
    expect(code_box).to_be_focused()
    code_box.fill(first.code)
    code_box.press("Enter")
    result = page.get_by_role("status")
    expect(result).to_contain_text("Valid — admit")
    green = page.locator(".checkin-result").evaluate("el => getComputedStyle(el).backgroundColor")
    assert green == "rgb(18, 116, 58)"
    expect(page.locator("[data-checked-in]")).to_have_text("1")
    _screenshot(page, "desktop-08-check-in-valid")

    page.get_by_label("Ticket code").fill(first.code)
    page.get_by_label("Ticket code").press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Already checked in")
    expect(page.get_by_role("status")).to_contain_text("by door-north")
    _screenshot(page, "desktop-09-check-in-already")

    # Another door admits a ticket: this page's counter follows without a reload.
    services.ticket_check_in(secret=second.code, event_id=event.pk, user=user, now=timezone.now())
    expect(page.locator("[data-checked-in]")).to_have_text("2", timeout=12000)
    sold = sum(event.ticket_types.values_list("sold", flat=True))  # 3 just bought + 50 early birds
    assert page.locator("[data-sold]").inner_text() == str(sold) == "53"
    assert problems == []
    context.close()


# --- paying by card (Stripe, against localstripe) -------------------------------------------------------------

# localstripe's stripe.js offers only the Card Element (`elements().create("card")`, `createToken`,
# `confirmCardPayment`); its createPaymentMethod is empty and it has no Payment Element. This adapter, appended to the
# fake before the page sees it, gives it the Payment Element's surface by mapping each call onto the fake's own parts:
#   elements(options)          checks the options the page must pass (below: the order's amount in Stripe's integer
#                              units, the currency, manual capture, server-side confirmation, cards), records them on
#                              window.paymentElementOptions and throws otherwise, so a page that asks wrongly fails;
#   elements.create("payment") the fake's card element (any other type throws);
#   elements.submit()          resolves {} (the fake has no field validation to show);
#   createPaymentMethod({elements}), after submit()
#                              the fake's createToken on that card: localstripe lets a publishable key create only
#                              tokens, and takes a token's card wherever a PaymentMethod id goes;
#   handleNextAction({clientSecret})
#                              the fake's confirmCardPayment, with its 3-D Secure dialog.
# The fake's createToken and confirmCardPayment are hidden from the page, so it can pay only through these. The card
# inputs, the dialog and every API call stay localstripe's. Real stripe.js's own rendering of the Payment Element (its
# field layout, wallet buttons) is not exercised here.
PAYMENT_ELEMENT = """
(function (expected) {
  var make = Stripe;
  function check(options) {
    var wrong = Object.keys(expected).filter(function (name) {
      return JSON.stringify(options[name]) !== JSON.stringify(expected[name]);
    });
    if (wrong.length || !Number.isInteger(options.amount)) {
      throw new Error("stripe.elements() asked wrongly for the Payment Element (" + wrong.join(", ") + "): got " +
        JSON.stringify(options) + ", expected " + JSON.stringify(expected));
    }
  }
  Stripe = function (key) {
    var stripe = make(key);
    // The Card Element's calls are the adapter's alone: a page still using them fails.
    var cardElements = stripe.elements;
    var createToken = stripe.createToken;
    var confirmCardPayment = stripe.confirmCardPayment;
    delete stripe.createToken;
    delete stripe.confirmCardPayment;
    var group = null;
    var submitted = false;
    stripe.elements = function (options) {
      window.paymentElementOptions = options;
      check(options || {});
      var cards = cardElements();
      group = {
        create: function (type) {
          if (type !== "payment") {
            throw new Error("elements.create(" + JSON.stringify(type) + "): the page must create the Payment Element");
          }
          return cards.create("card");
        },
        submit: async function () {
          submitted = true;
          return {};
        },
        card: function () {
          return cards.getElement("card");
        },
      };
      return group;
    };
    stripe.createPaymentMethod = async function (data) {
      if (!data || data.elements !== group || !submitted) {
        throw new Error("createPaymentMethod({elements}) needs the Payment Element's elements after elements.submit()");
      }
      submitted = false;
      var result = await createToken(group.card());
      return result.error ? { error: result.error } : { paymentMethod: { id: result.token.card.id } };
    };
    stripe.handleNextAction = function (data) {
      if (!data || typeof data.clientSecret !== "string") { // pragma: allowlist secret
        throw new Error("handleNextAction({clientSecret}) needs the PaymentIntent's client secret");
      }
      return confirmCardPayment(data.clientSecret);
    };
    return stripe;
  };
})(%s);
"""


def _payment_element_options(total: Decimal, currency: str) -> dict[str, object]:
    """What the pay page must ask stripe.js for: the Payment Element for `total`, cards only, confirmed by the shop."""
    return {
        "mode": "payment",
        "amount": int(total * 100),
        "currency": currency.lower(),
        "captureMethod": "manual",
        "paymentMethodCreation": "manual",
        "paymentMethodTypes": ["card"],
    }


# How many seats each card test buys: the pay page's total, which the adapter expects to be asked for.
CARD_SEATS = 2


@pytest.fixture
def card_shop(shop, stripe_shop, settings, localstripe_base):  # type: ignore[no-untyped-def]
    """The catalog of `shop`, offering Stripe: the SDK and the pages' stripe.js pointed at localstripe."""
    settings.STRIPE_JS_URL = f"{localstripe_base}/js.stripe.com/v3/"
    return shop


def _card_page(browser, settings, viewport: str, *, total: Decimal):  # type: ignore[no-untyped-def]
    """A page whose stripe.js is localstripe's with the Payment Element adapter (PAYMENT_ELEMENT) expecting an order of
    `total`, and the problems it meets."""
    import requests

    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-GB")
    page = context.new_page()
    fake = requests.get(settings.STRIPE_JS_URL, timeout=5).text
    adapter = PAYMENT_ELEMENT % json.dumps(_payment_element_options(total, settings.CURRENCY))
    page.route(
        settings.STRIPE_JS_URL,
        lambda route: route.fulfill(body=fake + adapter, content_type="application/javascript"),
    )
    problems = watch(page)
    return context, page, problems


def _check_out_by_card(page, live_server, event, standard) -> None:  # type: ignore[no-untyped-def]
    """Buys CARD_SEATS Standard tickets, choosing Card: the order awaits payment on its pay page."""
    page.goto(f"{live_server.url}/events/{event.slug}/")
    block = page.locator(f"#ticket-{standard.pk}")
    block.get_by_label("Quantity").fill(str(CARD_SEATS))
    block.get_by_role("button", name=re.compile("Add to basket")).click()
    page.get_by_role("link", name="Check out").click()
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Card").check()
    page.get_by_role("button", name="Pay and place order").click()
    expect(page).to_have_url(re.compile(r"/orders/AT-[0-9A-Z]{6}/[\w-]+/pay/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Pay for your order")


def _pay_button(page, problems: list[str]):  # type: ignore[no-untyped-def]
    """The pay button, enabled once the Payment Element is mounted; if it never is, the page's errors say why (the
    adapter refusing what the page asked stripe.js for, say)."""
    pay = page.get_by_role("button", name="Pay €70.00")
    try:
        expect(pay).to_be_enabled()
    except AssertionError as disabled:
        raise AssertionError(f"The Payment Element was not mounted: {problems}") from disabled
    return pay


def _type_card(page, number: str) -> None:  # type: ignore[no-untyped-def]
    """Into localstripe's card element, standing in for the Payment Element: its own inputs, named by their
    placeholders."""
    for field, value in {
        "number": number,
        "exp_month": "12",
        "exp_year": "30",
        "cvc": "123",
        "postal_code": "10115",
    }.items():
        page.locator("[data-payment-element]").get_by_placeholder(field, exact=True).fill(value)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_shopper_pays_by_card_on_the_pay_page(browser, live_server, card_shop, settings, viewport):  # type: ignore[no-untyped-def]
    event, standard = card_shop
    context, page, problems = _card_page(browser, settings, viewport, total=CARD_SEATS * standard.price)
    _check_out_by_card(page, live_server, event, standard)

    order = Order.objects.get()
    assert order.status == "pending"
    # The order page says it awaits payment, and leads back here.
    page.get_by_role("link", name=f"Your order {order.code}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Your order {order.code} is awaiting payment")
    _screenshot(page, f"{viewport}-09-order-awaiting-payment")
    page.get_by_role("link", name="Pay now").click()
    expect(page.get_by_role("timer")).to_have_text(re.compile(r"^Your tickets are held for 1[45]:\d\d$"))
    expect(page.locator(".summary-total")).to_have_text("Total €70.00")
    pay = _pay_button(page, problems)
    # The page asked stripe.js for the Payment Element for this order's total, in cents (the adapter checked it too).
    asked = page.evaluate("window.paymentElementOptions")
    assert asked == _payment_element_options(order.total, order.currency)
    assert asked["amount"] == 7000
    _type_card(page, "4242424242424242")
    _screenshot(page, f"{viewport}-10-pay-page")
    pay.click()

    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(f"Thank you — your order {order.code} is confirmed")
    expect(page.locator(".ticket-stub")).to_have_count(2)
    assert page.url.endswith(f"/orders/{order.code}/{order.secret}/")
    order.refresh_from_db()
    assert (order.status, order.tickets.count()) == ("paid", 2)
    assert order.payments.get().status == "captured"
    assert problems == []
    context.close()


def test_a_declined_card_is_shown_above_the_card_and_the_order_waits(browser, live_server, card_shop, settings):  # type: ignore[no-untyped-def]
    event, standard = card_shop
    context, page, problems = _card_page(browser, settings, "desktop", total=CARD_SEATS * standard.price)
    _check_out_by_card(page, live_server, event, standard)
    order = Order.objects.get()

    pay = _pay_button(page, problems)
    _type_card(page, "4000000000000341")
    pay.click()

    error = page.get_by_role("alert")
    expect(error).to_have_text("Your card was declined. Your tickets stay reserved until the payment window closes.")
    expect(page.get_by_role("button", name="Pay €70.00")).to_be_enabled()  # for another card
    _screenshot(page, "desktop-11-pay-declined")
    assert Order.objects.get().status == "pending"
    assert set(problems) == {  # the refusal, and the browser's note of it: nothing else went wrong
        f"HTTP 402 {live_server.url}/orders/{order.code}/{order.secret}/pay/",
        "console error: Failed to load resource: the server responded with a status of 402 (Payment Required)",
    }
    context.close()


def test_a_card_that_needs_three_d_secure(browser, live_server, card_shop, settings):  # type: ignore[no-untyped-def]
    """The bank asks for 3-D Secure: its dialog (localstripe's), then the return URL settles, then the order page."""
    event, standard = card_shop
    context, page, problems = _card_page(browser, settings, "desktop", total=CARD_SEATS * standard.price)
    _check_out_by_card(page, live_server, event, standard)
    order = Order.objects.get()

    pay = _pay_button(page, problems)
    _type_card(page, "4000002500003155")
    pay.click()
    authenticate = page.get_by_role("button", name="Complete authentication")
    expect(authenticate).to_be_visible()
    _screenshot(page, "desktop-12-pay-3ds")
    authenticate.click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Thank you — your order {order.code} is confirmed")
    order.refresh_from_db()
    assert (order.status, order.payments.get().status) == ("paid", "captured")
    assert problems == []
    context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_shopper_with_a_voucher_sees_its_prices_unlocks_press_seats_and_pays_less(
    browser, live_server, shop, viewport
):  # type: ignore[no-untyped-def]
    event, standard = shop
    press = TicketTypeFactory(event=event, name="Press", price=Decimal("35.00"), requires_voucher=True, position=3)
    VoucherFactory(code="AURORA20", value=Decimal("20"), max_redemptions=10).ticket_types.add(standard, press)
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    page.goto(f"{live_server.url}/events/{event.slug}/")
    expect(page.locator(".ticket-type", has_text="Press")).to_have_count(0)
    page.get_by_label("Voucher code").fill("nope")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("alert")).to_have_text("This voucher code is not valid.")
    page.get_by_label("Voucher code").fill("aurora20")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("status")).to_contain_text("Voucher AURORA20 applied: 20 % off.")
    standard_block = page.locator(f"#ticket-{standard.pk}")
    expect(standard_block.locator(".ticket-type__price")).to_contain_text("€28.00")
    expect(page.locator(f"#ticket-{press.pk}")).to_contain_text("Press")
    _screenshot(page, f"{viewport}-10-event-with-voucher")
    standard_block.get_by_label("Quantity").fill("2")
    standard_block.get_by_role("button", name=re.compile("Add to basket")).click()

    expect(page).to_have_url(re.compile(r"/basket/(#ticket-\d+)?$"))
    expect(page.locator(".basket-total")).to_have_text("€56.00")
    expect(page.locator(".basket-table")).to_contain_text("with AURORA20")
    _screenshot(page, f"{viewport}-11-basket-with-voucher")
    page.get_by_role("link", name="Check out").click()
    page.get_by_label("Full name").fill("Grace Hopper")
    page.get_by_label("Email").fill("grace@example.com")
    expect(page.locator(".checkout__summary")).to_contain_text("Voucher AURORA20: €28.00 instead of €35.00 each")
    page.get_by_role("button", name="Pay and place order").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"is confirmed$"))
    order = Order.objects.get()
    assert order.total == Decimal("56.00")
    assert order.lines.get().voucher.code == "AURORA20"
    assert problems == []
    context.close()


def test_an_organizer_adds_questions_in_the_admin_on_a_laptop_screen(browser, live_server, shop):  # type: ignore[no-untyped-def]
    """The event page of the admin, at 1366×768: the questions table fits the screen beside its ticket types, and a
    question added there is asked at checkout."""
    from events.models import Question
    from events.tests.factories import UserFactory

    event, standard = shop
    UserFactory(username="organizer", is_staff=True, is_superuser=True).save()
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/events/event/{event.pk}/change/")
    page.get_by_label("Username").fill("organizer")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()

    inline = page.locator("#questions-group")
    inline.get_by_role("button", name="Add another Question").click()
    row = inline.locator("tr.form-row").first
    row.locator("input[name$='-text']").fill("Seat cushion")
    row.locator("select[name$='-kind']").select_option("choice")
    row.locator("input[name$='-required']").check()
    row.locator("textarea[name$='-options']").fill("Yes, a cushion\nNo, thanks")
    row.get_by_label("Standard").check()
    box = inline.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 1366, "the questions table runs off a laptop screen"
    types = page.locator("#ticket_types-group").bounding_box()
    assert types is not None
    assert types["x"] + types["width"] <= 1366, "the ticket types run off a laptop screen"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    page.locator("#ticket_types-group").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "laptop-15-admin-ticket-types.png"))
    inline.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "laptop-16-admin-questions.png"))
    page.get_by_role("button", name="Save and continue editing").click()

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    question = Question.objects.get()
    assert (question.text, question.option_list, question.ticket_type_ids) == (
        "Seat cushion",
        ["Yes, a cushion", "No, thanks"],
        [standard.pk],
    )
    assert type(event).objects.get(pk=event.pk).has_questions
    page.locator("#questions-group").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "laptop-17-admin-questions-saved.png"))
    context.close()
