"""The waiting list's rules: double opt-in, strict first-come offers of freed seats, offers that expire and pass on,
leaving, a list the organizer closes, and the seats the list wants kept from the public throughout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import Sum
from django.utils import timezone

from aegistickets.errors import (
    MaxPerOrderExceededError,
    NotFoundError,
    OfferEndedError,
    SoldOutError,
    TicketsAvailableError,
    WaitingListClosedError,
)
from events.models import TicketType
from orders import checkout, outbox, services
from orders import waiting_list as wl
from orders.models import Basket, Hold, Order, OutboundEmail, WaitingListEntry

pytestmark = pytest.mark.django_db

Status = WaitingListEntry.Status


def join(ticket_type, email, quantity=1, now=None):
    return wl.waiting_list_join(
        ticket_type_id=ticket_type.pk, email=email, quantity=quantity, language="en", now=now or timezone.now()
    )


def in_line(ticket_type, email, quantity=1, now=None):
    """Joined and confirmed."""
    entry = join(ticket_type, email, quantity, now=now)
    return wl.waiting_list_confirm(token=entry.token, now=now or timezone.now())


def waiting_counter(ticket_type) -> int:
    return TicketType.objects.get(pk=ticket_type.pk).waiting


def assert_counter_matches_line(ticket_type):
    """The invariant: `waiting` is what the confirmed entries not offered seats yet want, no more, no less."""
    wanted = WaitingListEntry.objects.filter(ticket_type=ticket_type, status=Status.WAITING).aggregate(
        total=Sum("quantity", default=0)
    )["total"]
    assert waiting_counter(ticket_type) == wanted


def free_a_seat(ticket_type, now=None):
    services.order_cancel(order_id=ticket_type.orders.pop().pk, now=now or timezone.now())


def public_add(ticket_type, quantity=1, now=None):
    return services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=now or timezone.now())


def refresh(entry) -> WaitingListEntry:
    return WaitingListEntry.objects.get(pk=entry.pk)


# --- joining -------------------------------------------------------------------------------------------------


def test_joining_needs_a_sold_out_ticket_type(ticket_type):
    with pytest.raises(TicketsAvailableError) as refused:
        join(ticket_type, "ada@example.com")
    assert refused.value.code == "tickets_available"
    assert not WaitingListEntry.objects.exists()


def test_joining_when_fewer_seats_are_left_than_wanted_is_allowed(sold_out):
    free_a_seat(sold_out)
    entry = join(sold_out, "ada@example.com", quantity=2)
    assert entry.status == Status.UNCONFIRMED


def test_joining_is_unconfirmed_and_emails_the_link_to_confirm(sold_out):
    entry = join(sold_out, "  Ada@Example.com ")
    assert (entry.status, entry.email, entry.quantity) == (Status.UNCONFIRMED, "ada@example.com", 1)
    assert waiting_counter(sold_out) == 0  # nothing counts before the address is proven
    (email,) = OutboundEmail.objects.filter(kind=OutboundEmail.Kind.WAITING_LIST_CONFIRM)
    assert (email.recipient, email.waiting_entry_id, email.order_id) == ("ada@example.com", entry.pk, None)


def test_joining_again_keeps_the_one_place_and_sends_the_link_again(sold_out):
    first = join(sold_out, "ada@example.com")
    again = join(sold_out, "ADA@example.com", quantity=3)
    assert again.pk == first.pk
    assert again.quantity == 1
    assert WaitingListEntry.objects.count() == 1
    assert OutboundEmail.objects.filter(kind=OutboundEmail.Kind.WAITING_LIST_CONFIRM).count() == 2


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"quantity": 5}, MaxPerOrderExceededError),
        ({"ticket_type_id": 10**9}, NotFoundError),
    ],
)
def test_bad_joins_are_refused_and_change_nothing(sold_out, change, error):
    args = {"ticket_type_id": sold_out.pk, "email": "ada@example.com", "quantity": 1, **change}
    with pytest.raises(error):
        wl.waiting_list_join(**args, language="en", now=timezone.now())
    assert not WaitingListEntry.objects.exists()
    assert not OutboundEmail.objects.filter(recipient__gt="").exists()


def test_a_hidden_or_unpublished_ticket_type_has_no_waiting_list(sold_out):
    TicketType.objects.filter(pk=sold_out.pk).update(requires_voucher=True)
    with pytest.raises(NotFoundError):
        join(sold_out, "ada@example.com")


def test_an_event_without_a_waiting_list_refuses_to_join(sold_out):
    sold_out.event.waiting_list_enabled = False
    sold_out.event.save()
    with pytest.raises(WaitingListClosedError) as refused:
        join(sold_out, "ada@example.com")
    assert refused.value.code == "waiting_list_closed"


# --- confirming and the counter ------------------------------------------------------------------------------


def test_confirming_puts_the_entry_in_line_and_keeps_its_seats_from_the_public(sold_out):
    entry = in_line(sold_out, "ada@example.com", quantity=1)
    assert entry.status == Status.WAITING
    assert entry.confirmed_at is not None
    assert waiting_counter(sold_out) == 1
    free_a_seat(sold_out)
    with pytest.raises(SoldOutError):
        public_add(sold_out)  # the freed seat is the list's
    assert_counter_matches_line(sold_out)


def test_confirming_twice_changes_nothing(sold_out):
    entry = in_line(sold_out, "ada@example.com", quantity=2)
    again = wl.waiting_list_confirm(token=entry.token, now=timezone.now() + timedelta(minutes=5))
    assert again.confirmed_at == entry.confirmed_at
    assert waiting_counter(sold_out) == 2


def test_an_unknown_token_is_not_found(db):
    with pytest.raises(NotFoundError):
        wl.waiting_list_confirm(token="nope", now=timezone.now())
    with pytest.raises(NotFoundError):
        wl.waiting_list_leave(token="nope", now=timezone.now())


def test_seats_beyond_what_the_list_wants_stay_on_sale(sold_out):
    in_line(sold_out, "ada@example.com", quantity=1)
    TicketType.objects.filter(pk=sold_out.pk).update(capacity=4)  # two more seats: one for Ada, one for anyone
    assert public_add(sold_out).just_held.quantity == 1
    with pytest.raises(SoldOutError):
        public_add(sold_out)


# --- offers --------------------------------------------------------------------------------------------------


def test_a_freed_seat_is_offered_to_the_first_in_line(sold_out, now):
    first = in_line(sold_out, "ada@example.com", now=now)
    second = in_line(sold_out, "bob@example.com", now=now + timedelta(seconds=1))
    free_a_seat(sold_out, now=now)
    sweep = wl.waiting_list_sweep(now=now)
    assert [entry.pk for entry in sweep.offered] == [first.pk]
    offered = refresh(first)
    assert offered.status == Status.OFFERED
    assert offered.offer_expires_at == now + timedelta(minutes=30)
    (hold,) = Hold.objects.filter(basket=offered.basket)
    assert (hold.quantity, hold.expires_at, offered.basket.for_offer) == (1, offered.offer_expires_at, True)
    assert refresh(second).status == Status.WAITING
    assert OutboundEmail.objects.filter(kind=OutboundEmail.Kind.WAITING_LIST_OFFER, waiting_entry=first).count() == 1
    with pytest.raises(SoldOutError):
        public_add(sold_out, now=now)  # the offered seat is held for Ada, and Bob still waits
    assert_counter_matches_line(sold_out)


def test_offers_are_strictly_first_come(sold_out, now):
    """The first in line wants two: one free seat is offered to nobody, not to the second who wants one."""
    first = in_line(sold_out, "ada@example.com", quantity=2, now=now)
    second = in_line(sold_out, "bob@example.com", quantity=1, now=now + timedelta(seconds=1))
    free_a_seat(sold_out, now=now)
    assert wl.waiting_list_sweep(now=now).offered == []
    free_a_seat(sold_out, now=now)
    assert [entry.pk for entry in wl.waiting_list_sweep(now=now).offered] == [first.pk]
    assert refresh(second).status == Status.WAITING
    assert_counter_matches_line(sold_out)


def test_an_offer_not_used_in_time_passes_to_the_next(sold_out, now):
    first = in_line(sold_out, "ada@example.com", now=now)
    second = in_line(sold_out, "bob@example.com", now=now + timedelta(seconds=1))
    free_a_seat(sold_out, now=now)
    wl.waiting_list_sweep(now=now)
    later = now + timedelta(minutes=30)
    sweep = wl.waiting_list_sweep(now=later)
    assert sweep.expired == 1
    assert [entry.pk for entry in sweep.offered] == [second.pk]
    assert refresh(first).status == Status.EXPIRED
    assert refresh(second).status == Status.OFFERED
    with pytest.raises(OfferEndedError):
        wl.waiting_offer_basket(token=first.token, now=later)


def test_an_offer_expiring_with_nobody_left_in_line_returns_the_seat_to_sale(sold_out, now):
    in_line(sold_out, "ada@example.com", now=now)
    free_a_seat(sold_out, now=now)
    wl.waiting_list_sweep(now=now)
    later = now + timedelta(minutes=31)
    wl.waiting_list_sweep(now=later)
    assert public_add(sold_out, now=later).just_held.quantity == 1


def test_the_offer_link_opens_a_basket_that_checks_out_and_uses_the_offer(sold_out, now):
    entry = in_line(sold_out, "ada@example.com", now=now)
    free_a_seat(sold_out, now=now)
    wl.waiting_list_sweep(now=now)
    basket = wl.waiting_offer_basket(token=entry.token, now=now + timedelta(minutes=20))
    # Past HOLD_MINUTES, within the offer: the seats are still held for Ada.
    result = checkout.order_place(
        token=basket.token,
        name="Ada Lovelace",
        email="ada@example.com",
        payment_method="test",
        now=now + timedelta(minutes=20),
    )
    used = refresh(entry)
    assert (used.status, used.order_id) == (Status.USED, result.order.pk)
    assert result.order.status == Order.Status.PAID
    assert TicketType.objects.get(pk=sold_out.pk).sold == 2


def test_adding_to_an_offer_basket_keeps_the_offer_s_time(sold_out, now):
    entry = in_line(sold_out, "ada@example.com", now=now)
    free_a_seat(sold_out, now=now)
    wl.waiting_list_sweep(now=now)
    basket = wl.waiting_offer_basket(token=entry.token, now=now)
    TicketType.objects.filter(pk=sold_out.pk).update(capacity=3)  # one more seat, on sale to anyone
    services.basket_add(token=basket.token, ticket_type_id=sold_out.pk, quantity=1, now=now + timedelta(minutes=1))
    offered_hold = Hold.objects.get(basket=basket, ticket_type=sold_out)
    assert (offered_hold.quantity, offered_hold.expires_at) == (2, now + timedelta(minutes=30))


# --- leaving and closing -------------------------------------------------------------------------------------


def test_leaving_while_waiting_gives_the_place_up(sold_out, now):
    entry = in_line(sold_out, "ada@example.com", quantity=2, now=now)
    left = wl.waiting_list_leave(token=entry.token, now=now)
    assert left.status == Status.LEFT
    assert left.ended_at == now
    assert waiting_counter(sold_out) == 0
    assert wl.waiting_list_leave(token=entry.token, now=now).status == Status.LEFT  # twice: nothing more


def test_leaving_with_an_open_offer_passes_the_seats_on(sold_out, now):
    first = in_line(sold_out, "ada@example.com", now=now)
    second = in_line(sold_out, "bob@example.com", now=now + timedelta(seconds=1))
    free_a_seat(sold_out, now=now)
    wl.waiting_list_sweep(now=now)
    wl.waiting_list_leave(token=first.token, now=now)
    assert not Hold.objects.filter(basket=refresh(first).basket).exists()
    assert [entry.pk for entry in wl.waiting_list_sweep(now=now).offered] == [second.pk]


def test_switching_the_list_off_closes_it_and_frees_its_seats(sold_out, now):
    entry = in_line(sold_out, "ada@example.com", now=now)
    unconfirmed = join(sold_out, "bob@example.com", now=now)
    free_a_seat(sold_out, now=now)
    sold_out.event.waiting_list_enabled = False
    sold_out.event.save()
    sweep = wl.waiting_list_sweep(now=now)
    assert (sweep.closed, sweep.offered) == (2, [])
    assert {refresh(entry).status, refresh(unconfirmed).status} == {Status.CLOSED}
    assert waiting_counter(sold_out) == 0
    assert public_add(sold_out, now=now).just_held.quantity == 1
    assert wl.waiting_list_confirm(token=unconfirmed.token, now=now).status == Status.CLOSED


def test_confirming_after_the_list_was_switched_off_is_refused(sold_out, now):
    entry = join(sold_out, "ada@example.com", now=now)
    sold_out.event.waiting_list_enabled = False
    sold_out.event.save()
    with pytest.raises(WaitingListClosedError):
        wl.waiting_list_confirm(token=entry.token, now=now)
    assert refresh(entry).status == Status.CLOSED
    assert waiting_counter(sold_out) == 0


def test_a_link_never_confirmed_lapses(sold_out, now):
    entry = join(sold_out, "ada@example.com", now=now)
    assert wl.waiting_list_sweep(now=now + timedelta(hours=47)).lapsed == 0
    assert wl.waiting_list_sweep(now=now + timedelta(hours=48)).lapsed == 1
    assert refresh(entry).status == Status.EXPIRED


def test_an_idle_sweep_writes_nothing(sold_out, now, django_assert_max_num_queries):
    in_line(sold_out, "ada@example.com", now=now)
    with django_assert_max_num_queries(4):
        sweep = wl.waiting_list_sweep(now=now)
    assert (sweep.expired, sweep.closed, sweep.lapsed, sweep.offered) == (0, 0, 0, [])


def test_positions_count_the_confirmed_in_line_order(sold_out, now):
    entries = [in_line(sold_out, f"p{i}@example.com", now=now + timedelta(seconds=i)) for i in range(3)]
    join(sold_out, "late@example.com", now=now)  # unconfirmed: no place yet
    assert [wl.waiting_position(entry) for entry in entries] == [1, 2, 3]
    wl.waiting_list_leave(token=entries[0].token, now=now)
    assert [wl.waiting_position(refresh(entry)) for entry in entries] == [None, 1, 2]
    annotated = wl.waiting_list_with_positions(WaitingListEntry.objects.order_by("id"))
    assert [entry.position for entry in annotated] == [None, 1, 2, None]


def test_the_counter_follows_the_line_through_every_step(sold_out, now):
    steps = [
        lambda: in_line(sold_out, "a@example.com", quantity=2, now=now),
        lambda: in_line(sold_out, "b@example.com", quantity=1, now=now + timedelta(seconds=1)),
        lambda: free_a_seat(sold_out, now=now),
        lambda: wl.waiting_list_sweep(now=now),
        lambda: free_a_seat(sold_out, now=now),
        lambda: wl.waiting_list_sweep(now=now),
        lambda: wl.waiting_list_sweep(now=now + timedelta(minutes=30)),
        lambda: wl.waiting_list_leave(token=WaitingListEntry.objects.get(email="b@example.com").token, now=now),
    ]
    for step in steps:
        step()
        assert_counter_matches_line(sold_out)


# --- emails --------------------------------------------------------------------------------------------------


def send_all(now):
    return outbox.outbox_send_due(now=now, limit=50)


def test_the_confirmation_email_carries_the_private_link_and_a_one_click_way_out(sold_out, now):
    entry = join(sold_out, "ada@example.com", now=now)
    send_all(now)
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"]
    assert f"/waiting-list/{entry.token}/" in message.body
    assert message.extra_headers["List-Unsubscribe"].endswith(f"/waiting-list/{entry.token}/leave/>")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sold_out.event.name in message.subject


def test_the_offer_email_links_to_the_basket_and_says_until_when(sold_out, now):
    entry = in_line(sold_out, "ada@example.com", now=now)
    free_a_seat(sold_out, now=now)
    wl.waiting_list_sweep(now=now)
    mail.outbox.clear()
    send_all(now)
    offers = [message for message in mail.outbox if f"/waiting-list/{entry.token}/offer/" in message.body]
    assert len(offers) == 1
    assert offers[0].to == ["ada@example.com"]


def test_an_offer_that_ended_before_its_email_went_out_is_not_sent(sold_out, now):
    entry = in_line(sold_out, "ada@example.com", now=now)
    free_a_seat(sold_out, now=now)
    wl.waiting_list_sweep(now=now)
    wl.waiting_list_leave(token=entry.token, now=now)
    mail.outbox.clear()
    send_all(now)
    assert not [message for message in mail.outbox if "/offer/" in message.body]
    offer_email = OutboundEmail.objects.get(kind=OutboundEmail.Kind.WAITING_LIST_OFFER)
    assert offer_email.status == OutboundEmail.Status.SKIPPED  # done with, unsent: never retried


def test_the_offer_basket_is_a_basket_of_its_own(sold_out, now):
    entry = in_line(sold_out, "ada@example.com", now=now)
    free_a_seat(sold_out, now=now)
    wl.waiting_list_sweep(now=now)
    assert Basket.objects.filter(for_offer=True).get() == refresh(entry).basket
