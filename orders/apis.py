"""Basket, checkout and organizer order API. Thin: validate, call a service or selector, serialize."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aegistickets.api import (
    AdminRights,
    IsStaff,
    JsonInput,
    NamedPagePagination,
    PageInput,
    ReusedSerializer,
    ShopDateTimeField,
    problems,
    validated_input,
    validated_query,
)
from aegistickets.errors import ValidationFailedError
from events.models import Voucher
from events.selectors import event_for_organizer
from events.services import MAX_VOUCHERS_PER_REQUEST, VoucherSpec, vouchers_create
from orders import checkout, exports, selectors, selfservice, services, waiting_list
from orders.answers import SeatAnswers
from orders.models import Order, Payment, Refund, WaitingListEntry
from orders.selectors import BasketSummary, OrderDetail

MAX_ID = 2**63 - 1
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


# --- basket -------------------------------------------------------------------------------------------


class BasketAddInput(JsonInput):
    ticket_type_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    quantity = serializers.IntegerField(min_value=1, max_value=1000)
    basket = serializers.RegexField(TOKEN_PATTERN, required=False, allow_null=True, default=None)
    voucher = serializers.CharField(
        max_length=64,
        required=False,
        default="",
        help_text="A voucher code (any case) to price these seats with, or to unlock a hidden ticket type.",
    )


class BasketItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    ticket_type_id = serializers.IntegerField()
    event_id = serializers.IntegerField()
    event_name = serializers.CharField()
    ticket_type_name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2, help_text="After the voucher, if any.")
    list_price = serializers.DecimalField(max_digits=10, decimal_places=2, help_text="Before the voucher.")
    voucher = serializers.CharField(help_text="The voucher code the seats are priced with; empty for none.")
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2)
    expires_at = serializers.DateTimeField()
    expired = serializers.BooleanField()


class BasketOutput(ReusedSerializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    items = BasketItemOutput(many=True)
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()


def body_basket_token(request: HttpRequest) -> str:
    """The basket a JSON request body names ("" if none): what its rate limit counts per basket."""
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return ""
    token = body.get("basket") if isinstance(body, dict) else None
    return token if isinstance(token, str) else ""


def _basket_response(summary: BasketSummary, *, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(BasketOutput.represent(summary), status=status_code)


class BasketAddApi(APIView):
    """Adds tickets to a basket (a new one unless `basket` is given) and holds the seats."""

    @extend_schema(
        operation_id="basket_add",
        request=BasketAddInput,
        responses={201: BasketOutput, **problems(400, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        data = validated_input(BasketAddInput, request.data)
        now = timezone.now()
        basket = services.basket_add(
            token=data["basket"],
            ticket_type_id=data["ticket_type_id"],
            quantity=data["quantity"],
            now=now,
            voucher=data["voucher"],
        )
        if data["basket"] is None and basket.just_held is not None:  # a new basket holds just what was added
            summary = selectors.basket_summary_of(basket, [basket.just_held], now=now)
        else:
            summary = selectors.basket_summary(token=basket.token, now=now)
        return _basket_response(summary, status_code=201)


class BasketApi(APIView):
    @extend_schema(operation_id="basket_retrieve", responses={200: BasketOutput, **problems(404)})
    def get(self, request: Request, token: str) -> Response:
        return _basket_response(selectors.basket_summary(token=token, now=timezone.now()))


class BasketItemApi(APIView):
    @extend_schema(operation_id="basket_item_remove", responses={200: BasketOutput, **problems(404)})
    def delete(self, request: Request, token: str, pk: int) -> Response:
        services.basket_remove_item(token=token, hold_id=pk)
        return _basket_response(selectors.basket_summary(token=token, now=timezone.now()))


# --- orders -------------------------------------------------------------------------------------------


class OrderLineOutput(serializers.Serializer):
    ticket_type_id = serializers.IntegerField()
    event_id = serializers.IntegerField(source="ticket_type.event_id")
    event_name = serializers.CharField(source="ticket_type.event.name")
    ticket_type_name = serializers.CharField(source="ticket_type.name")
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2, help_text="After the voucher, if any.")
    discount = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="Taken off each seat by the voucher."
    )
    voucher = serializers.CharField(source="voucher.code", allow_null=True, default=None)
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2)


class AnswerOutput(serializers.Serializer):
    question_id = serializers.IntegerField()
    question = serializers.CharField(help_text="The question's text as the buyer was asked it.")
    kind = serializers.CharField()
    value = serializers.JSONField(
        help_text="text, choice: a string; number: a decimal string; multiple: a list of strings; yes_no: a boolean."
    )


class TicketOutput(serializers.Serializer):
    code = serializers.CharField()
    event_name = serializers.CharField(source="ticket_type.event.name")
    ticket_type_name = serializers.CharField(source="ticket_type.name")
    cancelled_at = serializers.DateTimeField(
        allow_null=True, help_text="When this ticket was cancelled on its own (it no longer admits anyone)."
    )
    attendee_name = serializers.CharField(help_text="Who the ticket is for, where its event asks; else empty.")
    attendee_email = serializers.CharField(help_text="Their email, where its event asks; else empty.")
    answers = AnswerOutput(many=True, help_text="The buyer's answers to the event's questions about this ticket.")


class PaymentOutput(serializers.Serializer):
    """The order's latest payment as the shop last heard of it (the provider's own id, to look it up there)."""

    provider = serializers.CharField()
    id = serializers.CharField(source="payment_id")
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    message = serializers.CharField()


class CheckoutPaymentOutput(PaymentOutput):
    """What the buyer's client needs to finish paying: Stripe's client secret for stripe.js, and the next action
    as the provider answered it (a 3-D Secure redirect for a client without stripe.js)."""

    client_secret = serializers.CharField()
    next_action = serializers.JSONField(allow_null=True)


class OrderOutput(ReusedSerializer):
    """An order with its lines and tickets (selectors.OrderDetail)."""

    code = serializers.CharField(source="order.code")
    status = serializers.ChoiceField(source="order.status", choices=Order.Status.choices)
    name = serializers.CharField(source="order.name")
    email = serializers.EmailField(source="order.email")
    total = serializers.DecimalField(source="order.total", max_digits=12, decimal_places=2)
    currency = serializers.CharField(source="order.currency")
    created_at = serializers.DateTimeField(source="order.created_at")
    payment_deadline = serializers.DateTimeField(
        source="order.payment_deadline", allow_null=True, help_text="Until when a pending order's seats are held."
    )
    payment_note = serializers.CharField(source="order.payment_note", help_text="What happened to the payment.")
    flagged = serializers.BooleanField(source="order.flagged", help_text="Needs staff attention (a dispute).")
    accepted_terms = serializers.DictField(
        source="order.accepted_terms",
        child=serializers.IntegerField(),
        help_text='The terms the buyer accepted: {"<event id>": <terms version>}.',
    )
    payment = PaymentOutput(allow_null=True)
    lines = OrderLineOutput(many=True)
    tickets = TicketOutput(many=True)
    url = serializers.SerializerMethodField()

    def get_url(self, detail: OrderDetail) -> str:
        return reverse("orders:detail", kwargs={"code": detail.order.code, "secret": detail.order.secret})


class OrderEnvelope(ReusedSerializer):
    order = OrderOutput()


class CheckoutOrderOutput(OrderOutput):
    payment = CheckoutPaymentOutput(allow_null=True)


class CheckoutEnvelope(ReusedSerializer):
    order = CheckoutOrderOutput()


def _order_body(detail: OrderDetail) -> dict[str, Any]:
    return {"order": OrderOutput.represent(detail)}


class AttendeeInput(JsonInput):
    ticket_type_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=254, required=False, default="")


class SeatAnswersInput(JsonInput):
    ticket_type_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    values = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        help_text='The answers about one ticket, {"<question id>": answer}: text, a string; number, a number; '
        "choice, one of its options; multiple, a list of them; yes_no, true or false; null or left out: unanswered.",
    )

    def validate_values(self, value: dict[str, Any]) -> dict[int, Any]:
        if not all(key.isdigit() and len(key) <= 18 for key in value):
            raise serializers.ValidationError(_("Keys are question ids."))
        return {int(key): answer for key, answer in value.items()}


class CheckoutInput(JsonInput):
    basket = serializers.RegexField(TOKEN_PATTERN)
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=254)
    payment_method = serializers.CharField(max_length=20)
    payment_token = serializers.RegexField(
        r"^[A-Za-z0-9_]{1,255}$",
        required=False,
        default="",
        help_text="Stripe: a PaymentMethod id (pm_…) to confirm with at once; without it the order waits for the "
        "buyer to pay with the returned client_secret.",
    )
    return_url = serializers.URLField(
        max_length=2000,
        required=False,
        default="",
        help_text="Stripe: where the buyer comes back to after 3-D Secure, when payment_token is given.",
    )
    attendees = AttendeeInput(
        many=True,
        required=False,
        max_length=100,
        help_text="Who each ticket is for, where its event asks (its `attendee_data`): one entry per seat of each "
        "such ticket type, with an email where the event asks for one; none for other ticket types. Tickets get "
        "them in the order given.",
    )
    accepted_terms = serializers.DictField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        required=False,
        allow_empty=True,
        help_text='The terms the buyer accepted, {"<event id>": <terms_version>}, for each event of the basket with '
        "terms (GET /api/events/{id}: `terms`, `terms_version`).",
    )

    voucher = serializers.CharField(
        max_length=64,
        required=False,
        default="",
        help_text="A voucher code (any case) to price the basket's seats with, those it covers; refused with "
        "voucher_invalid, voucher_expired or voucher_exhausted.",
    )
    answers = SeatAnswersInput(
        many=True,
        required=False,
        max_length=1000,
        help_text="The answers to the events' questions (GET /api/events/{id}: `questions`): one entry per seat of "
        "each ticket type asked about, in seat order (tickets get them in the order given); required questions "
        "must be answered, others may be left out. A wrong answer is refused under the key "
        "answer_<ticket type id>_<seat, from 0>_<question id>.",
    )

    def validate_accepted_terms(self, value: dict[str, int]) -> dict[int, int]:
        if not all(key.isdigit() and len(key) <= 18 for key in value):
            raise serializers.ValidationError(_("Keys are event ids."))
        return {int(key): version for key, version in value.items()}


class CheckoutApi(APIView):
    """Pays for a basket and turns its holds into an order with tickets."""

    @extend_schema(
        operation_id="checkout",
        request=CheckoutInput,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                location=OpenApiParameter.HEADER,
                description="Retry-safe: the same key and body return the same order, never a second one.",
            )
        ],
        responses={
            201: OpenApiResponse(CheckoutEnvelope, description="Paid: the order with its tickets."),
            202: OpenApiResponse(
                CheckoutEnvelope,
                description="Pending: the order's seats are held until payment_deadline while the buyer pays with "
                "order.payment (Stripe: confirm with client_secret in stripe.js). Poll GET /api/orders/{code} or wait "
                "for the confirmation email.",
            ),
            **problems(400, 402, 404, 409, 422, 503),
        },
    )
    def post(self, request: Request) -> Response:
        data = validated_input(CheckoutInput, request.data)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY_PATTERN.match(key):
            raise ValidationFailedError(
                errors={"Idempotency-Key": [_("1 to 255 printable ASCII characters without spaces.")]}
            )
        result = checkout.order_place(
            token=data["basket"],
            name=data["name"],
            email=data["email"],
            payment_method=data["payment_method"],
            now=timezone.now(),
            idempotency_key=key,
            fingerprint=checkout.checkout_fingerprint(**data),
            payment_token=data["payment_token"],
            return_url=data["return_url"],
            attendees=[checkout.Attendee(**attendee) for attendee in data.get("attendees", [])],
            accepted_terms=data.get("accepted_terms"),
            voucher=data["voucher"],
            answers=[SeatAnswers(**seat) for seat in data.get("answers", [])],
        )
        paid = result.order.status == Order.Status.PAID
        body = {"order": CheckoutOrderOutput.represent(result.detail)}
        return Response(body, status=status.HTTP_201_CREATED if paid else status.HTTP_202_ACCEPTED)


class OrderPagination(NamedPagePagination):
    results_key = "orders"
    page_size = 50


class OrderFilterInput(PageInput):
    event = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False)


class OrderListApi(APIView):
    permission_classes = [IsStaff, AdminRights]
    queryset = Order.objects.none()
    pagination_class = OrderPagination  # for the schema: the list is documented as its page envelope

    @extend_schema(
        operation_id="orders_list",
        parameters=[OrderFilterInput],
        responses={200: OrderOutput(many=True), **problems(400, 401, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        filters = validated_query(OrderFilterInput, request.query_params)
        orders = selectors.orders_list(user=request.user, event_id=filters.get("event"), status=filters.get("status"))
        paginator = OrderPagination()
        page = paginator.paginate_queryset(orders, request, view=self)
        details = [selectors.order_detail(order) for order in page]
        return paginator.get_paginated_response(OrderOutput(details, many=True).data)


class OrderApi(APIView):
    permission_classes = [IsStaff, AdminRights]
    queryset = Order.objects.none()

    @extend_schema(operation_id="orders_retrieve", responses={200: OrderEnvelope, **problems(401, 403, 404)})
    def get(self, request: Request, code: str) -> Response:
        order = selectors.order_for_organizer(code=code, user=request.user)
        return Response(_order_body(selectors.order_detail(order)))


class RefundOutput(serializers.Serializer):
    reason = serializers.ChoiceField(choices=Refund.Reason.choices)
    note = serializers.CharField()
    status = serializers.ChoiceField(choices=Refund.Status.choices)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class OrderCancelOutput(serializers.Serializer):
    order = OrderOutput()
    refund = RefundOutput()


class CanRefund(BasePermission):
    """Staff holding the admin's own "Can cancel and refund orders" permission (a superuser holds every one)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user.is_staff and request.user.has_perm("orders.refund_order"))


class OrderCancelApi(APIView):
    """Cancels a paid order: tickets void, seats back on sale, one refund, an email to the buyer."""

    permission_classes = [IsStaff, CanRefund]

    @extend_schema(
        operation_id="orders_cancel", request=None, responses={200: OrderCancelOutput, **problems(401, 403, 404, 409)}
    )
    def post(self, request: Request, code: str) -> Response:
        order = selectors.order_to_change(code=code, user=request.user)
        services.order_cancel(order_id=order.pk, now=timezone.now())
        # Read back after the commit: the refund has been asked for by now (or is on record as pending/failed).
        order = selectors.order_for_organizer(code=code, user=request.user)
        refund = selectors.order_refund(order_id=order.pk)
        body = {"order": selectors.order_detail(order), "refund": refund}
        return Response(OrderCancelOutput(body).data)


class RefundInput(JsonInput):
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Refund this much; the tickets stay valid. Give this or `tickets`.",
    )
    tickets = serializers.ListField(
        child=serializers.CharField(max_length=40),
        min_length=1,
        max_length=100,
        required=False,
        help_text="Cancel these tickets (their codes) and refund what they cost; their seats return to sale. "
        "Give this or `amount`.",
    )
    note = serializers.CharField(max_length=500, required=False, default="", help_text="Why, for the records.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("amount" in attrs) == ("tickets" in attrs):
            raise serializers.ValidationError({"amount": [_("Give either an amount or the tickets to cancel.")]})
        return attrs


class RefundEnvelope(serializers.Serializer):
    order = OrderOutput()
    refund = RefundOutput()


class OrderRefundApi(APIView):
    """Refunds part of a paid order: an amount (its tickets stay valid; refunding what is left makes it `refunded`),
    or the price of some of its tickets, which are cancelled (cancelling the last valid one cancels the order)."""

    permission_classes = [IsStaff, CanRefund]

    @extend_schema(
        operation_id="orders_refund",
        request=RefundInput,
        responses={201: RefundEnvelope, **problems(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, code: str) -> Response:
        data = validated_input(RefundInput, request.data)
        order = selectors.order_to_change(code=code, user=request.user, codes=data.get("tickets"))
        if "tickets" in data:
            refund = services.tickets_cancel(
                order_id=order.pk, codes=data["tickets"], note=data["note"], now=timezone.now()
            )
        else:
            refund = services.refund_part(
                order_id=order.pk, amount=data["amount"], note=data["note"], now=timezone.now()
            )
        refund.refresh_from_db()  # the provider has been asked after the commit
        detail = selectors.order_detail(selectors.order_for_organizer(code=code, user=request.user))
        body = {"order": detail, "refund": refund}
        return Response(RefundEnvelope(body).data, status=status.HTTP_201_CREATED)


class CanCancelEvent(BasePermission):
    """Cancelling an event takes it off sale and refunds its buyers: staff who may change events and refund orders,
    as the admin's action asks."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user.is_staff and user.has_perm("events.change_event") and user.has_perm("orders.refund_order"))


class EventCancelInput(JsonInput):
    batch_size = serializers.IntegerField(
        min_value=1, max_value=500, required=False, default=100, help_text="At most this many orders per call."
    )


class EventCancelOutput(serializers.Serializer):
    event_id = serializers.IntegerField()
    cancelled = serializers.ListField(
        child=serializers.CharField(), help_text="Orders whose tickets of the event were cancelled by this call."
    )
    skipped = serializers.ListField(
        child=serializers.CharField(), help_text="Orders cancelled by someone else meanwhile."
    )
    remaining = serializers.IntegerField(help_text="Paid orders still holding tickets of the event: call again.")


class EventCancelApi(APIView):
    """Cancels an event: withdraws it from sale at once, then cancels and refunds its tickets, up to `batch_size`
    orders per call (an order that also holds tickets of other events keeps those; each buyer is emailed once per
    order). Call again while `remaining` is above 0: it continues where it stopped and never refunds twice."""

    permission_classes = [IsStaff, CanCancelEvent]

    @extend_schema(
        operation_id="events_cancel",
        request=EventCancelInput,
        responses={200: EventCancelOutput, **problems(400, 401, 403, 404)},
    )
    def post(self, request: Request, event_id: int) -> Response:
        data = validated_input(EventCancelInput, request.data)
        event_for_organizer(pk=event_id, user=request.user)  # another organizer's event is unknown
        batch = services.event_cancel_batch(event_id=event_id, now=timezone.now(), batch_size=data["batch_size"])
        body = {
            "event_id": event_id,
            "cancelled": batch.cancelled,
            "skipped": batch.skipped,
            "remaining": batch.remaining,
        }
        return Response(EventCancelOutput(body).data)


# --- organizer exports --------------------------------------------------------------------------------


class CsvRenderer(BaseRenderer):
    """Lets clients ask for text/csv; the CSV itself streams from the view, errors stay problem JSON."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return json.dumps(data).encode()


class EventOrdersCsvApi(APIView):
    permission_classes = [IsStaff, AdminRights]
    queryset = Order.objects.none()  # the event's orders: the admin's right to view orders
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(operation_id="events_orders_csv", responses={(200, "text/csv"): str, **problems(401, 403, 404)})
    def get(self, request: Request, event_id: int) -> StreamingHttpResponse:
        return exports.event_orders_csv(event_id=event_id, user=request.user)


class EventAttendeesCsvApi(APIView):
    permission_classes = [IsStaff, AdminRights]
    queryset = Order.objects.none()  # the buyers' names and tickets: the admin's right to view orders
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(operation_id="events_attendees_csv", responses={(200, "text/csv"): str, **problems(401, 403, 404)})
    def get(self, request: Request, event_id: int) -> StreamingHttpResponse:
        return exports.event_attendees_csv(event_id=event_id, user=request.user)


# --- check-in at the door -----------------------------------------------------------------------------


class CanCheckIn(BasePermission):
    """Staff, or members of the "door staff" group."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return selectors.can_check_in(request.user)


class CheckInInput(JsonInput):
    secret = serializers.CharField(max_length=100, trim_whitespace=True)
    event_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class CheckedInTicketOutput(serializers.Serializer):
    code = serializers.CharField()
    order = serializers.CharField(source="order.code")
    name = serializers.CharField(source="order.name")
    attendee_name = serializers.CharField(help_text="Who the ticket is for, where its event asks; else empty.")
    answers = AnswerOutput(many=True, help_text="The buyer's answers about this ticket (a T-shirt size to hand out).")
    event_id = serializers.IntegerField(source="ticket_type.event_id")
    event_name = serializers.CharField(source="ticket_type.event.name")
    ticket_type_name = serializers.CharField(source="ticket_type.name")


class CheckInOutput(serializers.Serializer):
    result = serializers.CharField(default="valid")
    ticket = CheckedInTicketOutput()
    checked_in_at = serializers.DateTimeField()


class CheckInApi(APIView):
    permission_classes = [CanCheckIn]

    @extend_schema(
        operation_id="check_ins_create",
        request=CheckInInput,
        responses={201: CheckInOutput, **problems(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        data = validated_input(CheckInInput, request.data)
        check_in = services.ticket_check_in(
            secret=data["secret"], event_id=data["event_id"], user=request.user, now=timezone.now()
        )
        body = {"result": "valid", "ticket": check_in.ticket, "checked_in_at": check_in.checked_in_at}
        return Response(CheckInOutput(body).data, status=status.HTTP_201_CREATED)


# --- vouchers -----------------------------------------------------------------------------------------------


class DiscountInput(JsonInput):
    type = serializers.ChoiceField(choices=["percent", "fixed", "price"])
    value = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=Decimal("0"),
        help_text='percent: "10" is 10 % off; fixed: the amount off each ticket; price: what each ticket costs.',
    )


class VoucherCreateInput(JsonInput):
    code = serializers.CharField(
        max_length=64, required=False, default="", help_text="One voucher with this code (any case); else `count`."
    )
    count = serializers.IntegerField(
        min_value=1, max_value=MAX_VOUCHERS_PER_REQUEST, required=False, default=1, help_text="Random codes to make."
    )
    discount = DiscountInput(
        required=False, allow_null=True, default=None, help_text="None: no discount, the voucher unlocks tickets."
    )
    ticket_type_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        default=list,
        max_length=100,
        help_text="Only these ticket types of the event; naming a hidden ticket type unlocks it. Empty: all.",
    )
    max_redemptions = serializers.IntegerField(
        min_value=1, max_value=1_000_000, help_text="Most tickets each voucher may be used for."
    )
    valid_from = ShopDateTimeField(required=False, allow_null=True, default=None)
    valid_until = ShopDateTimeField(required=False, allow_null=True, default=None)
    comment = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class DiscountOutput(serializers.Serializer):
    type = serializers.CharField()
    value = serializers.DecimalField(max_digits=10, decimal_places=2)


class VoucherOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    event_id = serializers.IntegerField(allow_null=True, help_text="None: good for every event of the organizer.")
    discount = serializers.SerializerMethodField()
    ticket_type_ids = serializers.SerializerMethodField()
    max_redemptions = serializers.IntegerField()
    redemptions = serializers.IntegerField(source="redeemed", help_text="Tickets sold with it.")
    held = serializers.IntegerField(help_text="Redemptions baskets and pending orders keep right now.")
    revenue = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="What its valid tickets of paid orders brought."
    )
    order_count = serializers.IntegerField()
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(DiscountOutput(allow_null=True))
    def get_discount(self, voucher: Voucher) -> dict[str, Any] | None:
        if voucher.discount_type == Voucher.DiscountType.NONE:
            return None
        return DiscountOutput({"type": voucher.discount_type, "value": voucher.value}).data

    def get_ticket_type_ids(self, voucher: Voucher) -> list[int]:
        return sorted(ticket_type.pk for ticket_type in voucher.ticket_types.all())


class VouchersOutput(serializers.Serializer):
    vouchers = VoucherOutput(many=True)


class EventVouchersApi(APIView):
    """GET: the vouchers good for the event, with how often each was used and what it brought. POST: makes one
    voucher with a chosen code, or `count` with random codes (the same effect, scope, window and limit)."""

    permission_classes = [IsStaff, AdminRights]
    queryset = Voucher.objects.none()

    @extend_schema(operation_id="event_vouchers_list", responses={200: VouchersOutput, **problems(401, 403, 404)})
    def get(self, request: Request, event_id: int) -> Response:
        event = event_for_organizer(pk=event_id, user=request.user)
        vouchers = selectors.event_vouchers(event=event, now=timezone.now())
        return Response(VouchersOutput({"vouchers": vouchers}).data)

    @extend_schema(
        operation_id="event_vouchers_create",
        request=VoucherCreateInput,
        responses={201: VouchersOutput, **problems(400, 401, 403, 404)},
    )
    def post(self, request: Request, event_id: int) -> Response:
        data = validated_input(VoucherCreateInput, request.data)
        event = event_for_organizer(pk=event_id, user=request.user)
        discount = data["discount"] or {"type": Voucher.DiscountType.NONE, "value": Decimal("0")}
        spec = VoucherSpec(
            discount_type=discount["type"],
            value=discount["value"],
            max_redemptions=data["max_redemptions"],
            ticket_type_ids=tuple(data["ticket_type_ids"]),
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
            comment=data["comment"],
        )
        created = vouchers_create(
            organizer=event.organizer, event=event, spec=spec, code=data["code"], count=data["count"]
        )
        vouchers = selectors.vouchers_by_id([voucher.pk for voucher in created], now=timezone.now())
        return Response(VouchersOutput({"vouchers": vouchers}).data, status=status.HTTP_201_CREATED)


# --- self-service ----------------------------------------------------------------------------------------------


class OrderLookupInput(JsonInput):
    email = serializers.EmailField(max_length=254)


class OrderLookupOutput(serializers.Serializer):
    status = serializers.CharField(help_text='Always "email_queued", whether the address has orders or not.')
    detail = serializers.CharField()


class OrderLookupApi(APIView):
    """Find my orders: queues one email to the address with the private links to its orders (none is sent to an
    address without orders). The answer is the same either way: it tells nobody who bought what."""

    @extend_schema(
        operation_id="orders_lookup",
        request=OrderLookupInput,
        responses={202: OrderLookupOutput, **problems(400, 429)},
    )
    def post(self, request: Request) -> Response:
        data = validated_input(OrderLookupInput, request.data)
        selfservice.order_lookup_request(email=data["email"], language=get_language() or "", now=timezone.now())
        detail = _("If orders were placed with that address, we have sent it an email with their links.")
        return Response({"status": "email_queued", "detail": detail}, status=status.HTTP_202_ACCEPTED)


# --- the waiting list ---------------------------------------------------------------------------------------


class WaitingListJoinInput(JsonInput):
    ticket_type_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    email = serializers.EmailField(max_length=254)
    quantity = serializers.IntegerField(min_value=1, max_value=1000)


class WaitingListJoinOutput(serializers.Serializer):
    status = serializers.CharField(
        help_text='Always "confirmation_sent", whether the address was in line before or not.'
    )
    detail = serializers.CharField()


class WaitingListEntryOutput(ReusedSerializer):
    ticket_type_id = serializers.IntegerField(source="entry.ticket_type_id")
    event_id = serializers.IntegerField(source="entry.ticket_type.event_id")
    email = serializers.EmailField(source="entry.email")
    quantity = serializers.IntegerField(source="entry.quantity")
    status = serializers.ChoiceField(source="entry.status", choices=WaitingListEntry.Status.choices)
    position = serializers.IntegerField(
        allow_null=True, help_text="The place in line while waiting (1: next), else null."
    )
    created_at = ShopDateTimeField(source="entry.created_at")
    confirmed_at = ShopDateTimeField(source="entry.confirmed_at", allow_null=True)
    offer_expires_at = ShopDateTimeField(source="entry.offer_expires_at", allow_null=True)
    offer_basket = serializers.CharField(
        allow_null=True, help_text="While an offer is open: the token of the basket holding the offered seats."
    )


def _entry_response(entry: WaitingListEntry, *, now: Any) -> Response:
    return Response(WaitingListEntryOutput.represent(waiting_list.waiting_entry_state(entry, now=now)))


class WaitingListJoinApi(APIView):
    """Joins a sold-out ticket type's waiting list; the address confirms by the emailed link (double opt-in). The
    answer is the same whether the address was in line already or not: it tells nobody who waits for what."""

    @extend_schema(
        operation_id="waiting_list_join",
        request=WaitingListJoinInput,
        responses={202: WaitingListJoinOutput, **problems(400, 404, 409, 429)},
    )
    def post(self, request: Request) -> Response:
        data = validated_input(WaitingListJoinInput, request.data)
        waiting_list.waiting_list_join(
            ticket_type_id=data["ticket_type_id"],
            email=data["email"],
            quantity=data["quantity"],
            language=get_language() or "",
            now=timezone.now(),
        )
        detail = _("We sent a link to that address: open it to confirm the place in line.")
        return Response({"status": "confirmation_sent", "detail": detail}, status=status.HTTP_202_ACCEPTED)


class WaitingListEntryApi(APIView):
    """A waiting-list entry, by the private token of its emailed link."""

    @extend_schema(operation_id="waiting_list_entry", responses={200: WaitingListEntryOutput, **problems(404)})
    def get(self, request: Request, token: str) -> Response:
        return _entry_response(waiting_list.waiting_entry(token), now=timezone.now())

    @extend_schema(operation_id="waiting_list_leave", responses={200: WaitingListEntryOutput, **problems(404)})
    def delete(self, request: Request, token: str) -> Response:
        now = timezone.now()
        return _entry_response(waiting_list.waiting_list_leave(token=token, now=now), now=now)


class WaitingListConfirmApi(APIView):
    @extend_schema(
        operation_id="waiting_list_confirm", request=None, responses={200: WaitingListEntryOutput, **problems(404, 409)}
    )
    def post(self, request: Request, token: str) -> Response:
        now = timezone.now()
        return _entry_response(waiting_list.waiting_list_confirm(token=token, now=now), now=now)
