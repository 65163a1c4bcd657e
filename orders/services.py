"""Writes of the orders app: baskets, cancellation, refunds, check-in (checkout and payments: orders/checkout.py).

Every write that touches seats owns its transaction and follows the seat protocol of `orders/seats.py`: its one
lock primitive and its one lock order. Nothing slow runs while those locks are held; the payment provider is called
after they are released, emails are queued in the same transaction and sent by the worker (orders/outbox.py).
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from aegistickets.errors import (
    AlreadyCheckedInError,
    BasketEmptyError,
    BasketNotFoundError,
    CancellationClosedError,
    InsufficientInventoryError,
    MaxPerOrderExceededError,
    NotFoundError,
    NotOnSaleError,
    OrderNotCancellableError,
    OrderNotRefundableError,
    RefundTooLargeError,
    SoldOutError,
    TicketCancelledError,
    TicketNotCancellableError,
    TicketNotFoundError,
    ValidationFailedError,
    VoucherExhaustedError,
    VoucherInvalidError,
    WrongEventError,
)
from aegistickets.money import format_money
from events.cache import catalog_cached, recently_sold_out, remember_sold_out
from events.models import Event, TicketType, Voucher
from events.selectors import buyer_may_cancel, ticket_type_is_on_sale, voucher_applies, voucher_for
from orders import metrics, outbox, seats, selectors
from orders.models import (
    Basket,
    CheckIn,
    Hold,
    Order,
    OrderLine,
    OutboundEmail,
    Refund,
    Ticket,
)
from orders.payments import PaymentResult, payment_provider_named
from orders.selectors import order_refundable, tickets_price


def hold_duration() -> timedelta:
    return timedelta(minutes=settings.HOLD_MINUTES)


# --- basket ---------------------------------------------------------------------------------------------------


@metrics.records_outcome("basket", lambda basket: "held")
def basket_add(*, token: str | None, ticket_type_id: int, quantity: int, now: datetime, voucher: str = "") -> Basket:
    """Holds seats for HOLD_MINUTES; never holds more than capacity − sold − other baskets' holds, nor more of a
    voucher's redemptions than it has left. A voucher prices every seat of the hold (and a hold keeps its voucher
    when more seats are added without one)."""
    ticket_type = _buyable(ticket_type_id=ticket_type_id, quantity=quantity, now=now)
    given = _voucher_for(voucher, ticket_type=ticket_type, now=now) if voucher else None
    with transaction.atomic():
        # The basket row first, then the voucher, then the ticket type: the seat protocol's lock order.
        basket = seats.lock_basket(token=token) if token else seats.new_basket()
        held = _hold_of(basket, ticket_type_id) if token else None  # a new basket holds nothing yet
        priced_with = _priced_with(ticket_type, given=given, held=held)
        already = held.quantity if held is not None else 0
        if already + quantity > ticket_type.max_per_order:
            raise _max_per_order_error(ticket_type, already=already)
        # Write first, decide under the lock: nobody sees this hold before commit, a refusal rolls it back, and the
        # hot row stays locked for two statements only (the lock, the count; then commit).
        hold = seats.hold(
            basket=basket,
            ticket_type_id=ticket_type_id,
            held=held,
            quantity=already + quantity,
            expires_at=_hold_until(basket, held, now=now),
            voucher_id=priced_with.pk if priced_with is not None else None,
        )
        if priced_with is not None:
            _refuse_unless_redeemable(priced_with, basket_id=basket.pk, wanted=hold.quantity, now=now)
        locked = seats.lock_ticket_type(ticket_type_id)
        available = seats.free_seats(seats=locked, basket_id=basket.pk, now=now)
        if available <= 0:
            remember_sold_out(ticket_type_id)
        _refuse_unless_available(ticket_type=ticket_type, wanted=hold.quantity, already=already, available=available)
    ticket_type.price = locked.price  # this copy came from the catalog cache; the lock's price is the truth
    hold.ticket_type = ticket_type
    hold.voucher = priced_with
    basket.just_held = hold
    return basket


def _hold_until(basket: Basket, held: Hold | None, *, now: datetime) -> datetime:
    """HOLD_MINUTES from now; a waiting-list offer's seats stay held until the offer ends, however the shopper
    changes the basket."""
    until = now + hold_duration()
    return max(until, held.expires_at) if basket.for_offer and held is not None else until


def _hold_of(basket: Basket, ticket_type_id: int) -> Hold | None:
    return Hold.objects.select_related("voucher").filter(basket=basket, ticket_type_id=ticket_type_id).first()


def _priced_with(ticket_type: TicketType, *, given: Voucher | None, held: Hold | None) -> Voucher | None:
    """The voucher a hold's seats are priced with: the one given, else the one it had. A hidden ticket type is sold
    only with one (it unlocked it); without, it is as if it did not exist."""
    priced_with = given or (held.voucher if held is not None else None)
    if ticket_type.requires_voucher and priced_with is None:
        raise NotFoundError(_("No such ticket type."))
    return priced_with


def _voucher_for(code: str, *, ticket_type: TicketType, now: datetime) -> Voucher:
    """The voucher a shopper typed for this ticket type, refused (voucher_invalid, voucher_expired) unless it is
    valid now and prices or unlocks it."""
    found = voucher_for(code=code, organizer_ids=[ticket_type.event.organizer_id], now=now)
    if not voucher_applies(found, ticket_type):
        raise VoucherInvalidError(
            _("The voucher code %(code)s is not valid for %(ticket_type)s tickets.")
            % {"code": found.code, "ticket_type": ticket_type.name}
        )
    return found


def _refuse_unless_redeemable(voucher: Voucher, *, basket_id: int, wanted: int, now: datetime) -> None:
    """Under the voucher's lock: a basket may hold a voucher for as many seats as it has redemptions left."""
    (locked,) = seats.lock_vouchers([voucher.pk]).values()
    free = seats.free_redemptions(voucher=locked, basket_id=basket_id, now=now)
    if wanted > free:
        left = max(free, 0)
        raise VoucherExhaustedError(
            _("The voucher code %(code)s is used up.") % {"code": voucher.code}
            if not left
            else ngettext(
                "The voucher code %(code)s is good for only %(left)d more ticket.",
                "The voucher code %(code)s is good for only %(left)d more tickets.",
                left,
            )
            % {"code": voucher.code, "left": left},
            extra={"available": left},
        )


def basket_apply_voucher(*, token: str, code: str, now: datetime) -> Basket:
    """Prices every seat of the basket that the voucher covers with it, if it has the redemptions left for all of
    them; refused as a whole (voucher_invalid when it covers nothing in the basket)."""
    holds = seats.basket_holds(token=token)
    if not holds:
        if not Basket.objects.filter(token=token).exists():
            raise BasketNotFoundError()
        raise BasketEmptyError()
    organizers = {hold.ticket_type.event.organizer_id for hold in holds}
    found = voucher_for(code=code, organizer_ids=organizers, now=now)
    covered = [hold for hold in holds if voucher_applies(found, hold.ticket_type)]
    if not covered:
        raise VoucherInvalidError(
            _("The voucher code %(code)s is not valid for the tickets in your basket.") % {"code": found.code}
        )
    with transaction.atomic():
        basket = seats.lock_basket(token=token)
        covered_now = Hold.objects.filter(basket_id=basket.pk, pk__in=[hold.pk for hold in covered])
        wanted = sum(covered_now.values_list("quantity", flat=True))
        _refuse_unless_redeemable(found, basket_id=basket.pk, wanted=wanted, now=now)
        covered_now.update(voucher=found)
    return basket


def _buyable(*, ticket_type_id: int, quantity: int, now: datetime) -> TicketType:
    """Every refusal of a basket add that needs no lock, decided before taking one: in an on-sale rush most answers
    are "sold out", and they must not queue for the hot row's lock. The ticket type's own fields come from the
    catalog cache (at most CATALOG_CACHE_SECONDS old); seats are counted under the lock."""
    if quantity < 1:
        raise ValidationFailedError(errors={"quantity": [_("Must be at least 1.")]})
    ticket_type: TicketType | None = catalog_cached(
        f"tickettype:{ticket_type_id}",
        lambda: TicketType.objects.select_related("event").filter(pk=ticket_type_id).first(),
    )
    if ticket_type is None or not ticket_type.event.is_published:
        raise NotFoundError(_("No such ticket type."))
    if not ticket_type_is_on_sale(ticket_type, now=now):
        raise NotOnSaleError(
            _("%(ticket_type)s tickets are not on sale right now.") % {"ticket_type": ticket_type.name}
        )
    if quantity > ticket_type.max_per_order:
        raise _max_per_order_error(ticket_type, already=0)
    if recently_sold_out(ticket_type_id):
        raise SoldOutError(
            _("%(ticket_type)s is sold out.") % {"ticket_type": ticket_type.name}, extra={"available": 0}
        )
    return ticket_type


def _max_per_order_error(ticket_type: TicketType, *, already: int) -> MaxPerOrderExceededError:
    return MaxPerOrderExceededError(
        (
            _("At most %(max)d %(ticket_type)s tickets per order; your basket already holds %(already)d.")
            if already
            else _("At most %(max)d %(ticket_type)s tickets per order.")
        )
        % {"max": ticket_type.max_per_order, "ticket_type": ticket_type.name, "already": already},
        extra={"max_per_order": ticket_type.max_per_order},
    )


def _refuse_unless_available(*, ticket_type: TicketType, wanted: int, already: int, available: int) -> None:
    if wanted > available:
        more = max(available - already, 0)
        if more == 0:
            raise SoldOutError(
                _("%(ticket_type)s is sold out.") % {"ticket_type": ticket_type.name}, extra={"available": 0}
            )
        raise InsufficientInventoryError(
            ngettext(
                "Only %(more)d more %(ticket_type)s ticket is available.",
                "Only %(more)d more %(ticket_type)s tickets are available.",
                more,
            )
            % {"more": more, "ticket_type": ticket_type.name},
            extra={"available": more},
        )


def basket_remove_item(*, token: str, hold_id: int) -> None:
    """Deletes one line of a basket; its seats are free for others at once."""
    with transaction.atomic():
        basket = seats.lock_basket(token=token)
        deleted = seats.release_holds(basket.pk, hold_ids=[hold_id])
    if not deleted:
        raise NotFoundError(_("No such item in this basket."))


# --- cancellation and refunds ---------------------------------------------------------------------------------


def _email_buyer(order: Order, kind: str, *, now: datetime) -> None:
    """Queues a cancellation or refund email in the buyer's language, after the notice delay (by then it can say
    whether the refund went through)."""
    outbox.outbox_enqueue(
        kind=kind, order_id=order.pk, language=order.language, now=now, delay=outbox.CANCELLATION_NOTICE_DELAY
    )


def order_cancel(*, order_id: int, now: datetime) -> Order:
    """Cancels a paid order: its tickets stop admitting and its seats return to sale in one transaction, which also
    records one pending refund; the provider is asked for the money only after that commits.

    Why this order of steps: refunding first and then failing to commit (a concurrent cancel, a crash) would return
    money for an order that still admits people, or return it twice. Committing first means the worst case is a
    refund left `pending`/`failed` on record, which `refund_process` retries; the unique refund per order and the
    claim in `refund_process` make a second payout impossible.
    """
    with transaction.atomic():
        order = seats.lock_order(order_id)
        if not order.can_become(Order.Status.CANCELLED):
            raise OrderNotCancellableError(
                _("Order %(code)s is %(status)s; only paid orders can be cancelled.")
                % {"code": order.code, "status": order.get_status_display()}
            )
        # The buyer's notice is queued with the cancellation, and replaces the confirmation if that has not gone out
        # yet; the worker sends it a little later, by when the refund below has usually been answered, so the email
        # can say where the money stands.
        outbox.outbox_withdraw_confirmation(order_id=order.pk, now=now)
        _email_buyer(order, OutboundEmail.Kind.ORDER_CANCELLATION, now=now)
        seats.give_back(seats.taken_by(Ticket.objects.filter(order_id=order.pk)))  # the seat rows, locked last
        order.status = Order.Status.CANCELLED
        order.cancelled_at = now
        order.save(update_fields=["status", "cancelled_at"])
        refund = Refund.objects.create(
            order=order,
            amount=order_refundable(order),
            currency=order.currency,
            provider=order.payment_method,
            created_at=now,
        )
        # After commit, outside every lock: the money.
        transaction.on_commit(functools.partial(_after_cancel, refund_id=refund.pk), robust=True)
    return order


def refund_part(*, order_id: int, amount: Decimal, note: str, now: datetime) -> Refund:
    """Returns part of a paid order's money (a goodwill gesture, a price cut); its tickets stay valid. Never more in
    all than the order's total: decided under the order's lock, against every refund on record. Refunding the
    last of it makes the order `refunded` (its tickets stop admitting); the provider is asked after commit."""
    with transaction.atomic():
        order = seats.lock_order(order_id)
        if order.status != Order.Status.PAID:
            raise OrderNotRefundableError(
                _("Order %(code)s is %(status)s; only paid orders can be refunded.")
                % {"code": order.code, "status": order.get_status_display()}
            )
        left = order_refundable(order)
        if amount > left:
            raise RefundTooLargeError(
                _("At most %(amount)s of this order is left to refund.")
                % {"amount": format_money(left, currency=order.currency)},
                extra={"refundable": str(left)},
            )
        refund = Refund.objects.create(
            order=order,
            reason=Refund.Reason.PARTIAL,
            note=note[:500],
            amount=amount,
            currency=order.currency,
            provider=order.payment_method,
            created_at=now,
        )
        # The buyer's notice, queued with the refund and sent a little later, by when the provider has usually
        # answered, so the email can say where the money stands.
        _email_buyer(order, OutboundEmail.Kind.REFUND, now=now)
        if amount == left:
            order.status = Order.Status.REFUNDED
            order.save(update_fields=["status"])
            seats.give_back(seats.taken_by(Ticket.objects.filter(order_id=order.pk)))
        transaction.on_commit(functools.partial(_after_cancel, refund_id=refund.pk), robust=True)
    return refund


def tickets_cancel(*, order_id: int, codes: Collection[str], note: str, now: datetime) -> Refund:
    """Cancels some of a paid order's tickets and refunds what they cost, in one transaction under the order's lock:
    they stop admitting, their seats return to sale, one refund of their prices is recorded; the provider is asked
    after commit. The rest of the order stays valid; cancelling its last valid ticket cancels the order."""
    with transaction.atomic():
        order = seats.lock_order(order_id)
        if order.status != Order.Status.PAID:
            raise OrderNotRefundableError(
                _("Order %(code)s is %(status)s; only paid orders can be refunded.")
                % {"code": order.code, "status": order.get_status_display()}
            )
        tickets = _cancellable_tickets(order, codes)
        amount = tickets_price(tickets)
        left = order_refundable(order)
        if amount > left:
            raise RefundTooLargeError(
                _("These tickets cost %(amount)s; only %(left)s of this order is left to refund.")
                % {
                    "amount": format_money(amount, currency=order.currency),
                    "left": format_money(left, currency=order.currency),
                },
                extra={"refundable": str(left), "amount": str(amount)},
            )
        return _cancel_tickets(order, tickets, amount=amount, reason=Refund.Reason.TICKETS, note=note, now=now)


def tickets_cancel_by_buyer(*, order_id: int, codes: Collection[str], now: datetime) -> Refund:
    """The buyer cancels some of their tickets from the private order page: as `tickets_cancel`, where each
    ticket's event lets buyers cancel and until its deadline, decided under the order's lock. The refund is what the
    tickets cost, at most what is left of the order (a goodwill refund may have returned part of it already)."""
    with transaction.atomic():
        order = seats.lock_order(order_id)
        if order.status != Order.Status.PAID:
            raise OrderNotRefundableError(
                _("Order %(code)s is %(status)s; only paid orders can be cancelled.")
                % {"code": order.code, "status": order.get_status_display()}
            )
        tickets = _cancellable_tickets(order, codes)
        closed = sorted(ticket.code for ticket in tickets if not buyer_may_cancel(ticket.ticket_type.event, now=now))
        if closed:
            raise CancellationClosedError(
                _("These tickets can no longer be cancelled here: %(tickets)s. Ask the organizer.")
                % {"tickets": ", ".join(closed)},
                extra={"tickets": closed},
            )
        amount = min(tickets_price(tickets), order_refundable(order))
        note = "Cancelled by the buyer."
        return _cancel_tickets(order, tickets, amount=amount, reason=Refund.Reason.TICKETS, note=note, now=now)


def event_tickets_cancel(*, order_id: int, event_id: int, now: datetime) -> Refund | None:
    """The event is cancelled: a paid order's valid tickets of it are cancelled (admitted at the door or not) and
    refunded, decided under the order's lock. An order with no other valid ticket is cancelled as a whole
    (`order_cancel`: the rest of its money back, the cancellation email); one that also holds tickets of other
    events keeps those, and what this event's cost is refunded, at most what is left of the order to refund.
    None if the order has no such ticket (any more)."""
    with transaction.atomic():
        order = seats.lock_order(order_id)
        if order.status != Order.Status.PAID:
            return None
        valid = list(order.tickets.select_related("line", "ticket_type").filter(cancelled_at__isnull=True))
        tickets = [ticket for ticket in valid if ticket.ticket_type.event_id == event_id]
        if not tickets:
            return None
        if len(tickets) == len(valid):
            order_cancel(order_id=order.pk, now=now)  # the same transaction; the lock is this one's already
            return order.refunds.get(reason=Refund.Reason.CANCELLATION)
        amount = min(tickets_price(tickets), order_refundable(order))
        return _cancel_tickets(order, tickets, amount=amount, reason=Refund.Reason.EVENT_CANCELLED, note="", now=now)


def _cancel_tickets(
    order: Order, tickets: list[Ticket], *, amount: Decimal, reason: str, note: str, now: datetime
) -> Refund:
    """Inside the caller's transaction, under the order's lock: the tickets void, one refund of `amount` recorded
    (asked of the provider after commit), the buyer's notice queued, the seats back on sale; cancelling the order's
    last valid ticket cancels the order."""
    refund = Refund.objects.create(
        order=order,
        reason=reason,
        note=note[:500],
        amount=amount,
        currency=order.currency,
        provider=order.payment_method,
        created_at=now,
    )
    voided = Ticket.objects.filter(pk__in=[ticket.pk for ticket in tickets])
    taken = seats.taken_by(voided)
    voided.update(cancelled_at=now, refund=refund)
    if not seats.valid_seats(order.pk):
        order.status, order.cancelled_at = Order.Status.CANCELLED, now
        order.save(update_fields=["status", "cancelled_at"])
    # The buyer's notice, queued with the change and sent a little later, by when the refund has usually been
    # answered, so the email can say where the money stands.
    _email_buyer(order, OutboundEmail.Kind.TICKETS_CANCELLED, now=now)
    seats.give_back(taken)  # the voucher and seat rows, locked last
    transaction.on_commit(functools.partial(_after_cancel, refund_id=refund.pk), robust=True)
    return refund


def _cancellable_tickets(order: Order, codes: Collection[str]) -> list[Ticket]:
    """The order's tickets with these codes, each still valid and not yet admitted at the door."""
    wanted = {"".join(code.split()).upper() for code in codes}
    tickets = list(order.tickets.select_related("line", "ticket_type__event").filter(code__in=wanted))
    unknown = sorted(wanted - {ticket.code for ticket in tickets})
    if not wanted or unknown:
        message = (
            _("Not tickets of order %(code)s: %(tickets)s.") % {"code": order.code, "tickets": ", ".join(unknown)}
            if unknown
            else _("Name a ticket.")
        )
        raise ValidationFailedError(errors={"tickets": [message]})
    admitted = set(CheckIn.objects.filter(ticket__in=tickets).values_list("ticket_id", flat=True))
    refused = {
        ticket.code: "cancelled already" if ticket.cancelled_at else "admitted at the door already"
        for ticket in tickets
        if ticket.cancelled_at or ticket.pk in admitted
    }
    if refused:
        raise TicketNotCancellableError(
            " ".join(f"{code}: {why}." for code, why in sorted(refused.items())), extra={"tickets": refused}
        )
    return tickets


def _after_cancel(*, refund_id: int) -> None:
    refund_process(refund_id=refund_id, now=timezone.now())


def refund_process(*, refund_id: int, now: datetime) -> Refund:
    """Asks the payment provider for a pending (or failed) refund at most once at a time; records the answer.
    Never called inside a transaction: the provider is a network call."""
    # The claim: one conditional UPDATE, so of two workers only one calls the provider.
    claimed = Refund.objects.filter(pk=refund_id, status__in=[Refund.Status.PENDING, Refund.Status.FAILED]).update(
        status=Refund.Status.PROCESSING, attempts=F("attempts") + 1
    )
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    if not claimed:
        return refund  # done already, or another worker is on it
    try:
        if refund.amount:
            result = payment_provider_named(refund.provider).refund(
                payment_id=refund.order.payment_reference, amount=refund.amount, currency=refund.currency
            )
        else:
            # Earlier refunds returned it all (free tickets, goodwill): providers refuse an amount of 0 (Stripe
            # does), which would leave this failing for ever.
            result = PaymentResult(approved=True, reference="", message="Nothing left to refund.")
    except Exception as error:  # noqa: BLE001 - any provider failure is recorded and retried later
        result = PaymentResult(approved=False, reference="", message=f"{type(error).__name__}: {error}")
    refund.status = Refund.Status.SUCCEEDED if result.approved else Refund.Status.FAILED
    refund.reference = result.reference
    refund.message = result.message[:500]
    refund.completed_at = now if result.approved else None
    refund.save(update_fields=["status", "reference", "message", "completed_at"])
    return refund


@dataclass(frozen=True)
class EventCancelBatch:
    cancelled: list[str]
    skipped: list[str]
    remaining: int


def event_cancel_batch(*, event_id: int, now: datetime, batch_size: int = 100) -> EventCancelBatch:
    """Withdraws the event from sale and cancels the event's tickets in the next `batch_size` paid orders holding
    any, each order in its own transaction (`event_tickets_cancel`). Re-running continues where an interrupted run
    stopped."""
    Event.objects.filter(pk=event_id, is_published=True).update(is_published=False)  # no new sales
    paid = selectors.paid_orders_of_event(event_id=event_id)
    cancelled: list[str] = []
    skipped: list[str] = []
    for order_id, code in paid.order_by("pk").values_list("pk", "code")[:batch_size]:
        refund = event_tickets_cancel(order_id=order_id, event_id=event_id, now=now)
        (cancelled if refund is not None else skipped).append(code)  # skipped: cancelled by someone else meanwhile
    return EventCancelBatch(cancelled=cancelled, skipped=skipped, remaining=paid.count())


def event_refunds_retry(*, event_id: int, now: datetime) -> list[Refund]:
    """Asks again for every refund of this event's orders still pending or failed (e.g. after a crash)."""
    ids = Refund.objects.filter(
        Exists(OrderLine.objects.filter(order=OuterRef("order"), ticket_type__event_id=event_id)),
        status__in=[Refund.Status.PENDING, Refund.Status.FAILED],
    ).values_list("pk", flat=True)
    return [refund_process(refund_id=refund_id, now=now) for refund_id in list(ids)]


# --- check-in at the door -------------------------------------------------------------------------------------


def _check_in_refusal(check_in: CheckIn) -> AlreadyCheckedInError:
    by = check_in.checked_in_by.get_username() if check_in.checked_in_by else None
    return AlreadyCheckedInError(
        (_("Already checked in at %(time)s by %(by)s.") if by else _("Already checked in at %(time)s."))
        % {"time": f"{timezone.localtime(check_in.checked_in_at):%H:%M:%S}", "by": by},
        extra={"checked_in_at": check_in.checked_in_at.isoformat(), "checked_in_by": by},
    )


def ticket_check_in(*, secret: str, event_id: int, user: Any, now: datetime) -> CheckIn:
    """Admits a paid ticket of this event once: the unique constraint on CheckIn.ticket refuses a second entry, also
    from another door at the same instant. Door staff admit only tickets of their organizers' events: any other
    ticket is as unknown to them as a made-up code, so a door learns nothing of another organizer's tickets."""
    # Looked up through the unique index on the code: no secret is compared character by character here.
    normalized = "".join(secret.split()).upper()
    ticket = selectors.tickets_of(user).select_related("order", "ticket_type__event").filter(code=normalized).first()
    if ticket is None:
        raise TicketNotFoundError()
    event = ticket.ticket_type.event
    try:
        with transaction.atomic():
            # The order's row lock orders us with order_cancel: a ticket is never admitted after its order's
            # cancellation committed, nor cancelled "under" an admission in progress.
            status = seats.lock_order(ticket.order_id).status
            if status != Order.Status.PAID:
                raise TicketCancelledError(extra={"order_status": status})
            # Read again under the lock: a ticket cancelled on its own is cancelled under the same lock.
            if Ticket.objects.filter(pk=ticket.pk, cancelled_at__isnull=False).exists():
                raise TicketCancelledError(_("This ticket was cancelled: it does not admit anyone."))
            if event.pk != event_id:
                raise WrongEventError(
                    _("This ticket is for %(event)s (%(date)s).")
                    % {
                        "event": event.name,
                        "date": date_format(timezone.localtime(event.starts_at), "SHORT_DATE_FORMAT"),
                    },
                    extra={"ticket_event_id": event.pk, "ticket_event": event.name},
                )
            check_in = CheckIn.objects.create(ticket=ticket, event=event, checked_in_at=now, checked_in_by=user)
    except IntegrityError:
        # Another door admitted it first (now, or earlier): say when and who.
        raise _check_in_refusal(CheckIn.objects.select_related("checked_in_by").get(ticket=ticket)) from None
    check_in.ticket = ticket
    return check_in
