"""The shopper's path through the pages: add to basket, basket, checkout, the private order page."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from events.tests.factories import EventFactory, TicketTypeFactory
from orders import selectors, services
from orders.models import Basket, Hold, Order, Ticket
from orders.payments import TEST_DECLINE_EMAIL
from orders.views import SESSION_BASKET

pytestmark = pytest.mark.django_db

BASKET_URL = "/basket/"
CHECKOUT_URL = "/checkout/"
# The holds with their basket, ticket types and events (the session is a signed cookie).
BASKET_QUERIES = 1
# The order, its lines, its tickets (each with ticket type and event).
ORDER_QUERIES = 1


def _add(client: Client, ticket_type, quantity: object):  # type: ignore[no-untyped-def]
    """Submit the 'Add to basket' form of one ticket type on its event page."""
    return client.post(
        f"/events/{ticket_type.event.slug}/basket/", {"ticket_type": ticket_type.pk, "quantity": quantity}
    )


def _checkout(client: Client, **overrides: str):  # type: ignore[no-untyped-def]
    data = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "payment_method": "test",
        "idempotency_key": "5b0e3c9c-4a51-4c4e-9c1b-2f3f1c0f9a11",
        **overrides,
    }
    return client.post(CHECKOUT_URL, data)


def _alert(body: str) -> str:
    """The text of the page's first role="alert" block."""
    start = body.index('role="alert"')
    return body[start : body.index("</div>", start)]


def _seats_left(client: Client, ticket_type) -> str:  # type: ignore[no-untyped-def]
    return client.get(f"/events/{ticket_type.event.slug}/").content.decode()


class TestAddToBasket:
    def test_adds_the_tickets_holds_the_seats_and_remembers_the_basket(self, client, ticket_type):
        response = _add(client, ticket_type, 2)

        assert response.status_code == 302
        assert response.url == BASKET_URL
        hold = Hold.objects.get()
        assert (hold.ticket_type, hold.quantity) == (ticket_type, 2)
        assert client.session[SESSION_BASKET] == hold.basket.token
        body = client.get(BASKET_URL).content.decode()
        assert f"2 × {ticket_type.name} reserved for you." in body
        assert 'role="status"' in body

    def test_adding_again_grows_the_same_basket(self, client, ticket_type):
        _add(client, ticket_type, 1)
        _add(client, ticket_type, 2)

        assert Basket.objects.count() == 1
        assert Hold.objects.get().quantity == 3

    def test_more_than_max_per_order_is_refused_inline(self, client, event):
        ticket_type = TicketTypeFactory(event=event, name="Balcony", max_per_order=4)

        response = _add(client, ticket_type, 5)

        assert response.status_code == 200
        assert "At most 4 Balcony tickets per order." in _alert(response.content.decode())
        assert not Hold.objects.exists()
        assert not Basket.objects.exists()
        assert SESSION_BASKET not in client.session

    def test_max_per_order_counts_what_the_basket_already_holds(self, client, event):
        ticket_type = TicketTypeFactory(event=event, name="Balcony", max_per_order=4)
        _add(client, ticket_type, 3)

        response = _add(client, ticket_type, 2)

        assert "your basket already holds 3" in _alert(response.content.decode())
        assert Hold.objects.get().quantity == 3

    def test_sold_out_is_refused_inline(self, client, event):
        ticket_type = TicketTypeFactory(event=event, name="Front Row", capacity=2, sold=2)

        response = _add(client, ticket_type, 1)

        assert response.status_code == 200
        assert "Front Row is sold out." in _alert(response.content.decode())
        assert not Hold.objects.exists()

    def test_fewer_seats_than_asked_is_refused_inline(self, client, event):
        ticket_type = TicketTypeFactory(event=event, name="Front Row", capacity=3)

        response = _add(client, ticket_type, 5)

        assert "Only 3 more Front Row tickets are available." in _alert(response.content.decode())
        assert not Hold.objects.exists()

    def test_not_on_sale_is_refused_inline(self, client, event, now):
        ticket_type = TicketTypeFactory(event=event, name="Late Release", sale_starts_at=now + timedelta(days=2))

        response = _add(client, ticket_type, 1)

        assert response.status_code == 200
        assert "Late Release tickets are not on sale right now." in _alert(response.content.decode())
        assert not Hold.objects.exists()

    @pytest.mark.parametrize(
        ("quantity", "message"),
        [
            ("0", "Ensure this value is greater than or equal to 1."),
            ("-1", "Ensure this value is greater than or equal to 1."),
            ("abc", "Enter a whole number."),
            ("2.5", "Enter a whole number."),
            ("", "This field is required."),
            ("1" * 30, "Ensure this value is less than or equal to 1000."),
            ("9" * 5000, "Enter a whole number."),
        ],
    )
    def test_invalid_quantity_is_refused_inline(self, client, ticket_type, quantity, message):
        response = _add(client, ticket_type, quantity)

        assert response.status_code == 200
        body = response.content.decode()
        assert message in _alert(body)
        assert 'aria-invalid="true"' in body
        assert not Hold.objects.exists()
        assert not Basket.objects.exists()

    def test_the_error_is_shown_next_to_the_ticket_type_it_belongs_to(self, client, event):
        TicketTypeFactory(event=event, name="Standing", position=0)
        balcony = TicketTypeFactory(event=event, name="Balcony", position=1, max_per_order=2)

        body = _add(client, balcony, 3).content.decode()

        error = body.index("At most 2 Balcony tickets per order.")
        assert body.index(">Standing</h3>") < body.index(">Balcony</h3>") < error
        assert body.count('role="alert"') == 1

    def test_a_ticket_type_of_another_event_is_refused(self, client, event, ticket_type):
        other = TicketTypeFactory(event=EventFactory())

        response = client.post(f"/events/{event.slug}/basket/", {"ticket_type": other.pk, "quantity": 1})

        assert "Choose a ticket type from this event." in response.content.decode()
        assert not Hold.objects.exists()

    def test_a_vanished_basket_is_forgotten_and_the_shopper_asked_to_retry(self, client, ticket_type):
        _add(client, ticket_type, 1)
        Basket.objects.all().delete()

        response = _add(client, ticket_type, 1)

        assert "Your previous basket is gone; please try again." in _alert(response.content.decode())
        assert SESSION_BASKET not in client.session
        assert _add(client, ticket_type, 1).status_code == 302
        assert Hold.objects.get().quantity == 1


class TestBasketPage:
    def test_shows_each_line_the_total_and_how_long_the_seats_are_held(self, client, event):
        standing = TicketTypeFactory(event=event, name="Standing", price=Decimal("25.00"))
        vip = TicketTypeFactory(event=event, name="VIP", price=Decimal("80.00"))
        _add(client, standing, 2)
        _add(client, vip, 1)
        expires_at = timezone.localtime(Hold.objects.order_by("expires_at").first().expires_at)

        body = client.get(BASKET_URL).content.decode()

        assert "Standing" in body
        assert "€50.00" in body
        assert "VIP" in body
        assert "€80.00" in body
        assert '<td class="num basket-total" data-label="Total">€130.00</td>' in body
        assert f'held until <time datetime="{expires_at.isoformat()}">{expires_at:%H:%M}</time>' in body
        assert f'data-hold-expires="{expires_at.isoformat()}"' in body
        assert body.count(">Remove<") == 2
        assert f'href="{CHECKOUT_URL}"' in body
        assert "expired" not in re.sub(r'data-expired-text="[^"]*"', "", body)  # the script's text for later aside

    def test_each_remove_button_is_a_csrf_protected_post(self, client, ticket_type):
        _add(client, ticket_type, 1)
        hold = Hold.objects.get()

        body = client.get(BASKET_URL).content.decode()

        form = body[body.index(f'action="/basket/items/{hold.pk}/remove/"') :]
        form = form[: form.index("</form>")]
        assert 'name="csrfmiddlewaretoken"' in form

    def test_empty_basket_links_to_the_events(self, client):
        body = client.get(BASKET_URL).content.decode()

        assert "Your basket is empty" in body
        assert 'href="/"' in body
        assert "Check out" not in body

    def test_remove_frees_the_seats(self, client, event):
        ticket_type = TicketTypeFactory(event=event, name="Front Row", capacity=2)
        _add(client, ticket_type, 2)
        assert "Sold out" in _seats_left(Client(), ticket_type)

        response = client.post(f"/basket/items/{Hold.objects.get().pk}/remove/")

        assert response.status_code == 302
        assert response.url == BASKET_URL
        assert not Hold.objects.exists()
        assert "Removed from your basket" in client.get(BASKET_URL).content.decode()
        page = _seats_left(Client(), ticket_type)
        assert "Sold out" not in page
        assert "Add to basket" in page

    def test_cannot_remove_a_line_of_someone_elses_basket(self, client, ticket_type):
        stranger = Client()
        _add(stranger, ticket_type, 2)
        _add(client, ticket_type, 1)
        strangers_hold = Hold.objects.get(quantity=2)

        client.post(f"/basket/items/{strangers_hold.pk}/remove/")

        assert Hold.objects.filter(pk=strangers_hold.pk).exists()
        assert "That item is no longer in your basket." in client.get(BASKET_URL).content.decode()

    def test_runs_a_fixed_number_of_queries_whatever_the_number_of_lines(self, client, django_assert_num_queries):
        event = EventFactory()
        _add(client, TicketTypeFactory(event=event), 1)
        with django_assert_num_queries(BASKET_QUERIES):
            assert client.get(BASKET_URL).status_code == 200

        for _ in range(4):
            _add(client, TicketTypeFactory(event=EventFactory()), 2)
        with django_assert_num_queries(BASKET_QUERIES):
            body = client.get(BASKET_URL).content.decode()
        assert body.count(">Remove<") == 5

    def test_remove_needs_a_post(self, client, ticket_type):
        _add(client, ticket_type, 1)

        assert client.get(f"/basket/items/{Hold.objects.get().pk}/remove/").status_code == 405
        assert Hold.objects.exists()


class TestCheckout:
    def test_page_shows_the_summary_and_a_labelled_form(self, client, ticket_type):
        _add(client, ticket_type, 2)

        body = client.get(CHECKOUT_URL).content.decode()

        assert f"2 × {ticket_type.name}" in body
        assert "€50.00" in body
        assert '<label for="id_name">Full name</label>' in body
        assert '<label for="id_email">Email</label>' in body
        assert "<legend>Payment</legend>" in body
        assert 'type="hidden" name="idempotency_key"' in body
        assert TEST_DECLINE_EMAIL in body
        assert "Pay and place order" in body

    def test_a_paid_basket_is_not_offered_the_free_payment_method(self, client, ticket_type):
        _add(client, ticket_type, 1)

        body = client.get(CHECKOUT_URL).content.decode()

        assert 'value="test"' in body
        assert 'value="free"' not in body

    def test_places_the_order_and_shows_the_private_order_page(self, client, ticket_type):
        _add(client, ticket_type, 2)

        response = _checkout(client)

        order = Order.objects.get()
        assert response.status_code == 302
        assert response.url == f"/orders/{order.code}/{order.secret}/"
        assert (order.name, order.email, order.total) == ("Ada Lovelace", "ada@example.com", Decimal("50.00"))
        ticket_type.refresh_from_db()
        assert ticket_type.sold == 2
        assert not Hold.objects.exists()
        assert SESSION_BASKET not in client.session

        body = client.get(response.url).content.decode()
        assert f"Thank you — your order {order.code} is confirmed" in body
        codes = list(Ticket.objects.filter(order=order).values_list("code", flat=True))
        assert len(codes) == 2
        for code in codes:
            assert f"<code>{code}</code>" in body
        assert "Keep this page's link private." in body
        assert "€50.00" in body
        assert "Your basket is empty" in client.get(BASKET_URL).content.decode()

    def test_a_double_submit_places_one_order_and_shows_it_both_times(self, client, ticket_type):
        _add(client, ticket_type, 2)

        first = _checkout(client)
        second = _checkout(client)

        assert Order.objects.count() == 1
        order = Order.objects.get()
        assert first["Location"] == second["Location"] == f"/orders/{order.code}/{order.secret}/"
        ticket_type.refresh_from_db()
        assert ticket_type.sold == 2

    def test_a_declined_payment_is_shown_inline_and_keeps_the_seats(self, client, ticket_type):
        _add(client, ticket_type, 2)

        response = _checkout(client, email=TEST_DECLINE_EMAIL)

        assert response.status_code == 200
        assert "Card declined (test provider)." in _alert(response.content.decode())
        assert not Order.objects.exists()
        assert Hold.objects.get().quantity == 2
        ticket_type.refresh_from_db()
        assert ticket_type.sold == 0
        assert SESSION_BASKET in client.session
        # The shopper can fix the email and pay.
        assert _checkout(client).status_code == 302
        assert Order.objects.count() == 1

    def test_an_invalid_email_is_shown_next_to_the_field(self, client, ticket_type):
        _add(client, ticket_type, 1)

        response = _checkout(client, email="not-an-email", name="")

        body = response.content.decode()
        assert response.status_code == 200
        assert '<ul class="errorlist" id="id_email_error"><li>Enter a valid email address.</li></ul>' in body
        assert '<ul class="errorlist" id="id_name_error"><li>This field is required.</li></ul>' in body
        assert 'aria-describedby="id_email_error"' in body
        assert 'value="not-an-email"' in body
        assert not Order.objects.exists()
        assert Hold.objects.exists()

    def test_checkout_with_an_empty_basket_goes_back_to_the_basket(self, client, ticket_type):
        assert client.get(CHECKOUT_URL).url == BASKET_URL

        _add(client, ticket_type, 1)
        client.post(f"/basket/items/{Hold.objects.get().pk}/remove/")
        response = _checkout(client)

        assert response.status_code == 302
        assert response.url == BASKET_URL
        assert "Your basket is empty." in client.get(BASKET_URL).content.decode()
        assert not Order.objects.exists()

    def test_an_expired_hold_is_marked_and_checkout_still_works_when_seats_are_free(self, client, ticket_type):
        start = timezone.now()
        _add(client, ticket_type, 2)

        with time_machine.travel(start + timedelta(minutes=11), tick=False):
            basket = client.get(BASKET_URL).content.decode()
            checkout = client.get(CHECKOUT_URL).content.decode()
            response = _checkout(client)

        assert "Reservation expired — we'll try to re-reserve at checkout" in basket
        assert "Your hold expired at" in basket
        assert "Reservation expired" in checkout
        assert response.status_code == 302
        order = Order.objects.get()
        assert order.tickets.count() == 2
        ticket_type.refresh_from_db()
        assert ticket_type.sold == 2

    def test_an_expired_hold_whose_seats_were_taken_is_refused_without_charging(self, client, event):
        ticket_type = TicketTypeFactory(event=event, name="Front Row", capacity=2)
        start = timezone.now()
        _add(client, ticket_type, 2)

        with time_machine.travel(start + timedelta(minutes=11), tick=False):
            assert _add(Client(), ticket_type, 2).status_code == 302  # someone else takes the freed seats
            response = _checkout(client)

        assert response.status_code == 200
        assert "Your reservation for Front Row expired and only 0 are left." in _alert(response.content.decode())
        assert not Order.objects.exists()
        ticket_type.refresh_from_db()
        assert ticket_type.sold == 0


class TestOrderPage:
    def _order(self, client, ticket_type) -> Order:  # type: ignore[no-untyped-def]
        _add(client, ticket_type, 1)
        _checkout(client)
        return Order.objects.get()

    def test_runs_a_fixed_number_of_queries_whatever_the_number_of_tickets(self, django_assert_num_queries):
        orders = []
        for quantity in (1, 6):
            shopper = Client()
            _add(shopper, TicketTypeFactory(event=EventFactory()), quantity)
            _add(shopper, TicketTypeFactory(event=EventFactory()), quantity)
            _checkout(shopper, idempotency_key=f"key-{quantity}")
            orders.append(Order.objects.latest("id"))

        for order in orders:
            with django_assert_num_queries(ORDER_QUERIES):
                body = Client().get(f"/orders/{order.code}/{order.secret}/").content.decode()
            assert body.count('<li class="ticket-stub') == order.tickets.count()
        assert [order.tickets.count() for order in orders] == [2, 12]

    def test_reads_the_lines_and_tickets_the_orm_would_read(self, django_assert_num_queries):
        """The page's one join (selectors.order_for_shopper) against the ORM's prefetch of the same order."""
        shopper = Client()
        _add(shopper, TicketTypeFactory(event=EventFactory(name="Later"), price=Decimal("12.50")), 2)
        _add(shopper, TicketTypeFactory(event=EventFactory(name="Sooner"), price=Decimal("30.00")), 1)
        _checkout(shopper)
        order = Order.objects.get()
        expected = Order.objects.prefetch_related("lines__ticket_type__event", "tickets__ticket_type__event")
        expected = expected.get(pk=order.pk)

        with django_assert_num_queries(1):  # the tickets with their order, line, ticket type and event
            read = selectors.order_for_shopper(code=order.code, secret=order.secret)
            lines, tickets = read.lines, read.tickets
            shown = [_shown(ticket) for ticket in tickets]
            priced = [_priced(line) for line in lines]

        assert [line.pk for line in lines] == [line.pk for line in expected.lines.all()]
        assert [ticket.pk for ticket in tickets] == sorted(ticket.pk for ticket in expected.tickets.all())
        assert shown == [_shown(ticket) for ticket in expected.tickets.all()]
        assert priced == [_priced(line) for line in expected.lines.all()]
        assert [t.ticket_type.event.name for t in tickets] == ["Later", "Later", "Sooner"]

    def test_wrong_secret_is_a_404(self, client, ticket_type):
        order = self._order(client, ticket_type)

        response = client.get(f"/orders/{order.code}/{'x' * len(order.secret)}/")

        assert response.status_code == 404
        assert order.code not in response.content.decode()

    def test_a_cancelled_order_says_so_and_voids_its_tickets(self, client, ticket_type, now):
        order = self._order(client, ticket_type)
        services.order_cancel(order_id=order.pk, now=now)

        body = client.get(f"/orders/{order.code}/{order.secret}/").content.decode()

        assert f"Your order {order.code} has been cancelled" in body
        assert "is confirmed" not in body
        assert "ticket-stub--void" in body


def _shown(ticket):  # type: ignore[no-untyped-def]
    """What the order page shows of a ticket."""
    return ticket.code, ticket.line_id, ticket.ticket_type.name, ticket.ticket_type.price, ticket.ticket_type.event.name


def _priced(line):  # type: ignore[no-untyped-def]
    return line.quantity, line.unit_price, line.ticket_type.event.starts_at


class TestCsrf:
    def test_posts_without_a_token_are_refused(self, ticket_type):
        client = Client(enforce_csrf_checks=True)

        add = client.post(f"/events/{ticket_type.event.slug}/basket/", {"ticket_type": ticket_type.pk, "quantity": 1})

        assert add.status_code == 403
        assert not Hold.objects.exists()

    def test_checkout_without_a_token_is_refused(self, ticket_type):
        client = Client(enforce_csrf_checks=True)
        page = client.get(f"/events/{ticket_type.event.slug}/").content.decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        added = client.post(
            f"/events/{ticket_type.event.slug}/basket/",
            {"ticket_type": ticket_type.pk, "quantity": 1, "csrfmiddlewaretoken": token},
        )
        assert added.status_code == 302  # the page's own token works

        response = _checkout(client)

        assert response.status_code == 403
        assert not Order.objects.exists()
        assert Hold.objects.exists()
