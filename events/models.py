from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext

from aegistickets.money import format_money


class Organizer(models.Model):
    """Who runs events: their staff (members) see and change only their own events, the orders and vouchers of
    those events and their check-ins, in the admin and the API alike. Superusers see every organizer's."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="organizers", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    class AttendeeData(models.TextChoices):
        NONE = "none", "Only the buyer's name and email"
        NAME = "name", "A name for each ticket"
        NAME_EMAIL = "name_email", "A name and an email for each ticket"

    organizer = models.ForeignKey(Organizer, on_delete=models.PROTECT, related_name="events")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    venue = models.CharField(max_length=200)
    city = models.CharField(max_length=100)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    is_published = models.BooleanField(default=False)
    # Against scalpers: at most this many paid tickets per buyer email for the whole event (None: no limit).
    max_tickets_per_buyer = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Most tickets one email address may buy for this event; empty for no limit."
    )
    # Buyers may cancel their own tickets of this event from their order page (their price refunded) until then.
    buyer_cancellation_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Until when buyers may cancel their tickets themselves (their price is refunded); at the latest "
        "when the event starts. Empty: they may not.",
    )
    # Buyers may change the names on their tickets from their order page until then (orders/selfservice.py).
    attendee_changes_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Until when buyers may change the attendee names of their tickets from their order page. Empty: "
        "they may not.",
    )
    # What checkout asks about each ticket's holder (badges, the door's list of names).
    attendee_data = models.CharField(
        max_length=16,
        choices=AttendeeData.choices,
        default=AttendeeData.NONE,
        help_text="What checkout asks about the person each ticket is for.",
    )
    # Terms the buyer must accept at checkout; each change is a new version (EventTerms), and an order records the
    # version its buyer accepted. Written through events.services.event_terms_set, never directly.
    terms = models.TextField(blank=True, help_text="Terms and conditions buyers must accept; empty for none.")
    terms_version = models.PositiveIntegerField(default=0, editable=False)
    # Whether the event has questions (Question): checkout reads the event with the basket and skips the questions
    # query for the many events that ask none. Kept by events.services whenever questions are written.
    has_questions = models.BooleanField(default=False, editable=False)
    waiting_list_enabled = models.BooleanField(
        "waiting list",
        default=True,
        help_text="When a ticket type sells out, shoppers may join a waiting list and are offered freed seats in turn.",
    )
    image = models.ImageField(upload_to="events/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["is_published", "starts_at"], name="event_published_start_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="event_ends_after_start"),
            models.CheckConstraint(
                condition=Q(buyer_cancellation_until__isnull=True) | Q(buyer_cancellation_until__lte=F("starts_at")),
                name="event_buyer_cancellation_before_start",
            ),
            models.CheckConstraint(
                condition=Q(attendee_data__in=["none", "name", "name_email"]), name="event_attendee_data_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def asks_attendee_name(self) -> bool:
        return self.attendee_data != self.AttendeeData.NONE

    @property
    def asks_attendee_email(self) -> bool:
        return self.attendee_data == self.AttendeeData.NAME_EMAIL

    @property
    def asked_questions(self) -> list[Question]:
        """The event's questions in order (prefetched by the selectors that show them); none, without a query, for an
        event that has none."""
        return list(self.questions.all()) if self.has_questions else []


class EventTerms(models.Model):
    """One version of an event's terms, kept unchanged: what the buyers of that version accepted."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="terms_versions")
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event", "version"]
        constraints = [
            models.UniqueConstraint(fields=["event", "version"], name="event_terms_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="event_terms_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} terms v{self.version}"


class TicketType(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="ticket_types")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    capacity = models.PositiveIntegerField()
    # Seats in paid orders. Written only by the order services, under this row's lock, together with
    # the order lines; the constraint below makes overselling impossible even if a lock were forgotten.
    sold = models.PositiveIntegerField(default=0, editable=False)
    # Seats the waiting list wants: the quantities of its confirmed entries not yet offered seats. They come before
    # the public: a freed seat is the list's while this is above zero (orders/seats.py). Written only by the waiting
    # list's services, under this row's lock.
    waiting = models.PositiveIntegerField(default=0, editable=False)
    max_per_order = models.PositiveSmallIntegerField(default=10)
    sale_starts_at = models.DateTimeField(null=True, blank=True)
    sale_ends_at = models.DateTimeField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    # Press, sponsors, crew: listed and sold only to a shopper with a voucher that names this ticket type.
    requires_voucher = models.BooleanField(
        default=False,
        help_text="Hidden: shown and sold only with a voucher that names this ticket type.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "price", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "name"], name="ticket_type_unique_name_per_event"),
            models.CheckConstraint(condition=Q(price__gte=Decimal("0")), name="ticket_type_price_not_negative"),
            models.CheckConstraint(condition=Q(sold__lte=F("capacity")), name="ticket_type_sold_within_capacity"),
            models.CheckConstraint(condition=Q(max_per_order__gte=1), name="ticket_type_max_per_order_positive"),
            models.CheckConstraint(
                condition=Q(sale_starts_at__isnull=True)
                | Q(sale_ends_at__isnull=True)
                | Q(sale_ends_at__gt=F("sale_starts_at")),
                name="ticket_type_sale_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event.name} – {self.name}"


class Voucher(models.Model):
    """A code that changes what a ticket costs (a percentage or a fixed amount off, or a set price) or unlocks hidden
    ticket types, for one event or all of its organizer's events, optionally only some ticket types, within a
    window, at most `max_redemptions` tickets.

    A redemption is one ticket. Like seats, redemptions are counted at the moment of a decision under the voucher's
    row lock (orders/seats.py): `redeemed` counts tickets sold with it, and the unexpired holds that carry it
    (baskets, pending orders) count too, so an abandoned basket gives its redemptions back when it expires. Written
    by the services only; `redeemed` never exceeds `max_redemptions` (a constraint holds it)."""

    class DiscountType(models.TextChoices):
        NONE = "none", "No discount (unlocks hidden ticket types)"
        PERCENT = "percent", "Percentage off"
        FIXED = "fixed", "Amount off"
        PRICE = "price", "Set price"

    organizer = models.ForeignKey(Organizer, on_delete=models.CASCADE, related_name="vouchers")
    # Empty: every event of the organizer.
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.CASCADE, related_name="vouchers")
    # Empty: every ticket type in scope that anyone may buy. A hidden ticket type is unlocked only by naming it.
    ticket_types = models.ManyToManyField(TicketType, blank=True, related_name="vouchers")
    # Kept in upper case: shoppers type codes in any case.
    code = models.CharField(max_length=64)
    discount_type = models.CharField(max_length=8, choices=DiscountType.choices, default=DiscountType.PERCENT)
    value = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    max_redemptions = models.PositiveIntegerField(default=1, help_text="Most tickets this code may be used for.")
    redeemed = models.PositiveIntegerField(default=0, editable=False)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    comment = models.CharField(max_length=200, blank=True, help_text="For staff: who it is for.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organizer", "code"], name="voucher_code_unique_per_organizer"),
            models.CheckConstraint(condition=~Q(code=""), name="voucher_code_not_empty"),
            models.CheckConstraint(condition=Q(value__gte=0), name="voucher_value_not_negative"),
            models.CheckConstraint(
                condition=~Q(discount_type="percent") | Q(value__lte=100), name="voucher_percent_at_most_100"
            ),
            models.CheckConstraint(
                condition=Q(discount_type__in=["none", "percent", "fixed", "price"]), name="voucher_discount_type_valid"
            ),
            models.CheckConstraint(condition=Q(max_redemptions__gte=1), name="voucher_max_redemptions_positive"),
            models.CheckConstraint(
                condition=Q(redeemed__lte=F("max_redemptions")), name="voucher_redeemed_within_maximum"
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="voucher_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def price_for(self, price: Decimal) -> Decimal:
        """What a ticket of this list price costs with the voucher, to the cent: never below zero, never above the list
        price."""
        if self.discount_type == self.DiscountType.PERCENT:
            off = (price * self.value / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            return price - off
        if self.discount_type == self.DiscountType.FIXED:
            return max(price - self.value, Decimal("0.00"))
        if self.discount_type == self.DiscountType.PRICE:
            return min(self.value, price)
        return price

    def describe(self) -> str:
        """The effect in words, as shoppers and staff read it."""
        if self.discount_type == self.DiscountType.PERCENT:
            return gettext("%(percent)s %% off") % {"percent": f"{self.value.normalize():f}"}
        if self.discount_type == self.DiscountType.FIXED:
            return gettext("%(amount)s off") % {"amount": format_money(self.value)}
        if self.discount_type == self.DiscountType.PRICE:
            return gettext("price %(amount)s") % {"amount": format_money(self.value)}
        return gettext("unlocks tickets")


class Question(models.Model):
    """A question checkout asks about each ticket of its event (of the ticket types it names; none: all of them).
    Answers are stored on the tickets with the question's text as it was asked, so changing or deleting a question
    never alters an answer already given. Written through events.services, which keeps Event.has_questions."""

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        CHOICE = "choice", "One of the options"
        MULTIPLE = "multiple", "Any of the options"
        YES_NO = "yes_no", "Yes or no"

    CHOICE_KINDS = (Kind.CHOICE, Kind.MULTIPLE)

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="questions")
    text = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TEXT)
    required = models.BooleanField(default=False)
    options = models.TextField(blank=True, help_text="For the choice kinds: one option per line.")
    ticket_types = models.ManyToManyField(
        TicketType, blank=True, related_name="questions", help_text="Asked only for these; none: for every ticket."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "text"], name="question_unique_text_per_event"),
            models.CheckConstraint(condition=~Q(text=""), name="question_text_not_empty"),
            models.CheckConstraint(
                condition=Q(kind__in=["text", "number", "choice", "multiple", "yes_no"]), name="question_kind_valid"
            ),
            # Options belong to the choice kinds, and those need some to choose from.
            models.CheckConstraint(
                condition=Q(kind__in=["choice", "multiple"], options__gt="")
                | (~Q(kind__in=["choice", "multiple"]) & Q(options="")),
                name="question_options_only_for_choices",
            ),
        ]

    def __str__(self) -> str:
        return self.text

    @property
    def option_list(self) -> list[str]:
        return [line.strip() for line in self.options.splitlines() if line.strip()]

    @property
    def ticket_type_ids(self) -> list[int]:
        """The ticket types it is asked about (none: all), from the prefetched ticket types."""
        return [ticket_type.pk for ticket_type in self.ticket_types.all()]

    def applies_to(self, ticket_type_id: int) -> bool:
        named = self.ticket_type_ids
        return not named or ticket_type_id in named
