from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator

from events.models import Event
from orders.checkout import Attendee
from orders.payments import payment_methods
from orders.selectors import BasketSummary

PAYMENT_LABELS = {"stripe": "Card", "test": "Test payment (no money moves)", "free": "Free order"}


class CheckoutForm(forms.Form):
    name = forms.CharField(label="Full name", max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    payment_method = forms.ChoiceField(label="Payment", widget=forms.RadioSelect)
    # One key per rendered form: a double submit or a retry after a timeout yields the same order.
    idempotency_key = forms.CharField(
        widget=forms.HiddenInput,
        max_length=64,
        validators=[RegexValidator(r"^[A-Za-z0-9-]{1,64}$")],
    )

    def __init__(
        self, *args: object, total: Decimal | None = None, basket: BasketSummary | None = None, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._seats = _named_seats(basket)
        for seat in self._seats:
            self.fields[seat.name_field] = forms.CharField(label=f"{seat.label}: name", max_length=200)
            if seat.asks_email:
                self.fields[seat.email_field] = forms.EmailField(label=f"{seat.label}: email", max_length=254)
        self.terms = _terms_to_accept(basket)
        for terms in self.terms:
            self.fields[terms.accept_field] = forms.BooleanField(
                label=f"I have read and accept the terms of {terms.event_name}"
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
            label = f"Ticket {len(seats) + 1} ({item.ticket_type_name}, {item.event_name})"
            seats.append(_Seat(item.ticket_type_id, index, label, item.attendee_data == Event.AttendeeData.NAME_EMAIL))
    return seats


class CardPaymentForm(forms.Form):
    """What the pay page's script posts: the id of the payment method the provider's script made of the card."""

    payment_method = forms.CharField(max_length=255, validators=[RegexValidator(r"^[A-Za-z0-9_]+$")])


class CheckInForm(forms.Form):
    """What a USB scanner types (the ticket code, then Enter) at the door of one event."""

    event = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    secret = forms.CharField(
        label="Ticket code",
        max_length=100,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
