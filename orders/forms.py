import uuid
from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator

from orders.payments import payment_methods

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

    def __init__(self, *args: object, total: Decimal | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
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
