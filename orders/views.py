"""Shopper pages for the basket, checkout and the private order page. They call the same services as the API."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from aegistickets.errors import ApplicationError, NotFoundError
from orders import selectors, services
from orders.forms import CheckoutForm
from orders.selectors import BasketSummary

SESSION_BASKET = "basket_token"


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


def basket_detail(request: HttpRequest) -> HttpResponse:
    return render(request, "orders/basket.html", {"basket": session_basket(request)})


@require_POST
def basket_remove(request: HttpRequest, pk: int) -> HttpResponse:
    token = request.session.get(SESSION_BASKET)
    if token:
        try:
            services.basket_remove_item(token=token, hold_id=pk)
            messages.success(request, "Removed from your basket; the seats are released.")
        except NotFoundError:
            messages.error(request, "That item is no longer in your basket.")
    return redirect("orders:basket")


@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        # A repeated submit after the first one went through: show the order it placed.
        placed = selectors.order_for_idempotency_key(key=_form_key(request.POST.get("idempotency_key", "")))
        if placed is not None:
            return redirect("orders:detail", code=placed.code, secret=placed.secret)
    basket = session_basket(request)
    if basket is None or basket.is_empty:
        messages.info(request, "Your basket is empty.")
        return redirect("orders:basket")
    form = CheckoutForm(request.POST if request.method == "POST" else None, total=basket.total)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = services.order_place(
                token=basket.token,
                name=data["name"],
                email=data["email"],
                payment_method=data["payment_method"],
                now=timezone.now(),
                idempotency_key=_form_key(data["idempotency_key"]),
                fingerprint=services.checkout_fingerprint(
                    basket=basket.token, name=data["name"], email=data["email"], payment_method=data["payment_method"]
                ),
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
            order = result.order
            return redirect("orders:detail", code=order.code, secret=order.secret)
    return render(request, "orders/checkout.html", {"basket": basket, "form": form})


def order_detail(request: HttpRequest, code: str, secret: str) -> HttpResponse:
    try:
        order = selectors.order_for_shopper(code=code, secret=secret)
    except NotFoundError:
        raise Http404 from None
    return render(request, "orders/order_detail.html", {"order": order})


def _form_key(value: str) -> str:
    """The Idempotency-Key of a checkout form submission (the form's one-time UUID)."""
    return f"form-{value[:64]}"
