"""Staff pages for orders and baskets: look, search, and cancel through the order service.

Orders are created only by checkout and change state only through `orders.services`, so the admin shows
them read-only: a form save would write back a status read a moment earlier.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from aegistickets.errors import ApplicationError
from events.admin import EventAdmin, OrganizerScopedAdmin
from events.models import Event, Organizer, TicketType, Voucher
from events.selectors import events_of, organizers_of, ticket_types_of, voucher_code
from events.services import MAX_VOUCHERS_PER_REQUEST, VoucherSpec, vouchers_create
from orders import exports
from orders.models import Basket, Hold, Order, OrderLine, OutboundEmail, Payment, Refund, Ticket, WaitingListEntry
from orders.outbox import outbox_enqueue, outbox_retry_now
from orders.selectors import (
    ORDER_TO_ORGANIZER,
    TO_ORGANIZER,
    event_cancellation_preview,
    order_refundable,
    order_to_change,
    tickets_of,
    vouchers_with_usage,
)
from orders.services import (
    event_cancel_batch,
    order_cancel,
    refund_part,
    refund_process,
    tickets_cancel,
)
from orders.waiting_list import waiting_list_summary, waiting_list_with_positions


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderLineInline(OrganizerScopedAdmin, ReadOnlyInline):
    """A mixed order's lines for other organizers' events are not shown."""

    model = OrderLine
    organizer_path = TO_ORGANIZER
    fields = readonly_fields = ("ticket_type", "quantity", "unit_price", "line_total")

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderLine]:
        return super().get_queryset(request).select_related("ticket_type__event")

    @admin.display(description="line total")
    def line_total(self, obj: OrderLine) -> Any:
        return obj.line_total


class TicketInline(OrganizerScopedAdmin, ReadOnlyInline):
    """Only the tickets of the user's events: a ticket's code admits at its event's door."""

    model = Ticket
    organizer_path = TO_ORGANIZER
    fields = readonly_fields = (
        "code",
        "ticket_type",
        "attendee_name",
        "attendee_email",
        "answers_given",
        "cancelled_at",
        "refund",
    )

    @admin.display(description="answers")
    def answers_given(self, obj: Ticket) -> str:
        return "; ".join(f"{question}: {answer}" for question, answer in obj.answers_shown) or "-"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        return super().get_queryset(request).select_related("ticket_type__event")


class RefundInline(OrganizerScopedAdmin, ReadOnlyInline):
    model = Refund
    organizer_path = f"order__{ORDER_TO_ORGANIZER}"
    fields = readonly_fields = (
        "reason",
        "note",
        "status",
        "amount",
        "currency",
        "provider",
        "reference",
        "message",
        "attempts",
        "created_at",
        "completed_at",
    )


class PaymentInline(OrganizerScopedAdmin, ReadOnlyInline):
    model = Payment
    organizer_path = f"order__{ORDER_TO_ORGANIZER}"
    fields = readonly_fields = ("provider", "payment_id", "status", "amount", "currency", "message", "updated_at")
    verbose_name_plural = "payments (the provider's id looks the payment up in its dashboard)"


class OutboundEmailInline(OrganizerScopedAdmin, ReadOnlyInline):
    model = OutboundEmail
    organizer_path = f"order__{ORDER_TO_ORGANIZER}"
    fields = readonly_fields = ("kind", "status", "attempts", "created_at", "sent_at", "last_error")
    verbose_name_plural = "emails to the buyer"


def _event_choices(request: HttpRequest) -> list[tuple[str, str]]:
    """The staff user's events, latest first, for an "event" list filter."""
    events = events_of(request.user).order_by("-starts_at", "-id").values_list("pk", "name")
    return [(str(pk), name) for pk, name in events]


class OrderEventFilter(admin.SimpleListFilter):
    """Orders with at least one line of the event's ticket types (each order once)."""

    title = "event"
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return _event_choices(request)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        value = self.value()
        if not value:
            return queryset
        try:
            event_id = int(value)
        except ValueError:
            raise IncorrectLookupParameters(f"Unknown event {value!r}.") from None
        # EXISTS rather than a join: an order with several lines of the event still appears once.
        return queryset.filter(Exists(OrderLine.objects.filter(order=OuterRef("pk"), ticket_type__event_id=event_id)))


class PartialRefundForm(forms.Form):
    """An amount (the tickets stay valid) or tickets to cancel (their prices are refunded): one of the two."""

    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"), required=False)
    tickets = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Cancelled tickets stop admitting and their seats return to sale.",
    )
    note = forms.CharField(max_length=500, required=False, help_text="Why, for the records.")

    def __init__(self, *args: Any, order: Order, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        valid = tickets_of(user).filter(order=order, cancelled_at__isnull=True).select_related("ticket_type", "line")
        self.fields["tickets"].choices = [
            (ticket.code, f"{ticket.code} ({ticket.ticket_type.name}, {ticket.line.unit_price} {order.currency})")
            for ticket in valid
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if (cleaned.get("amount") is None) == (not cleaned.get("tickets")):
            raise forms.ValidationError("Give either an amount or the tickets to cancel.")
        return cleaned


def _refund(order: Order, wanted: dict[str, Any], *, user: Any) -> Refund:
    now = timezone.now()
    order_to_change(code=order.code, user=user, codes=wanted["tickets"] or None)
    if wanted["tickets"]:
        return tickets_cancel(order_id=order.pk, codes=wanted["tickets"], note=wanted["note"], now=now)
    return refund_part(order_id=order.pk, amount=wanted["amount"], note=wanted["note"], now=now)


@admin.register(Order)
class OrderAdmin(OrganizerScopedAdmin, admin.ModelAdmin):
    organizer_path = ORDER_TO_ORGANIZER
    list_display = ("code", "status", "flagged", "name", "email", "total", "created_at")
    list_filter = ("status", "flagged", OrderEventFilter)
    search_fields = ("code", "email")
    ordering = ("-created_at", "-id")
    fields = readonly_fields = (
        "code",
        "status",
        "name",
        "email",
        "total",
        "currency",
        "payment_method",
        "payment_reference",
        "payment_deadline",
        "payment_note",
        "accepted_terms",
        "flagged",
        "created_at",
        "cancelled_at",
    )
    inlines = (OrderLineInline, TicketInline, PaymentInline, RefundInline, OutboundEmailInline)
    actions = ("cancel_orders", "refund_part", "resend_confirmation", "retry_refunds")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are created only by checkout

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False  # an order is cancelled or refunded, never deleted

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        # The list (and its cancel action) needs the change permission; a single order's page is
        # view-only, since saving its form would write back a status read a moment earlier.
        return obj is None and super().has_change_permission(request)

    def has_refund_permission(self, request: HttpRequest) -> bool:
        """Cancelling and refunding move money: the permission of its own the API checks too."""
        return request.user.has_perm("orders.refund_order")

    @admin.action(description="Cancel selected orders (seats return to sale)", permissions=["refund"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        now = timezone.now()
        cancelled: list[str] = []
        failed: list[str] = []
        for order_id, code in queryset.order_by("pk").values_list("pk", "code"):
            try:
                order_to_change(code=code, user=request.user)  # every event of the order must be the user's
                order_cancel(order_id=order_id, now=now)
            except ApplicationError as error:
                failed.append(f"{code} ({error.detail})")
            else:
                cancelled.append(code)
        if cancelled:
            self.message_user(
                request,
                f"Cancelled {len(cancelled)} order(s); their seats are back on sale: {', '.join(cancelled)}.",
                messages.SUCCESS,
            )
        if failed:
            self.message_user(
                request, f"Could not cancel {len(failed)} order(s): {'; '.join(failed)}", messages.WARNING
            )

    @admin.action(
        description="Refund part of the selected order (an amount, or some of its tickets)", permissions=["refund"]
    )
    def refund_part(self, request: HttpRequest, queryset: QuerySet[Order]) -> TemplateResponse | None:
        """An intermediate page asks how much, or which tickets to cancel; the same services as the API's decide
        under the order's lock."""
        orders = list(queryset[:2])
        if len(orders) != 1:
            self.message_user(request, "Select exactly one order to refund part of.", messages.WARNING)
            return None
        order = orders[0]
        form = PartialRefundForm(request.POST if "confirmed" in request.POST else None, order=order, user=request.user)
        if form.is_valid():
            try:
                refund = _refund(order, form.cleaned_data, user=request.user)
            except ApplicationError as error:
                form.add_error(None, error.detail)
            else:
                refund.refresh_from_db()
                self.message_user(
                    request,
                    f"Refund of {refund.amount} {refund.currency} for {order.code}: {refund.status}.",
                    messages.SUCCESS,
                )
                return None
        refundable = order_refundable(order)
        context = {**self.admin_site.each_context(request), "order": order, "form": form, "refundable": refundable}
        return TemplateResponse(request, "admin/orders/refund_part.html", context)

    @admin.action(description="Resend the confirmation email (paid orders)", permissions=["change"])
    def resend_confirmation(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        now = timezone.now()
        queued: list[str] = []
        skipped: list[str] = []
        for order_id, code, status, language in queryset.order_by("pk").values_list("pk", "code", "status", "language"):
            if status != Order.Status.PAID:
                skipped.append(f"{code} ({status})")
            else:
                # Queued like the first one: the email worker sends it within seconds, and retries on failure.
                outbox_enqueue(
                    kind=OutboundEmail.Kind.ORDER_CONFIRMATION, order_id=order_id, language=language, now=now
                )
                queued.append(code)
        if queued:
            self.message_user(request, f"Queued the confirmation again for: {', '.join(queued)}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Not sent, not paid: {'; '.join(skipped)}.", messages.WARNING)

    @admin.action(description="Retry pending or failed refunds", permissions=["refund"])
    def retry_refunds(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        now = timezone.now()
        results = [
            refund_process(refund_id=refund_id, now=now)
            for refund_id in Refund.objects.filter(
                order__in=queryset, status__in=[Refund.Status.PENDING, Refund.Status.FAILED]
            ).values_list("pk", flat=True)
        ]
        done = [r.order.code for r in results if r.status == Refund.Status.SUCCEEDED]
        failed = [f"{r.order.code} ({r.message})" for r in results if r.status != Refund.Status.SUCCEEDED]
        self.message_user(request, f"Refunded {len(done)} order(s): {', '.join(done) or '-'}.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"Refunds still not done: {'; '.join(failed)}", messages.WARNING)


class WaitingListEventFilter(admin.SimpleListFilter):
    """Entries for the event's ticket types."""

    title = "event"
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return _event_choices(request)

    def queryset(self, request: HttpRequest, queryset: QuerySet[WaitingListEntry]) -> QuerySet[WaitingListEntry]:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"Unknown event {value!r}.")
        return queryset.filter(ticket_type__event_id=int(value))


@admin.register(WaitingListEntry)
class WaitingListEntryAdmin(OrganizerScopedAdmin, admin.ModelAdmin):
    """The waiting list, read-only: who is in line in which place, what was offered and what became of it. Above
    the list, the figures of what it shows (pick an event in the filter for one event's). Switching a list off is
    the event's "waiting list" box."""

    organizer_path = "ticket_type__event__organizer"
    list_display = (
        "position",
        "email",
        "ticket_type",
        "quantity",
        "status",
        "created_at",
        "confirmed_at",
        "offered_at",
        "offer_expires_at",
        "order_link",
    )
    list_filter = ("status", WaitingListEventFilter)
    search_fields = ("email",)
    list_select_related = ("ticket_type__event", "order")
    ordering = ("ticket_type", "confirmed_at", "id")
    fields = readonly_fields = (
        "email",
        "ticket_type",
        "quantity",
        "status",
        "language",
        "created_at",
        "confirmed_at",
        "offered_at",
        "offer_expires_at",
        "ended_at",
        "order_link",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[WaitingListEntry]:
        return waiting_list_with_positions(super().get_queryset(request))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            context["summary"] = waiting_list_summary(context["cl"].queryset)
        return response

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # shoppers join; the services move entries along

    def has_change_permission(self, request: HttpRequest, obj: WaitingListEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WaitingListEntry | None = None) -> bool:
        return False

    @admin.display(description="place in line", ordering="position")
    def position(self, obj: WaitingListEntry) -> int | None:
        return getattr(obj, "position", None)

    @admin.display(description="order", ordering="order__code")
    def order_link(self, obj: WaitingListEntry) -> str:
        if obj.order_id is None:
            return "–"
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.code)


@admin.register(OutboundEmail)
class OutboundEmailAdmin(OrganizerScopedAdmin, admin.ModelAdmin):
    """The email outbox, read-only: what is waiting, what went out, what keeps failing and why."""

    organizer_path = f"order__{ORDER_TO_ORGANIZER}"

    list_display = (
        "id",
        "kind",
        "order_link",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "sent_at",
        "last_error",
    )
    list_filter = ("status", "kind")
    search_fields = ("order__code", "order__email")
    list_select_related = ("order",)
    ordering = ("-id",)
    fields = readonly_fields = (
        "kind",
        "order_link",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "last_error",
    )
    actions = ("retry_now",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # emails are queued by the services only

    def has_delete_permission(self, request: HttpRequest, obj: OutboundEmail | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboundEmail | None = None) -> bool:
        # As for orders: the list (and its action) needs the change permission; a single email is view-only.
        return obj is None and super().has_change_permission(request)

    @admin.display(description="order or address", ordering="order__code")
    def order_link(self, obj: OutboundEmail) -> str:
        if obj.order_id is None:
            return obj.recipient
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.code)

    @admin.action(description="Retry now (failed or waiting emails)", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboundEmail]) -> None:
        count = outbox_retry_now(email_ids=queryset.values_list("pk", flat=True), now=timezone.now())
        self.message_user(request, f"{count} email(s) queued to be sent again now.", messages.SUCCESS)


class HoldInline(OrganizerScopedAdmin, ReadOnlyInline):
    model = Hold
    organizer_path = TO_ORGANIZER
    fields = readonly_fields = ("ticket_type", "quantity", "expires_at", "is_expired", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Hold]:
        return super().get_queryset(request).select_related("ticket_type__event")

    @admin.display(description="expired", boolean=True)
    def is_expired(self, obj: Hold) -> bool:
        return obj.expires_at <= timezone.now()


@admin.register(Basket)
class BasketAdmin(OrganizerScopedAdmin, admin.ModelAdmin):
    """For support: what a shopper's basket holds. The token is a credential, so it is never shown whole;
    staff find a basket by pasting the full token into the search box. Staff see baskets holding seats of their
    events, and only those holds."""

    organizer_path = f"holds__{TO_ORGANIZER}"

    list_display = ("__str__", "hold_count", "seats_held", "created_at", "updated_at")
    search_fields = ("=token",)
    fields = readonly_fields = ("token_prefix", "created_at", "updated_at")
    inlines = (HoldInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Basket]:
        live = Q(holds__expires_at__gt=timezone.now())
        return (
            super()
            .get_queryset(request)
            .annotate(hold_count=Count("holds"), seats_held=Sum("holds__quantity", filter=live))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Basket | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Basket | None = None) -> bool:
        return False

    @admin.display(description="token")
    def token_prefix(self, obj: Basket) -> str:
        return f"{obj.token[:8]}…"

    @admin.display(description="holds", ordering="hold_count")
    def hold_count(self, obj: Basket) -> int:
        return obj.hold_count  # type: ignore[attr-defined]

    @admin.display(description="seats held now", ordering="seats_held")
    def seats_held(self, obj: Basket) -> int:
        return obj.seats_held or 0  # type: ignore[attr-defined]


# --- organizer exports: actions of the event list -----------------------------------------------------------


def _one_event(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Event], *, doing: str = "export"
) -> Event | None:
    events = list(queryset[:2])
    if len(events) != 1:
        modeladmin.message_user(request, f"Select exactly one event to {doing}.", messages.WARNING)
        return None
    return events[0]


@admin.action(description="Export the orders of this event (CSV)", permissions=["view"])
def export_event_orders(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Event]
) -> StreamingHttpResponse | None:
    event = _one_event(modeladmin, request, queryset)
    return exports.event_orders_csv(event_id=event.pk, user=request.user) if event else None


@admin.action(description="Export the attendees of this event (CSV)", permissions=["view"])
def export_event_attendees(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Event]
) -> StreamingHttpResponse | None:
    event = _one_event(modeladmin, request, queryset)
    return exports.event_attendees_csv(event_id=event.pk, user=request.user) if event else None


# An admin request cancels orders for at most this long; the action, run again, continues where it stopped.
EVENT_CANCEL_SECONDS = 20


def _event_cancel_runs(event: Event) -> tuple[int, int]:
    """Batches of the event's cancellation until none is left or the request's time is up: (orders cancelled,
    paid orders left)."""
    started, done = time.monotonic(), 0
    while True:
        batch = event_cancel_batch(event_id=event.pk, now=timezone.now(), batch_size=50)
        done += len(batch.cancelled)
        if not batch.remaining or not (batch.cancelled or batch.skipped):
            return done, batch.remaining
        if time.monotonic() - started > EVENT_CANCEL_SECONDS:
            return done, batch.remaining


@admin.action(description="Cancel this event and refund its tickets", permissions=["cancel"])
def cancel_event(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Event]
) -> TemplateResponse | None:
    """An intermediate page says what will happen; confirmed, the same service as `manage.py cancel_event` and the
    API withdraws the event from sale and cancels and refunds its tickets, order by order."""
    event = _one_event(modeladmin, request, queryset, doing="cancel")
    if event is None:
        return None
    if "confirmed" not in request.POST:
        preview = event_cancellation_preview(event_id=event.pk)
        context = {
            **modeladmin.admin_site.each_context(request),
            "event": event,
            "preview": preview,
            "seconds": EVENT_CANCEL_SECONDS,
            "currency": settings.CURRENCY,
        }
        return TemplateResponse(request, "admin/orders/cancel_event.html", context)
    done, left = _event_cancel_runs(event)
    if left:
        modeladmin.message_user(
            request,
            f"{event.name}: withdrawn from sale, {done} order(s) cancelled; {left} left: run the action again.",
            messages.WARNING,
        )
    else:
        modeladmin.message_user(
            request, f"{event.name} is cancelled: {done} order(s) cancelled and refunded.", messages.SUCCESS
        )
    return None


# The catalog's event admin, with this app's exports of an event's orders and attendees, and its cancellation, as
# actions: the catalog layer does not know about orders, so the orders app extends its admin rather than the other
# way round.
admin.site.unregister(Event)


@admin.register(Event)
class EventWithExportsAdmin(EventAdmin):
    actions = (export_event_orders, export_event_attendees, cancel_event)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Cancelling an event changes it and refunds its buyers: the change right on events and the orders' own
        refund right, both, as the API checks (an action's listed permissions are alternatives)."""
        return self.has_change_permission(request) and request.user.has_perm("orders.refund_order")


# --- vouchers -------------------------------------------------------------------------------------------------


class VoucherAdminForm(forms.ModelForm):
    class Meta:
        model = Voucher
        fields = (
            "organizer",
            "event",
            "code",
            "discount_type",
            "value",
            "ticket_types",
            "max_redemptions",
            "valid_from",
            "valid_until",
            "comment",
        )

    def clean_code(self) -> str:
        return voucher_code(self.cleaned_data["code"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        organizer, event = cleaned.get("organizer"), cleaned.get("event")
        if organizer and event and event.organizer_id != organizer.pk:
            self.add_error("event", "Not an event of this organizer.")
        if organizer and any(t.event.organizer_id != organizer.pk for t in cleaned.get("ticket_types") or []):
            self.add_error("ticket_types", "Only ticket types of this organizer's events.")
        if event and any(t.event_id != event.pk for t in cleaned.get("ticket_types") or []):
            self.add_error("ticket_types", "Only ticket types of this event.")
        maximum = cleaned.get("max_redemptions")
        if maximum is not None and maximum < self.instance.redeemed:
            self.add_error("max_redemptions", f"Already used {self.instance.redeemed} times.")
        return cleaned


class VoucherBulkForm(forms.Form):
    """Many vouchers alike, each with a random code."""

    organizer = forms.ModelChoiceField(queryset=Organizer.objects.all())
    event = forms.ModelChoiceField(queryset=Event.objects.all(), required=False, help_text="Empty: all its events.")
    count = forms.IntegerField(min_value=1, max_value=MAX_VOUCHERS_PER_REQUEST, initial=10)
    discount_type = forms.ChoiceField(choices=Voucher.DiscountType.choices, initial=Voucher.DiscountType.PERCENT)
    value = forms.DecimalField(min_value=0, max_digits=10, decimal_places=2, initial=Decimal("10"))
    ticket_types = forms.ModelMultipleChoiceField(
        queryset=TicketType.objects.select_related("event"), required=False, help_text="Empty: all (not hidden)."
    )
    max_redemptions = forms.IntegerField(min_value=1, initial=1, help_text="Per voucher.")
    valid_from = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    valid_until = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    comment = forms.CharField(max_length=200, required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the user's own organizers, events and ticket types to choose from, as in the rest of the admin.
        self.fields["organizer"].queryset = organizers_of(user)  # type: ignore[attr-defined]
        self.fields["event"].queryset = events_of(user)  # type: ignore[attr-defined]
        self.fields["ticket_types"].queryset = ticket_types_of(user).select_related("event")  # type: ignore[attr-defined]

    def spec(self) -> VoucherSpec:
        data = self.cleaned_data
        return VoucherSpec(
            discount_type=data["discount_type"],
            value=data["value"],
            max_redemptions=data["max_redemptions"],
            ticket_type_ids=tuple(ticket_type.pk for ticket_type in data["ticket_types"]),
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
            comment=data["comment"],
        )


@admin.action(description="Export the selected vouchers with their redemptions (CSV)", permissions=["view"])
def export_vouchers(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Voucher]
) -> StreamingHttpResponse:
    vouchers = vouchers_with_usage(
        queryset.select_related("event").prefetch_related("ticket_types"), now=timezone.now()
    )
    return exports.vouchers_csv(list(vouchers))


@admin.register(Voucher)
class VoucherAdmin(OrganizerScopedAdmin, admin.ModelAdmin):
    form = VoucherAdminForm
    organizer_path = "organizer"
    list_display = ("code", "scope", "effect", "used", "held", "revenue", "valid_until", "comment")
    list_filter = ("organizer", "discount_type", ("event", admin.RelatedOnlyFieldListFilter))
    search_fields = ("code", "comment")
    readonly_fields = ("redeemed", "created_at")
    filter_horizontal = ("ticket_types",)
    actions = (export_vouchers,)
    change_list_template = "admin/events/voucher/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Voucher]:
        queryset = super().get_queryset(request).select_related("event", "organizer")
        return vouchers_with_usage(queryset, now=timezone.now())

    @admin.display(description="for")
    def scope(self, voucher: Voucher) -> str:
        return voucher.event.name if voucher.event else f"all events of {voucher.organizer}"

    @admin.display(description="effect")
    def effect(self, voucher: Voucher) -> str:
        return voucher.describe()

    @admin.display(description="used", ordering="redeemed")
    def used(self, voucher: Voucher) -> str:
        return f"{voucher.redeemed} / {voucher.max_redemptions}"

    @admin.display(description="held now", ordering="held")
    def held(self, voucher: Voucher) -> int:
        return voucher.held  # type: ignore[attr-defined]

    @admin.display(description="revenue", ordering="revenue")
    def revenue(self, voucher: Voucher) -> str:
        return f"€{voucher.revenue:.2f}"  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Voucher, form: forms.ModelForm, change: bool) -> None:
        # Never the whole row: `redeemed` as this form read it may be behind a sale committed since.
        fields = [name for name in form.changed_data if name != "ticket_types"]
        if not change:
            obj.save()
        elif fields:
            obj.save(update_fields=fields)

    def get_urls(self) -> list[Any]:
        bulk = path("bulk/", self.admin_site.admin_view(self.bulk_create_view), name="events_voucher_bulk")
        return [bulk, *super().get_urls()]

    def bulk_create_view(self, request: HttpRequest) -> HttpResponse:
        """Makes many vouchers alike with random codes, then lists them."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = VoucherBulkForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            try:
                made = vouchers_create(
                    organizer=form.cleaned_data["organizer"],
                    event=form.cleaned_data["event"],
                    spec=form.spec(),
                    count=form.cleaned_data["count"],
                )
            except ApplicationError as error:
                for field, problems in (error.errors or {}).items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                messages.success(request, f"{len(made)} vouchers made.")
                comment = form.cleaned_data["comment"]
                return redirect(reverse("admin:events_voucher_changelist") + (f"?q={comment}" if comment else ""))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Make vouchers",
            "opts": Voucher._meta,
        }
        return TemplateResponse(request, "admin/events/voucher/bulk_create.html", context)
