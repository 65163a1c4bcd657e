from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from events.models import Event, Question
from orders.answers import SeatAnswers, answer_field
from orders.checkout import Attendee
from orders.payments import payment_methods
from orders.selectors import BasketSummary

PAYMENT_LABELS = {"stripe": _("Card"), "test": _("Test payment (no money moves)"), "free": _("Free order")}


class CheckoutForm(forms.Form):
    name = forms.CharField(label=_("Full name"), max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    payment_method = forms.ChoiceField(label=_("Payment"), widget=forms.RadioSelect)
    # One key per rendered form: a double submit or a retry after a timeout yields the same order.
    idempotency_key = forms.CharField(
        widget=forms.HiddenInput,
        max_length=64,
        validators=[RegexValidator(r"^[A-Za-z0-9-]{1,64}$")],
    )

    def __init__(
        self,
        *args: object,
        total: Decimal | None = None,
        basket: BasketSummary | None = None,
        questions: Sequence[Question] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._seats = _named_seats(basket)
        self._asked = _asked_seats(basket, questions)
        for seat in self._asked:
            for question in seat.questions:
                self.fields[seat.field(question)] = _question_field(question)
        for seat in self._seats:
            self.fields[seat.name_field] = forms.CharField(
                label=gettext("%(ticket)s: name") % {"ticket": seat.label}, max_length=200
            )
            if seat.asks_email:
                self.fields[seat.email_field] = forms.EmailField(
                    label=gettext("%(ticket)s: email") % {"ticket": seat.label}, max_length=254
                )
        self.terms = _terms_to_accept(basket)
        for terms in self.terms:
            self.fields[terms.accept_field] = forms.BooleanField(
                label=gettext("I have read and accept the terms of %(event)s") % {"event": terms.event_name}
            )
            self.fields[terms.version_field] = forms.IntegerField(widget=forms.HiddenInput, initial=terms.version)
        methods = payment_methods()
        if total is not None:
            # Offer what `payment_provider_for` accepts for this amount: `free` only for a zero total.
            methods = [m for m in methods if (m == "free") == (total == 0)] or methods
        self.fields["payment_method"].choices = [(m, PAYMENT_LABELS.get(m, m)) for m in methods]
        self.fields["payment_method"].initial = methods[0] if methods else None
        self.fields["idempotency_key"].initial = str(uuid.uuid4())

    @property
    def offers_test_payment(self) -> bool:
        return any(value == "test" for value, _ in self.fields["payment_method"].choices)

    def buyer_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("name", "email", "payment_method")]

    def attendee_fields(self) -> list[forms.BoundField]:
        return [field for field in self.visible_fields() if field.name.startswith("attendee_")]

    def terms_fields(self) -> list[tuple[TermsToAccept, forms.BoundField]]:
        return [(terms, self[terms.accept_field]) for terms in self.terms]

    def accepted_terms(self) -> dict[int, int]:
        """The version of each event's terms the buyer accepted: the one this form showed them."""
        return {terms.event_id: self.cleaned_data[terms.version_field] for terms in self.terms}

    def question_seats(self) -> list[tuple[str, list[tuple[forms.BoundField, Question]]]]:
        """Each seat asked about: its label and its questions' fields, each with its question."""
        return [(seat.label, [(self[seat.field(q)], q) for q in seat.questions]) for seat in self._asked]

    def answers(self) -> list[SeatAnswers]:
        """The answers about each seat, from the cleaned form, in seat order (yes and no as booleans)."""
        data = self.cleaned_data
        return [
            SeatAnswers(seat.ticket_type_id, {q.pk: _answer(q, data.get(seat.field(q))) for q in seat.questions})
            for seat in self._asked
        ]

    def attendees(self) -> list[Attendee]:
        """Who each seat is for, from the cleaned form, in seat order."""
        data = self.cleaned_data
        return [
            Attendee(seat.ticket_type_id, data[seat.name_field], data.get(seat.email_field, "")) for seat in self._seats
        ]


@dataclass(frozen=True)
class _Seat:
    """One seat of the basket whose event asks who it is for: its fields on the checkout form."""

    ticket_type_id: int
    index: int  # within its ticket type, from 0
    label: str
    asks_email: bool

    @property
    def name_field(self) -> str:
        return f"attendee_{self.ticket_type_id}_{self.index}_name"

    @property
    def email_field(self) -> str:
        return f"attendee_{self.ticket_type_id}_{self.index}_email"


@dataclass(frozen=True)
class TermsToAccept:
    """An event of the basket with terms, as the checkout form shows them: the text and its version."""

    event_id: int
    event_name: str
    version: int
    text: str

    @property
    def accept_field(self) -> str:
        return f"terms_{self.event_id}"

    @property
    def version_field(self) -> str:
        return f"terms_{self.event_id}_version"


def _terms_to_accept(basket: BasketSummary | None) -> list[TermsToAccept]:
    shown: dict[int, TermsToAccept] = {}
    for item in basket.items if basket else []:
        if item.event_terms_version and item.event_id not in shown:
            shown[item.event_id] = TermsToAccept(
                item.event_id, item.event_name, item.event_terms_version, item.event_terms
            )
    return list(shown.values())


def _named_seats(basket: BasketSummary | None) -> list[_Seat]:
    seats: list[_Seat] = []
    for item in basket.items if basket else []:
        if item.attendee_data == Event.AttendeeData.NONE:
            continue
        for index in range(item.quantity):
            label = gettext("Ticket %(number)d (%(ticket_type)s, %(event)s)") % {
                "number": len(seats) + 1,
                "ticket_type": item.ticket_type_name,
                "event": item.event_name,
            }
            seats.append(_Seat(item.ticket_type_id, index, label, item.attendee_data == Event.AttendeeData.NAME_EMAIL))
    return seats


@dataclass(frozen=True)
class _AskedSeat:
    """One seat of the basket its event asks questions about: its fields on the checkout form."""

    ticket_type_id: int
    index: int  # within its ticket type, from 0
    label: str
    questions: tuple[Question, ...]

    def field(self, question: Question) -> str:
        return answer_field(self.ticket_type_id, self.index, question.pk)


def _asked_seats(basket: BasketSummary | None, questions: Sequence[Question]) -> list[_AskedSeat]:
    seats: list[_AskedSeat] = []
    number = 0
    for item in basket.items if basket else []:
        asked = tuple(q for q in questions if q.event_id == item.event_id and q.applies_to(item.ticket_type_id))
        for index in range(item.quantity):
            number += 1
            if asked:
                label = gettext("Ticket %(number)d (%(ticket_type)s, %(event)s)") % {
                    "number": number,
                    "ticket_type": item.ticket_type_name,
                    "event": item.event_name,
                }
                seats.append(_AskedSeat(item.ticket_type_id, index, label, asked))
    return seats


YES_NO = [("yes", _("Yes")), ("no", _("No"))]


def _question_field(question: Question) -> forms.Field:
    """The field for a question, its widget fit for its kind. What the answer must be is the checkout service's to
    say (orders.answers); the form only collects it."""
    common: dict[str, Any] = {"label": question.text, "required": False}
    options = [(option, option) for option in question.option_list]
    required = {"aria-required": "true"} if question.required else {}
    if question.kind == Question.Kind.CHOICE:
        return forms.ChoiceField(choices=[("", _("Choose…")), *options], widget=forms.Select(attrs=required), **common)
    if question.kind == Question.Kind.MULTIPLE:
        return forms.MultipleChoiceField(choices=options, widget=forms.CheckboxSelectMultiple, **common)
    if question.kind == Question.Kind.YES_NO:
        return forms.ChoiceField(choices=YES_NO, widget=forms.RadioSelect, **common)
    if question.kind == Question.Kind.NUMBER:
        return forms.CharField(max_length=30, widget=forms.NumberInput(attrs={"step": "any", **required}), **common)
    return forms.CharField(max_length=1000, widget=forms.TextInput(attrs=required), **common)


def _answer(question: Question, value: object) -> object:
    if question.kind == Question.Kind.YES_NO and value in ("yes", "no"):
        return value == "yes"
    return value


class CardPaymentForm(forms.Form):
    """What the pay page's script posts: the id of the payment method the provider's script made of the card."""

    payment_method = forms.CharField(max_length=255, validators=[RegexValidator(r"^[A-Za-z0-9_]+$")])


class CheckInForm(forms.Form):
    """What a USB scanner types (the ticket code, then Enter) at the door of one event."""

    event = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    secret = forms.CharField(
        label=_("Ticket code"),
        max_length=100,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )


class WaitingListForm(forms.Form):
    """Joining a ticket type's waiting list from the event page; the service decides whether it may."""

    ticket_type = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    email = forms.EmailField(label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    quantity = forms.IntegerField(label=_("Tickets wanted"), min_value=1, max_value=1000, initial=1)


class OrderLookupForm(forms.Form):
    """Find my orders: the address the orders were placed with."""

    email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        help_text=_("The address you gave at checkout."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class AttendeeNamesForm(forms.Form):
    """The names on an order's tickets whose event still lets the buyer change them: one field per ticket,
    `name_<ticket code>`; the service decides whether each change may be made."""

    def __init__(self, data: Any = None, *, tickets: Sequence[tuple[int, Any]]) -> None:
        """`tickets`: each renamable ticket with its number on the order page."""
        super().__init__(data)
        for number, ticket in tickets:
            self.fields[f"name_{ticket.code}"] = forms.CharField(
                label=_("Ticket %(number)s (%(type)s)") % {"number": number, "type": ticket.ticket_type.name},
                max_length=200,
                initial=ticket.attendee_name,
                widget=forms.TextInput(attrs={"autocomplete": "off"}),
            )

    def names(self) -> dict[str, str]:
        """Ticket code -> the name given, from the cleaned form."""
        return {name.removeprefix("name_"): value for name, value in self.cleaned_data.items()}
