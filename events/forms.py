from django import forms
from django.utils.translation import gettext_lazy as _

from events.models import TicketType


class EventSearchForm(forms.Form):
    q = forms.CharField(label=_("Search events"), required=False, max_length=100)


class TicketQuantityForm(forms.Form):
    """How many tickets of one type, on the event page; the limits themselves are the basket service's to enforce."""

    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=1000, initial=1)

    def __init__(self, *args: object, ticket_type: TicketType, **kwargs: object) -> None:
        kwargs.setdefault("auto_id", f"tt{ticket_type.pk}_%s")
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.ticket_type = ticket_type
        self.fields["quantity"].widget.attrs.update({"max": ticket_type.max_per_order})
