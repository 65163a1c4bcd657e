"""Shopper pages of the catalog."""

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from aegistickets.errors import ApplicationError, BasketNotFoundError, NotFoundError
from events import selectors
from events.cache import cached_page, catalog_cached
from events.forms import EventSearchForm
from orders import services as order_services
from orders.forms import AddToBasketForm
from orders.views import SESSION_BASKET

EVENTS_PER_PAGE = 12


def event_list(request: HttpRequest) -> HttpResponse:
    form = EventSearchForm(request.GET)
    search = form.cleaned_data["q"] if form.is_valid() else ""
    number = request.GET.get("page", "1")[:10]

    def render_page(extra: dict[str, Any]) -> HttpResponse:
        page = selectors.events_upcoming_page(now=timezone.now(), search=search, page=number, per_page=EVENTS_PER_PAGE)
        return render(request, "events/event_list.html", {"form": form, "page": page, "search": search, **extra})

    return cached_page(request, f"html:events:{search}:{number}", render_page)


@require_http_methods(["GET", "POST"])
def event_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The event with a quantity form per ticket type; POST adds one ticket type to the basket."""
    if request.method == "GET":
        return cached_page(request, f"html:event:{slug}", lambda extra: _render_event(request, slug, extra))
    now = timezone.now()
    try:
        # Display only: adding to the basket below decides on the database, never on this copy.
        event = catalog_cached(f"event:{slug}", lambda: selectors.event_detail(slug=slug, now=now))
    except NotFoundError:
        raise Http404 from None
    ticket_types = list(event.ticket_types.all())
    chosen = request.POST.get("ticket_type")
    forms = []
    for ticket_type in ticket_types:
        bound = chosen == str(ticket_type.pk)
        form = AddToBasketForm(request.POST if bound else None, ticket_type=ticket_type)
        if bound and form.is_valid():
            try:
                basket = order_services.basket_add(
                    token=request.session.get(SESSION_BASKET),
                    ticket_type_id=ticket_type.pk,
                    quantity=form.cleaned_data["quantity"],
                    now=now,
                )
            except BasketNotFoundError:
                request.session.pop(SESSION_BASKET, None)  # a stale basket: start a new one next time
                form.add_error(None, "Your previous basket is gone; please try again.")
            except ApplicationError as error:
                form.add_error(None, error.detail)
            else:
                request.session[SESSION_BASKET] = basket.token
                messages.success(request, f"{form.cleaned_data['quantity']} × {ticket_type.name} reserved for you.")
                return redirect("orders:basket")
        forms.append((ticket_type, form))
    if chosen is not None and not any(str(t.pk) == chosen for t in ticket_types):
        messages.error(request, "Choose a ticket type from this event.")
    return render(request, "events/event_detail.html", {"event": event, "ticket_forms": forms, "now": now})


def _render_event(request: HttpRequest, slug: str, extra: dict[str, Any]) -> HttpResponse:
    now = timezone.now()
    try:
        event = selectors.event_detail(slug=slug, now=now)
    except NotFoundError:
        raise Http404 from None
    forms = [(ticket_type, AddToBasketForm(ticket_type=ticket_type)) for ticket_type in event.ticket_types.all()]
    return render(request, "events/event_detail.html", {"event": event, "ticket_forms": forms, "now": now, **extra})
