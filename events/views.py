"""Shopper pages of the catalog. Adding to the basket is the orders app's (orders/views.py), which shows its errors
on the event page through `event_page`."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from aegistickets.errors import ApplicationError, NotFoundError
from aegistickets.throttling import rate_limited, voucher_attempt
from events import selectors
from events.cache import cached_page
from events.calendar import event_ics
from events.forms import EventSearchForm, TicketQuantityForm
from events.models import Event

EVENTS_PER_PAGE = 12


def event_list(request: HttpRequest) -> HttpResponse:
    form = EventSearchForm(request.GET)
    search = form.cleaned_data["q"] if form.is_valid() else ""
    number = request.GET.get("page", "1")[:10]

    def render_page(extra: dict[str, Any]) -> HttpResponse:
        page = selectors.events_upcoming_page(now=timezone.now(), search=search, page=number, per_page=EVENTS_PER_PAGE)
        return render(request, "events/event_list.html", {"form": form, "page": page, "search": search, **extra})

    return cached_page(request, f"html:events:{search}:{number}", render_page)


@rate_limited("voucher", methods=("GET",), ip=voucher_attempt)
def event_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The event with a quantity form per ticket type; with `?voucher=CODE`, priced with that voucher and with the
    hidden ticket types it unlocks (never cached: it is one shopper's page)."""
    code = request.GET.get("voucher", "").strip()[:64]
    if code:
        return event_page_with_voucher(request, slug, code)

    def render_page(extra: dict[str, Any]) -> HttpResponse:
        now = timezone.now()
        try:
            event = selectors.event_detail(slug=slug, now=now)
        except NotFoundError:
            raise Http404 from None
        return event_page(request, event, now=now, extra=extra)

    return cached_page(request, f"html:event:{slug}", render_page)


def event_calendar(request: HttpRequest, slug: str) -> HttpResponse:
    """The event as an iCalendar file, for "Add to calendar"."""
    try:
        event = selectors.event_published(slug=slug)
    except NotFoundError:
        raise Http404 from None
    response = HttpResponse(event_ics(event), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{event.slug}.ics"'
    return response


def event_page_with_voucher(request: HttpRequest, slug: str, code: str) -> HttpResponse:
    """The event page as a voucher holder sees it, or with the reason the code is refused next to its form."""
    now = timezone.now()
    try:
        event = selectors.event_detail(slug=slug, now=now)
    except NotFoundError:
        raise Http404 from None
    event, extra = voucher_page(event, code=code, now=now)
    return event_page(request, event, now=now, extra=extra)


def voucher_page(event: Event, *, code: str, now: Any) -> tuple[Event, dict[str, Any]]:
    """The event as a holder of the voucher `code` sees it (its prices, the hidden ticket types it unlocks) and the
    page's voucher context; if the code is refused, the event unchanged and the reason (`voucher_error`)."""
    try:
        voucher = selectors.voucher_for_event(code=code, event=event, now=now)
    except ApplicationError as error:
        return event, {"voucher_code": code, "voucher_error": error.detail}
    priced = selectors.event_detail(slug=event.slug, now=now, voucher=voucher)
    return priced, {"voucher": voucher, "voucher_code": voucher.code}


def event_page(
    request: HttpRequest,
    event: Event,
    *,
    now: Any,
    bound: TicketQuantityForm | None = None,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """The event page from `selectors.event_detail`; `bound` is a submitted form to show (with its errors) in place of
    its ticket type's empty one."""
    forms = [
        (ticket_type, bound if bound is not None and bound.ticket_type.pk == ticket_type.pk else None)
        for ticket_type in event.ticket_types.all()
    ]
    forms = [(ticket_type, form or TicketQuantityForm(ticket_type=ticket_type)) for ticket_type, form in forms]
    context = {"event": event, "ticket_forms": forms, "now": now, **(extra or {})}
    return render(request, "events/event_detail.html", context)
