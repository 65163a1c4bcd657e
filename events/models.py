from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q


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
    max_per_order = models.PositiveSmallIntegerField(default=10)
    sale_starts_at = models.DateTimeField(null=True, blank=True)
    sale_ends_at = models.DateTimeField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
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
