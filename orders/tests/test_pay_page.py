"""Paying a pending order on its pay page, through the pages as a browser would and against localstripe: the card's
payment method posted to the page's URL and confirmed by the shop, 3-D Secure and the return URL, a declined card, an
order past its payment window, CSRF, and the pay page's Content-Security-Policy."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from aegistickets.tests.test_security_headers import assert_page_obeys_its_policy, directives
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import Order, Payment, Ticket
from orders.tests.test_pages import _add, _checkout
from orders.tests.test_stripe import THREE_D_SECURE, authenticate, card

pytestmark = pytest.mark.django_db

VISA = "pm_card_visa"
DECLINED = "pm_card_chargeCustomerFail"


@pytest.fixture
def shop(stripe_shop, settings, localstripe_base):
    """The shop offering Stripe, with localstripe's stand-in for stripe.js."""
    settings.STRIPE_JS_URL = f"{localstripe_base}/js.stripe.com/v3/"
    return stripe_shop


def pending(client: Client, ticket_type) -> Order:  # type: ignore[no-untyped-def]
    """The shopper adds two tickets and checks out choosing Stripe: the order awaits their payment."""
    _add(client, ticket_type, 2)
    response = _checkout(client, payment_method="stripe")
    order = Order.objects.get()
    assert response.status_code == 302
    assert response.url == pay_url(order)
    return order


def pay_url(order: Order, suffix: str = "") -> str:
    return f"/orders/{order.code}/{order.secret}/pay/{suffix}"


def order_url(order: Order) -> str:
    return f"/orders/{order.code}/{order.secret}/"


def pay(client: Client, order: Order, payment_method: str):  # type: ignore[no-untyped-def]
    """What the pay page's script posts once stripe.js made a payment method of the card."""
    return client.post(pay_url(order), {"payment_method": payment_method})


def test_checking_out_with_stripe_leads_to_the_pay_page(client, shop, ticket_type, settings, localstripe_base):
    order = pending(client, ticket_type)

    response = client.get(pay_url(order))

    assert response.status_code == 200
    body = response.content.decode()
    assert order.status == "pending"
    assert "Pay for your order" in body
    assert f"2 × {ticket_type.name}" in body
    assert f"Pay €{order.total:.2f}" in body
    deadline = timezone.localtime(order.payment_deadline)
    assert f'data-hold-expires="{deadline.isoformat()}"' in body
    assert "Your tickets are held until <time datetime=" in body
    assert f'data-publishable-key="{settings.STRIPE_PUBLISHABLE_KEY}"' in body
    assert f'<script src="{localstripe_base}/js.stripe.com/v3/"></script>' in body
    assert '<script src="/static/js/payment.js" defer></script>' in body
    # The Payment Element is created before stripe.js sees the PaymentIntent: the page gives it the amount, in cents.
    assert order.total == 2 * Decimal("25.00")
    assert 'data-amount="5000"' in body
    assert 'data-currency="eur"' in body
    assert f'data-return-url="{pay_url(order, "return/")}"' in body
    # The order page says what is left to do and links here.
    page = client.get(order_url(order)).content.decode()
    assert "Awaiting payment until" in page
    assert f'href="{pay_url(order)}"' in page


def test_the_payment_element_gets_the_amount_in_stripes_integer_units(shop):
    """As the PaymentIntent's amount: cents, or whole units for a zero-decimal currency."""
    euros = shop.client_config(amount=Decimal("70.00"), currency="EUR")
    assert (euros["amount"], euros["currency"]) == ("7000", "eur")
    yen = shop.client_config(amount=Decimal("1500"), currency="JPY")
    assert (yen["amount"], yen["currency"]) == ("1500", "jpy")


def test_the_pay_page_runs_a_fixed_number_of_queries(shop, django_assert_num_queries):
    """The order with no tickets yet, then its lines with their ticket types and events, then its payment."""
    orders = []
    for lines in (1, 3):
        shopper = Client()
        for _ in range(lines):
            _add(shopper, TicketTypeFactory(event=EventFactory()), 2)
        _checkout(shopper, payment_method="stripe", idempotency_key=f"key-{lines}")
        orders.append(Order.objects.latest("id"))

    for order in orders:
        with django_assert_num_queries(4):
            body = Client().get(pay_url(order)).content.decode()
        assert body.count('<li class="summary-line">') == order.lines.count()


def test_a_wrong_secret_opens_no_pay_page(client, shop, ticket_type):
    order = pending(client, ticket_type)
    wrong = Order(code=order.code, secret="x" * len(order.secret))

    assert client.get(pay_url(wrong)).status_code == 404
    assert pay(client, wrong, VISA).status_code == 404
    assert client.get(pay_url(wrong, "return/")).status_code == 404
    assert Order.objects.get().status == "pending"


def test_a_card_pays_the_order_at_once(client, shop, ticket_type):
    order = pending(client, ticket_type)

    response = pay(client, order, VISA)

    assert response.status_code == 200
    assert response.json() == {"status": "paid", "redirect": order_url(order)}
    order.refresh_from_db()
    assert (order.status, order.tickets.count()) == ("paid", 2)
    payment = Payment.objects.get()
    assert payment.status == "captured"
    assert shop.status(payment_id=payment.payment_id).state == "captured"
    ticket_type.refresh_from_db()
    assert ticket_type.sold == 2
    # A second click, or the page opened again: paid is paid, nothing is charged twice.
    assert pay(client, order, VISA).json() == {"status": "paid", "redirect": order_url(order)}
    assert client.get(pay_url(order)).url == order_url(order)
    assert (Ticket.objects.count(), Payment.objects.get().status) == (2, "captured")
    assert "is confirmed" in client.get(order_url(order)).content.decode()


def test_three_d_secure_then_the_return_url_pays(client, shop, ticket_type, localstripe_base):
    order = pending(client, ticket_type)

    response = pay(client, order, card(localstripe_base, THREE_D_SECURE))

    payment = Payment.objects.get()
    assert response.status_code == 200
    assert response.json() == {"status": "requires_action", "client_secret": payment.client_secret}
    assert Order.objects.get().status == "pending"
    authenticate(localstripe_base, payment, success=True)  # stripe.js, in the buyer's browser
    back = client.get(pay_url(order, "return/"))
    assert back.url == order_url(order)
    assert Order.objects.get().status == "paid"
    assert Payment.objects.get().status == "captured"


def test_a_failed_three_d_secure_sends_the_buyer_back_to_try_again(client, shop, ticket_type, localstripe_base):
    order = pending(client, ticket_type)
    pay(client, order, card(localstripe_base, THREE_D_SECURE))

    authenticate(localstripe_base, Payment.objects.get(), success=False)
    back = client.get(pay_url(order, "return/"))

    assert back.url == pay_url(order)
    page = client.get(pay_url(order)).content.decode()
    assert "Your last payment attempt did not go through" in page
    assert "failed authentication" in page
    assert "data-payment-form" in page  # the payment form, for another try
    # Another card, within the window, pays.
    assert pay(client, order, VISA).json()["status"] == "paid"
    assert Order.objects.get().status == "paid"


def test_a_declined_card_is_a_402_with_the_banks_message_and_the_order_waits(client, shop, ticket_type):
    order = pending(client, ticket_type)

    response = pay(client, order, DECLINED)

    assert response.status_code == 402
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "payment_declined"
    assert problem["detail"] == "Your card was declined. Your tickets stay reserved until the payment window closes."
    order.refresh_from_db()
    assert (order.status, order.tickets.count()) == ("pending", 0)
    assert Payment.objects.get().message == "Your card was declined."
    assert client.get(pay_url(order)).status_code == 200


def test_a_payment_method_that_is_not_an_id_is_a_400(client, shop, ticket_type):
    order = pending(client, ticket_type)

    for value in ["", "pm_1; drop", "x" * 300]:
        response = pay(client, order, value)
        assert response.status_code == 400
        assert response.json()["code"] == "validation_error"
    assert Order.objects.get().status == "pending"


def test_past_its_deadline_an_order_can_no_longer_be_paid(client, shop, ticket_type):
    order = pending(client, ticket_type)

    with time_machine.travel(order.payment_deadline + timedelta(seconds=1), tick=False):
        page = client.get(pay_url(order))
        response = pay(client, order, VISA)

    body = page.content.decode()
    assert "can no longer be paid" in body
    assert "seats were released" in body
    assert "data-payment-form" not in body
    assert "js.stripe.com" not in body
    assert f'href="/events/{ticket_type.event.slug}/"' in body
    assert response.status_code == 409
    assert response.json()["code"] == "order_not_payable"
    assert response.json()["redirect"] == pay_url(order)
    order.refresh_from_db()
    expired = "The time to pay ran out and your seats were released. Nothing was charged."
    assert (order.status, order.payment_note) == ("expired", expired)
    payment = Payment.objects.get()
    assert (payment.status, shop.status(payment_id=payment.payment_id).state) == ("voided", "canceled")
    assert "was not paid" in client.get(order_url(order)).content.decode()
    assert expired in client.get(order_url(order)).content.decode()


def test_the_payment_post_needs_the_pages_csrf_token(shop, ticket_type):
    browser = Client(enforce_csrf_checks=True)
    _add_with_token(browser, ticket_type)
    checkout = browser.get("/checkout/").content.decode()
    browser.post(
        "/checkout/",
        {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "payment_method": "stripe",
            "idempotency_key": "3f9a6c2e-2d4b-4f7e-9a51-0c8e7d6b5a41",
            "csrfmiddlewaretoken": _csrf_token(checkout),
        },
    )
    order = Order.objects.get()
    page = browser.get(pay_url(order)).content.decode()

    forged = browser.post(pay_url(order), {"payment_method": VISA})
    assert forged.status_code == 403
    assert Order.objects.get().status == "pending"

    sent = browser.post(pay_url(order), {"payment_method": VISA, "csrfmiddlewaretoken": _csrf_token(page)})
    assert sent.json()["status"] == "paid"


def _add_with_token(browser: Client, ticket_type) -> None:  # type: ignore[no-untyped-def]
    event_page = browser.get(f"/events/{ticket_type.event.slug}/").content.decode()
    browser.post(
        f"/events/{ticket_type.event.slug}/basket/",
        {"ticket_type": ticket_type.pk, "quantity": 2, "csrfmiddlewaretoken": _csrf_token(event_page)},
    )


def _csrf_token(body: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert match
    return match.group(1)


class TestContentSecurityPolicy:
    def test_the_pay_page_alone_may_load_stripe_js_and_talk_to_stripe(self, client, shop, ticket_type, settings):
        order = pending(client, ticket_type)
        stripe = re.match(r"^https?://[^/]+", settings.STRIPE_JS_URL).group(0)

        response = client.get(pay_url(order))

        policy = directives(response.headers["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'", stripe]
        assert policy["connect-src"] == ["'self'", stripe]
        assert policy["frame-src"] == [stripe]
        assert policy["default-src"] == ["'self'"]
        assert policy["style-src"] == ["'self'"]
        assert "unsafe" not in response.headers["Content-Security-Policy"]
        for path in ["/", "/checkout/", order_url(order)]:
            assert stripe not in client.get(path).headers["Content-Security-Policy"], path

    def test_the_pay_page_runs_no_inline_code(self, client, shop, ticket_type, settings):
        order = pending(client, ticket_type)
        response = client.get(pay_url(order))
        # Its scripts are files; beyond them the page obeys the shop's own policy.
        assert re.findall(r"<script[^>]*>", response.content.decode()) == [
            '<script src="/static/js/hold-countdown.js" defer>',
            f'<script src="{settings.STRIPE_JS_URL}">',
            '<script src="/static/js/payment.js" defer>',
        ]
        with time_machine.travel(order.payment_deadline + timedelta(seconds=1), tick=False):
            closed = client.get(pay_url(order))
        assert_page_obeys_its_policy(closed)  # past the window: nothing of Stripe's, not even in the policy

    def test_the_sources_are_the_origins_of_the_configured_urls(self, shop, settings):
        settings.STRIPE_JS_URL = "http://127.0.0.1:8420/js.stripe.com/v3/"
        settings.STRIPE_API_BASE = "http://127.0.0.1:8420"
        assert shop.content_security_policy() == {
            "script-src": ["http://127.0.0.1:8420"],
            "frame-src": ["http://127.0.0.1:8420"],
            "connect-src": ["http://127.0.0.1:8420"],
        }

    def test_real_stripe_js_gets_the_origins_stripes_security_guide_lists(self, shop, settings):
        """Its subdomains' scripts and frames, and 3-D Secure pages on hooks.stripe.com, besides its own origin."""
        settings.STRIPE_JS_URL = "https://js.stripe.com/v3/"
        settings.STRIPE_API_BASE = "https://api.stripe.com"
        assert shop.content_security_policy() == {
            "script-src": ["https://js.stripe.com", "https://*.js.stripe.com"],
            "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
            "connect-src": ["https://api.stripe.com"],
        }
