"""Shopper pages checked by axe-core in Debian's Chromium: every page state in PAGES, at 1280 and 375 px wide, in every
configured language. No violation of any impact is allowed; `pytest -rP` prints each page's counts, by impact.

axe-core is pinned in scripts/a11y (npm ci --prefix scripts/a11y); without it this module skips, except under CI
(CI=true), where it fails. What axe cannot judge (the keyboard, what a screen reader hears) has tests of its own below.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import global_settings, settings
from django.template.loader import render_to_string
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone, translation

from aegistickets.errors import InternalServerError, LoginLockedOutError, RateLimitedError
from events.services import event_update
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory, VoucherFactory
from orders import checkout, services
from orders import waiting_list as wl
from orders.models import Hold, Order
from orders.tests import test_browser
from orders.tests.test_admin import place_order
from orders.tests.test_browser import QUESTIONS
from orders.tests.test_waiting_list import free_a_seat, in_line, join

AXE = Path(__file__).resolve().parents[2] / "scripts" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"1280": {"width": 1280, "height": 900}, "375": {"width": 375, "height": 812}}
# Content that is not the shop's own markup: the payment provider's card fields (Stripe renders them in its own
# frame, with its own accessibility; the test stand-in localstripe renders bare inputs).
EXCLUDE = ["[data-payment-element]"]
IMPACTS = ("critical", "serious", "moderate", "minor")

# The browser and the small catalog of the shopper's browser test.
browser = test_browser.browser
shop = test_browser.shop

pytestmark = test_browser.pytestmark
expect = test_browser.expect


def languages() -> list[str]:
    """The shop's languages: settings.LANGUAGES when the project sets it, else its one LANGUAGE_CODE (Django's own
    default list names every language Django knows, not the ones this shop speaks)."""
    if settings.LANGUAGES is global_settings.LANGUAGES:
        return [settings.LANGUAGE_CODE]
    return [code for code, _name in settings.LANGUAGES]


@pytest.fixture(scope="session")
def axe_source() -> str:
    if AXE.exists():
        return AXE.read_text(encoding="utf-8")
    message = f"axe-core is not installed at {AXE}: run `npm ci --prefix scripts/a11y`"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


# --- the page states -------------------------------------------------------------------------------------------


@dataclass
class Visit:
    """One browser page in one shop: helpers that bring the page to a state, the way a shopper would. They find
    fields and buttons by name or class, not by their text, so that they work in every language."""

    page: Any
    base: str
    event: Any
    standard: Any
    request: pytest.FixtureRequest

    def goto(self, path: str, status: int = 200) -> None:
        response = self.page.goto(self.base + path)
        assert response.status == status, f"{path}: HTTP {response.status}"

    def add(self, quantity: int = 2, ticket_type: Any = None) -> None:
        ticket_type = ticket_type or self.standard
        self.goto(f"/events/{ticket_type.event.slug}/")
        block = self.page.locator(f"#ticket-{ticket_type.pk}")
        block.locator("input[name=quantity]").fill(str(quantity))
        block.locator("button[type=submit]").click()
        expect(self.page).to_have_url(re.compile(r"/basket/"))

    def checkout(self, *, name: str = "", email: str = "", browser_checks: bool = True) -> None:
        self.goto("/checkout/")
        if not browser_checks:  # so that the server's messages show
            self.page.locator("form.checkout__form").evaluate("form => form.noValidate = true")
        if name or email:
            self.page.locator("input[name=name]").fill(name)
            self.page.locator("input[name=email]").fill(email)
            self.page.locator("form.checkout__form button[type=submit]").click()

    def with_questions(self) -> None:
        type(self.event).objects.filter(pk=self.event.pk).update(attendee_data="name")
        event_update(event_id=self.event.pk, data={"questions": QUESTIONS})

    def paid(self, quantity: int = 2) -> Order:
        return place_order((self.standard, quantity))

    def pending(self) -> Order:
        self.request.getfixturevalue("stripe_shop")
        settings.STRIPE_JS_URL = f"{self.request.getfixturevalue('localstripe_base')}/js.stripe.com/v3/"
        now = timezone.now()
        token = services.basket_add(token=None, ticket_type_id=self.standard.pk, quantity=2, now=now).token
        return checkout.order_place(
            token=token, name="Ada", email="ada@example.com", payment_method="stripe", now=now
        ).order

    def order_page(self, order: Order, suffix: str = "") -> None:
        self.goto(f"/orders/{order.code}/{order.secret}/{suffix}")

    def sold_out(self) -> Any:
        """A ticket type of two seats, both sold (two orders), on an event with the waiting list on."""
        event = EventFactory(name="Midnight Jazz Session", slug="midnight-jazz", venue="A-Trane", city="Berlin")
        ticket_type = TicketTypeFactory(event=event, name="Standing", capacity=2, max_per_order=4)
        ticket_type.orders = [place_order((ticket_type, 1), email=f"buyer{i}@example.com") for i in range(2)]
        return ticket_type

    def waiting_entry(self, state: str) -> None:
        ticket_type = self.sold_out()
        entry = (
            join(ticket_type, "ada@example.com") if state == "unconfirmed" else in_line(ticket_type, "ada@example.com")
        )
        if state == "offered":
            free_a_seat(ticket_type)
        if state == "left":
            wl.waiting_list_leave(token=entry.token, now=timezone.now())
        self.goto(f"/waiting-list/{entry.token}/")

    def served(self, path: str, html: str, status: int) -> None:
        """A page the live server cannot be made to answer on demand (a server error, an overload, a lockout): its
        real template, rendered here, served at a shop URL so its stylesheet loads as it would."""
        self.page.route(
            self.base + path, lambda route: route.fulfill(status=status, body=html, content_type="text/html")
        )
        self.goto(path, status)

    def check_in_user(self) -> Any:
        from django.contrib.auth.models import Group

        user = UserFactory(username="door-north")
        user.save()
        user.groups.add(Group.objects.get_or_create(name="door staff")[0])
        self.event.organizer.members.add(user)
        return user

    def sign_in(self, password: str = "correct-horse-battery") -> None:  # noqa: S107 - the test users' password  # pragma: allowlist secret
        self.goto("/check-in/login/")
        self.page.locator("input[name=username]").fill("door-north")
        self.page.locator("input[name=password]").fill(password)
        self.page.locator("form.checkin-form button[type=submit]").click()


def _expired_basket(v: Visit) -> None:
    v.add()
    Hold.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    v.goto("/basket/")


def _voucher_refused_in_basket(v: Visit) -> None:
    v.add()
    v.page.locator("#voucher-code").fill("NOPE")
    v.page.locator("form.voucher-form button[type=submit]").click()
    expect(v.page.get_by_role("alert")).to_be_visible()


def _quantity_refused(v: Visit) -> None:
    v.goto(f"/events/{v.event.slug}/")
    block = v.page.locator(f"#ticket-{v.standard.pk}")
    block.locator("input[name=quantity]").fill("3")
    type(v.standard).objects.filter(pk=v.standard.pk).update(sold=v.standard.capacity - 1)
    block.locator("button[type=submit]").click()
    expect(block.get_by_role("alert")).to_be_visible()


def _checkout_errors(v: Visit) -> None:
    v.add()
    v.checkout(name=" ", email="not an address", browser_checks=False)
    expect(v.page.get_by_role("alert")).to_be_visible()


def _checkout_questions(v: Visit, *, submit: bool = False) -> None:
    v.with_questions()
    v.add()
    v.checkout(name="Ada Lovelace", email="ada@example.com") if submit else v.goto("/checkout/")


def _cancellable(v: Visit) -> Order:
    type(v.event).objects.filter(pk=v.event.pk).update(buyer_cancellation_until=v.event.starts_at - timedelta(days=2))
    return v.paid()


def _cancel_review(v: Visit, *, choose: bool = True) -> None:
    order = _cancellable(v)
    v.order_page(order)
    section = v.page.locator("section.order-cancel")
    if choose:
        section.get_by_role("checkbox").first.check()
    section.locator("button[type=submit]").click()


def _cancelled(v: Visit) -> None:
    order = v.paid()
    services.order_cancel(order_id=order.pk, now=timezone.now())
    v.order_page(order)


def _refunded(v: Visit) -> None:
    order = v.paid()
    services.refund_part(order_id=order.pk, amount=order.total, note="", now=timezone.now())
    v.order_page(order)


def _waiting_list_join(v: Visit, email: str) -> None:
    ticket_type = v.sold_out()
    v.goto(f"/events/{ticket_type.event.slug}/")
    form = v.page.locator("form.waiting-list-form")
    form.locator("input[name=email]").fill(email)
    form.evaluate("form => form.noValidate = true")  # so that the server's refusal shows
    form.locator("button[type=submit]").click()


def _offer_ended(v: Visit) -> None:
    ticket_type = v.sold_out()
    entry = in_line(ticket_type, "ada@example.com")
    wl.waiting_list_leave(token=entry.token, now=timezone.now())
    v.goto(f"/waiting-list/{entry.token}/offer/", status=409)


def _pay_closed(v: Visit) -> None:
    order = v.pending()
    Order.objects.filter(pk=order.pk).update(status=Order.Status.EXPIRED)
    v.order_page(order, "pay/")


def _names_open(v: Visit) -> Order:
    """A paid order whose event asks for names and still lets its buyers change them."""
    order = v.paid()
    type(v.event).objects.filter(pk=v.event.pk).update(
        attendee_data="name", attendee_changes_until=v.event.starts_at - timedelta(days=1)
    )
    v.order_page(order)
    return order


def _names_refused(v: Visit) -> None:
    _names_open(v)
    form = v.page.locator("form[action$='/names/']")
    form.locator("input[type=text]").first.fill(" ")
    form.locator("button[type=submit]").click()
    expect(v.page.locator("[aria-invalid=true]").first).to_be_visible()


def _resend_refused(v: Visit) -> None:
    """A tab left open on a paid order that was cancelled since: its resend button is refused."""
    order = v.paid()
    v.order_page(order)
    services.order_cancel(order_id=order.pk, now=timezone.now())
    v.page.locator("form[action$='/confirmation/'] button[type=submit]").click()
    expect(v.page.get_by_role("alert")).to_be_visible()


def _find_orders(v: Visit, email: str) -> None:
    v.goto("/orders/find/")
    form = v.page.locator("form[action='/orders/find/']")
    form.locator("input[name=email]").fill(email)
    form.locator("button[type=submit]").click()


def _find_limited(v: Visit) -> None:
    html = render_to_string("orders/self_service_limited.html", {"retry_after": 3600}, request=None)
    v.served("/orders/find/", html, 429)


def _locked_out(v: Visit) -> None:
    error = LoginLockedOutError("Too many failed login attempts. Try again in 15 minutes.")
    v.served("/check-in/login/", render_to_string("login_locked_out.html", {"error": error}), 429)


def _check_in_desk(v: Visit) -> None:
    v.check_in_user()
    v.sign_in()
    v.page.get_by_role("link", name=v.event.name).click()
    expect(v.page.locator("form.checkin-form")).to_be_visible()


@dataclass(frozen=True)
class State:
    name: str
    route: str  # the URL name the state is reached through ("" for error pages, which have none)
    visit: Callable[[Visit], None]


# One line per page state. A new shopper URL must appear here (test_every_shopper_url_is_covered checks it).
PAGES = [
    State("event list", "events:list", lambda v: v.goto("/")),
    State("event list, search without results", "events:list", lambda v: v.goto("/?q=zzzz")),
    State("event detail, on sale", "events:detail", lambda v: v.goto(f"/events/{v.event.slug}/")),
    State(
        "event detail, sold out + waiting list",
        "events:detail",
        lambda v: v.goto(f"/events/{v.sold_out().event.slug}/"),
    ),
    State(
        "event detail, voucher applied",
        "events:detail",
        lambda v: (
            VoucherFactory(code="FRIENDS10", value=Decimal("10"), organizer=v.event.organizer),
            v.goto(f"/events/{v.event.slug}/?voucher=friends10"),
        ),
    ),
    State("event detail, voucher refused", "events:detail", lambda v: v.goto(f"/events/{v.event.slug}/?voucher=nope")),
    State("event detail, quantity refused", "orders:basket-add", _quantity_refused),
    State("basket, empty", "orders:basket", lambda v: v.goto("/basket/")),
    State("basket, with items", "orders:basket", lambda v: v.add()),
    State("basket, voucher refused", "orders:basket-voucher", _voucher_refused_in_basket),
    State("basket, hold expired", "orders:basket", _expired_basket),
    State(
        "basket, item removed",
        "orders:basket-remove",
        lambda v: (v.add(), v.page.locator("form[action*='/remove/'] button").click()),
    ),
    State("checkout, empty form", "orders:checkout", lambda v: (v.add(), v.checkout())),
    State("checkout, validation errors", "orders:checkout", _checkout_errors),
    State("checkout, questions and attendees", "orders:checkout", _checkout_questions),
    State("checkout, questions unanswered", "orders:checkout", lambda v: _checkout_questions(v, submit=True)),
    State(
        "checkout, payment declined",
        "orders:checkout",
        lambda v: (v.add(), v.checkout(name="Ada", email="decline@example.com")),
    ),
    State("pay page, pending", "orders:pay", lambda v: v.order_page(v.pending(), "pay/")),
    State("pay page, window closed", "orders:pay", _pay_closed),
    State("order, paid", "orders:detail", lambda v: v.order_page(v.paid())),
    State("order, paid, cancellable", "orders:detail", lambda v: v.order_page(_cancellable(v))),
    State("order, pending", "orders:detail", lambda v: v.order_page(v.pending())),
    State("order, cancelled", "orders:detail", _cancelled),
    State("order, refunded", "orders:detail", _refunded),
    State("cancel tickets, review", "orders:cancel-tickets", _cancel_review),
    State("cancel tickets, none chosen", "orders:cancel-tickets", lambda v: _cancel_review(v, choose=False)),
    State("waiting list, joined", "orders:waiting-list-join", lambda v: _waiting_list_join(v, "ada@example.com")),
    State("waiting list, join refused", "orders:waiting-list-join", lambda v: _waiting_list_join(v, "not an address")),
    State("waiting list entry, unconfirmed", "orders:waiting-list-entry", lambda v: v.waiting_entry("unconfirmed")),
    State("waiting list entry, waiting", "orders:waiting-list-entry", lambda v: v.waiting_entry("waiting")),
    State("waiting list entry, offered", "orders:waiting-list-entry", lambda v: v.waiting_entry("offered")),
    State("waiting list entry, left", "orders:waiting-list-leave", lambda v: v.waiting_entry("left")),
    State("waiting list offer, ended", "orders:waiting-list-offer", _offer_ended),
    State("find my orders", "orders:find", lambda v: v.goto("/orders/find/")),
    State("find my orders, address refused", "orders:find", lambda v: _find_orders(v, "not an address")),
    State("find my orders, sent", "orders:find-sent", lambda v: _find_orders(v, "ada@example.com")),
    State("find my orders, limited", "", _find_limited),
    State("order, paid, names can change", "orders:detail", _names_open),
    State("order, names refused", "orders:attendee-names", _names_refused),
    State("order, confirmation unavailable", "orders:resend-confirmation", _resend_refused),
    State("404", "", lambda v: v.goto("/events/no-such-event/", status=404)),
    State(
        "429",
        "",
        lambda v: v.served(
            "/checkout/", render_to_string("429.html", {"error": RateLimitedError(), "retry_after": 30}), 429
        ),
    ),
    State(
        "500", "", lambda v: v.served("/checkout/", render_to_string("500.html", {"error": InternalServerError()}), 500)
    ),
    State("503", "", lambda v: v.served("/checkout/", render_to_string("503.html"), 503)),
    State("check-in login", "orders:check-in-login", lambda v: v.goto("/check-in/login/")),
    State("check-in login, refused", "orders:check-in-login", lambda v: (v.check_in_user(), v.sign_in("wrong"))),
    State("check-in login, locked out", "orders:check-in-login", _locked_out),
    State("check-in desk", "orders:check-in", _check_in_desk),
]

# Shopper URLs that never answer with a page of their own.
NOT_PAGES = {
    "orders:tickets-pdf": "a PDF download",
    "events:calendar": "an iCalendar download",
    "orders:pay-return": "redirects to the order or pay page",
    "orders:check-in-count": "JSON for the check-in desk's counter",
    "orders:payment-webhook": "the payment provider's webhook (JSON)",
    "set_language": "the language switcher's POST, which redirects back to the page it is on (on every page state)",
}
SKIPPED_PREFIXES = ("api/", "admin/", "media/", "metrics", "healthz", "readyz")


def _url_names(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _url_names(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern):
            yield route, f"{namespace}{pattern.name}"


def test_every_shopper_url_is_covered_by_a_page_state() -> None:
    shopper = {
        name for route, name in _url_names(get_resolver().url_patterns) if not route.startswith(SKIPPED_PREFIXES)
    }
    covered = {state.route for state in PAGES} | set(NOT_PAGES)
    assert shopper - covered == set(), "add these shopper URLs to PAGES (or NOT_PAGES, saying why)"
    assert covered - shopper - {""} == set(), "PAGES names URLs that no longer exist"
    assert len({state.name for state in PAGES}) == len(PAGES)


# --- axe --------------------------------------------------------------------------------------------------------

RESULTS: dict[tuple[str, str, str], Counter[str]] = {}


def _axe(page: Any, source: str) -> dict[str, Any]:
    # Evaluated over the DevTools protocol rather than as a <script> tag, which the pages' CSP would block.
    page.evaluate(f"(() => {{ {source}\n}})(); window.axe !== undefined")
    return page.evaluate(
        """async (exclude) => await axe.run({include: [document], exclude: exclude.map((s) => [s])},
               {resultTypes: ['violations', 'incomplete'], rules: {'target-size': {enabled: true}}})""",
        EXCLUDE,
    )


# axe leaves some text "incomplete": on a gradient it cannot pick one background colour; under a transparent overlay
# (a card's whole-card link) it cannot tell what is behind. This measures such text against the first background
# found going up its ancestors: every colour stop of a gradient (the worst stop is the contrast it has somewhere), or a
# plain colour.
BACKGROUND_CONTRAST = """(selector) => {
  const luminance = (rgb) => rgb.map((v) => v / 255)
    .map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const colours = (text) => [...text.matchAll(/rgba?\\(([^)]+)\\)/g)]
    .map((m) => m[1].split(/[ ,/]+/).map(Number)).filter((c) => c.length < 4 || c[3] > 0).map((c) => c.slice(0, 3));
  const element = document.querySelector(selector);
  let stops = [];
  for (let behind = element; behind && !stops.length; behind = behind.parentElement) {
    const style = getComputedStyle(behind);
    const gradient = style.backgroundImage.includes("gradient");
    stops = colours(gradient ? style.backgroundImage : style.backgroundColor);
  }
  if (!stops.length) stops = [[255, 255, 255]];
  const style = getComputedStyle(element);
  const size = parseFloat(style.fontSize);
  const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
  const text = luminance(colours(style.color)[0]);
  const worst = Math.min(...stops.map((stop) => ratio(text, luminance(stop))));
  return {worst: Math.round(worst * 100) / 100, needed: large ? 3 : 4.5, stops: stops.length};
}"""


def _review_contrast(page: Any, incomplete: list[dict[str, Any]]) -> list[str]:
    """The contrast axe left undecided, decided: one line per element, "too low" when it fails."""
    lines = []
    for item in incomplete:
        for node in item["nodes"] if item["id"] == "color-contrast" else []:
            selector = node["target"][0]
            measured = page.evaluate(BACKGROUND_CONTRAST, selector)
            against = "its background" if measured["stops"] == 1 else "the worst stop of its gradient"
            verdict = "ok" if measured["worst"] >= measured["needed"] else "too low"
            lines.append(f"{selector}: {measured['worst']}:1 against {against}, {verdict}")
    return lines


def _describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  [{v['impact']}] {v['id']}: {v['help']} — "
        + "; ".join(
            " ".join(node["target"]) if isinstance(node["target"][0], str) else str(node["target"])
            for node in v["nodes"][:4]
        )
        for v in violations
    )


@pytest.fixture(scope="module")
def pages_table() -> Iterator[None]:
    """After the module's last test (shown with -rP): the counts of every page state, as a table for the docs."""
    yield
    if RESULTS:
        print("\npage state | width | lang | " + " | ".join(IMPACTS) + " | needs review")
        for (name, width, lang), counts in sorted(RESULTS.items()):
            print(
                f"{name} | {width} | {lang} | " + " | ".join(str(counts[i]) for i in IMPACTS) + f" | {counts['review']}"
            )


@pytest.mark.parametrize("lang", languages())
@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("state", PAGES, ids=[state.name for state in PAGES])
def test_page_state_has_no_axe_violations(
    browser, live_server, shop, axe_source, request, state, width, lang, pages_table
):  # type: ignore[no-untyped-def]
    event, standard = shop
    context = browser.new_context(viewport=WIDTHS[width], locale=lang, extra_http_headers={"Accept-Language": lang})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # In the visitor's language: the pages a state renders here itself (429, 500, 503) as the server would for them.
    with translation.override(lang):
        state.visit(Visit(page=page, base=live_server.url, event=event, standard=standard, request=request))
    page.wait_for_load_state("load")

    assert page.evaluate("document.documentElement.lang").split("-")[0] == lang.split("-")[0]
    fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    results = _axe(page, axe_source)
    reviewed = _review_contrast(page, results["incomplete"])
    context.close()
    violations = results["violations"]
    counts = Counter(v["impact"] for v in violations)
    counts["review"] = len(results["incomplete"])
    RESULTS[(state.name, width, lang)] = counts
    print(f"{state.name} @ {width}px [{lang}]: {dict(counts)}")
    for item in results["incomplete"]:
        for node in item["nodes"]:
            print(f"  needs review: {item['id']} {node['target']}: {node['any'][0]['message'] if node['any'] else ''}")
    print("\n".join(f"  reviewed: {line}" for line in reviewed))
    assert fits, "the page scrolls sideways"
    assert all(" too low" not in line for line in reviewed), reviewed
    assert violations == [], "axe violations:\n" + _describe(violations)
    assert errors == []


def test_axe_finds_what_it_should_on_a_spoiled_page(browser, live_server, shop, axe_source):  # type: ignore[no-untyped-def]
    """The control: the same run on the event list with its search field's label and the page's language removed."""
    context = browser.new_context(viewport=WIDTHS["375"], locale="en-GB")
    page = context.new_page()
    page.goto(live_server.url + "/")
    page.evaluate("() => { document.querySelector('label[for=id_q]').remove(); document.documentElement.lang = ''; }")
    found = {violation["id"] for violation in _axe(page, axe_source)["violations"]}
    context.close()
    assert {"label", "html-has-lang"} <= found


# --- the keyboard ------------------------------------------------------------------------------------------------


def _focus_is_visible(page: Any) -> bool:
    """The focused element draws a focus ring: an outline or a box shadow."""
    return page.evaluate(
        """() => { const s = getComputedStyle(document.activeElement);
                   return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none'; }"""
    )


def _tab_to(page: Any, selector: str, *, backwards: bool = False, limit: int = 60) -> None:
    """Presses Tab (or Shift+Tab) until `selector` has the focus, checking each stop shows where the focus is."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        where = page.evaluate("() => document.activeElement.outerHTML.slice(0, 120)")
        assert _focus_is_visible(page), f"no visible focus on {where}"
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{'Shift+' if backwards else ''}Tab never reached {selector}")


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_purchase_by_keyboard_alone(browser, live_server, shop, width):  # type: ignore[no-untyped-def]
    """From the event page to the confirmation with Tab, Shift+Tab, Enter and Space (and typing): no mouse."""
    event, standard = shop
    context = browser.new_context(viewport=WIDTHS[width], locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_server.url}/events/{event.slug}/")

    _tab_to(page, "a.skip-link")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    _tab_to(page, f"#ticket-{standard.pk} input[name=quantity]")
    page.keyboard.type("2")  # Tab selected the field's "1"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your basket")
    expect(page.locator(".basket-total")).to_have_text("€70.00")

    _tab_to(page, "a[href='/checkout/']:not(.site-nav a)")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout")
    _tab_to(page, "input[name=name]")
    page.keyboard.type("Ada Lovelace")
    _tab_to(page, "input[name=email]")
    page.keyboard.type("ada@example.com")
    _tab_to(page, "input[name=name]", backwards=True)  # back up to check the name: it kept its value
    expect(page.locator("input[name=name]")).to_have_value("Ada Lovelace")
    _tab_to(page, "input[name=payment_method]:checked")
    _tab_to(page, "form.checkout__form button[type=submit]")
    page.keyboard.press("Space")

    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"^Thank you — your order AT-\w{6} is confirmed$")
    )
    assert Order.objects.get().tickets.count() == 2
    context.close()


# --- what screen readers hear ----------------------------------------------------------------------------------


def test_the_hold_countdown_speaks_at_each_minute_and_at_expiry_not_every_second(browser, live_server, shop):  # type: ignore[no-untyped-def]
    event, standard = shop
    context = browser.new_context(viewport=WIDTHS["1280"], locale="en-GB")
    page = context.new_page()
    Visit(page=page, base=live_server.url, event=event, standard=standard, request=None).add()  # type: ignore[arg-type]
    timer = page.get_by_role("timer")
    assert timer.get_attribute("aria-live") in (None, "off")  # a timer is not read out as it ticks
    live = page.locator("[data-hold-announcer]")
    assert live.get_attribute("aria-live") == "polite"

    Hold.objects.update(expires_at=timezone.now() + timedelta(seconds=62))
    page.reload()
    expect(timer).to_have_text(re.compile(r"^Your tickets are held for 01:0[0-2]$"))
    assert live.inner_text() == ""  # the page's own sentence says how long is left; nothing more on arrival
    page.evaluate(
        """() => { const live = document.querySelector('[data-hold-announcer]');
                   window.announcements = [];
                   new MutationObserver(() => window.announcements.push(live.textContent))
                     .observe(live, {childList: true, characterData: true, subtree: true}); }"""
    )
    expect(live).to_have_text("One minute left to complete your order.", timeout=6000)
    page.wait_for_timeout(2500)  # the timer ticks on; the live region stays quiet
    assert page.evaluate("window.announcements") == ["One minute left to complete your order."]
    expect(timer).to_have_text(re.compile(r"^Your tickets are held for 00:5\d$"))

    Hold.objects.update(expires_at=timezone.now() + timedelta(seconds=2))
    page.reload()
    expect(live).to_have_text("Your hold has expired. We'll try to re-reserve your tickets at checkout.", timeout=6000)
    context.close()


def test_checkout_errors_are_summarized_and_tied_to_their_fields(browser, live_server, shop):  # type: ignore[no-untyped-def]
    event, standard = shop
    context = browser.new_context(viewport=WIDTHS["375"], locale="en-GB")
    page = context.new_page()
    visit = Visit(page=page, base=live_server.url, event=event, standard=standard, request=None)  # type: ignore[arg-type]
    visit.add()
    visit.checkout(name="Ada", email="not an address", browser_checks=False)

    summary = page.get_by_role("alert")  # the only alert: the fields' own messages do not interrupt again
    expect(summary).to_contain_text("We couldn't place your order")
    link = summary.get_by_role("link", name=re.compile(r"^Email: "))
    email = page.get_by_label("Email")
    assert link.get_attribute("href") == "#" + email.get_attribute("id")
    expect(email).to_have_attribute("aria-invalid", "true")
    message = page.locator("#" + email.get_attribute("aria-describedby"))
    expect(message).to_have_text("Enter a valid email address.")
    expect(page.get_by_label("Full name")).not_to_have_attribute("aria-invalid", "true")
    test_browser._screenshot(page, "mobile-a11y-checkout-error-summary")
    link.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#" + email.get_attribute("id")
    context.close()


def test_a_refused_voucher_in_the_basket_is_an_alert_tied_to_its_field(browser, live_server, shop):  # type: ignore[no-untyped-def]
    event, standard = shop
    context = browser.new_context(viewport=WIDTHS["1280"], locale="en-GB")
    page = context.new_page()
    _voucher_refused_in_basket(Visit(page=page, base=live_server.url, event=event, standard=standard, request=None))  # type: ignore[arg-type]

    field = page.get_by_label("Voucher code")
    expect(field).to_have_attribute("aria-invalid", "true")
    message = page.locator("#" + field.get_attribute("aria-describedby"))
    expect(message).to_have_attribute("role", "alert")
    expect(message).to_have_text("This voucher code is not valid.")
    expect(message.get_by_role("link")).to_have_attribute("href", "#voucher-code")
    test_browser._screenshot(page, "desktop-a11y-basket-voucher-refused")
    context.close()


# A stand-in for stripe.js with only what payment.js calls: the page's own messages are under test, not Stripe's.
FAKE_STRIPE = """window.Stripe = function () { return {
  elements: function () { return { create: function () { return { mount: function () {} }; },
                                   submit: async function () { return {}; } }; },
  createPaymentMethod: async function () { return { paymentMethod: { id: "pm_card_visa" } }; } }; };"""


def test_the_pay_page_says_what_the_payment_is_doing_in_a_live_region(browser, live_server, shop, request):  # type: ignore[no-untyped-def]
    event, standard = shop
    context = browser.new_context(viewport=WIDTHS["1280"], locale="en-GB")
    page = context.new_page()
    visit = Visit(page=page, base=live_server.url, event=event, standard=standard, request=request)
    order = visit.pending()
    page.route(settings.STRIPE_JS_URL, lambda route: route.fulfill(body=FAKE_STRIPE, content_type="text/javascript"))
    posted: list[Any] = []
    pay_url = f"{live_server.url}/orders/{order.code}/{order.secret}/pay/"
    page.route(pay_url, lambda route: posted.append(route) if route.request.method == "POST" else route.continue_())
    visit.order_page(order, "pay/")

    status = page.locator("[data-payment-status]")
    assert status.get_attribute("aria-live") == "polite"
    expect(status).to_have_text("")
    page.get_by_role("button", name="Pay €70.00").click()
    expect(status).to_have_text("Processing your payment…")
    assert len(posted) == 1
    posted[0].fulfill(status=402, json={"detail": "Your card was declined."}, content_type="application/problem+json")
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    expect(status).to_have_text("")
    context.close()
