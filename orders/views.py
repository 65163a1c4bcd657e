"""Shopper pages for adding to the basket, the basket, checkout, paying and the private order page. They call the
same services as the API."""

from datetime import datetime
from typing import Any

from csp.decorators import csp_update
from django.contrib import messages
from django.contrib.auth.decorators import user_passes_test
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from aegistickets.errors import (
    PROBLEM_CONTENT_TYPE,
    ApplicationError,
    BasketNotFoundError,
    CancellationClosedError,
    NotFoundError,
    OrderNotPayableError,
    ValidationFailedError,
    problem_json_response,
)
from aegistickets.http import client_ip
from aegistickets.money import format_money
from aegistickets.throttling import posted_value, rate_limited, voucher_attempt
from events import selectors as catalog
from events import views as catalog_views
from events.cache import catalog_cached
from events.forms import TicketQuantityForm
from orders import seats, selectors, selfservice, services, waiting_list, webhooks
from orders.checkout import checkout_fingerprint, order_place, payment_confirm, payment_return
from orders.forms import (
    AttendeeNamesForm,
    CardPaymentForm,
    CheckInForm,
    CheckoutForm,
    OrderLookupForm,
    WaitingListForm,
)
from orders.models import Order, WaitingListEntry
from orders.selectors import BasketSummary
from orders.tickets import tickets_pdf

# The browser session's basket: the session (a signed cookie) holds its token and nothing else.
SESSION_BASKET = "basket_token"
# The basket's voucher input: the id its error message names, so the page links the two (templates/base.html).
VOUCHER_FIELD = "voucher-code"


def session_basket_token(request: HttpRequest) -> str:
    """The token of the basket this browser session remembers, or ""."""
    token = request.session.get(SESSION_BASKET)
    return token if isinstance(token, str) else ""


def session_basket(request: HttpRequest) -> BasketSummary | None:
    """The basket this browser session remembers, or None."""
    token = request.session.get(SESSION_BASKET)
    if not token:
        return None
    try:
        return selectors.basket_summary(token=token, now=timezone.now())
    except NotFoundError:
        del request.session[SESSION_BASKET]
        return None


@require_http_methods(["GET", "POST"])
@rate_limited("basket_add", ip=client_ip, basket=session_basket_token)
@rate_limited("voucher", ip=voucher_attempt)
def basket_add(request: HttpRequest, slug: str) -> HttpResponse:
    """The event page's "Add to basket": holds the seats and opens the basket, or shows the event page again with
    the refusal next to the ticket type it concerns (at this URL, which sends a later visit to the event page)."""
    if request.method == "GET":
        return redirect("events:detail", slug=slug)
    now = timezone.now()
    try:
        # Display only: the basket service decides on the database, never on this copy.
        event = catalog_cached(f"event:{slug}", lambda: catalog.event_detail(slug=slug, now=now))
    except NotFoundError:
        raise Http404 from None
    code = request.POST.get("voucher", "").strip()[:64]
    page: dict[str, Any] = {}
    if code:
        # The hidden ticket types the voucher unlocks are on its page only, as are its prices.
        event, page = catalog_views.voucher_page(event, code=code, now=now)
        if "voucher_error" in page:
            return catalog_views.event_page(request, event, now=now, extra=page)
    chosen = request.POST.get("ticket_type")
    ticket_type = next((t for t in event.ticket_types.all() if str(t.pk) == chosen), None)
    if ticket_type is None:
        messages.error(request, _("Choose a ticket type from this event."))
        return catalog_views.event_page(request, event, now=now, extra=page)
    form = TicketQuantityForm(request.POST, ticket_type=ticket_type)
    if form.is_valid():
        try:
            basket = services.basket_add(
                token=session_basket_token(request) or None,
                ticket_type_id=ticket_type.pk,
                quantity=form.cleaned_data["quantity"],
                now=now,
                voucher=code,
            )
        except BasketNotFoundError:
            request.session.pop(SESSION_BASKET, None)  # a stale basket: start a new one next time
            form.add_error(None, _("Your previous basket is gone; please try again."))
        except ApplicationError as error:
            form.add_error(None, error.detail)
        else:
            request.session[SESSION_BASKET] = basket.token
            messages.success(
                request,
                _("%(quantity)d × %(ticket_type)s reserved for you.")
                % {"quantity": form.cleaned_data["quantity"], "ticket_type": ticket_type.name},
            )
            return redirect("orders:basket")
    return catalog_views.event_page(request, event, now=now, bound=form, extra=page)


def basket_detail(request: HttpRequest) -> HttpResponse:
    return render(request, "orders/basket.html", {"basket": session_basket(request)})


@require_POST
@rate_limited("voucher", ip=voucher_attempt)
def basket_voucher(request: HttpRequest) -> HttpResponse:
    """The basket's "Apply a voucher": prices the seats it covers, or says why not."""
    token = session_basket_token(request)
    code = request.POST.get("voucher", "").strip()[:64]
    if not token or not code:
        if token:
            messages.error(request, _("Enter a voucher code."), extra_tags=VOUCHER_FIELD)
        else:
            messages.error(request, _("Your basket is empty."))  # no voucher field on an empty basket's page
        return redirect("orders:basket")
    try:
        services.basket_apply_voucher(token=token, code=code, now=timezone.now())
    except ApplicationError as error:
        messages.error(request, error.detail, extra_tags=VOUCHER_FIELD)
    else:
        messages.success(request, _("Voucher %(code)s applied.") % {"code": code.upper()})
    return redirect("orders:basket")


@require_POST
def basket_remove(request: HttpRequest, pk: int) -> HttpResponse:
    token = request.session.get(SESSION_BASKET)
    if token:
        try:
            services.basket_remove_item(token=token, hold_id=pk)
            messages.success(request, _("Removed from your basket; the seats are released."))
        except NotFoundError:
            messages.error(request, _("That item is no longer in your basket."))
    return redirect("orders:basket")


@require_http_methods(["GET", "POST"])
@rate_limited("checkout", ip=client_ip, basket=session_basket_token)
def checkout(request: HttpRequest) -> HttpResponse:
    basket = session_basket(request)
    if basket is None or basket.is_empty:
        if request.method == "POST":
            # A repeated submit after the first one went through (its basket is gone): show that order.
            placed = seats.placed_order(key=_form_key(request.POST.get("idempotency_key", "")), fingerprint=None)
            if placed is not None:
                return _order_page(placed)
        messages.info(request, _("Your basket is empty."))
        return redirect("orders:basket")
    form = _checkout_form(request, basket)
    if request.method == "POST" and form.is_valid():
        data, attendees, accepted_terms = form.cleaned_data, form.attendees(), form.accepted_terms()
        answers = form.answers()
        try:
            result = order_place(
                token=basket.token,
                name=data["name"],
                email=data["email"],
                payment_method=data["payment_method"],
                now=timezone.now(),
                idempotency_key=_form_key(data["idempotency_key"]),
                fingerprint=checkout_fingerprint(
                    basket=basket.token,
                    name=data["name"],
                    email=data["email"],
                    payment_method=data["payment_method"],
                    attendees=attendees,
                    accepted_terms=accepted_terms,
                    answers=answers,
                ),
                attendees=attendees,
                accepted_terms=accepted_terms,
                answers=answers,
            )
        except ApplicationError as error:
            for field, field_errors in (error.errors or {}).items():
                for message in field_errors:
                    form.add_error(field if field in form.fields else None, message)
            if not error.errors:
                form.add_error(None, error.detail)
            basket = session_basket(request)  # holds may have changed; show the truth
        else:
            request.session.pop(SESSION_BASKET, None)
            return _order_page(result.order)
    return render(request, "orders/checkout.html", {"basket": basket, "form": form})


def _checkout_form(request: HttpRequest, basket: BasketSummary) -> CheckoutForm:
    """The checkout form for this basket, with the questions its events ask (read only for events that have some)."""
    asking = [item.event_id for item in basket.items if item.event_has_questions]
    questions = catalog.questions_of_events(event_ids=asking) if asking else []
    data = request.POST if request.method == "POST" else None
    return CheckoutForm(data, total=basket.total, basket=basket, questions=questions)


def _order_page(order: Order) -> HttpResponse:
    """Where a placed order leads: its pay page while the buyer still has to pay (Stripe), else its order page."""
    if order.status == Order.Status.PENDING:
        return redirect("orders:pay", code=order.code, secret=order.secret)
    return redirect("orders:detail", code=order.code, secret=order.secret)


def order_detail(request: HttpRequest, code: str, secret: str) -> HttpResponse:
    return _order_detail_page(request, _shopper_order(code, secret))


def _shopper_order(code: str, secret: str) -> selectors.OrderDetail:
    try:
        return selectors.order_for_shopper(code=code, secret=secret, with_refunds=True)
    except NotFoundError:
        raise Http404 from None


def _order_detail_page(
    request: HttpRequest,
    detail: selectors.OrderDetail,
    *,
    error: ApplicationError | None = None,
    names_form: AttendeeNamesForm | None = None,
) -> HttpResponse:
    """The private order page; `error` (shown at the top, its status the page's) and `names_form` (a submitted form
    with its errors) after a refused self-service request."""
    now = timezone.now()
    order = detail.order
    names_open, names_closed = _name_deadlines(detail, now=now)
    if names_form is None:
        names_form = _names_form(detail, now=now)
    context = {
        "order": order,
        "lines": detail.lines,
        "tickets": detail.tickets,
        "refunds": detail.refunds,
        "cancellation": selectors.buyer_cancellable(detail, now=now),
        "events": list({line.ticket_type.event.pk: line.ticket_type.event for line in detail.lines}.values()),
        "names_form": names_form,
        "names_open": names_open,
        "names_closed": names_closed,
        "error": error,
    }
    return render(request, "orders/order_detail.html", context, status=error.status if error else 200)


def _name_deadlines(detail: selectors.OrderDetail, *, now: datetime) -> tuple[list[Any], list[Any]]:
    """The order's events whose ticket names the buyer may change until a deadline: those still open, and those
    whose deadline has passed (the page says until when it was). None unless the order is paid."""
    if detail.order.status != Order.Status.PAID:
        return [], []
    events = {line.ticket_type.event.pk: line.ticket_type.event for line in detail.lines}.values()
    dated = [event for event in events if event.asks_attendee_name and event.attendee_changes_until is not None]
    is_open = [selfservice.attendee_changes_open(event, now=now) for event in dated]
    return (
        [event for event, open_ in zip(dated, is_open, strict=True) if open_],
        [event for event, open_ in zip(dated, is_open, strict=True) if not open_],
    )


@require_POST
def order_cancel_tickets(request: HttpRequest, code: str, secret: str) -> HttpResponse:
    """The buyer cancels tickets from the order page: the chosen tickets and their refund shown first (this page),
    then, confirmed, cancelled by the same rules as staff's, where the event allows it."""
    try:
        detail = selectors.order_for_shopper(code=code, secret=secret)
    except NotFoundError:
        raise Http404 from None
    order, wanted, now = detail.order, set(request.POST.getlist("tickets")), timezone.now()
    chosen, refund = selectors.buyer_cancellation_quote(detail, wanted, now=now)
    context = {"order": order, "chosen": chosen, "refund": refund, "error": ""}
    if not chosen:
        # Nothing ticked, or only tickets past their event's deadline (or cancelled, or of an unpaid order).
        refusal = CancellationClosedError() if wanted else ValidationFailedError(_("Choose the tickets to cancel."))
        context["error"] = refusal.detail
        return render(request, "orders/cancel_tickets.html", context, status=refusal.status)
    if "confirmed" not in request.POST:
        return render(request, "orders/cancel_tickets.html", context)
    try:
        refund = services.tickets_cancel_by_buyer(order_id=order.pk, codes=[t.code for t in chosen], now=now)
    except ApplicationError as error:
        context["error"] = error.detail
        return render(request, "orders/cancel_tickets.html", context, status=error.status)
    count = len(chosen)
    messages.success(
        request,
        ngettext(
            "%(count)d ticket cancelled. %(amount)s will be refunded to your original payment method; we have emailed "
            "you a confirmation.",
            "%(count)d tickets cancelled. %(amount)s will be refunded to your original payment method; we have emailed "
            "you a confirmation.",
            count,
        )
        % {"count": count, "amount": format_money(refund.amount, currency=refund.currency)},
    )
    return redirect("orders:detail", code=order.code, secret=order.secret)


def order_tickets_pdf(request: HttpRequest, code: str, secret: str) -> HttpResponse:
    """The order's tickets as an A4 PDF, one per page (same private link as the order page)."""
    try:
        detail = selectors.order_for_shopper(code=code, secret=secret)
    except NotFoundError:
        raise Http404 from None
    order = detail.order
    response = HttpResponse(tickets_pdf(order, detail.tickets), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="tickets-{order.code}.pdf"'
    # The private link's content must not linger in shared caches.
    response["Cache-Control"] = "private, no-store"
    return response


# --- self-service: finding orders, the confirmation again, attendee names ---------------------------------------


def _order_of_path(request: HttpRequest) -> str:
    """The order a private-link request is about: what resending counts against. The whole link, not the code alone,
    so that someone who knows only an order's code can't use up its buyer's resends."""
    match = request.resolver_match
    return f"{match.kwargs.get('code', '')}/{match.kwargs.get('secret', '')}" if match is not None else ""


@require_http_methods(["GET", "POST"])
@rate_limited("lookup", ip=client_ip, email=posted_value("email"), template="orders/self_service_limited.html")
def order_find(request: HttpRequest) -> HttpResponse:
    """Find my orders: the address's orders' private links go to that address by email. The answer is the same
    whether the address has orders or not (see orders/selfservice.py)."""
    form = OrderLookupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        selfservice.order_lookup_request(
            email=form.cleaned_data["email"], language=get_language() or "", now=timezone.now()
        )
        return redirect("orders:find-sent")
    status = 400 if form.is_bound else 200
    return render(request, "orders/find_orders.html", {"form": form}, status=status)


def order_find_sent(request: HttpRequest) -> HttpResponse:
    """After "find my orders": check your inbox, the same page for every address."""
    return render(request, "orders/find_orders_sent.html")


@require_POST
@rate_limited("resend", ip=client_ip, order=_order_of_path, template="orders/self_service_limited.html")
def order_resend_confirmation(request: HttpRequest, code: str, secret: str) -> HttpResponse:
    """The order page's "Email my confirmation again": to the order's own address, for a paid order."""
    detail = _shopper_order(code, secret)
    try:
        selfservice.order_confirmation_resend(order_id=detail.order.pk, now=timezone.now())
    except ApplicationError as error:
        return _order_detail_page(request, detail, error=error)
    messages.success(request, _("We are sending your confirmation again to the address of this order."))
    return redirect("orders:detail", code=code, secret=secret)


@require_POST
def order_attendee_names(request: HttpRequest, code: str, secret: str) -> HttpResponse:
    """The order page's "Change names": every name the form posts (`name_<ticket code>`) is changed, or none."""
    detail = _shopper_order(code, secret)
    names = {key.removeprefix("name_"): value for key, value in request.POST.items() if key.startswith("name_")}
    try:
        changed = selfservice.tickets_rename(order_id=detail.order.pk, names=names, now=timezone.now())
    except ApplicationError as error:
        return _order_detail_page(request, detail, error=error, names_form=_refused_names_form(request, detail, error))
    if changed:
        messages.success(request, _("The names on your tickets are changed; your tickets PDF shows them."))
    return redirect("orders:detail", code=code, secret=secret)


def _names_form(detail: selectors.OrderDetail, *, now: datetime, data: Any = None) -> AttendeeNamesForm | None:
    """The form for the names the buyer may change now (bound to `data`, a submitted form); None if no ticket can be
    renamed (any more)."""
    numbered = {ticket.pk: number for number, ticket in enumerate(detail.tickets, start=1)}
    renamable = selfservice.renamable_tickets(detail.tickets, order=detail.order, now=now)
    if not renamable:
        return None
    return AttendeeNamesForm(data, tickets=[(numbered[ticket.pk], ticket) for ticket in renamable])


def _refused_names_form(
    request: HttpRequest, detail: selectors.OrderDetail, error: ApplicationError
) -> AttendeeNamesForm | None:
    """The submitted names form again, with the refusal's problems next to their fields."""
    form = _names_form(detail, now=timezone.now(), data=request.POST)
    if form is None:
        return None
    form.is_valid()
    for field, problems in (error.errors or {}).items():
        if field in form.fields and form.has_error(field):
            continue  # the form's own message says it already
        for problem in problems:
            form.add_error(field if field in form.fields else None, problem)
    return form


# --- paying a pending order -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@rate_limited("checkout", ip=client_ip)
def order_pay(request: HttpRequest, code: str, secret: str) -> HttpResponseBase:
    """A pending order's pay page (GET), and the JSON endpoint its script posts the card's payment method to (POST):
    paid (and where to go), an action for the browser (3-D Secure) or a problem to show next to the card."""
    now = timezone.now()
    try:
        to_pay = selectors.order_to_pay(code=code, secret=secret, now=now)
    except NotFoundError:
        raise Http404 from None
    order = to_pay.order
    if request.method == "POST":
        return _pay(request, order, now=now)
    if order.status not in (Order.Status.PENDING, Order.Status.EXPIRED, Order.Status.FAILED):
        return redirect("orders:detail", code=order.code, secret=order.secret)
    context = {"order": order, "lines": to_pay.detail.lines, "payable": to_pay.payable, "client": to_pay.client_config}

    # Only this page may load and talk to what the provider's script needs (Stripe: stripe.js, its frames, its API).
    @csp_update(to_pay.content_security_policy)
    def page(request: HttpRequest) -> HttpResponseBase:
        return render(request, "orders/pay.html", context)

    return page(request)


def _pay(request: HttpRequest, order: Order, *, now: datetime) -> JsonResponse:
    form = CardPaymentForm(request.POST)
    if not form.is_valid():
        errors = {field: [str(error) for error in field_errors] for field, field_errors in form.errors.items()}
        return problem_json_response(ValidationFailedError(errors=errors))
    try:
        step = payment_confirm(order=order, payment_method=form.cleaned_data["payment_method"], now=now)
    except OrderNotPayableError as error:
        pay_page = reverse("orders:pay", kwargs={"code": order.code, "secret": order.secret})
        # The pay page says why, and what the buyer can do next.
        body = {**error.as_problem(), "redirect": pay_page}
        return JsonResponse(body, status=error.status, content_type=PROBLEM_CONTENT_TYPE)
    except ApplicationError as error:
        return problem_json_response(error)
    if step.status == "requires_action":
        return JsonResponse({"status": step.status, "client_secret": step.client_secret})
    order_page = reverse("orders:detail", kwargs={"code": order.code, "secret": order.secret})
    return JsonResponse({"status": step.status, "redirect": order_page})


def order_pay_return(request: HttpRequest, code: str, secret: str) -> HttpResponse:
    """Where the buyer comes back after paying (3-D Secure, a provider's redirect): the order page once paid, else
    the pay page, which says what is still to do."""
    try:
        order = selectors.order_for_shopper(code=code, secret=secret).order
        order = payment_return(order=order, now=timezone.now())
    except NotFoundError:
        raise Http404 from None
    except ApplicationError as error:  # the provider did not answer: the pay page lets the buyer come back
        messages.error(request, error.detail)
    if order.status == Order.Status.PAID:
        return redirect("orders:detail", code=order.code, secret=order.secret)
    return redirect("orders:pay", code=order.code, secret=order.secret)


# --- check-in at the door -----------------------------------------------------------------------------

# Door staff are usually not `is_staff`, so they sign in here rather than through the admin's login.
check_in_login = LoginView.as_view(template_name="orders/check_in_login.html", redirect_authenticated_user=False)

# The word the desk shows for each answer of the check-in service (and the CSS modifier colouring it).
CHECK_IN_WORDS = {
    "valid": gettext_lazy("Valid — admit"),
    "already_checked_in": gettext_lazy("Already checked in"),
    "ticket_cancelled": gettext_lazy("Cancelled"),
    "wrong_event": gettext_lazy("Wrong event"),
    "not_found": gettext_lazy("Not found"),
}


@user_passes_test(selectors.can_check_in, login_url="orders:check-in-login")
@require_http_methods(["GET", "POST"])
def check_in_desk(request: HttpRequest) -> HttpResponse:
    """One scan per submit: the scanner types the code and Enter; the answer shows in big coloured words."""
    now = timezone.now()
    result = None
    event_id = _int_or_none((request.POST if request.method == "POST" else request.GET).get("event"))
    if request.method == "POST":
        form = CheckInForm(request.POST)
        if form.is_valid():
            try:
                check_in = services.ticket_check_in(
                    secret=form.cleaned_data["secret"], event_id=event_id, user=request.user, now=now
                )
            except ApplicationError as error:
                result = {
                    "code": error.code,
                    "word": CHECK_IN_WORDS.get(error.code, error.title),
                    "detail": error.detail,
                }
            else:
                result = {"code": "valid", "word": CHECK_IN_WORDS["valid"], "ticket": check_in.ticket}
            form = CheckInForm(initial={"event": event_id})  # empty again for the next scan
    else:
        form = CheckInForm(initial={"event": event_id})
    counts = selectors.door_counts(user=request.user, now=now, event_id=event_id)
    if event_id and not counts:
        raise Http404
    return render(
        request,
        "orders/check_in.html",
        {"form": form, "result": result, "counts": counts, "event": counts[0].event if event_id else None},
    )


@user_passes_test(selectors.can_check_in, login_url="orders:check-in-login")
def check_in_count(request: HttpRequest) -> JsonResponse:
    """The door counter of one event, for the check-in page's live refresh."""
    event_id = _int_or_none(request.GET.get("event"))
    counts = selectors.door_counts(user=request.user, now=timezone.now(), event_id=event_id) if event_id else []
    if not counts:
        raise Http404
    return JsonResponse({"event_id": event_id, "checked_in": counts[0].checked_in, "sold": counts[0].sold})


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


def _form_key(value: str) -> str:
    """The Idempotency-Key of a checkout form submission (the form's one-time UUID). The space keeps form keys apart
    from API keys (`Idempotency-Key` allows none): a repeated submit opens the order behind a form key, so no key an
    API client chose (perhaps guessable) may ever be one."""
    return f"form {value[:64]}"


@csrf_exempt  # the provider cannot send our CSRF token; its signature (checked first) authenticates it
@require_POST
def payment_webhook(request: HttpRequest, provider: str) -> JsonResponse:
    """A payment provider's webhook: 200 once handled (or already handled), a problem otherwise, for the provider
    to retry (a 503 when the provider could not be asked about the payment) or to stop (400: not signed by it)."""
    try:
        outcome = webhooks.webhook_receive(
            provider_name=provider, body=request.body, headers=request.headers, now=timezone.now()
        )
    except ApplicationError as error:
        return problem_json_response(error)
    return JsonResponse({"received": True, "result": outcome.result})


# --- the waiting list -------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@rate_limited("waiting_list", ip=client_ip, email=posted_value("email"))
def waiting_list_join(request: HttpRequest, slug: str) -> HttpResponse:
    """The event page's "Join the waiting list" for a sold-out ticket type: the emailed link confirms it. The answer
    is the same whether the address was in line already or not."""
    if request.method == "GET":
        return redirect("events:detail", slug=slug)
    form, status = WaitingListForm(request.POST), 400
    if form.is_valid():
        try:
            waiting_list.waiting_list_join(
                ticket_type_id=form.cleaned_data["ticket_type"],
                email=form.cleaned_data["email"],
                quantity=form.cleaned_data["quantity"],
                language=get_language() or "",
                now=timezone.now(),
            )
        except ApplicationError as error:
            form.add_error(None, error.detail)
            status = error.status
        else:
            return render(
                request, "orders/waiting_list_joined.html", {"email": form.cleaned_data["email"], "slug": slug}
            )
    context = {"form": form, "slug": slug}
    return render(request, "orders/waiting_list_joined.html", context, status=status)


@require_http_methods(["GET", "POST"])
def waiting_list_entry(request: HttpRequest, token: str) -> HttpResponse:
    """An entry's private page: where it stands, and "leave". The emailed confirmation link opens it; confirming is
    a POST (its button), so that a mail scanner fetching the link puts nobody in line."""
    now = timezone.now()
    error = None
    try:
        if request.method == "POST":
            waiting_list.waiting_list_confirm(token=token, now=now)
            return redirect("orders:waiting-list-entry", token=token)
        entry = waiting_list.waiting_entry(token)
    except NotFoundError:
        raise Http404 from None
    except ApplicationError as refused:
        error, entry = refused, waiting_list.waiting_entry(token)
    return _waiting_list_page(request, entry, now=now, error=error)


def _waiting_list_page(
    request: HttpRequest, entry: WaitingListEntry, *, now: datetime, error: ApplicationError | None = None
) -> HttpResponse:
    state = waiting_list.waiting_entry_state(entry, now=now)
    context = {
        "entry": entry,
        "event": entry.ticket_type.event,
        "position": state.position,
        "offer_open": state.offer_open,
        "error": error,
    }
    return render(request, "orders/waiting_list_entry.html", context, status=error.status if error else 200)


@csrf_exempt  # the private token authenticates it; mail programs' one-click "unsubscribe" (RFC 8058) posts it
@require_POST
def waiting_list_leave(request: HttpRequest, token: str) -> HttpResponse:
    try:
        entry = waiting_list.waiting_list_leave(token=token, now=timezone.now())
    except NotFoundError:
        raise Http404 from None
    return _waiting_list_page(request, entry, now=timezone.now())


def waiting_list_offer(request: HttpRequest, token: str) -> HttpResponse:
    """The offer's link: this browser's basket becomes the one holding the offered seats."""
    now = timezone.now()
    try:
        basket = waiting_list.waiting_offer_basket(token=token, now=now)
    except NotFoundError:
        raise Http404 from None
    except ApplicationError as error:
        return _waiting_list_page(request, waiting_list.waiting_entry(token), now=now, error=error)
    request.session[SESSION_BASKET] = basket.token
    return redirect("orders:basket")
