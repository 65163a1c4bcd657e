"""Staff pages for the catalog.

Seat counts shown here come from the same selector annotations the shop uses, computed for the moment of
the request. Ticket types are written through `events.services`, never with a plain `save()`: a model
save would write back the `sold` counter it read a moment earlier and could undo a sale committed in
between, and capacity must not drop below the seats sold plus held (checked under the row lock).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from aegistickets.errors import ApplicationError
from events.models import Event, EventTerms, Organizer, Question, TicketType
from events.selectors import events_with_availability, in_organizer_scope, ticket_types_with_availability
from events.services import (
    TICKET_TYPE_FIELDS,
    event_questions_changed,
    event_terms_set,
    question_problems,
    ticket_type_create,
    ticket_type_update,
)

TICKET_TYPE_FORM_FIELDS = (
    "name",
    "price",
    "capacity",
    "max_per_order",
    "sale_starts_at",
    "sale_ends_at",
    "position",
    "requires_voucher",
)


class TicketTypeAdminForm(forms.ModelForm):
    class Meta:
        model = TicketType
        fields = [*TICKET_TYPE_FORM_FIELDS, "description"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # A friendly early answer from the annotated row; ticket_type_update re-checks under the lock.
        capacity = cleaned.get("capacity")
        if self.instance.pk and capacity is not None and "capacity" in self.changed_data:
            sold = self.instance.sold
            held = getattr(self.instance, "held", 0) or 0
            if capacity < sold + held:
                self.add_error("capacity", f"Cannot be below the {sold} seats sold plus {held} held right now.")
        return cleaned


def _ticket_type_changes(form: forms.ModelForm) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in form.changed_data if name in TICKET_TYPE_FIELDS}


def _report_service_error(request: HttpRequest, ticket_type_name: str, error: ApplicationError) -> None:
    details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in (error.errors or {}).items())
    messages.error(request, f"{ticket_type_name} was not saved: {details or error.detail}")


class OrganizerScopedAdmin:
    """Mix into a ModelAdmin or an inline (before the admin class) so that staff see and change only what belongs
    to their organizers; superusers see everything.

    - `organizer_path`: the lookup from the model to its Organizer, e.g. "organizer" for an event,
      "event__organizer" for a ticket type or a voucher of an event, "lines__ticket_type__event__organizer" for an
      order (seen when any of its lines is, each order listed once).
    - The changelist, its actions (they get the changelist's rows), the change, delete and history views all read
      `get_queryset`: another organizer's object is not found (the admin's own "doesn't exist" answer), and
      nothing about it changes.
    - Foreign-key and many-to-many choices of a model in `scoped_choices` (model → its path to the Organizer) offer
      only the user's own: a new event's organizer, a voucher's event or ticket types. Extend the mapping for a
      model of a higher layer: `scoped_choices = {**OrganizerScopedAdmin.scoped_choices, Order: "lines__…"}`.
    """

    organizer_path = "organizer"
    scoped_choices: dict[type[Model], str] = {
        Organizer: "id",
        Event: "organizer",
        TicketType: "event__organizer",
    }

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        return in_organizer_scope(queryset, user=request.user, path=self.organizer_path)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._limit_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._limit_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _limit_choices(self, db_field: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
        path = self.scoped_choices.get(db_field.related_model)
        if path is not None and "queryset" not in kwargs:
            choices = db_field.related_model._default_manager.all()
            kwargs["queryset"] = in_organizer_scope(choices, user=request.user, path=path)


class _AvailabilityColumns:
    """Read-only `held` and `available` columns from the `ticket_types_with_availability` annotations."""

    @admin.display(description="held")
    def held(self, obj: TicketType) -> int | None:
        return getattr(obj, "held", None)  # None (shown as "-") on a row not saved yet

    @admin.display(description="available")
    def available(self, obj: TicketType) -> int | None:
        return getattr(obj, "available", None)


class TicketTypeInline(OrganizerScopedAdmin, _AvailabilityColumns, admin.StackedInline):
    """Stacked, a few fields to a row: as a table, its sale-window date and time pickers ran off a laptop screen."""

    model = TicketType
    organizer_path = "event__organizer"
    form = TicketTypeAdminForm
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("name", "price", "capacity", "max_per_order"),
                    ("sold", "held", "waiting", "available"),
                    ("sale_starts_at", "sale_ends_at"),
                    ("position", "requires_voucher"),
                )
            },
        ),
    )
    readonly_fields = ("sold", "held", "waiting", "available")
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[TicketType]:
        # One query whatever the number of rows: holds summed in a subquery, the event (each row's
        # title) joined.
        queryset = super().get_queryset(request).select_related("event")
        return ticket_types_with_availability(queryset, now=timezone.now())


class TermsVersionInline(OrganizerScopedAdmin, admin.TabularInline):
    """Every version of the terms buyers accepted, as it was: read only."""

    model = EventTerms
    organizer_path = "event__organizer"
    fields = readonly_fields = ("version", "text", "created_at")
    extra = 0
    can_delete = False
    verbose_name_plural = "terms versions (buyers' orders record the version they accepted)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class QuestionAdminForm(forms.ModelForm):
    class Meta:
        model = Question
        fields = ("position", "text", "kind", "required", "options", "ticket_types")
        widgets = {
            "text": forms.TextInput(attrs={"size": 30}),
            "options": forms.Textarea(attrs={"rows": 3, "cols": 18}),
            "ticket_types": forms.CheckboxSelectMultiple,
            "position": forms.NumberInput(attrs={"class": "vIntegerField"}),
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for field, problems in question_problems(
            kind=cleaned.get("kind", ""), options=cleaned.get("options", "")
        ).items():
            self.add_error(field, problems)
        return cleaned


class QuestionInline(OrganizerScopedAdmin, admin.TabularInline):
    """What checkout asks about each ticket. Buyers' answers keep the text they were asked: editing or deleting a
    question here changes no answer already given."""

    model = Question
    organizer_path = "event__organizer"
    form = QuestionAdminForm
    extra = 0
    verbose_name_plural = "questions asked at checkout, about each ticket (of the ticket types ticked; none: all)"

    def get_formset(self, request: HttpRequest, obj: Event | None = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        # Only this event's ticket types can be ticked.
        own = TicketType.objects.filter(event=obj) if obj is not None else TicketType.objects.none()
        field = formset.form.base_fields["ticket_types"]
        field.queryset = own
        field.label_from_instance = attrgetter("name")  # the event is this page's; its name would cost a query each
        return formset


@admin.register(Organizer)
class OrganizerAdmin(OrganizerScopedAdmin, admin.ModelAdmin):
    organizer_path = "id"  # the organizer itself: staff see their own
    list_display = ("name", "slug", "created_at")
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)


@admin.register(Event)
class EventAdmin(OrganizerScopedAdmin, admin.ModelAdmin):
    list_display = ("name", "starts_at", "city", "venue", "is_published", "seats_sold", "seats_available")
    list_filter = ("is_published", "city")
    search_fields = ("name", "venue", "city")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("terms_version", "created_at", "updated_at")
    inlines = (TicketTypeInline, QuestionInline, TermsVersionInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return events_with_availability(super().get_queryset(request), now=timezone.now())

    @admin.display(description="seats sold", ordering="seats_sold")
    def seats_sold(self, obj: Event) -> int:
        return obj.seats_sold  # type: ignore[attr-defined]

    @admin.display(description="seats available", ordering="available")
    def seats_available(self, obj: Event) -> int:
        return obj.available  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Event, form: forms.ModelForm, change: bool) -> None:
        """The terms go through the service, which makes a changed text a new version; the rest is saved as is."""
        terms = obj.terms
        obj.terms = form.initial.get("terms", "") if change else ""
        super().save_model(request, obj, form, change)
        saved = event_terms_set(event_id=obj.pk, text=terms)
        obj.terms, obj.terms_version = saved.terms, saved.terms_version

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        event_questions_changed(event_id=form.instance.pk)  # checkout knows whether to look for questions

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        if formset.model is not TicketType:
            super().save_formset(request, form, formset, change)
            return
        formset.save(commit=False)  # sorts the rows into new / changed / deleted; writes nothing
        now = timezone.now()
        for ticket_type in formset.deleted_objects:
            ticket_type.delete()
        for row in formset.forms:
            ticket_type = row.instance
            if row in formset.deleted_forms or not row.has_changed():
                continue
            try:
                if ticket_type.pk is None:
                    created = ticket_type_create(
                        event_id=form.instance.pk,
                        **{name: row.cleaned_data[name] for name in TICKET_TYPE_FORM_FIELDS},
                    )
                    ticket_type.pk = created.pk
                else:
                    ticket_type_update(ticket_type_id=ticket_type.pk, data=_ticket_type_changes(row), now=now)
            except ApplicationError as error:
                _report_service_error(request, row.cleaned_data.get("name") or str(ticket_type), error)


@admin.register(TicketType)
class TicketTypeAdmin(OrganizerScopedAdmin, _AvailabilityColumns, admin.ModelAdmin):
    organizer_path = "event__organizer"
    form = TicketTypeAdminForm
    list_display = ("name", "event", "price", "capacity", "sold", "held", "available", "sale_starts_at")
    list_select_related = ("event",)
    list_filter = ("event__is_published",)
    search_fields = ("name", "event__name")
    readonly_fields = ("event", "sold", "held", "available", "created_at", "updated_at")
    fields = (
        "event",
        "name",
        "description",
        "price",
        "capacity",
        "sold",
        "held",
        "available",
        "max_per_order",
        "sale_starts_at",
        "sale_ends_at",
        "position",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[TicketType]:
        return ticket_types_with_availability(super().get_queryset(request), now=timezone.now())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # ticket types are added on their event's page

    def save_model(self, request: HttpRequest, obj: TicketType, form: forms.ModelForm, change: bool) -> None:
        try:
            ticket_type_update(ticket_type_id=obj.pk, data=_ticket_type_changes(form), now=timezone.now())
        except ApplicationError as error:
            _report_service_error(request, str(obj), error)
