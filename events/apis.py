"""Catalog API: public reads, organizer writes. Thin: validate, call a selector or service, serialize."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aegistickets.api import (
    AdminRights,
    IsStaff,
    JsonInput,
    NamedPagePagination,
    PageInput,
    ShopDateTimeField,
    problems,
    validated_input,
    validated_query,
)
from events import selectors, services
from events.cache import cached_json
from events.models import Event, Question, TicketType


class EventPagination(NamedPagePagination):
    results_key = "events"

    def get_page_size(self, request: Request) -> int:
        return settings.EVENTS_PAGE_SIZE


def _event_page_url(event: Event) -> str:
    return reverse("events:detail", kwargs={"slug": event.slug})


class EventListOutput(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.SlugField()
    name = serializers.CharField()
    venue = serializers.CharField()
    city = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    price_from = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    currency = serializers.SerializerMethodField()
    available = serializers.IntegerField()
    sold_out = serializers.BooleanField()
    url = serializers.SerializerMethodField()

    def get_currency(self, event: Event) -> str:
        return settings.CURRENCY

    def get_url(self, event: Event) -> str:
        return _event_page_url(event)


class TicketTypeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.SerializerMethodField()
    available = serializers.IntegerField()
    max_per_order = serializers.IntegerField()
    on_sale = serializers.BooleanField(source="is_on_sale")
    sale_starts_at = serializers.DateTimeField(allow_null=True)
    sale_ends_at = serializers.DateTimeField(allow_null=True)

    def get_currency(self, ticket_type: TicketType) -> str:
        return settings.CURRENCY


class QuestionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    kind = serializers.ChoiceField(choices=Question.Kind.choices)
    required = serializers.BooleanField()
    options = serializers.ListField(
        child=serializers.CharField(), source="option_list", help_text="What a choice or multiple answer picks from."
    )
    ticket_type_ids = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Asked only about tickets of these types; empty: about every ticket of the event.",
    )
    position = serializers.IntegerField()


class QuestionInput(JsonInput):
    id = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="A question of this event to change; none: a new one.",
    )
    text = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Question.Kind.choices)
    required = serializers.BooleanField(required=False, default=False)
    options = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        default=list,
        max_length=50,
        help_text="For choice and multiple: the options, at least two; none for the other kinds.",
    )
    ticket_type_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        default=list,
        max_length=100,
        help_text="Ticket types of this event it is asked about; empty: every ticket.",
    )
    position = serializers.IntegerField(min_value=0, max_value=1000, required=False)


QUESTIONS_HELP = (
    "Questions checkout asks about each ticket: `answers` in POST /api/checkout, one entry per seat, each answer "
    "keyed by the question's id (text: a string; number: a number; choice: one of `options`; multiple: a list of "
    "them; yes_no: true or false)."
)


class EventDetailOutput(EventListOutput):
    description = serializers.CharField()
    attendee_data = serializers.ChoiceField(
        choices=Event.AttendeeData.choices,
        help_text="What checkout asks about each ticket's holder: `attendees` in POST /api/checkout, one per seat "
        "(with an email for name_email), unless none.",
    )
    terms = serializers.CharField(help_text="Terms and conditions a buyer must accept; empty for none.")
    terms_version = serializers.IntegerField(
        help_text="Their version (0: none): `accepted_terms` in POST /api/checkout names it for this event."
    )
    image = serializers.SerializerMethodField()
    ticket_types = TicketTypeOutput(many=True)
    questions = QuestionOutput(many=True, source="asked_questions", help_text=QUESTIONS_HELP)

    def get_image(self, event: Event) -> str | None:
        return event.image.url if event.image else None


class EventListInput(PageInput):
    search = serializers.CharField(
        required=False, allow_blank=True, max_length=100, default="", help_text="Matches name, venue or city."
    )


class EventCreateInput(JsonInput):
    organizer_id = serializers.IntegerField(
        required=False,
        default=None,
        help_text="Whose event it is: one of your organizers. May be left out by a member of exactly one.",
    )
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=200, required=False, default="")
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000, default="")
    venue = serializers.CharField(max_length=200)
    city = serializers.CharField(max_length=100)
    starts_at = ShopDateTimeField()
    ends_at = ShopDateTimeField()
    is_published = serializers.BooleanField(required=False, default=False)
    attendee_data = serializers.ChoiceField(
        choices=Event.AttendeeData.choices,
        required=False,
        default=Event.AttendeeData.NONE,
        help_text="What checkout asks about each ticket's holder.",
    )
    terms = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=50000,
        default="",
        help_text="Terms and conditions buyers must accept; a changed text is a new version. Empty: none.",
    )
    buyer_cancellation_until = ShopDateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Until when buyers may cancel their own tickets from their order page (their price refunded); at "
        "the latest starts_at. Null: they may not.",
    )
    attendee_changes_until = ShopDateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Until when buyers may change the attendee names of their tickets from their order page. Null: "
        "they may not.",
    )
    waiting_list_enabled = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Shoppers may join a waiting list for a sold-out ticket type and are offered freed seats in turn. "
        "Switching it off closes the list: nobody more is offered seats (open offers stand until they end).",
    )


class EventUpdateInput(EventCreateInput):
    slug = serializers.SlugField(max_length=200, required=False)
    organizer_id = None  # type: ignore[assignment]  # an event stays with its organizer
    questions = QuestionInput(
        many=True,
        required=False,
        max_length=100,
        help_text="The event's questions, in the order asked: the whole list (an entry with an `id` changes that "
        "question, one without adds one, questions left out are deleted). Answers already given never change.",
    )


class OrganizerTicketTypeOutput(TicketTypeOutput):
    event_id = serializers.IntegerField()
    capacity = serializers.IntegerField()
    sold = serializers.IntegerField()
    held = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="Seats its waiting list wants (confirmed entries not yet offered).")
    position = serializers.IntegerField()
    requires_voucher = serializers.BooleanField()
    on_sale = None  # type: ignore[assignment]


class OrganizerEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    organizer_id = serializers.IntegerField()
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    venue = serializers.CharField()
    city = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    is_published = serializers.BooleanField()
    buyer_cancellation_until = serializers.DateTimeField(allow_null=True)
    attendee_changes_until = serializers.DateTimeField(allow_null=True)
    attendee_data = serializers.ChoiceField(choices=Event.AttendeeData.choices)
    waiting_list_enabled = serializers.BooleanField()
    terms = serializers.CharField()
    terms_version = serializers.IntegerField()
    questions = QuestionOutput(many=True, source="asked_questions")
    url = serializers.SerializerMethodField()

    def get_url(self, event: Event) -> str:
        return _event_page_url(event)


def _organizer_event(event: Event) -> dict[str, Any]:
    return OrganizerEventOutput(selectors.event_with_questions(event)).data


class TicketTypeCreateInput(JsonInput):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    capacity = serializers.IntegerField(min_value=0, max_value=1_000_000)
    max_per_order = serializers.IntegerField(min_value=1, max_value=100, required=False, default=10)
    sale_starts_at = ShopDateTimeField(required=False, allow_null=True, default=None)
    sale_ends_at = ShopDateTimeField(required=False, allow_null=True, default=None)
    position = serializers.IntegerField(min_value=0, max_value=1000, required=False, default=0)
    requires_voucher = serializers.BooleanField(
        required=False, default=False, help_text="Hidden: listed and sold only with a voucher that names it."
    )


class TicketTypeUpdateInput(TicketTypeCreateInput):
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    max_per_order = serializers.IntegerField(min_value=1, max_value=100, required=False)
    sale_starts_at = ShopDateTimeField(required=False, allow_null=True)
    sale_ends_at = ShopDateTimeField(required=False, allow_null=True)
    position = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    requires_voucher = serializers.BooleanField(required=False)


def _organizer_ticket_type(pk: int, user: Any) -> dict[str, Any]:
    return OrganizerTicketTypeOutput(selectors.ticket_type_for_organizer(pk=pk, user=user, now=timezone.now())).data


class EventsApi(APIView):
    """GET: the public list of upcoming events. POST: an organizer creates an event."""

    pagination_class = EventPagination  # for the schema: the list is documented as its page envelope

    queryset = Event.objects.none()  # the model whose admin rights an organizer needs (AdminRights)

    def get_permissions(self) -> list[BasePermission]:
        return [IsStaff(), AdminRights()] if self.request.method == "POST" else [AllowAny()]

    @extend_schema(
        operation_id="events_list",
        parameters=[EventListInput],
        responses={200: EventListOutput(many=True), **problems(400, 404)},
    )
    def get(self, request: Request) -> HttpResponse:
        def page() -> dict[str, Any]:
            query = validated_query(EventListInput, request.query_params)
            events = selectors.events_upcoming(now=timezone.now(), search=query["search"])
            paginator = EventPagination()
            rows = paginator.paginate_queryset(events, request, view=self)
            return paginator.get_paginated_response(EventListOutput(rows, many=True).data).data

        # Keyed by the raw URL: a hit was valid input when it was computed; errors are never cached.
        return cached_json(f"api:events:{request.get_host()}:{request.get_full_path()}", page)

    @extend_schema(
        operation_id="events_create",
        request=EventCreateInput,
        responses={201: OrganizerEventOutput, **problems(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        data = validated_input(EventCreateInput, request.data)
        organizer = selectors.organizer_for_new_event(user=request.user, organizer_id=data.pop("organizer_id"))
        event = services.event_create(organizer=organizer, **data)
        return Response(_organizer_event(event), status=status.HTTP_201_CREATED)


class EventApi(APIView):
    """GET: one published event with its ticket types. PATCH: an organizer edits it."""

    queryset = Event.objects.none()  # the model whose admin rights an organizer needs (AdminRights)

    def get_permissions(self) -> list[BasePermission]:
        return [IsStaff(), AdminRights()] if self.request.method == "PATCH" else [AllowAny()]

    @extend_schema(operation_id="events_retrieve", responses={200: EventDetailOutput, **problems(404)})
    def get(self, request: Request, pk: int) -> HttpResponse:
        return cached_json(
            f"api:event:{pk}",
            lambda: EventDetailOutput(selectors.event_detail(pk=pk, now=timezone.now(), with_questions=True)).data,
        )

    @extend_schema(
        operation_id="events_update",
        request=EventUpdateInput,
        responses={200: OrganizerEventOutput, **problems(400, 401, 403, 404)},
    )
    def patch(self, request: Request, pk: int) -> Response:
        data = validated_input(EventUpdateInput, request.data, partial=True)
        event = services.event_update(event_id=selectors.event_for_organizer(pk=pk, user=request.user).pk, data=data)
        return Response(_organizer_event(event))


class TicketTypeCreateApi(APIView):
    permission_classes = [IsStaff, AdminRights]
    queryset = TicketType.objects.none()

    @extend_schema(
        operation_id="ticket_types_create",
        request=TicketTypeCreateInput,
        responses={201: OrganizerTicketTypeOutput, **problems(400, 401, 403, 404)},
    )
    def post(self, request: Request, pk: int) -> Response:
        data = validated_input(TicketTypeCreateInput, request.data)
        event = selectors.event_for_organizer(pk=pk, user=request.user)
        ticket_type = services.ticket_type_create(event_id=event.pk, **data)
        return Response(_organizer_ticket_type(ticket_type.pk, request.user), status=status.HTTP_201_CREATED)


class TicketTypeApi(APIView):
    """GET: seats sold, held and available (the organizer's truth). PATCH: edit price, capacity, window."""

    permission_classes = [IsStaff, AdminRights]
    queryset = TicketType.objects.none()

    @extend_schema(
        operation_id="ticket_types_retrieve", responses={200: OrganizerTicketTypeOutput, **problems(401, 403, 404)}
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(_organizer_ticket_type(pk, request.user))

    @extend_schema(
        operation_id="ticket_types_update",
        request=TicketTypeUpdateInput,
        responses={200: OrganizerTicketTypeOutput, **problems(400, 401, 403, 404)},
    )
    def patch(self, request: Request, pk: int) -> Response:
        data = validated_input(TicketTypeUpdateInput, request.data, partial=True)
        _organizer_ticket_type(pk, request.user)  # 404 for another organizer's, before anything is written
        services.ticket_type_update(ticket_type_id=pk, data=data, now=timezone.now())
        return Response(_organizer_ticket_type(pk, request.user))
