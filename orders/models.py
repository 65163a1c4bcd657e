import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from events.models import TicketType, Voucher

# Codes shoppers read aloud or type: no 0/O, 1/I/L, 5/S, 2/Z.
CODE_ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
# Ticket secrets: 32 unambiguous symbols, 26 of them = 130 bits from `secrets`.
SECRET_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # noqa: S105 - an alphabet, not a secret


def new_basket_token() -> str:
    return secrets.token_urlsafe(32)


def new_order_code() -> str:
    return "AT-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))


def new_order_secret() -> str:
    return secrets.token_urlsafe(24)


# Each random byte to a symbol of SECRET_ALPHABET by its low five bits: 256 values over 32 symbols, each symbol
# eight times, so every symbol is equally likely.
_BYTE_TO_SECRET_SYMBOL = bytes(SECRET_ALPHABET[value % len(SECRET_ALPHABET)].encode()[0] for value in range(256))


def new_ticket_code() -> str:
    """26 symbols of 5 random bits each (130 bits), made in C: a checkout makes one per seat, and 26 `secrets.choice`
    calls took 41 µs (this, 0.6 µs), about 1 % of a one-ticket API checkout's CPU."""
    return secrets.token_bytes(26).translate(_BYTE_TO_SECRET_SYMBOL).decode()


class Basket(models.Model):
    """An anonymous shopper's basket; the unguessable token is its only credential."""

    token = models.CharField(max_length=64, unique=True, default=new_basket_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Made for a waiting-list offer: its holds are the seats offered, and the order it becomes uses the offer.
    for_offer = models.BooleanField(default=False, db_default=False, editable=False)

    # Not stored: the hold a basket add just wrote, with its ticket type and event, priced as under the seat lock
    # (services.basket_add), so that the answer to the add needs no read of what it wrote.
    just_held: "Hold | None" = None

    def __str__(self) -> str:
        return f"Basket {self.token[:8]}…"


class Hold(models.Model):
    """Seats of one ticket type reserved for a basket until `expires_at`.

    An expired hold stops counting against availability the moment it expires; no job has to run.
    """

    basket = models.ForeignKey(Basket, on_delete=models.CASCADE, related_name="holds")
    ticket_type = models.ForeignKey(TicketType, on_delete=models.CASCADE, related_name="holds")
    quantity = models.PositiveIntegerField()
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    # The voucher every seat of this hold is priced with; while the hold lives, it keeps that many of the voucher's
    # redemptions from others, as it keeps its seats.
    voucher = models.ForeignKey(Voucher, null=True, blank=True, on_delete=models.PROTECT, related_name="holds")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["basket", "ticket_type"], name="hold_one_per_ticket_type"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="hold_quantity_positive"),
        ]
        indexes = [models.Index(fields=["ticket_type", "expires_at"], name="hold_type_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.ticket_type_id} until {self.expires_at:%H:%M:%S}"

    @property
    def unit_price(self) -> Decimal:
        """What each seat costs now: its ticket type's price, after the hold's voucher."""
        price = self.ticket_type.price
        return self.voucher.price_for(price) if self.voucher is not None else price


class Order(models.Model):
    """A buyer's order. Born `paid` when the payment was authorized before it committed (immediate methods), or
    `pending` while the buyer pays (Stripe: card entry, 3-D Secure); a pending order's seats stay taken until
    `payment_deadline` by the holds of its own basket, so availability needs no job to give them back.

    The database allows only the documented status transitions (a trigger, migration 0005). SQLite makes some schema
    changes of this table (a new field with a default, for one) by rebuilding it, which drops that trigger: such a
    migration makes it again, as 0013 does; the transition test fails on SQLite if one does not."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting payment")
        PAID = "paid", _("Paid")
        EXPIRED = "expired", _("Expired")
        FAILED = "failed", _("Payment failed")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    # The only moves an order's status may make; a trigger (migration 0005) refuses any other in the database.
    # expired → paid: a payment confirmed after the window, while its seats were still free.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.PENDING: frozenset({Status.PAID, Status.EXPIRED, Status.FAILED}),
        Status.EXPIRED: frozenset({Status.PAID}),
        Status.FAILED: frozenset(),
        Status.PAID: frozenset({Status.CANCELLED, Status.REFUNDED}),
        Status.CANCELLED: frozenset(),
        Status.REFUNDED: frozenset(),
    }

    code = models.CharField(max_length=12, unique=True, default=new_order_code, editable=False)
    # Part of the shopper's private order URL; the code alone reveals nothing.
    secret = models.CharField(max_length=64, default=new_order_secret, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PAID)
    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254)
    # The buyer's language at checkout (settings.LANGUAGES; "" for the site's default): every email about the order
    # and its tickets PDF are written in it, whoever triggers them (the buyer, staff, the payment worker).
    language = models.CharField(max_length=8, blank=True, default="")
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    payment_method = models.CharField(max_length=20)
    payment_reference = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # A pending order: when its seats return to sale, and the basket whose holds keep them until then (a basket of
    # its own, whose token nobody has).
    payment_deadline = models.DateTimeField(null=True, blank=True)
    basket = models.ForeignKey(Basket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Set by a dispute (chargeback) for staff to look at.
    flagged = models.BooleanField(default=False)
    # What happened to the payment beyond the status: a late payment refunded, a dispute, a provider's message.
    payment_note = models.CharField(max_length=500, blank=True)
    # The terms the buyer accepted at checkout: {"<event id>": <EventTerms version>} for each event with terms.
    accepted_terms = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Money leaves the shop only through staff who hold this, in the admin and the API alike; the change
        # permission alone (a support role) does not give it.
        permissions = [("refund_order", "Can cancel and refund orders")]
        indexes = [
            models.Index(fields=["status", "created_at"], name="order_status_created_idx"),
            models.Index(fields=["email"], name="order_email_idx"),
            # "Find my orders" matches the address whatever its case (orders/selfservice.py).
            models.Index(Lower("email"), F("created_at").desc(), F("id").desc(), name="order_email_lower_idx"),
            models.Index(fields=["payment_reference"], name="order_payment_ref_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "paid", "expired", "failed", "cancelled", "refunded"]),
                name="order_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="pending") | Q(payment_deadline__isnull=False),
                name="order_pending_has_deadline",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def can_become(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.status]

    def awaits_payment(self, now: datetime) -> bool:
        """Pending and within its payment window: the buyer may still pay for it."""
        return self.status == self.Status.PENDING and self.payment_deadline is not None and now < self.payment_deadline

    def flag_for_staff(self, note: str) -> None:
        """Flags the order with a note added after the earlier ones (a late payment, a dispute stay readable); the
        caller saves `payment_note` and `flagged`, under the order's lock."""
        self.payment_note = " ".join(filter(None, [self.payment_note, note]))[:500]
        self.flagged = True


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    ticket_type = models.ForeignKey(TicketType, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    # Snapshot of the price at the moment of sale, after any voucher; later price changes never touch it.
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    # The voucher the seats were bought with and what it took off each seat's list price.
    voucher = models.ForeignKey(Voucher, null=True, blank=True, on_delete=models.PROTECT, related_name="order_lines")
    discount = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    # Who each seat is for, as the buyer named them at checkout ({"name", "email"} per seat, in seat order), kept
    # for the tickets, which a pending order gets only once paid. Empty where the event asks for no names.
    attendees = models.JSONField(default=list, blank=True)
    # The buyer's answers to the event's questions, per seat in seat order (each seat a list as Ticket.answers),
    # kept for the tickets as `attendees` is. Empty where the event asks no questions.
    answers = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="order_line_price_not_negative"),
            models.CheckConstraint(condition=Q(discount__gte=0), name="order_line_discount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.ticket_type_id} @ {self.unit_price}"

    @property
    def line_total(self):  # type: ignore[no-untyped-def]
        return self.unit_price * self.quantity

    @property
    def seats_answered(self) -> list[list[tuple[str, str]]]:
        """Each answered seat's answers as (question, answer) texts, for display."""
        return [answers_shown(seat) for seat in self.answers or [] if seat]


class Ticket(models.Model):
    """One seat of a paid order; `code` is its unguessable secret (QR code, door check). A ticket cancelled on its
    own (the rest of its order stays valid) no longer admits anyone, its seat is back on sale, and `refund` is the
    refund of its price."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="tickets")
    line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="tickets")
    ticket_type = models.ForeignKey(TicketType, on_delete=models.PROTECT, related_name="tickets")
    code = models.CharField(max_length=32, unique=True, default=new_ticket_code, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    refund = models.ForeignKey(
        "Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="tickets", editable=False
    )
    # The person the ticket is for, where its event asks (Event.attendee_data); blank otherwise.
    attendee_name = models.CharField(max_length=200, blank=True)
    attendee_email = models.EmailField(max_length=254, blank=True)
    # The buyer's answers about this ticket, each {"question_id", "question" (its text as asked), "kind", "value"},
    # in the order asked: a copy, so that changing or deleting a question never alters what was answered. `value`
    # is a string (text, choice; a number as written in decimal), a list of strings (multiple) or a boolean (yes_no).
    answers = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Ticket {self.code[:6]}…"

    @property
    def answers_shown(self) -> list[tuple[str, str]]:
        """(question, answer) texts, for display."""
        return answers_shown(self.answers)


def answer_text(value: object) -> str:
    """An answer as a person reads it."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def answers_shown(answers: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    return [(answer["question"], answer_text(answer["value"])) for answer in answers or []]


class IdempotencyRecord(models.Model):
    """One checkout per Idempotency-Key: stored in the same transaction as the order it produced."""

    key = models.CharField(max_length=255, unique=True)
    fingerprint = models.CharField(max_length=64)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="idempotency_records")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key


class CheckIn(models.Model):
    """A ticket admitted at the door. One row per ticket at most: the database refuses a second entry,
    even when two doors scan the same ticket in the same millisecond."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="check_ins")
    # Denormalised from the ticket's type, so the door counter is one indexed count.
    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="check_ins")
    checked_in_at = models.DateTimeField()
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-checked_in_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["ticket"], name="checkin_one_per_ticket")]
        indexes = [models.Index(fields=["event", "checked_in_at"], name="checkin_event_time_idx")]

    def __str__(self) -> str:
        return f"{self.ticket} at {self.checked_in_at:%H:%M:%S}"


class Refund(models.Model):
    """Money returned to the buyer: the rest of the order on its cancellation (at most one per order: the database
    refuses a second), the price of some of its tickets cancelled on their own, or a part of it on staff's word,
    never more in all than the order's total (checked under the order's lock).

    Created `pending` in the transaction that decides it; the provider is called after that commits, never under
    its locks. Whoever moves it pending/failed → processing calls the provider, so two workers never refund the
    same row twice; the answer is recorded as succeeded or failed (failed may be retried).
    """

    class Reason(models.TextChoices):
        CANCELLATION = "cancellation", _("Cancellation")
        PARTIAL = "partial", _("Partial refund")
        TICKETS = "tickets", _("Tickets cancelled")
        EVENT_CANCELLED = "event_cancelled", _("Event cancelled")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSING = "processing", _("Processing")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.CANCELLATION)
    note = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    provider = models.CharField(max_length=20)
    reference = models.CharField(max_length=100, blank=True)
    message = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=Q(reason="cancellation"), name="refund_one_cancellation_per_order"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="refund_amount_not_negative"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="refund_status_created_idx")]

    def __str__(self) -> str:
        return f"Refund of {self.order_id}: {self.status}"


class Payment(models.Model):
    """The shop's record of one payment with a provider. Written before the provider is asked, so no authorization
    exists without a row that `reconcile_payments` can settle, whatever happens to the process in between.

    `reference` identifies the attempt to the provider (its idempotency key): asked again with it and the same
    request, which the row holds (`payment_method`, `return_url`, amount and currency), the provider answers with the
    same payment."""

    class Status(models.TextChoices):
        STARTED = "started", "Started"  # the provider is being asked, or was and its answer never got recorded
        REQUIRES_ACTION = "requires_action", "Awaiting the buyer"
        AUTHORIZED = "authorized", "Authorized"
        CAPTURED = "captured", "Captured"
        VOIDED = "voided", "Voided"
        FAILED = "failed", "Failed"

    reference = models.CharField(max_length=64, unique=True)
    provider = models.CharField(max_length=20)
    # What an API client asked to pay with at once (Stripe: a PaymentMethod id, and where to return after 3-D
    # Secure): part of the request that is repeated when its answer was lost.
    payment_method = models.CharField(max_length=255, blank=True)
    return_url = models.CharField(max_length=2000, blank=True)
    payment_id = models.CharField(max_length=255, blank=True)
    # What the buyer's browser needs to confirm the payment (Stripe's PaymentIntent client secret); shown only on the
    # buyer's own checkout answer and private order page.
    client_secret = models.CharField(max_length=255, blank=True)
    # What the buyer must do next, as the provider answered (Stripe: a 3-D Secure redirect), for API clients.
    next_action = models.JSONField(null=True, blank=True)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTED)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(status__in=["started", "requires_action", "authorized", "captured", "voided", "failed"]),
                name="payment_status_valid",
            ),
            # Captured money always belongs to an order.
            models.CheckConstraint(
                condition=~Q(status="captured") | Q(order__isnull=False), name="payment_captured_has_order"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="payment_status_updated_idx"),
            models.Index(fields=["provider", "payment_id"], name="payment_provider_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.payment_id or self.reference}: {self.status}"


class WebhookDelivery(models.Model):
    """A provider's webhook event, handled once: the unique event id refuses a second handling of a duplicate."""

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    payment_id = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_delivery_once"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"


class TestProviderPayment(models.Model):
    """The `test` payment provider's own books (orders/payments.py), standing in for a real provider's: what it
    authorized, captured and refunded. Never written in the shop's transactions."""

    __test__ = False  # not a pytest test class

    # Keyed by the id the provider hands out: every call names a payment by it (orders/seats.py writes by key).
    payment_id = models.CharField(max_length=100, primary_key=True)
    state = models.CharField(max_length=16, default="authorized")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    captured = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    refunded = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    def __str__(self) -> str:
        return f"{self.payment_id}: {self.state}"


def new_waiting_list_token() -> str:
    return secrets.token_urlsafe(24)


class WaitingListEntry(models.Model):
    """A shopper waiting for seats of a sold-out ticket type: offered freed seats in the order they confirmed.

    unconfirmed → waiting (the emailed link confirmed it) → offered (seats held for them by a basket of its own, for
    WAITING_LIST_OFFER_MINUTES) → used (an order took the basket) or expired (the offer passed to the next). They
    may leave at any point before used; the organizer switching the list off closes it.
    """

    class Status(models.TextChoices):
        UNCONFIRMED = "unconfirmed", _("Not confirmed yet")
        WAITING = "waiting", _("Waiting")
        OFFERED = "offered", _("Offered seats")
        USED = "used", _("Bought")
        EXPIRED = "expired", _("Expired")
        LEFT = "left", _("Left")
        CLOSED = "closed", _("Closed")

    ACTIVE = (Status.UNCONFIRMED, Status.WAITING, Status.OFFERED)

    ticket_type = models.ForeignKey(TicketType, on_delete=models.CASCADE, related_name="waiting_list")
    email = models.EmailField(max_length=254)  # lower-cased: one place in line per address
    quantity = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNCONFIRMED)
    # The private link's credential: confirming, leaving and taking an offer need it, nothing else.
    token = models.CharField(max_length=64, unique=True, default=new_waiting_list_token, editable=False)
    language = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField()
    # The place in line: first confirmed, first offered.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    offered_at = models.DateTimeField(null=True, blank=True)
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    basket = models.ForeignKey(Basket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "waiting list entry"
        verbose_name_plural = "waiting list"
        ordering = ["confirmed_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["unconfirmed", "waiting", "offered", "used", "expired", "left", "closed"]),
                name="waiting_entry_status_valid",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="waiting_entry_quantity_positive"),
            models.CheckConstraint(
                condition=Q(confirmed_at__isnull=False) | ~Q(status__in=["waiting", "offered", "used"]),
                name="waiting_entry_in_line_confirmed",
            ),
            models.CheckConstraint(
                condition=~Q(status="offered") | Q(offer_expires_at__isnull=False, basket__isnull=False),
                name="waiting_entry_offer_has_basket",
            ),
            # One place in line per address and ticket type.
            models.UniqueConstraint(
                fields=["ticket_type", "email"],
                condition=Q(status__in=["unconfirmed", "waiting", "offered"]),
                name="waiting_entry_one_active_per_email",
            ),
        ]
        indexes = [
            # The queue: a ticket type's confirmed entries in line order.
            models.Index(
                fields=["ticket_type", "confirmed_at", "id"],
                condition=Q(status="waiting"),
                name="waiting_entry_line_idx",
            ),
            models.Index(fields=["offer_expires_at"], condition=Q(status="offered"), name="waiting_entry_offer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.email} for {self.ticket_type_id}: {self.status}"


class OutboundEmail(models.Model):
    """An email to a buyer, queued in the same transaction as the change it reports (the outbox).

    A committed order therefore always has its confirmation queued, whatever happens to the process after the
    commit; `manage.py send_emails` (orders/outbox.py) sends it. Delivery is at least once: a worker that dies
    between handing the message to the mail server and recording it leaves the row to be sent again once its
    claim expires. `failed` rows ran out of attempts and wait for staff ("retry now" in the admin).
    """

    class Kind(models.TextChoices):
        ORDER_CONFIRMATION = "order_confirmation", "Order confirmation"
        ORDER_CANCELLATION = "order_cancellation", "Order cancellation"
        ORDER_NOT_COMPLETED = "order_not_completed", "Order not completed"
        TICKETS_CANCELLED = "tickets_cancelled", "Tickets cancelled"
        REFUND = "refund", "Refund"
        ORDER_LOOKUP = "order_lookup", "Order lookup"
        WAITING_LIST_CONFIRM = "waiting_list_confirm", "Waiting list: confirm"
        WAITING_LIST_OFFER = "waiting_list_offer", "Waiting list: offer"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        # Nothing to send by the time it was due (an address with no orders, an offer that has ended): done, unsent.
        SKIPPED = "skipped", "Skipped"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    # What the email is about: an order (sent to the order's address), or nothing but an address (`recipient`: the
    # answer to "find my orders", which lists that address's orders as they are when it is sent).
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.CASCADE, related_name="outbound_emails")
    recipient = models.EmailField(max_length=254, blank=True)
    waiting_entry = models.ForeignKey(
        WaitingListEntry, null=True, blank=True, on_delete=models.CASCADE, related_name="outbound_emails"
    )
    # The language it is written in: the shopper's when it was queued ("" for the site's default).
    language = models.CharField(max_length=8, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    # When a worker may take it next: now for a new row, the retry time after a failure, the end of the claim
    # while a worker is sending it.
    next_attempt_at = models.DateTimeField()
    # Set while a worker sends it (claimed); cleared when the result is recorded.
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=[
                        "order_confirmation",
                        "order_cancellation",
                        "order_not_completed",
                        "tickets_cancelled",
                        "refund",
                        "order_lookup",
                        "waiting_list_confirm",
                        "waiting_list_offer",
                    ]
                ),
                name="outbound_email_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(order__isnull=False) | ~Q(recipient=""), name="outbound_email_has_recipient"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sent", "failed", "skipped"]), name="outbound_email_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="sent", sent_at__isnull=False) | ~Q(status="sent"),
                name="outbound_email_sent_has_time",
            ),
        ]
        indexes = [
            # The worker's question, "pending and due?": only unsent rows are in this index, so it stays small
            # however many emails have gone out.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="outbound_email_due_idx"),
            models.Index(fields=["status", "created_at"], name="outbound_email_status_idx"),
        ]

    def __str__(self) -> str:
        about = f"order {self.order_id}" if self.order_id is not None else self.recipient
        return f"{self.get_kind_display()} for {about}: {self.status}"
