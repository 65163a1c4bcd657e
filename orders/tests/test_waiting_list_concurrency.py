"""The waiting list under a race, with real threads on PostgreSQL: an open offer's seats can't be taken by anyone
else, and seats freed while someone waits never go to the public. Each has a control case that removes the rule
and shows the same checks catch what it lets through."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from aegistickets.errors import SoldOutError
from events.models import TicketType
from events.tests.factories import TicketTypeFactory
from orders import checkout, services
from orders import seats as seat_protocol
from orders import waiting_list as wl
from orders.models import Hold, Order, WaitingListEntry
from orders.tests.test_admin import place_order
from orders.tests.test_concurrency import THREADS, run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PUBLIC_TRIES_SECONDS = 1.0


def sold_out_with_line(*, seats: int, in_line: int) -> tuple[TicketType, list[Order], list[WaitingListEntry]]:
    """A ticket type of `seats` seats sold in one-seat orders, and `in_line` shoppers waiting for one seat each."""
    ticket_type = TicketTypeFactory(capacity=seats, max_per_order=2)
    orders = [place_order((ticket_type, 1), email=f"buyer{i}@example.com") for i in range(seats)]
    now = timezone.now()
    entries = []
    for i in range(in_line):
        joined = wl.waiting_list_join(
            ticket_type_id=ticket_type.pk, email=f"wait{i}@example.com", quantity=1, language="en", now=now
        )
        entries.append(wl.waiting_list_confirm(token=joined.token, now=now + timedelta(milliseconds=i)))
    return ticket_type, orders, entries


def public_buyer(ticket_type: TicketType) -> int:
    """A shopper (or a bot) who keeps trying for a second: the seats they got."""
    deadline = time.monotonic() + PUBLIC_TRIES_SECONDS
    while time.monotonic() < deadline:
        try:
            services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=timezone.now())
        except SoldOutError:
            time.sleep(0.01)
            continue
        return 1
    return 0


def public_holds(ticket_type: TicketType) -> int:
    live = Hold.objects.filter(ticket_type=ticket_type, expires_at__gt=timezone.now(), basket__for_offer=False)
    return sum(live.values_list("quantity", flat=True))


# --- an open offer's seats are the offer's ---------------------------------------------------------------------


def race_offers_against_the_public() -> dict[str, object]:
    """Two offers open (two seats freed, three in line); the two offered shoppers check out while THREADS - 2
    others try for a seat."""
    ticket_type, orders, entries = sold_out_with_line(seats=3, in_line=3)
    for order in orders[:2]:
        services.order_cancel(order_id=order.pk, now=timezone.now())
    offered = wl.waiting_list_sweep(now=timezone.now()).offered
    assert [entry.pk for entry in offered] == [entries[0].pk, entries[1].pk]
    baskets = [WaitingListEntry.objects.get(pk=entry.pk).basket.token for entry in offered]

    def work(i: int) -> object:
        if i < 2:
            return checkout.order_place(
                token=baskets[i], name="Waiter", email=f"wait{i}@example.com", payment_method="test", now=timezone.now()
            ).order.status
        return public_buyer(ticket_type)

    results = run_at_once(THREADS, work)
    ticket_type.refresh_from_db()
    return {"results": results, "sold": ticket_type.sold, "public": public_holds(ticket_type)}


def test_an_open_offer_s_seats_go_to_nobody_else():
    outcome = race_offers_against_the_public()
    print("offers vs public:", {key: value for key, value in outcome.items() if key != "results"})  # the figure
    results = outcome["results"]
    assert results[:2] == [Order.Status.PAID, Order.Status.PAID]
    assert results[2:] == [0] * (THREADS - 2)  # every other shopper was refused, throughout
    assert (outcome["sold"], outcome["public"]) == (3, 0)
    assert WaitingListEntry.objects.filter(status=WaitingListEntry.Status.USED).count() == 2


def test_control_without_counting_the_offer_s_hold_the_public_takes_its_seats(monkeypatch):
    """The same race with the offers' holds left out of the count: the public gets seats the offers hold, and the
    checks above see it."""
    real = seat_protocol.held_by_others

    def offers_ignored(*, ticket_type_id: int, basket_id: int, now: object) -> int:
        offer_holds = Hold.objects.filter(ticket_type_id=ticket_type_id, basket__for_offer=True, expires_at__gt=now)
        ignored = sum(offer_holds.exclude(basket_id=basket_id).values_list("quantity", flat=True))
        return real(ticket_type_id=ticket_type_id, basket_id=basket_id, now=now) - ignored

    monkeypatch.setattr(seat_protocol, "held_by_others", offers_ignored)
    outcome = race_offers_against_the_public()
    print("control, offers vs public:", {key: value for key, value in outcome.items() if key != "results"})
    assert sum(result for result in outcome["results"][2:] if isinstance(result, int)) > 0


# --- freed seats go to the line first -------------------------------------------------------------------------


def race_cancellations_against_the_public() -> dict[str, object]:
    """Three seats come free, by three cancellations at once, while THREADS - 3 shoppers keep trying for one, and
    three people wait."""
    ticket_type, orders, _ = sold_out_with_line(seats=5, in_line=3)

    def work(i: int) -> object:
        if i < 3:
            return services.order_cancel(order_id=orders[i].pk, now=timezone.now()).status
        return public_buyer(ticket_type)

    results = run_at_once(THREADS, work)
    public = public_holds(ticket_type)
    offered = wl.waiting_list_sweep(now=timezone.now()).offered
    return {"results": results, "public": public, "offered": len(offered)}


def test_seats_freed_while_someone_waits_never_go_to_the_public():
    outcome = race_cancellations_against_the_public()
    print("freed seats vs public:", {key: value for key, value in outcome.items() if key != "results"})
    results = outcome["results"]
    assert results[:3] == [Order.Status.CANCELLED] * 3
    assert results[3:] == [0] * (THREADS - 3)
    assert (outcome["public"], outcome["offered"]) == (0, 3)  # all three went to the line, in turn


def test_control_without_the_line_s_counter_the_public_takes_freed_seats(monkeypatch):
    """The same race with `free_seats` blind to what the list wants: the public takes freed seats from under the
    people waiting, and the checks above see it."""

    def line_ignored(*, seats: seat_protocol.Seats, basket_id: int, now: object) -> int:
        held = seat_protocol.held_by_others(ticket_type_id=seats.ticket_type_id, basket_id=basket_id, now=now)
        return seats.capacity - seats.sold - held

    monkeypatch.setattr(seat_protocol, "free_seats", line_ignored)
    outcome = race_cancellations_against_the_public()
    print("control, freed seats vs public:", {key: value for key, value in outcome.items() if key != "results"})
    assert outcome["public"] > 0
    assert outcome["offered"] < 3
