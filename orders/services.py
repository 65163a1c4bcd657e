"""Writes of the orders app: baskets, checkout, cancellation, refunds, check-in.

Every write that touches seats owns its transaction and follows the seat protocol of `orders/seats.py`: its one
lock primitive and its one lock order. Nothing slow runs while those locks are held; the payment provider is called
before them, emails are queued in the same transaction and sent by the worker (orders/outbox.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from aegistickets.errors import (
    AlreadyCheckedInError,
    BasketEmptyError,
    BasketNotFoundError,
    BuyerLimitExceededError,
    HoldExpiredError,
    InsufficientInventoryError,
    MaxPerOrderExceededError,
    NotFoundError,
    NotOnSaleError,
    OrderNotCancellableError,
    PaymentDeclinedError,
    PriceChangedError,
    SoldOutError,
    TicketCancelledError,
    TicketNotFoundError,
    ValidationFailedError,
    WrongEventError,
)
from events.cache import catalog_cached, recently_sold_out, remember_sold_out
from events.models import Event, TicketType
from events.selectors import ticket_type_is_on_sale
from orders import metrics, outbox, seats, selectors
from orders.models import (
    Basket,
    CheckIn,
    Hold,
    IdempotencyRecord,
    Order,
    OrderLine,
    OutboundEmail,
    Refund,
    Ticket,
    new_order_code,
)
from orders.payments import PaymentProvider, PaymentResult, payment_provider_for, payment_provider_named
from orders.selectors import OrderDetail

ORDER_CODE_ATTEMPTS = 5


def hold_duration() -> timedelta:
    return timedelta(minutes=settings.HOLD_MINUTES)


# --- basket ---------------------------------------------------------------------------------------------------


@metrics.records_outcome("basket", lambda basket: "held")
def basket_add(*, token: str | None, ticket_type_id: int, quantity: int, now: datetime) -> Basket:
    """Holds seats for HOLD_MINUTES; never holds more than capacity − sold − other baskets' holds."""
    ticket_type = _buyable(ticket_type_id=ticket_type_id, quantity=quantity, now=now)
    with transaction.atomic():
        # The basket row first, then the ticket type: the seat protocol's lock order.
        basket = seats.lock_basket(token=token) if token else seats.new_basket()
        held = Hold.objects.filter(basket=basket, ticket_type_id=ticket_type_id).first() if token else None
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
            expires_at=now + hold_duration(),
        )
        locked = seats.lock_ticket_type(ticket_type_id)
        available = seats.free_seats(seats=locked, basket_id=basket.pk, now=now)
        if available <= 0:
            remember_sold_out(ticket_type_id)
        _refuse_unless_available(ticket_type=ticket_type, wanted=hold.quantity, already=already, available=available)
    ticket_type.price = locked.price  # this copy came from the catalog cache; the lock's price is the truth
    hold.ticket_type = ticket_type
    basket.just_held = hold
    return basket


def _buyable(*, ticket_type_id: int, quantity: int, now: datetime) -> TicketType:
    """Every refusal of a basket add that needs no lock, decided before taking one: in an on-sale rush most answers
    are "sold out", and they must not queue for the hot row's lock. The ticket type's own fields come from the
    catalog cache (at most CATALOG_CACHE_SECONDS old); seats are counted under the lock."""
    if quantity < 1:
        raise ValidationFailedError(errors={"quantity": ["Must be at least 1."]})
    ticket_type: TicketType | None = catalog_cached(
        f"tickettype:{ticket_type_id}",
        lambda: TicketType.objects.select_related("event").filter(pk=ticket_type_id).first(),
    )
    if ticket_type is None or not ticket_type.event.is_published:
        raise NotFoundError("No such ticket type.")
    if not ticket_type_is_on_sale(ticket_type, now=now):
        raise NotOnSaleError(f"{ticket_type.name} tickets are not on sale right now.")
    if quantity > ticket_type.max_per_order:
        raise _max_per_order_error(ticket_type, already=0)
    if recently_sold_out(ticket_type_id):
        raise SoldOutError(f"{ticket_type.name} is sold out.", extra={"available": 0})
    return ticket_type


def _max_per_order_error(ticket_type: TicketType, *, already: int) -> MaxPerOrderExceededError:
    return MaxPerOrderExceededError(
        f"At most {ticket_type.max_per_order} {ticket_type.name} tickets per order"
        + (f"; your basket already holds {already}." if already else "."),
        extra={"max_per_order": ticket_type.max_per_order},
    )


def _refuse_unless_available(*, ticket_type: TicketType, wanted: int, already: int, available: int) -> None:
    if wanted > available:
        more = max(available - already, 0)
        if more == 0:
            raise SoldOutError(f"{ticket_type.name} is sold out.", extra={"available": 0})
        raise InsufficientInventoryError(
            f"Only {more} more {ticket_type.name} {'ticket is' if more == 1 else 'tickets are'} available.",
            extra={"available": more},
        )


def basket_remove_item(*, token: str, hold_id: int) -> None:
    """Deletes one line of a basket; its seats are free for others at once."""
    with transaction.atomic():
        basket = seats.lock_basket(token=token)
        deleted = seats.release_holds(basket.pk, hold_ids=[hold_id])
    if not deleted:
        raise NotFoundError("No such item in this basket.")


# --- checkout -------------------------------------------------------------------------------------------------


def checkout_fingerprint(**fields: object) -> str:
    """What a checkout request asked for; a replayed Idempotency-Key must ask for the same."""
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CheckoutResult:
    detail: OrderDetail
    created: bool

    @property
    def order(self) -> Order:
        return self.detail.order


@dataclass(frozen=True)
class Checkout:
    """What a checkout asks for."""

    token: str
    name: str
    email: str
    payment_method: str
    idempotency_key: str | None
    fingerprint: str


@dataclass(frozen=True)
class Quote:
    """A basket's holds as priced for the charge: the commit sells exactly these, at these prices, or nothing."""

    basket_id: int
    holds: list[Hold]  # oldest first, each with its ticket type and event
    total: Decimal

    @property
    def prices(self) -> dict[int, Decimal]:
        return {hold.ticket_type_id: hold.ticket_type.price for hold in self.holds}

    @property
    def lines(self) -> dict[int, tuple[int, Decimal]]:
        return {hold.ticket_type_id: (hold.quantity, hold.ticket_type.price) for hold in self.holds}


@dataclass(frozen=True)
class Payment:
    provider: PaymentProvider
    reference: str
    amount: Decimal


class _AlreadyPlaced(Exception):  # noqa: N818 - control flow inside order_place, never escapes
    def __init__(self, order: Order) -> None:
        self.order = order


@metrics.records_outcome("checkout", lambda result: "paid" if result.created else "replayed")
def order_place(
    *,
    token: str,
    name: str,
    email: str,
    payment_method: str,
    now: datetime,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> CheckoutResult:
    """Sells a basket's seats exactly once, priced from the database; a repeated key returns the first order."""
    checkout = Checkout(token, name, email, payment_method, idempotency_key, fingerprint)
    try:
        _replay_if_placed(checkout)
        quote = _price(_validate(checkout, now=now))
        payment = _pay(quote, checkout=checkout)
        detail = _commit_or_refund(quote, checkout=checkout, payment=payment, now=now)
    except _AlreadyPlaced as placed:
        replayed = selectors.order_for_staff_by_id(order_id=placed.order.pk)
        return CheckoutResult(detail=selectors.order_detail(replayed), created=False)
    return CheckoutResult(detail=detail, created=True)


def _replay_if_placed(checkout: Checkout) -> None:
    """An Idempotency-Key that already placed an order answers with that order."""
    placed = seats.placed_order(key=checkout.idempotency_key, fingerprint=checkout.fingerprint)
    if placed is not None:
        raise _AlreadyPlaced(placed)


def _validate(checkout: Checkout, *, now: datetime) -> list[Hold]:
    """The basket's holds, if it can be checked out: not empty, and an expired hold renewable (checked again under
    the lock at commit; here it spares a charge that would be refunded)."""
    holds = seats.basket_holds(token=checkout.token)
    if not holds:
        # A concurrent request with this key may have checked this basket out since the first look.
        _replay_if_placed(checkout)
        if not Basket.objects.filter(token=checkout.token).exists():
            raise BasketNotFoundError()
        raise BasketEmptyError()
    for hold in holds:
        if hold.expires_at <= now:
            ticket_type = hold.ticket_type
            counted = seats.Seats(ticket_type.pk, ticket_type.capacity, ticket_type.sold, ticket_type.price)
            _check_expired_hold(hold, seats_now=counted, now=now)
    return holds


def _check_expired_hold(hold: Hold, *, seats_now: seats.Seats, now: datetime) -> None:
    """An expired hold is renewed at checkout only if its seats are still free."""
    ticket_type = hold.ticket_type
    if not ticket_type_is_on_sale(ticket_type, now=now):
        raise HoldExpiredError(f"Your reservation for {ticket_type.name} expired and it is no longer on sale.")
    free = seats.free_seats(seats=seats_now, basket_id=hold.basket_id, now=now)
    if hold.quantity > free:
        raise HoldExpiredError(
            f"Your reservation for {ticket_type.name} expired and only {max(free, 0)} are left.",
            extra={"ticket_type_id": ticket_type.pk, "available": max(free, 0)},
        )


def _price(holds: list[Hold]) -> Quote:
    """The total from the database's prices, never the client's."""
    total = sum((hold.ticket_type.price * hold.quantity for hold in holds), Decimal("0.00"))
    return Quote(basket_id=holds[0].basket_id, holds=holds, total=total)


def _pay(quote: Quote, *, checkout: Checkout) -> Payment:
    """Charges the total, with no lock held (a network call)."""
    provider = payment_provider_for(method=checkout.payment_method, amount=quote.total)
    result = provider.charge(
        amount=quote.total, currency=settings.CURRENCY, email=checkout.email, description=f"Basket {quote.basket_id}"
    )
    if not result.approved:
        raise PaymentDeclinedError(" ".join(filter(None, [result.message, PaymentDeclinedError.default_detail])))
    return Payment(provider=provider, reference=result.reference, amount=quote.total)


def _refund(payment: Payment) -> None:
    payment.provider.refund(reference=payment.reference, amount=payment.amount, currency=settings.CURRENCY)


def _commit_or_refund(quote: Quote, *, checkout: Checkout, payment: Payment, now: datetime) -> OrderDetail:
    """Commits the paid order, or gives the money back: a paid shopper never ends up with neither tickets nor money,
    whatever ends this function (an error, a replay, the worker being stopped)."""
    attempt = _Attempt()
    kept = False
    try:
        detail = _commit_with_fresh_code(quote, checkout=checkout, payment=payment, now=now, attempt=attempt)
        kept = True
    except (OperationalError, InterfaceError):
        # The connection broke during the order's transaction. If it broke after PostgreSQL committed but before
        # the acknowledgement arrived, the order exists: look on a new connection before refunding.
        found = _committed_anyway(code=attempt.code, reference=payment.reference)
        if found is None:
            raise
        # Django ran no on-commit callbacks for a commit it saw fail: count the sale here.
        metrics.order_committed(holds=quote.holds)
        detail, kept = found, True
    finally:
        if not kept:
            _refund(payment)
    return detail


@dataclass
class _Attempt:
    code: str = ""  # the order code of the last commit tried


def _commit_with_fresh_code(
    quote: Quote, *, checkout: Checkout, payment: Payment, now: datetime, attempt: _Attempt
) -> OrderDetail:
    """`_commit`, again with a new order code when another order took the code first (1 in 387 million)."""
    for remaining in range(ORDER_CODE_ATTEMPTS - 1, -1, -1):
        attempt.code = new_order_code()
        try:
            return _commit(quote, checkout=checkout, payment=payment, now=now, code=attempt.code)
        except IntegrityError:
            # The same key may have been committed meanwhile by a request for another basket (a different body:
            # IdempotencyConflictError) or for this one (replay its order).
            _replay_if_placed(checkout)
            if not remaining or not Order.objects.filter(code=attempt.code).exists():
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _commit(quote: Quote, *, checkout: Checkout, payment: Payment, now: datetime, code: str) -> OrderDetail:
    """The one transaction that turns the quoted holds into an order with its lines and tickets, and queues its
    confirmation. No savepoints: a unique-key clash (order code, idempotency key) aborts it, for the caller to sort
    out. Returns the order with its lines and tickets, ready to show."""
    with transaction.atomic():
        seats.lock_basket(pk=quote.basket_id)
        holds = _quoted_holds(quote, checkout=checkout)
        _check_buyer_limits(holds=holds, email=checkout.email)
        (order,) = seats.insert(
            [
                Order(
                    code=code,
                    name=checkout.name,
                    email=checkout.email,
                    total=quote.total,
                    currency=settings.CURRENCY,
                    payment_method=payment.provider.name,
                    payment_reference=payment.reference,
                    created_at=now,
                )
            ]
        )
        if checkout.idempotency_key:
            seats.insert(
                [IdempotencyRecord(key=checkout.idempotency_key, fingerprint=checkout.fingerprint, order=order)]
            )
        detail = _order_lines_and_tickets(order, holds)
        _confirm(order, now=now)
        _take_seats(holds, quote=quote, now=now)
        # Counted only if this commits; the callback runs after commit, never under the seat locks.
        transaction.on_commit(functools.partial(metrics.order_committed, holds=holds), robust=True)
    return detail


def _quoted_holds(quote: Quote, *, checkout: Checkout) -> list[Hold]:
    """Under the basket lock: the holds are still what was charged for (the quote's, with their events)."""
    lines = seats.basket_lines(quote.basket_id)
    if not lines:
        # A concurrent duplicate waited for the basket lock; now it sees the first one's order.
        _replay_if_placed(checkout)
        raise BasketEmptyError("This basket has already been checked out or emptied.")
    if lines != quote.lines:
        raise PriceChangedError()
    return quote.holds


def _order_lines_and_tickets(order: Order, holds: list[Hold]) -> OrderDetail:
    """One line per hold at the quoted price, one ticket per seat; each with its ticket type and event, to show."""
    ticket_types = {hold.ticket_type_id: hold.ticket_type for hold in holds}
    lines = seats.insert(
        [
            OrderLine(order=order, ticket_type_id=h.ticket_type_id, quantity=h.quantity, unit_price=h.ticket_type.price)
            for h in holds
        ]
    )
    tickets = seats.insert(
        [
            Ticket(order=order, line=line, ticket_type_id=line.ticket_type_id)
            for line in lines
            for _ in range(line.quantity)
        ]
    )
    for line in lines:
        line.ticket_type = ticket_types[line.ticket_type_id]
    for ticket in tickets:
        ticket.ticket_type = ticket_types[ticket.ticket_type_id]
    return OrderDetail(order=order, lines=lines, tickets=tickets)


def _confirm(order: Order, *, now: datetime) -> None:
    """Queues the buyer's confirmation (tickets PDF attached) with the order: it exists exactly when the order does,
    and the worker (orders/outbox.py) builds and sends it, not this request."""
    outbox.outbox_enqueue(kind=OutboundEmail.Kind.ORDER_CONFIRMATION, order_id=order.pk, now=now)


def _take_seats(holds: list[Hold], *, quote: Quote, now: datetime) -> None:
    """Deletes the holds and sells their seats; the seat rows are locked last, in ticket-type order."""
    seats.release_holds(quote.basket_id)  # invisible to others until commit: no lock needed for them
    for hold in holds:
        event = hold.ticket_type.event
        if not event.is_published:
            raise NotOnSaleError(f"{event.name} has been withdrawn from sale.")
        if hold.expires_at <= now:
            # Its seats were free for others: count them again under the lock before taking them.
            _check_expired_hold(hold, seats_now=seats.lock_ticket_type(hold.ticket_type_id), now=now)
    seats.take(holds, prices=quote.prices)


def _check_buyer_limits(*, holds: list[Hold], email: str) -> None:
    """Never lets one buyer email own more paid tickets of an event than its max_tickets_per_buyer."""
    limits = {
        hold.ticket_type.event_id: hold.ticket_type.event.max_tickets_per_buyer
        for hold in holds
        if hold.ticket_type.event.max_tickets_per_buyer is not None
    }
    if not limits:
        return
    # The events' row locks order this buyer's concurrent orders (and everyone's, for these events) until commit.
    seats.lock_events(limits)
    wanted = Counter[int]()
    for hold in holds:
        if hold.ticket_type.event_id in limits:
            wanted[hold.ticket_type.event_id] += hold.quantity
    owned = selectors.tickets_per_event_of_buyer(email=email, event_ids=list(limits))
    for event_id, quantity in wanted.items():
        already = owned.get(event_id, 0)
        if already + quantity > limits[event_id]:
            raise BuyerLimitExceededError(
                f"At most {limits[event_id]} tickets per buyer for this event; this email already has {already}.",
                extra={"max_tickets_per_buyer": limits[event_id], "already": already},
            )


def _committed_anyway(*, code: str, reference: str) -> OrderDetail | None:
    """After a connection error in the order's transaction: the order, if its commit went through anyway.

    None when it did not, and when that cannot be known: the database is still unreachable (the read waits at most
    its connect timeout), or a caller's transaction encloses ours, in which case nothing of ours committed.
    """
    if not code or connection.in_atomic_block:
        return None
    for attempt in (1, 2):
        try:
            order = selectors.order_for_staff(code=code)
            return selectors.order_detail(order) if order.payment_reference == reference else None
        except NotFoundError:
            return None
        except DatabaseError:
            if attempt == 2:
                return None
            connection.close()  # broken: the second read opens a new connection
    return None


# --- cancellation and refunds ---------------------------------------------------------------------------------


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
            raise OrderNotCancellableError(f"Order {order.code} is {order.status}; only paid orders can be cancelled.")
        # The buyer's notice is queued with the cancellation, and replaces the confirmation if that has not gone out
        # yet; the worker sends it a little later, by when the refund below has usually been answered, so the email
        # can say where the money stands.
        outbox.outbox_withdraw_confirmation(order_id=order.pk, now=now)
        outbox.outbox_enqueue(
            kind=OutboundEmail.Kind.ORDER_CANCELLATION,
            order_id=order.pk,
            now=now,
            delay=outbox.CANCELLATION_NOTICE_DELAY,
        )
        seats.release(order.lines.all())  # the seat rows, locked last
        order.status = Order.Status.CANCELLED
        order.cancelled_at = now
        order.save(update_fields=["status", "cancelled_at"])
        refund = Refund.objects.create(
            order=order, amount=order.total, currency=order.currency, provider=order.payment_method, created_at=now
        )
        # After commit, outside every lock: the money.
        transaction.on_commit(functools.partial(_after_cancel, refund_id=refund.pk), robust=True)
    return order


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
        result = payment_provider_named(refund.provider).refund(
            reference=refund.order.payment_reference, amount=refund.amount, currency=refund.currency
        )
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
    """Withdraws the event from sale and cancels (and refunds) the next `batch_size` paid orders holding any of its
    tickets, each order in its own transaction; re-running continues where an interrupted run stopped."""
    Event.objects.filter(pk=event_id, is_published=True).update(is_published=False)  # no new sales
    paid = Order.objects.filter(
        Exists(OrderLine.objects.filter(order=OuterRef("pk"), ticket_type__event_id=event_id)),
        status=Order.Status.PAID,
    )
    cancelled: list[str] = []
    skipped: list[str] = []
    for order_id, code in paid.order_by("pk").values_list("pk", "code")[:batch_size]:
        try:
            order_cancel(order_id=order_id, now=now)
        except OrderNotCancellableError:
            skipped.append(code)  # cancelled by someone else meanwhile
        else:
            cancelled.append(code)
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
        f"Already checked in at {timezone.localtime(check_in.checked_in_at):%H:%M:%S}" + (f" by {by}." if by else "."),
        extra={"checked_in_at": check_in.checked_in_at.isoformat(), "checked_in_by": by},
    )


def ticket_check_in(*, secret: str, event_id: int, user: Any, now: datetime) -> CheckIn:
    """Admits a paid ticket of this event once: the unique constraint on CheckIn.ticket refuses a second entry, also
    from another door at the same instant."""
    # Looked up through the unique index on the code: no secret is compared character by character here.
    normalized = "".join(secret.split()).upper()
    ticket = Ticket.objects.select_related("order", "ticket_type__event").filter(code=normalized).first()
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
            if event.pk != event_id:
                raise WrongEventError(
                    f"This ticket is for {event.name} ({event.starts_at:%d %b %Y}).",
                    extra={"ticket_event_id": event.pk, "ticket_event": event.name},
                )
            check_in = CheckIn.objects.create(ticket=ticket, event=event, checked_in_at=now, checked_in_by=user)
    except IntegrityError:
        # Another door admitted it first (now, or earlier): say when and who.
        raise _check_in_refusal(CheckIn.objects.select_related("checked_in_by").get(ticket=ticket)) from None
    check_in.ticket = ticket
    return check_in
