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
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from aegistickets.errors import ApplicationError
from events.admin import EventAdmin
from events.models import Event
from orders import exports
from orders.models import Basket, Hold, Order, OrderLine, OutboundEmail, Payment, Refund, Ticket
from orders.outbox import outbox_enqueue, outbox_retry_now
from orders.selectors import event_cancellation_preview, order_refundable
from orders.services import (
    event_cancel_batch,
    order_cancel,
    refund_part,
    refund_process,
    tickets_cancel,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = readonly_fields = ("ticket_type", "quantity", "unit_price", "line_total")

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderLine]:
        return super().get_queryset(request).select_related("ticket_type__event")

    @admin.display(description="line total")
    def line_total(self, obj: OrderLine) -> Any:
        return obj.line_total


class TicketInline(ReadOnlyInline):
    model = Ticket
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


class RefundInline(ReadOnlyInline):
    model = Refund
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


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = readonly_fields = ("provider", "payment_id", "status", "amount", "currency", "message", "updated_at")
    verbose_name_plural = "payments (the provider's id looks the payment up in its dashboard)"


class OutboundEmailInline(ReadOnlyInline):
    model = OutboundEmail
    fields = readonly_fields = ("kind", "status", "attempts", "created_at", "sent_at", "last_error")
    verbose_name_plural = "emails to the buyer"


class OrderEventFilter(admin.SimpleListFilter):
    """Orders with at least one line of the event's ticket types (each order once)."""

    title = "event"
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        events = Event.objects.order_by("-starts_at", "-id").values_list("pk", "name")
        return [(str(pk), name) for pk, name in events]

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

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        valid = order.tickets.filter(cancelled_at__isnull=True).select_related("ticket_type", "line")
        self.fields["tickets"].choices = [
            (ticket.code, f"{ticket.code} ({ticket.ticket_type.name}, {ticket.line.unit_price} {order.currency})")
            for ticket in valid
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if (cleaned.get("amount") is None) == (not cleaned.get("tickets")):
            raise forms.ValidationError("Give either an amount or the tickets to cancel.")
        return cleaned


def _refund(order: Order, wanted: dict[str, Any]) -> Refund:
    now = timezone.now()
    if wanted["tickets"]:
        return tickets_cancel(order_id=order.pk, codes=wanted["tickets"], note=wanted["note"], now=now)
    return refund_part(order_id=order.pk, amount=wanted["amount"], note=wanted["note"], now=now)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
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
        form = PartialRefundForm(request.POST if "confirmed" in request.POST else None, order=order)
        if form.is_valid():
            try:
                refund = _refund(order, form.cleaned_data)
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
        for order_id, code, status in queryset.order_by("pk").values_list("pk", "code", "status"):
            if status != Order.Status.PAID:
                skipped.append(f"{code} ({status})")
            else:
                # Queued like the first one: the email worker sends it within seconds, and retries on failure.
                outbox_enqueue(kind=OutboundEmail.Kind.ORDER_CONFIRMATION, order_id=order_id, now=now)
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


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    """The email outbox, read-only: what is waiting, what went out, what keeps failing and why."""

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

    @admin.display(description="order", ordering="order__code")
    def order_link(self, obj: OutboundEmail) -> str:
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.code)

    @admin.action(description="Retry now (failed or waiting emails)", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboundEmail]) -> None:
        count = outbox_retry_now(email_ids=queryset.values_list("pk", flat=True), now=timezone.now())
        self.message_user(request, f"{count} email(s) queued to be sent again now.", messages.SUCCESS)


class HoldInline(ReadOnlyInline):
    model = Hold
    fields = readonly_fields = ("ticket_type", "quantity", "expires_at", "is_expired", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Hold]:
        return super().get_queryset(request).select_related("ticket_type__event")

    @admin.display(description="expired", boolean=True)
    def is_expired(self, obj: Hold) -> bool:
        return obj.expires_at <= timezone.now()


@admin.register(Basket)
class BasketAdmin(admin.ModelAdmin):
    """For support: what a shopper's basket holds. The token is a credential, so it is never shown whole;
    staff find a basket by pasting the full token into the search box."""

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
    return exports.event_orders_csv(event_id=event.pk) if event else None


@admin.action(description="Export the attendees of this event (CSV)", permissions=["view"])
def export_event_attendees(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Event]
) -> StreamingHttpResponse | None:
    event = _one_event(modeladmin, request, queryset)
    return exports.event_attendees_csv(event_id=event.pk) if event else None


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
