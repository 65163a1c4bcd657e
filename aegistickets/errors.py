"""Domain errors and their one rendering: `application/problem+json` (RFC 9457).

Every error a client can cause is an `ApplicationError` with a stable machine-readable `code`. Services
raise them; the API's exception handler and the pages render them. Nothing else decides a status code.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
# A message: a plain string, or a lazily translated one (rendered in the language active where it is shown).
StrOrPromise = str | Promise


class ApplicationError(Exception):
    """An error the client caused or can act on; never a 5xx."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    # Translated lazily: a class's message is written in the language of the request that shows it; `code` is the
    # stable part a client matches on, in every language.
    title: ClassVar[StrOrPromise] = _("Request failed")
    default_detail: ClassVar[StrOrPromise] = _("The request could not be completed.")

    def __init__(
        self,
        detail: StrOrPromise | None = None,
        *,
        errors: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.errors = errors
        self.extra = extra or {}
        super().__init__(self.detail)

    def as_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:aegistickets:problem:{self.code}",
            "title": str(self.title),
            "status": self.status,
            "detail": str(self.detail),
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class ValidationFailedError(ApplicationError):
    code = "validation_error"
    status = 400
    title = _("Invalid input")
    default_detail = _("Some fields are missing or invalid.")


class MaxPerOrderExceededError(ApplicationError):
    code = "max_per_order_exceeded"
    status = 400
    title = _("Too many tickets")
    default_detail = _("That is more tickets of this type than one order may hold.")


class BasketEmptyError(ApplicationError):
    code = "basket_empty"
    status = 400
    title = _("Basket is empty")
    default_detail = _("Your basket is empty: add tickets before checking out.")


class NotFoundError(ApplicationError):
    code = "not_found"
    status = 404
    title = _("Not found")
    default_detail = _("No such resource.")


class BasketNotFoundError(NotFoundError):
    default_detail = _("No such basket.")


class SoldOutError(ApplicationError):
    code = "sold_out"
    status = 409
    title = _("Sold out")
    default_detail = _("These tickets are sold out.")


class InsufficientInventoryError(ApplicationError):
    code = "insufficient_inventory"
    status = 409
    title = _("Not enough tickets left")
    default_detail = _("Fewer tickets are left than you asked for.")


class HoldExpiredError(ApplicationError):
    code = "hold_expired"
    status = 409
    title = _("Reservation expired")
    default_detail = _("Your reservation expired and the tickets are no longer available.")


class NotOnSaleError(ApplicationError):
    code = "not_on_sale"
    status = 409
    title = _("Not on sale")
    default_detail = _("These tickets are not on sale right now.")


class PriceChangedError(ApplicationError):
    code = "price_changed"
    status = 409
    title = _("Basket changed")
    default_detail = _(
        "Prices or quantities changed while you were paying; you were not charged. Please review your basket."
    )


class OrderNotRefundableError(ApplicationError):
    code = "order_not_refundable"
    status = 409
    title = _("Order cannot be refunded")
    default_detail = _("Only a paid order can be refunded.")


class RefundTooLargeError(ApplicationError):
    code = "refund_too_large"
    status = 422
    title = _("Refund too large")
    default_detail = _("The refunds of an order cannot add up to more than its total.")


class OrderNotCancellableError(ApplicationError):
    code = "order_not_cancellable"
    status = 409
    title = _("Order cannot be cancelled")
    default_detail = _("This order is not paid, so it cannot be cancelled.")


class TicketNotFoundError(NotFoundError):
    """A scanned secret that matches no ticket (`not_found`, like any other missing thing)."""

    title = _("Ticket not found")
    default_detail = _("No ticket has this code.")


class AlreadyCheckedInError(ApplicationError):
    code = "already_checked_in"
    status = 409
    title = _("Already checked in")
    default_detail = _("This ticket has already been checked in.")


class TicketCancelledError(ApplicationError):
    code = "ticket_cancelled"
    status = 409
    title = _("Ticket cancelled")
    default_detail = _("This ticket, or its order, was cancelled: it does not admit anyone.")


class TicketNotCancellableError(ApplicationError):
    code = "ticket_not_cancellable"
    status = 409
    title = _("Ticket cannot be cancelled")
    default_detail = _("Only a valid ticket that has not been admitted at the door can be cancelled.")


class CancellationClosedError(ApplicationError):
    code = "cancellation_closed"
    status = 409
    title = _("Cancellation closed")
    default_detail = _("These tickets can no longer be cancelled here; ask the organizer.")


class VoucherInvalidError(ApplicationError):
    code = "voucher_invalid"
    status = 400
    title = _("Voucher not valid")
    default_detail = _("This voucher code is not valid for these tickets.")


class VoucherExpiredError(ApplicationError):
    code = "voucher_expired"
    status = 400
    title = _("Voucher not valid now")
    default_detail = _("This voucher code is not valid at this time.")


class VoucherExhaustedError(ApplicationError):
    code = "voucher_exhausted"
    status = 409
    title = _("Voucher used up")
    default_detail = _("This voucher code has been used as often as it may be.")


class WrongEventError(ApplicationError):
    code = "wrong_event"
    status = 409
    title = _("Ticket for another event")
    default_detail = _("This ticket is for another event.")


class PaymentDeclinedError(ApplicationError):
    code = "payment_declined"
    status = 402
    title = _("Payment declined")
    default_detail = _("The payment was declined. Your tickets stay reserved until the hold expires.")


class OrderNotPayableError(ApplicationError):
    code = "order_not_payable"
    status = 409
    title = _("Order cannot be paid")
    default_detail = _("This order can no longer be paid: its payment window closed and its seats were released.")


class IdempotencyConflictError(ApplicationError):
    code = "idempotency_conflict"
    status = 422
    title = _("Idempotency key reused")
    default_detail = _("This Idempotency-Key was already used with a different request body.")


class AuthenticationFailedError(ApplicationError):
    code = "authentication_failed"
    status = 401
    title = _("Authentication required")
    default_detail = _("Valid credentials are required: send `Authorization: Token <key>`.")


class PermissionDeniedError(ApplicationError):
    code = "permission_denied"
    status = 403
    title = _("Permission denied")
    default_detail = _("You are not allowed to do this.")


class OtherOrganizersOrderError(ApplicationError):
    """An order that also holds tickets of events the staff user does not run: cancelling or refunding it as a whole
    would move another organizer's money; its own tickets can still be cancelled one by one."""

    code = "order_of_other_organizers"
    status = 403
    title = _("Order of other organizers too")
    default_detail = _(
        "This order also holds tickets of another organizer's events: cancel or refund your events' tickets by "
        "their codes, or ask an administrator to act on the whole order."
    )


class MethodNotAllowedError(ApplicationError):
    code = "method_not_allowed"
    status = 405
    title = _("Method not allowed")
    default_detail = _("This method is not allowed on this resource.")


class NotAcceptableError(ApplicationError):
    code = "not_acceptable"
    status = 406
    title = _("Not acceptable")
    default_detail = _("This resource can only be rendered as JSON.")


class UnsupportedMediaTypeError(ApplicationError):
    code = "unsupported_media_type"
    status = 415
    title = _("Unsupported media type")
    default_detail = _("Send the request body as application/json.")


class RateLimitedError(ApplicationError):
    code = "rate_limited"
    status = 429
    title = _("Too many requests")
    default_detail = _("Too many requests; slow down and retry later.")


class LoginLockedOutError(ApplicationError):
    code = "login_locked_out"
    status = 429
    title = _("Too many failed login attempts")
    default_detail = _("Too many failed login attempts from your address. Try again later.")


class BuyerLimitExceededError(ApplicationError):
    code = "buyer_limit_exceeded"
    status = 409
    title = _("Ticket limit per buyer reached")
    default_detail = _("This order would take you past the event's limit of tickets per buyer.")


class WaitingListClosedError(ApplicationError):
    code = "waiting_list_closed"
    status = 409
    title = _("No waiting list")
    default_detail = _("This event has no waiting list.")


class TicketsAvailableError(ApplicationError):
    code = "tickets_available"
    status = 409
    title = _("Tickets are available")
    default_detail = _("Tickets are still available: buy them instead of waiting.")


class OfferEndedError(ApplicationError):
    code = "offer_ended"
    status = 409
    title = _("The offer has ended")
    default_detail = _("This offer of seats is no longer open.")


class ConfirmationUnavailableError(ApplicationError):
    code = "confirmation_unavailable"
    status = 409
    title = _("No confirmation to send")
    default_detail = _("Only a paid order has a confirmation to send again.")


class AttendeeChangesClosedError(ApplicationError):
    code = "attendee_changes_closed"
    status = 409
    title = _("Attendee changes closed")
    default_detail = _("The names on these tickets can no longer be changed here; ask the organizer.")


def _messages(detail: Any, prefix: str = "") -> list[str]:
    """A field's errors as the problem schema has them, flat messages: an item of a list or a field of a nested
    object that failed is named before its message ("3: Not a valid string.")."""
    if isinstance(detail, dict):
        return [message for key, value in detail.items() for message in _messages(value, f"{prefix}{key}: ")]
    if isinstance(detail, list):
        return [message for item in detail for message in _messages(item, prefix)]
    return [f"{prefix}{detail}"]


def _field_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(key): _messages(value) for key, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def application_error_from(exc: Exception) -> ApplicationError | None:
    """Map framework exceptions onto our stable codes; None for a real server error."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, drf_exceptions.ValidationError):
        return ValidationFailedError(errors=_field_errors(exc.detail))
    if isinstance(exc, drf_exceptions.ParseError):
        return ValidationFailedError(gettext("Malformed request body: %(reason)s") % {"reason": exc.detail})
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return UnsupportedMediaTypeError()
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return NotAcceptableError()
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return MethodNotAllowedError(str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        detail = str(exc.detail) if isinstance(exc, drf_exceptions.AuthenticationFailed) else None
        return AuthenticationFailedError(detail)
    if isinstance(exc, drf_exceptions.PermissionDenied | DjangoPermissionDenied):
        return PermissionDeniedError()
    if isinstance(exc, drf_exceptions.NotFound | Http404):
        return NotFoundError()
    if isinstance(exc, drf_exceptions.Throttled):
        error = RateLimitedError()
        wait = getattr(exc, "wait", None)
        if wait is not None:
            error.extra["retry_after"] = max(1, math.ceil(wait))
        return error
    return None


def problem_response(error: ApplicationError) -> Response:
    response = Response(error.as_problem(), status=error.status, content_type=PROBLEM_CONTENT_TYPE)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Token realm="api"'
    if "retry_after" in error.extra:
        response["Retry-After"] = str(error.extra["retry_after"])
    return response


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error leaves the API as problem JSON."""
    error = application_error_from(exc)
    if error is None:
        return None  # a bug: let Django log it and answer with handler500
    return problem_response(error)


def problem_json_response(error: ApplicationError) -> JsonResponse:
    """The same body (and Retry-After) for plain Django views and middleware under /api."""
    response = JsonResponse(error.as_problem(), status=error.status, content_type=PROBLEM_CONTENT_TYPE)
    if "retry_after" in error.extra:
        response["Retry-After"] = str(error.extra["retry_after"])
    return response


class InternalServerError(ApplicationError):
    code = "internal_error"
    status = 500
    title = _("Internal server error")
    default_detail = _("Something went wrong on our side; it has been logged.")


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.path == "/api"
