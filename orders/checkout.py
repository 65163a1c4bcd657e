"""Checkout: a basket becomes an order, and the order's payment is settled, each step at most once.

The lifecycle, for every payment provider (orders/payments.py):
1. The basket is priced from the database, and the shop's record of the payment (`Payment`) is written.
2. The provider **authorizes** the total, with no lock held. Nothing is taken from the buyer yet.
3. One transaction commits the order: `paid` with its tickets when the authorization is already there (immediate
   methods), or `pending` when the buyer still has to act (Stripe: card entry, 3-D Secure). A pending order's seats
   stay taken until its `payment_deadline` by the holds of a basket of its own; after that they count for nothing,
   as any expired hold, and no job has to run.
4. After the commit, the payment is **captured**; if the order did not commit, the authorization is **voided**.
   So money is captured only for a committed order; if the commit's fate cannot be known (the database went away
   during it), neither is done and `reconcile_payments` settles it from what the database then says.

The buyer pays a pending order on its pay page (`payment_confirm`: the provider confirms the payment with the card
their browser handed over). It is settled by `payment_settle` when the provider says the payment is authorized (that
confirmation, its webhook, the buyer's return page, or reconciliation, in any order and any number of times): it
takes the seats under the seat lock and captures, or, when the seats went to someone else after the deadline, voids
and tells the buyer.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils.translation import get_language, gettext_noop, ngettext
from django.utils.translation import gettext as _

from aegistickets.errors import (
    ApplicationError,
    BasketEmptyError,
    BasketNotFoundError,
    BuyerLimitExceededError,
    HoldExpiredError,
    NotFoundError,
    NotOnSaleError,
    OrderNotPayableError,
    PaymentDeclinedError,
    PriceChangedError,
    ValidationFailedError,
    VoucherExhaustedError,
)
from events.selectors import questions_of_events, ticket_type_is_on_sale, voucher_check_window
from orders import metrics, outbox, seats, selectors
from orders.answers import SeatAnswers, StoredAnswers, answers_checked
from orders.models import (
    Basket,
    Hold,
    IdempotencyRecord,
    Order,
    OrderLine,
    OutboundEmail,
    Payment,
    Ticket,
    new_order_code,
)
from orders.payments import Authorization, PaymentProvider, payment_provider_for, payment_provider_named
from orders.selectors import OrderDetail
from orders.services import basket_apply_voucher
from orders.waiting_list import offer_used

_Kept = TypeVar("_Kept")

ORDER_CODE_ATTEMPTS = 5
# How long a provider replays the answer to a repeated idempotency key: Stripe keeps keys for at least 24 hours.
IDEMPOTENCY_WINDOW = timedelta(hours=23)

logger = logging.getLogger(__name__)


def payment_window() -> timedelta:
    return timedelta(minutes=settings.PAYMENT_MINUTES)


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

    @property
    def payment(self) -> Payment | None:
        return self.detail.payment


@dataclass(frozen=True)
class Attendee:
    """Who one seat is for, as the buyer named them: a ticket of `ticket_type_id`, where its event asks."""

    ticket_type_id: int
    name: str
    email: str = ""


@dataclass(frozen=True)
class Checkout:
    """What a checkout asks for."""

    token: str
    name: str
    email: str
    payment_method: str
    idempotency_key: str | None
    fingerprint: str
    # An API client's payment method to confirm with at once (Stripe: a PaymentMethod id), and where the provider
    # sends the buyer back after 3-D Secure.
    payment_token: str = ""
    return_url: str = ""
    # One per seat whose event asks who it is for (Event.attendee_data), in seat order per ticket type.
    attendees: tuple[Attendee, ...] = ()
    # The version of each event's terms the buyer accepted: (event id, version) pairs.
    accepted_terms: tuple[tuple[int, int], ...] = ()
    # A voucher code to price the basket's seats with (those it covers), applied to the basket first.
    voucher: str = ""
    # The answers to the events' questions, per seat (orders.answers).
    answers: tuple[SeatAnswers, ...] = ()
    # The buyer's language (en, de), by default the one active now (the shopper's, in a request): the order's
    # emails are written in it.
    language: str = dataclasses.field(default_factory=lambda: get_language() or "")


@dataclass(frozen=True)
class Quote:
    """A basket's holds as priced for the authorization: the commit sells exactly these, at these prices, or
    nothing."""

    basket_id: int
    holds: list[Hold]  # oldest first, each with its ticket type and event
    total: Decimal
    answers: StoredAnswers = dataclasses.field(default_factory=dict)  # as checked, for the lines and tickets

    @property
    def prices(self) -> dict[int, Decimal]:
        """List prices by ticket type: what the seat rows must still say when the seats are taken."""
        return {hold.ticket_type_id: hold.ticket_type.price for hold in self.holds}

    @property
    def lines(self) -> dict[int, tuple[int, Decimal, int | None]]:
        return {hold.ticket_type_id: (hold.quantity, hold.ticket_type.price, hold.voucher_id) for hold in self.holds}


@dataclass(frozen=True)
class Authorized:
    """A payment the provider answered: the shop's record and the provider's answer."""

    provider: PaymentProvider
    payment: Payment
    answer: Authorization

    @property
    def paid(self) -> bool:
        return self.answer.state == "authorized"


class _AlreadyPlaced(Exception):  # noqa: N818 - control flow inside order_place, never escapes
    def __init__(self, order: Order) -> None:
        self.order = order


@metrics.records_outcome("checkout", lambda result: result.order.status if result.created else "replayed")
def order_place(
    *,
    token: str,
    name: str,
    email: str,
    payment_method: str,
    now: datetime,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    payment_token: str = "",
    return_url: str = "",
    attendees: Sequence[Attendee] = (),
    accepted_terms: Mapping[int, int] | None = None,
    voucher: str = "",
    answers: Sequence[SeatAnswers] = (),
) -> CheckoutResult:
    """Sells a basket's seats exactly once, priced from the database; a repeated key returns the first order."""
    checkout = Checkout(
        token,
        name,
        email,
        payment_method,
        idempotency_key,
        fingerprint,
        payment_token,
        return_url,
        tuple(attendees),
        tuple(sorted((accepted_terms or {}).items())),
        voucher,
        tuple(answers),
    )
    try:
        quote = _price(*_validate(checkout, now=now))
        authorized = _authorize(quote, checkout=checkout, now=now)
        detail = _commit_or_void(quote, checkout=checkout, authorized=authorized, now=now)
    except _AlreadyPlaced as placed:
        return _replayed(placed.order)
    if authorized.paid:
        payment_capture(authorized.payment, now=now)
    return CheckoutResult(detail=dataclasses.replace(detail, payment=authorized.payment), created=True)


def _replayed(order: Order) -> CheckoutResult:
    replayed = selectors.order_for_staff_by_id(order_id=order.pk)
    return CheckoutResult(detail=selectors.order_detail(replayed), created=False)


def _replay_if_placed(checkout: Checkout) -> None:
    """An Idempotency-Key that already placed an order answers with that order."""
    placed = seats.placed_order(key=checkout.idempotency_key, fingerprint=checkout.fingerprint)
    if placed is not None:
        raise _AlreadyPlaced(placed)


def _validate(checkout: Checkout, *, now: datetime) -> tuple[list[Hold], StoredAnswers]:
    """The basket's holds, if it can be checked out (unless its key placed an order already: that order is the answer):
    not empty, and an expired hold renewable (checked again under the lock at commit; here it spares an
    authorization that would be voided); and the answers as checked."""
    _replay_if_placed(checkout)
    if checkout.voucher:
        basket_apply_voucher(token=checkout.token, code=checkout.voucher, now=now)
    holds = seats.basket_holds(token=checkout.token)
    if not holds:
        # A concurrent request with this key may have checked this basket out since the first look.
        _replay_if_placed(checkout)
        if not Basket.objects.filter(token=checkout.token).exists():
            raise BasketNotFoundError()
        raise BasketEmptyError()
    _check_attendees(holds, checkout.attendees)
    _check_terms(holds, dict(checkout.accepted_terms))
    answers = _check_answers(holds, checkout.answers)
    for hold in holds:
        if hold.voucher is not None:
            voucher_check_window(hold.voucher, now=now)  # still valid: the basket may have waited past its window
    for hold in holds:
        if hold.expires_at <= now:
            ticket_type = hold.ticket_type
            counted = seats.Seats(ticket_type.pk, ticket_type.capacity, ticket_type.sold, ticket_type.price)
            _check_expired_hold(hold, seats_now=counted, now=now)
    return holds, answers


def _check_answers(holds: list[Hold], given: Sequence[SeatAnswers]) -> StoredAnswers:
    """The answers as stored, checked against the questions of the basket's events. Most events ask none: their
    holds, read with every column of the event, say so (Event.has_questions), and no query is made."""
    asking = {hold.ticket_type.event_id for hold in holds if hold.ticket_type.event.has_questions}
    if not asking and not given:
        return {}
    questions = questions_of_events(event_ids=asking) if asking else []
    return answers_checked(holds=holds, given=given, questions=questions)


def _check_terms(holds: list[Hold], accepted: Mapping[int, int]) -> None:
    """The buyer accepted the current version of the terms of each event that has terms: one they never saw (a newer
    version since the page was shown) is not accepted."""
    events = {hold.ticket_type.event_id: hold.ticket_type.event for hold in holds}
    problems = [
        (
            _("Read and accept the terms of %(event)s (version %(version)s). They changed since you accepted them.")
            if accepted.get(event.pk)
            else _("Read and accept the terms of %(event)s (version %(version)s).")
        )
        % {"event": event.name, "version": event.terms_version}
        for event in events.values()
        if event.terms_version and accepted.get(event.pk) != event.terms_version
    ]
    if problems:
        raise ValidationFailedError(errors={"accepted_terms": problems})


def _check_attendees(holds: list[Hold], attendees: Sequence[Attendee]) -> None:
    """One attendee per seat of each ticket type whose event asks who its tickets are for (with an email where it
    asks for one), and none for the others; refused as a whole, each problem named."""
    given = Counter(attendee.ticket_type_id for attendee in attendees)
    problems: list[str] = []
    for hold in holds:
        event, name = hold.ticket_type.event, hold.ticket_type.name
        wanted = hold.quantity if event.asks_attendee_name else 0
        if given.pop(hold.ticket_type_id, 0) != wanted:
            problems.append(
                ngettext(
                    "%(ticket_type)s: name %(count)d attendee, one per ticket.",
                    "%(ticket_type)s: name %(count)d attendees, one per ticket.",
                    wanted,
                )
                % {"ticket_type": name, "count": wanted}
            )
        elif event.asks_attendee_email and any(
            not a.email for a in attendees if a.ticket_type_id == hold.ticket_type_id
        ):
            problems.append(
                _("%(ticket_type)s: %(event)s asks for each attendee's email.")
                % {"ticket_type": name, "event": event.name}
            )
    if given:
        problems.append(_("Not ticket types of this basket: %(ids)s.") % {"ids": ", ".join(map(str, sorted(given)))})
    if any(not attendee.name.strip() for attendee in attendees):
        problems.append(_("Every attendee needs a name."))
    if problems:
        raise ValidationFailedError(errors={"attendees": problems})


def _check_expired_hold(hold: Hold, *, seats_now: seats.Seats, now: datetime) -> None:
    """An expired hold is renewed at checkout only if its seats are still free."""
    ticket_type = hold.ticket_type
    if not ticket_type_is_on_sale(ticket_type, now=now):
        raise HoldExpiredError(
            _("Your reservation for %(ticket_type)s expired and it is no longer on sale.")
            % {"ticket_type": ticket_type.name}
        )
    free = seats.free_seats(seats=seats_now, basket_id=hold.basket_id, now=now)
    if hold.quantity > free:
        raise HoldExpiredError(
            _("Your reservation for %(ticket_type)s expired and only %(left)d are left.")
            % {"ticket_type": ticket_type.name, "left": max(free, 0)},
            extra={"ticket_type_id": ticket_type.pk, "available": max(free, 0)},
        )


def _price(holds: list[Hold], answers: StoredAnswers) -> Quote:
    """The total from the database's prices, never the client's."""
    total = sum((hold.unit_price * hold.quantity for hold in holds), Decimal("0.00"))
    return Quote(basket_id=holds[0].basket_id, holds=holds, total=total, answers=answers)


# --- authorize, commit, capture or void -----------------------------------------------------------------------


def _authorize(quote: Quote, *, checkout: Checkout, now: datetime) -> Authorized:
    """Records the payment, then asks the provider to authorize the total, with no lock held (a network call)."""
    provider = payment_provider_for(method=checkout.payment_method, amount=quote.total)
    (payment,) = seats.insert(
        [
            Payment(
                reference=secrets.token_hex(16),
                provider=provider.name,
                payment_method=checkout.payment_token,
                return_url=checkout.return_url,
                amount=quote.total,
                currency=settings.CURRENCY,
                created_at=now,
                updated_at=now,
            )
        ]
    )
    answer = authorization_request(provider, payment, email=checkout.email)
    payment.payment_id = answer.payment_id
    payment.client_secret = answer.client_secret
    payment.next_action = answer.next_action
    if answer.state == "declined":
        _record(payment, Payment.Status.FAILED, now=now, message=answer.message)
        metrics.payment_outcome(provider=provider.name, outcome="declined")
        raise _declined(answer.message, str(PaymentDeclinedError.default_detail))
    return Authorized(provider=provider, payment=payment, answer=answer)


def _declined(reason: str, advice: str) -> PaymentDeclinedError:
    """A decline in the shopper's language: the provider's reason (translated where the catalog knows it; gettext of
    "" would be the catalog's header), then what the shopper can do."""
    return PaymentDeclinedError(" ".join(filter(None, [_(reason) if reason else "", advice])))


def authorization_request(provider: PaymentProvider, payment: Payment, *, email: str) -> Authorization:
    """Asks the provider to authorize a recorded payment, the request made from the record alone: asked again
    (reconciliation, when the answer was lost) it is the identical request, as Stripe requires of a repeated
    Idempotency-Key (a reused key with other parameters is an error). `email` is the `test` provider's only (its
    declining address); no provider is sent it."""
    return provider.authorize(
        amount=payment.amount,
        currency=payment.currency,
        email=email,
        description=f"Payment {payment.reference}",
        reference=payment.reference,
        payment_method=payment.payment_method,
        return_url=payment.return_url,
    )


def _record(payment: Payment, status: str, *, now: datetime, message: str = "") -> None:
    payment.status = status
    payment.updated_at = now
    payment.message = message[:500]
    payment.save(update_fields=["payment_id", "client_secret", "status", "updated_at", "message"])


def _commit_or_void(quote: Quote, *, checkout: Checkout, authorized: Authorized, now: datetime) -> OrderDetail:
    """Commits the order, or releases the authorization: a buyer never ends up with money reserved and no order,
    whatever ends this function (an error, a replay, the worker being stopped). When the commit's fate is unknown
    (the connection broke and the order cannot be read back), the authorization is left for reconciliation."""
    attempt = _Attempt()
    void = True
    try:
        detail = _commit_with_fresh_code(quote, checkout=checkout, authorized=authorized, now=now, attempt=attempt)
        void = False
    except (OperationalError, InterfaceError):
        # The connection broke during the order's transaction. If it broke in the COMMIT, after PostgreSQL
        # committed but before the acknowledgement arrived, the order exists: look on a new connection, which the
        # void's own record needs too.
        if not connection.in_atomic_block:
            connection.close()
        found = _committed_anyway(attempt, payment_id=authorized.payment.payment_id)
        # Found: keep the payment. Unknowable (False): neither capture nor void; reconciliation settles it once the
        # database answers again. Certainly not committed (None): void.
        void = found is None
        if not isinstance(found, OrderDetail):
            raise
        # Django ran no on-commit callbacks for a commit it saw fail: count the sale here.
        metrics.order_committed(lines=quote.holds)
        detail = found
    finally:
        if void:
            _void(authorized.payment, provider=authorized.provider, now=now)
    return detail


@dataclass
class _Attempt:
    code: str = ""  # the order code of the last commit tried
    committing: bool = False  # its transaction reached its COMMIT: from there on, whether it committed is unknown


def _commit_with_fresh_code(
    quote: Quote, *, checkout: Checkout, authorized: Authorized, now: datetime, attempt: _Attempt
) -> OrderDetail:
    """`_commit`, again with a new order code when another order took the code first (1 in 387 million)."""
    for remaining in range(ORDER_CODE_ATTEMPTS - 1, -1, -1):
        attempt.code = new_order_code()
        try:
            return _commit(quote, checkout=checkout, authorized=authorized, now=now, attempt=attempt)
        except IntegrityError:
            # The same key may have been committed meanwhile by a request for another basket (a different body:
            # IdempotencyConflictError) or for this one (replay its order).
            _replay_if_placed(checkout)
            if not remaining or not Order.objects.filter(code=attempt.code).exists():
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _commit(
    quote: Quote, *, checkout: Checkout, authorized: Authorized, now: datetime, attempt: _Attempt
) -> OrderDetail:
    """The one transaction that turns the quoted holds into an order: paid, with its tickets and its confirmation
    queued, or pending, with its seats held for the payment window. No savepoints: a unique-key clash (order code,
    idempotency key) aborts it, for the caller to sort out. Returns the order with its lines (and tickets), to show."""
    with transaction.atomic():
        basket = seats.lock_basket(pk=quote.basket_id)
        holds = _quoted_holds(quote, checkout=checkout)
        _check_buyer_limits(holds=holds, email=checkout.email)
        order = _new_order(quote, checkout=checkout, authorized=authorized, now=now, code=attempt.code)
        if checkout.idempotency_key:
            seats.insert(
                [IdempotencyRecord(key=checkout.idempotency_key, fingerprint=checkout.fingerprint, order=order)]
            )
        _attach(authorized, order=order, now=now)
        if basket.for_offer:
            offer_used(basket=basket, order=order, now=now)
        if authorized.paid:
            detail = _sell(order, holds, checkout=checkout, answers=quote.answers, now=now)
            seats.release_holds(quote.basket_id)  # invisible to others until commit: no lock needed for them
            _take_seats(holds, prices=quote.prices, now=now)
        else:
            lines = _order_lines(order, holds, checkout.attendees, quote.answers)
            detail = OrderDetail(order=order, lines=lines, tickets=[])
            _hold_for_payment(order, holds, quote=quote, now=now)
        attempt.committing = True  # the last step: leaving the block sends the COMMIT
    return detail


def _new_order(quote: Quote, *, checkout: Checkout, authorized: Authorized, now: datetime, code: str) -> Order:
    (order,) = seats.insert(
        [
            Order(
                code=code,
                status=Order.Status.PAID if authorized.paid else Order.Status.PENDING,
                name=checkout.name,
                email=checkout.email,
                language=checkout.language,
                total=quote.total,
                currency=settings.CURRENCY,
                payment_method=authorized.provider.name,
                payment_reference=authorized.payment.payment_id,
                created_at=now,
                payment_deadline=None if authorized.paid else now + payment_window(),
                # A pending order's seats stay held by a basket of its own, whose token nobody has.
                basket=None if authorized.paid else seats.new_basket(),
                accepted_terms={
                    str(hold.ticket_type.event_id): hold.ticket_type.event.terms_version
                    for hold in quote.holds
                    if hold.ticket_type.event.terms_version
                },
            )
        ]
    )
    return order


def _attach(authorized: Authorized, *, order: Order, now: datetime) -> None:
    """The payment belongs to the order from the order's own commit: a payment row without an order after that is
    an authorization whose order never committed."""
    payment = authorized.payment
    payment.order = order
    payment.status = Payment.Status.AUTHORIZED if authorized.paid else Payment.Status.REQUIRES_ACTION
    payment.updated_at = now
    seats.update(payment, ["order", "payment_id", "client_secret", "next_action", "status", "updated_at"])


def _quoted_holds(quote: Quote, *, checkout: Checkout) -> list[Hold]:
    """Under the basket lock: the holds are still what was authorized (the quote's, with their events)."""
    lines = seats.basket_lines(quote.basket_id)
    if not lines:
        # A concurrent duplicate waited for the basket lock; now it sees the first one's order.
        _replay_if_placed(checkout)
        raise BasketEmptyError(_("This basket has already been checked out or emptied."))
    if lines != quote.lines:
        raise PriceChangedError()
    return quote.holds


def _order_lines(
    order: Order, holds: list[Hold], attendees: Sequence[Attendee], answers: StoredAnswers
) -> list[OrderLine]:
    """One line per hold at the quoted price, with who its seats are for and the answers about them, each with its
    ticket type and event."""
    ticket_types = {hold.ticket_type_id: hold.ticket_type for hold in holds}
    vouchers = {hold.ticket_type_id: hold.voucher for hold in holds}
    answered = {ticket_type_id: kept for ticket_type_id, kept in answers.items() if any(kept)}
    lines = seats.insert(
        [
            OrderLine(
                order=order,
                ticket_type_id=h.ticket_type_id,
                quantity=h.quantity,
                unit_price=h.unit_price,
                voucher_id=h.voucher_id,
                discount=h.ticket_type.price - h.unit_price,
                attendees=[
                    {"name": a.name, "email": a.email} for a in attendees if a.ticket_type_id == h.ticket_type_id
                ],
                answers=answered.get(h.ticket_type_id, []),
            )
            for h in holds
        ]
    )
    for line in lines:
        line.ticket_type, line.voucher = ticket_types[line.ticket_type_id], vouchers[line.ticket_type_id]
    return lines


def _sell(order: Order, holds: list[Hold], *, checkout: Checkout, answers: StoredAnswers, now: datetime) -> OrderDetail:
    """A paid order's lines and tickets (one per seat), its confirmation queued, the sale counted after commit."""
    lines = _order_lines(order, holds, checkout.attendees, answers)
    return _issue_tickets(order, lines, now=now)


def _issue_tickets(order: Order, lines: list[OrderLine], *, now: datetime) -> OrderDetail:
    tickets = seats.insert(
        [
            Ticket(
                order=order,
                line=line,
                ticket_type_id=line.ticket_type_id,
                attendee_name=attendee.get("name", ""),
                attendee_email=attendee.get("email", ""),
                answers=answers,
            )
            for line in lines
            for attendee, answers in _seats_kept(line)
        ]
    )
    ticket_types = {line.ticket_type_id: line.ticket_type for line in lines}
    for ticket in tickets:
        ticket.ticket_type = ticket_types[ticket.ticket_type_id]
    # The buyer's confirmation (tickets PDF attached) is queued with the order: it exists exactly when the order
    # does, and the worker (orders/outbox.py) builds and sends it, not this request.
    outbox.outbox_enqueue(
        kind=OutboundEmail.Kind.ORDER_CONFIRMATION, order_id=order.pk, language=order.language, now=now
    )
    # Counted only if this commits; the callback runs after commit, never under the seat locks.
    transaction.on_commit(functools.partial(metrics.order_committed, lines=lines), robust=True)
    return OrderDetail(order=order, lines=lines, tickets=tickets)


def _seats_kept(line: OrderLine) -> list[tuple[dict[str, str], list[dict[str, object]]]]:
    """Who each of the line's seats is for and the answers about it."""
    attendees = _per_seat(line.attendees, {}, line.quantity)
    return list(zip(attendees, _per_seat(line.answers, [], line.quantity), strict=True))


def _per_seat(kept: list[_Kept] | None, nothing: _Kept, quantity: int) -> list[_Kept]:
    """What a line kept for each of its seats (who it is for, the answers about it), `nothing` where it kept none."""
    given = list(kept or [])
    return given[:quantity] + [nothing] * (quantity - len(given))


def _take_seats(holds: list[Hold], *, prices: dict[int, Decimal] | None, now: datetime) -> None:
    """Sells the held seats and the voucher redemptions they carry; the voucher rows are locked before the seat
    rows, which are locked last, in ticket-type order."""
    for hold in holds:
        event = hold.ticket_type.event
        if not event.is_published:
            raise NotOnSaleError(_("%(event)s has been withdrawn from sale.") % {"event": event.name})
    seats.redeem(_count_redemptions(holds, quoted=prices is not None, now=now))
    _recount_expired(holds, now=now)
    seats.take(holds, prices=prices)


def _count_redemptions(holds: list[Hold], *, quoted: bool, now: datetime) -> Counter[int]:
    """Under the vouchers' locks: the redemptions the holds carry, by voucher, each still free for them (an expired
    hold's were free for others) and, for `quoted` holds, each voucher still pricing its seats as the buyer was
    charged (staff may have changed it since)."""
    wanted: Counter[int] = Counter()
    for hold in holds:
        if hold.voucher_id is not None:
            wanted[hold.voucher_id] += hold.quantity
    if not wanted:
        return wanted
    locked = seats.lock_vouchers(wanted)
    for hold in holds:
        voucher = locked.get(hold.voucher_id) if hold.voucher_id is not None else None
        if quoted and voucher is not None and voucher.price_for(hold.ticket_type.price) != hold.unit_price:
            raise PriceChangedError()
    for voucher_id, count in wanted.items():
        if count > seats.free_redemptions(voucher=locked[voucher_id], basket_id=holds[0].basket_id, now=now):
            raise VoucherExhaustedError(
                _("The voucher code %(code)s has been used up meanwhile.") % {"code": locked[voucher_id].code}
            )
    return wanted


def _recount_expired(holds: list[Hold], *, now: datetime) -> None:
    """An expired hold's seats were free for others: count them again under the ticket type's lock (the seat rows,
    locked last) before keeping them."""
    for hold in holds:
        if hold.expires_at <= now:
            _check_expired_hold(hold, seats_now=seats.lock_ticket_type(hold.ticket_type_id), now=now)


def _hold_for_payment(order: Order, holds: list[Hold], *, quote: Quote, now: datetime) -> None:
    """Moves the holds to the order's own basket until its payment deadline: the buyer's basket is empty, as after
    any checkout, and nobody can change what the pending order will buy."""
    _count_redemptions(holds, quoted=True, now=now)  # kept by the moved holds until the order is paid or expires
    _recount_expired(holds, now=now)
    if order.basket_id is None:
        raise AssertionError("a pending order is written with a basket of its own")
    seats.move_holds(from_basket_id=quote.basket_id, to_basket_id=order.basket_id, until=order.payment_deadline)


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
                _("At most %(max)d tickets per buyer for this event; this email already has %(already)d.")
                % {"max": limits[event_id], "already": already},
                extra={"max_tickets_per_buyer": limits[event_id], "already": already},
            )


def _committed_anyway(attempt: _Attempt, *, payment_id: str) -> OrderDetail | None | bool:
    """After a connection error in the order's transaction: the order, if its commit went through anyway; None if it
    certainly did not (the error came before the COMMIT was sent, or a caller's transaction enclosing ours means
    nothing of ours committed); False when that cannot be known (the database is still unreachable), in which case
    the authorization is left as it is for `reconcile_payments`."""
    if not attempt.committing or connection.in_atomic_block:
        return None
    for read in (1, 2):
        try:
            order = selectors.order_for_staff(code=attempt.code)
            return selectors.order_detail(order) if order.payment_reference == payment_id else None
        except NotFoundError:
            return None
        except DatabaseError:
            if read == 2:
                return False
            connection.close()  # broken: the second read opens a new connection
    return False


# --- capture and void -----------------------------------------------------------------------------------------


def payment_capture(payment: Payment, *, now: datetime) -> Payment:
    """Captures an authorized payment whose order committed as paid. A failure leaves it authorized, for
    `reconcile_payments` to capture later (providers hold an authorization for days)."""
    provider = payment_provider_named(payment.provider)
    try:
        result = provider.capture(payment_id=payment.payment_id, amount=payment.amount, currency=payment.currency)
    except ApplicationError as error:  # the provider is unreachable: reconciliation captures it later
        result_message, approved = str(error.detail), False
    else:
        result_message, approved = result.message, result.approved
    recorded = Payment(
        pk=payment.pk,
        status=Payment.Status.CAPTURED if approved else Payment.Status.AUTHORIZED,
        message=result_message[:500],
        updated_at=now,
    )
    updated = seats.update(recorded, ["status", "message", "updated_at"], only_if=("status", Payment.Status.AUTHORIZED))
    if approved and updated:
        payment.status = Payment.Status.CAPTURED
        metrics.payment_outcome(provider=payment.provider, outcome="captured")
    return payment


def _void(payment: Payment, *, provider: PaymentProvider, now: datetime) -> None:
    """Releases an authorization whose order did not commit, or did not get its seats (the provider says whether
    there was one). A payment of a paid order is never marked voided."""
    try:
        result = provider.void(payment_id=payment.payment_id) if payment.payment_id else None
    except ApplicationError:
        return  # unreachable: the row stays as it is and reconciliation voids it
    Payment.objects.filter(pk=payment.pk).exclude(status=Payment.Status.CAPTURED).exclude(
        order__status=Order.Status.PAID
    ).update(
        status=Payment.Status.VOIDED,
        payment_id=payment.payment_id,  # which payment was voided, also when its answer was never recorded before
        message=(result.message if result else "")[:500],
        updated_at=now,
    )
    metrics.payment_outcome(provider=payment.provider, outcome="voided")


# --- settling a pending order ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settlement:
    order: Order | None
    outcome: str  # paid, not_completed, failed, waiting, expired, voided, flagged, unchanged


def payment_settle(*, payment: Payment, now: datetime) -> Settlement:
    """Brings an order in line with what the provider says of its payment. Safe to call any number of times, from
    a webhook, the buyer's return page or reconciliation, in any order: each decision is taken under the order's
    lock from the order's state, and capture and void are idempotent at the provider."""
    provider = payment_provider_named(payment.provider)
    state = provider.status(payment_id=payment.payment_id)
    if payment.order_id is None:
        return _settle_orphan(payment, provider=provider, state=state.state, now=now)
    if state.state == "authorized":
        return _complete(payment, now=now)
    if state.state == "captured":
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.CAPTURED, updated_at=now)
        return Settlement(order=payment.order, outcome="unchanged")
    if state.state in ("canceled", "failed") and payment.status == Payment.Status.AUTHORIZED:
        return _authorization_lost(payment, note=state.message, now=now)
    if state.state in ("canceled", "failed"):
        return _end_pending(
            payment,
            status=Order.Status.FAILED,
            note=state.message or gettext_noop("The payment was cancelled."),
            now=now,
        )
    return _expire_if_late(payment, provider=provider, note=state.message, now=now)


def _authorization_lost(payment: Payment, *, note: str, now: datetime) -> Settlement:
    """A paid order's authorization was cancelled at the provider before the capture (it expired, or someone
    cancelled it there): the buyer holds tickets nobody paid for. Staff decide; the order is flagged for them."""
    with transaction.atomic():
        order = seats.lock_order(_order_id(payment))
        Payment.objects.filter(pk=payment.pk, status=Payment.Status.AUTHORIZED).update(
            status=Payment.Status.FAILED, message=note[:500], updated_at=now
        )
        order.flag_for_staff(
            "The payment was cancelled at the provider before it was captured: these tickets are not paid for."
        )
        order.save(update_fields=["payment_note", "flagged"])
    metrics.payment_outcome(provider=payment.provider, outcome="failed")
    return Settlement(order=order, outcome="flagged")


def _order_id(payment: Payment) -> int:
    if payment.order_id is None:
        raise AssertionError("only a payment attached to an order is settled through its order")
    return payment.order_id


def _settle_orphan(payment: Payment, *, provider: PaymentProvider, state: str, now: datetime) -> Settlement:
    """A payment whose order never committed: release whatever the provider reserved."""
    if state in ("authorized", "requires_action"):
        _void(payment, provider=provider, now=now)
    else:
        Payment.objects.filter(pk=payment.pk, order__isnull=True).update(status=Payment.Status.VOIDED, updated_at=now)
    return Settlement(order=None, outcome="voided")


def _complete(payment: Payment, *, now: datetime) -> Settlement:
    """An authorized payment: the pending (or expired) order takes its seats and becomes paid, then the payment is
    captured; if the seats went to others after the deadline, the order ends `expired`, the buyer is told, and the
    authorization is voided. A paid order's authorization is simply captured (again: idempotent)."""
    try:
        outcome = _take_for_payment(payment, now=now)
    except (
        HoldExpiredError,
        NotOnSaleError,
        BuyerLimitExceededError,
        PriceChangedError,
        VoucherExhaustedError,
    ) as refusal:
        outcome = _not_completed(payment, note=str(refusal.detail), now=now)
    order = Order.objects.get(pk=_order_id(payment))
    if order.status == Order.Status.PAID:
        Payment.objects.filter(pk=payment.pk, status=Payment.Status.REQUIRES_ACTION).update(
            status=Payment.Status.AUTHORIZED, updated_at=now
        )
        payment.refresh_from_db()
        payment_capture(payment, now=now)
    elif outcome == "not_completed":
        _void(payment, provider=payment_provider_named(payment.provider), now=now)
    return Settlement(order=order, outcome=outcome)


def _take_for_payment(payment: Payment, *, now: datetime) -> str:
    """Under the order basket's and the order's locks: a pending or expired order becomes paid."""
    with transaction.atomic():
        order = _lock_for_settling(payment)
        if order.status not in (Order.Status.PENDING, Order.Status.EXPIRED):
            return "unchanged"
        lines = list(order.lines.select_related("ticket_type__event", "voucher"))
        holds = _holds_for(order, lines, now=now)
        _check_buyer_limits(holds=holds, email=order.email)
        _issue_tickets(order, lines, now=now)
        if order.basket_id is not None:
            seats.release_holds(order.basket_id)
        _take_seats(holds, prices=None, now=now)
        order.status, order.basket = Order.Status.PAID, None
        order.save(update_fields=["status", "basket"])
    return "paid"


def _lock_for_settling(payment: Payment) -> Order:
    """The payment's order under the protocol's locks, in its order: the order's own basket (its holds), then the
    order."""
    order = Order.objects.get(pk=_order_id(payment))
    if order.basket_id is not None:
        seats.lock_basket(pk=order.basket_id)
    return seats.lock_order(order.pk)


def _holds_for(order: Order, lines: list[OrderLine], *, now: datetime) -> list[Hold]:
    """The order's lines as holds to sell: the order basket's own (expired ones are counted again under the lock by
    `_take_seats`)."""
    own = Hold.objects.filter(basket_id=order.basket_id) if order.basket_id is not None else Hold.objects.none()
    held = {hold.ticket_type_id: hold for hold in own}
    holds = []
    for line in lines:
        hold = held.get(line.ticket_type_id)
        if hold is None or hold.quantity != line.quantity:  # tidied away since the deadline: a hold that expired
            hold = Hold(
                basket_id=order.basket_id or 0,
                ticket_type_id=line.ticket_type_id,
                quantity=line.quantity,
                expires_at=now - timedelta(microseconds=1),
                voucher_id=line.voucher_id,
            )
        hold.ticket_type = line.ticket_type
        hold.voucher = line.voucher
        holds.append(hold)
    return holds


def _not_completed(payment: Payment, *, note: str, now: datetime) -> str:
    """The payment came after the deadline and the seats went to others: the order ends expired, the buyer is told."""
    with transaction.atomic():
        order = seats.lock_order(_order_id(payment))
        if order.status not in (Order.Status.PENDING, Order.Status.EXPIRED):
            return "unchanged"
        order.payment_note = f"Your payment arrived after your seats were released, and they have been sold: {note}"[
            :500
        ]
        order.status = Order.Status.EXPIRED
        order.save(update_fields=["status", "payment_note"])
        outbox.outbox_enqueue(
            kind=OutboundEmail.Kind.ORDER_NOT_COMPLETED, order_id=order.pk, language=order.language, now=now
        )
    return "not_completed"


def _end_pending(payment: Payment, *, status: str, note: str, now: datetime) -> Settlement:
    """A pending order whose payment will not come (cancelled or failed for good at the provider, or too late):
    it ends `status`, its holds go, and the payment record says so."""
    with transaction.atomic():
        order = _lock_for_settling(payment)
        if order.status != Order.Status.PENDING:
            return Settlement(order=order, outcome="unchanged")
        if order.basket_id is not None:
            seats.release_holds(order.basket_id)
        order.status, order.basket, order.payment_note = status, None, note[:500]
        order.save(update_fields=["status", "basket", "payment_note"])
        Payment.objects.filter(pk=payment.pk).exclude(status=Payment.Status.CAPTURED).update(
            status=Payment.Status.VOIDED if status == Order.Status.EXPIRED else Payment.Status.FAILED,
            message=note[:500],
            updated_at=now,
        )
    metrics.payment_outcome(provider=payment.provider, outcome=status)
    return Settlement(order=order, outcome=status)


def _expire_if_late(payment: Payment, *, provider: PaymentProvider, note: str, now: datetime) -> Settlement:
    """Still waiting for the buyer: past the deadline the order expires and the payment is cancelled at the
    provider, so a late confirmation cannot authorize it any more."""
    order = Order.objects.get(pk=_order_id(payment))
    if order.status != Order.Status.PENDING or (order.payment_deadline and order.payment_deadline > now):
        if note and order.status == Order.Status.PENDING and order.payment_note != note[:500]:
            Order.objects.filter(pk=order.pk, status=Order.Status.PENDING).update(payment_note=note[:500])
        return Settlement(order=order, outcome="waiting" if order.status == Order.Status.PENDING else "unchanged")
    try:
        provider.void(payment_id=payment.payment_id)
    except ApplicationError:
        return Settlement(order=order, outcome="waiting")  # asked again at the next reconciliation
    if provider.status(payment_id=payment.payment_id).state == "authorized":
        return _complete(payment, now=now)  # the buyer confirmed just before the cancel: sell if the seats are free
    # Stored in English like every note; pages translate it when they show it.
    note = gettext_noop("The time to pay ran out and your seats were released. Nothing was charged.")
    return _end_pending(payment, status=Order.Status.EXPIRED, note=note, now=now)


# --- the buyer pays a pending order ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentStep:
    """Where a buyer's payment stands once they confirmed it: `paid`, or `requires_action` with the secret their
    browser needs to authenticate them (3-D Secure)."""

    order: Order
    status: str
    client_secret: str = ""


def payment_confirm(*, order: Order, payment_method: str, now: datetime) -> PaymentStep:
    """Pays a pending order, within its payment window only, with the payment method the buyer's browser made of their
    card: the provider confirms it with no lock held, and an authorization settles the order at once. A declined card
    leaves the order pending, for the buyer to try another until the deadline."""
    payment = selectors.latest_payment(order)
    if payment is None:
        raise OrderNotPayableError()
    if order.awaits_payment(now):
        provider = payment_provider_named(payment.provider)
        answer = provider.confirm(payment_id=payment.payment_id, payment_method=payment_method)
        if answer.state == "declined":
            Payment.objects.filter(pk=payment.pk).update(message=answer.message[:500], updated_at=now)
            metrics.payment_outcome(provider=payment.provider, outcome="declined")
            raise _declined(answer.message, _("Your tickets stay reserved until the payment window closes."))
        if answer.state == "requires_action":
            return PaymentStep(order=order, status=answer.state, client_secret=payment.client_secret)
    # Authorized now, or earlier (a second click), or too late: the provider's word settles the order.
    order = _settled(order, payment, now=now)
    if order.status != Order.Status.PAID:
        raise OrderNotPayableError(order.payment_note or None)
    return PaymentStep(order=order, status=order.status)


def payment_return(*, order: Order, now: datetime) -> Order:
    """The buyer is back from paying (3-D Secure, a provider's redirect): the order as the provider's answer leaves
    it. Only a pending or expired order can still change."""
    return _settled(order, selectors.latest_payment(order), now=now)


def _settled(order: Order, payment: Payment | None, *, now: datetime) -> Order:
    """The order once its payment is settled; only a pending or expired order can still change."""
    if payment is None or order.status not in (Order.Status.PENDING, Order.Status.EXPIRED):
        return order
    payment_settle(payment=payment, now=now)
    return Order.objects.get(pk=order.pk)


# --- reconciliation -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reconciliation:
    settled: Counter[str]
    errors: int


def payments_reconcile(
    *, now: datetime, older_than: timedelta = timedelta(minutes=2), limit: int = 500
) -> Reconciliation:
    """Settles, by asking the provider, every payment a webhook or a lost process left unsettled: started or
    authorized without a capture, or awaiting the buyer past the order's deadline (within it, the webhook and the
    buyer's return page settle it; asking the provider about every waiting order every run would not scale).
    `older_than` leaves the requests in flight alone."""
    waiting_too_long = Q(status=Payment.Status.REQUIRES_ACTION) & (
        Q(order__payment_deadline__lte=now) | Q(order__isnull=True) | ~Q(order__status=Order.Status.PENDING)
    )
    unsettled = (
        Payment.objects.filter(Q(status__in=[Payment.Status.STARTED, Payment.Status.AUTHORIZED]) | waiting_too_long)
        .filter(updated_at__lte=now - older_than)
        .order_by("updated_at")[:limit]
    )
    settled: Counter[str] = Counter()
    errors = 0
    for payment in unsettled:
        try:
            settled[_reconcile_one(payment, now=now)] += 1
        except ApplicationError:
            errors += 1  # the provider did not answer: the next run asks again
        except Exception:  # noqa: BLE001 - one payment the provider refuses to discuss must not stop the others
            logger.exception("reconciling a payment failed", extra={"payment_reference": payment.reference})
            errors += 1
    return Reconciliation(settled=settled, errors=errors)


def _reconcile_one(payment: Payment, *, now: datetime) -> str:
    if payment.status == Payment.Status.STARTED and not payment.payment_id:
        # The process was lost between recording and the provider's answer: ask again, the identical request with
        # the same reference, which the provider answers with the same payment, then release it (it has no order).
        if payment.created_at < now - IDEMPOTENCY_WINDOW:
            return _lost(payment, now=now)
        answer = authorization_request(payment_provider_named(payment.provider), payment, email="")
        payment.payment_id = answer.payment_id
        Payment.objects.filter(pk=payment.pk).update(payment_id=answer.payment_id)
    return payment_settle(payment=payment, now=now).outcome


def _lost(payment: Payment, *, now: datetime) -> str:
    """Too late to ask again: the provider has forgotten the key, and the same request would reserve the money a
    second time. The record is closed, for staff to look the reference up at the provider (an authorization that
    is never captured lapses there by itself)."""
    message = (
        f"The provider's answer was never recorded, and it is too late to ask again safely: look up the payment with "
        f"reference {payment.reference} at {payment.provider}."
    )
    Payment.objects.filter(pk=payment.pk, status=Payment.Status.STARTED).update(
        status=Payment.Status.FAILED, message=message, updated_at=now
    )
    logger.error("payment lost", extra={"payment_reference": payment.reference, "provider": payment.provider})
    metrics.payment_outcome(provider=payment.provider, outcome="lost")
    return "lost"
