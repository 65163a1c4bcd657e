"""Vouchers as shoppers meet them: the event page's code form (discounted prices, hidden ticket types), the basket's
"Apply", the API's `voucher` fields and their problem codes, and the staff's voucher API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from events.models import Voucher
from events.tests.factories import EventFactory, TicketTypeFactory, VoucherFactory
from orders import checkout, services
from orders.models import Hold, Order
from orders.selectors import order_for_shopper

pytestmark = pytest.mark.django_db


@pytest.fixture
def conference(db):
    event = EventFactory(name="Web Days")
    regular = TicketTypeFactory(event=event, name="Regular", price=Decimal("100.00"))
    press = TicketTypeFactory(event=event, name="Press", price=Decimal("100.00"), requires_voucher=True)
    VoucherFactory(code="EARLY", value=Decimal("20"))
    VoucherFactory(code="PRESS", discount_type="price", value=Decimal("0")).ticket_types.add(press)
    return event, regular, press


def test_the_event_page_shows_prices_with_the_voucher_and_what_it_unlocks(client, conference):
    event, regular, press = conference

    plain = client.get(f"/events/{event.slug}/").content.decode()
    early = client.get(f"/events/{event.slug}/", {"voucher": "early"}).content.decode()
    press_page = client.get(f"/events/{event.slug}/", {"voucher": "PRESS"}).content.decode()

    assert "Press" not in plain
    assert "Voucher <strong>EARLY</strong> applied: 20 % off." in early
    assert '<del><span class="visually-hidden">Was </span>€100.00</del>' in early
    assert "€80.00</ins>" in early
    assert "Press" not in early  # a general discount unlocks nothing
    assert 'name="voucher" value="EARLY"' in early
    assert f'id="ticket-{press.pk}"' in press_page
    assert "Free</ins>" in press_page


def test_a_bad_code_on_the_event_page_is_explained_next_to_the_form(client, conference):
    event, _, _ = conference

    response = client.get(f"/events/{event.slug}/", {"voucher": "NOPE"})

    body = response.content.decode()
    assert response.status_code == 200
    assert 'aria-invalid="true"' in body
    assert "This voucher code is not valid." in body


def test_adding_with_the_voucher_from_the_event_page_prices_the_basket(client, conference):
    event, regular, press = conference

    client.post(f"/events/{event.slug}/basket/", {"ticket_type": press.pk, "quantity": 1, "voucher": "press"})
    response = client.post(f"/events/{event.slug}/basket/", {"ticket_type": regular.pk, "quantity": 2})
    basket = client.get("/basket/").content.decode()

    assert response.status_code == 302
    assert "with PRESS" in basket
    assert "€200.00" in basket  # the total: press free, two regular at full price


def test_a_hidden_ticket_type_cannot_be_added_without_its_voucher(client, conference):
    event, _, press = conference

    response = client.post(f"/events/{event.slug}/basket/", {"ticket_type": press.pk, "quantity": 1})

    assert "Choose a ticket type from this event." in response.content.decode()
    assert not Hold.objects.exists()


def test_the_basket_applies_a_voucher_or_says_why_not(client, conference):
    event, regular, _ = conference
    client.post(f"/events/{event.slug}/basket/", {"ticket_type": regular.pk, "quantity": 1})

    refused = client.post("/basket/voucher/", {"voucher": "NOPE"}, follow=True).content.decode()
    applied = client.post("/basket/voucher/", {"voucher": "early"}, follow=True).content.decode()

    assert "This voucher code is not valid." in refused
    assert "Voucher EARLY applied." in applied
    assert "€80.00</ins>" in applied
    assert Hold.objects.get().voucher.code == "EARLY"


def basket_add(api, ticket_type, **body):
    return api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1, **body}, format="json")


def test_the_basket_api_takes_a_voucher_and_shows_the_discount(api, conference):
    _, regular, _ = conference

    response = basket_add(api, regular, quantity=2, voucher="Early")

    assert response.status_code == 201, response.content
    (item,) = response.json()["items"]
    assert (item["unit_price"], item["list_price"], item["voucher"], item["line_total"]) == (
        "80.00",
        "100.00",
        "EARLY",
        "160.00",
    )
    assert response.json()["total"] == "160.00"


@pytest.mark.parametrize(
    ("voucher", "status", "code"),
    [("NOPE", 400, "voucher_invalid"), ("LATE", 400, "voucher_expired"), ("USED", 409, "voucher_exhausted")],
)
def test_the_basket_api_refuses_a_bad_code_and_holds_nothing(api, conference, now, voucher, status, code):
    _, regular, _ = conference
    VoucherFactory(code="LATE", valid_until=now)
    VoucherFactory(code="USED", max_redemptions=1, redeemed=1)

    response = basket_add(api, regular, voucher=voucher)

    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert not Hold.objects.exists()


def test_checkout_api_applies_a_voucher_and_the_order_records_it(api, conference):
    _, regular, _ = conference
    token = basket_add(api, regular, quantity=2).json()["token"]

    response = api.post(
        "/api/checkout",
        {"basket": token, "name": "Ada", "email": "ada@example.com", "payment_method": "test", "voucher": "early"},
        format="json",
    )

    assert response.status_code == 201, response.content
    order = response.json()["order"]
    assert order["total"] == "160.00"
    assert (order["lines"][0]["voucher"], order["lines"][0]["discount"]) == ("EARLY", "20.00")
    assert Voucher.objects.get(code="EARLY").redeemed == 2
    assert Order.objects.get().total == Decimal("160.00")


def vouchers_url(event):
    return f"/api/events/{event.pk}/vouchers"


def test_staff_make_vouchers_with_random_codes_through_the_api(staff_api, conference):
    event, regular, press = conference
    body = {
        "count": 3,
        "discount": {"type": "fixed", "value": "15.00"},
        "ticket_type_ids": [regular.pk],
        "max_redemptions": 2,
        "comment": "newsletter",
    }

    response = staff_api.post(vouchers_url(event), body, format="json")

    assert response.status_code == 201, response.content
    made = response.json()["vouchers"]
    assert len(made) == 3
    assert all(len(v["code"]) == 10 and v["code"].isalnum() and v["code"].isupper() for v in made)
    assert {(v["event_id"], v["discount"]["value"], v["max_redemptions"], v["redemptions"]) for v in made} == {
        (event.pk, "15.00", 2, 0)
    }
    assert {tuple(v["ticket_type_ids"]) for v in made} == {(regular.pk,)}
    assert Voucher.objects.filter(event=event, comment="newsletter").count() == 3


def test_a_chosen_code_is_stored_in_capitals_and_may_not_be_taken_twice(staff_api, conference):
    event, _, press = conference
    body = {"code": "Press2", "ticket_type_ids": [press.pk], "max_redemptions": 5}

    first = staff_api.post(vouchers_url(event), body, format="json")
    again = staff_api.post(vouchers_url(event), body, format="json")

    assert first.status_code == 201, first.content
    assert (first.json()["vouchers"][0]["code"], first.json()["vouchers"][0]["discount"]) == ("PRESS2", None)
    assert (again.status_code, again.json()["errors"]) == (
        400,
        {"code": ["This organizer has a voucher with this code."]},
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"discount": {"type": "percent", "value": "150"}}, "discount"),
        ({"code": "AB", "count": 1}, "code"),
        ({"code": "ABCDEF", "count": 2}, "count"),
        ({"valid_from": "2031-01-02T00:00:00Z", "valid_until": "2031-01-01T00:00:00Z"}, "valid_until"),
        ({"ticket_type_ids": "other event"}, "ticket_type_ids"),
    ],
)
def test_a_bad_voucher_request_is_refused_and_makes_nothing(staff_api, conference, change, field):
    event, _, _ = conference
    other_event_type = TicketTypeFactory()
    if change.get("ticket_type_ids") == "other event":
        change = {"ticket_type_ids": [other_event_type.pk]}
    before = Voucher.objects.count()

    response = staff_api.post(vouchers_url(event), {"max_redemptions": 1, **change}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert Voucher.objects.count() == before


def test_the_voucher_list_shows_use_and_revenue(staff_api, api, conference):
    event, regular, _ = conference
    for _ in range(2):
        token = basket_add(api, regular, voucher="EARLY").json()["token"]
        api.post(
            "/api/checkout",
            {"basket": token, "name": "Ada", "email": "ada@example.com", "payment_method": "test"},
            format="json",
        )
    basket_add(api, regular, voucher="EARLY")  # held, not bought

    listed = {v["code"]: v for v in staff_api.get(vouchers_url(event)).json()["vouchers"]}

    early = listed["EARLY"]
    assert (early["redemptions"], early["held"], early["revenue"], early["order_count"]) == (2, 1, "160.00", 2)
    assert early["event_id"] is None  # good for every event of the organizer
    assert set(listed) == {"EARLY", "PRESS"}


def test_the_order_page_shows_the_voucher_in_the_same_one_query(client, conference, now, django_assert_num_queries):
    _, regular, _ = conference
    basket = services.basket_add(token=None, ticket_type_id=regular.pk, quantity=1, now=now, voucher="EARLY")
    order = checkout.order_place(
        token=basket.token, name="Ada", email="ada@example.com", payment_method="test", now=now
    ).order

    with django_assert_num_queries(1):
        detail = order_for_shopper(code=order.code, secret=order.secret)
        assert detail.lines[0].voucher.code == "EARLY"
    page = client.get(f"/orders/{order.code}/{order.secret}/").content.decode()
    assert "€20.00 off with voucher EARLY" in page
