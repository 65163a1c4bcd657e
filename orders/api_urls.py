"""The orders app's API routes, included under /api/ in the "api" namespace (aegistickets/urls.py)."""

from django.urls import path

from aegistickets import converters  # noqa: F401 - registers <id>, <token>, <order_code>
from aegistickets.http import client_ip
from aegistickets.throttling import posted_value, rate_limited, voucher_attempt
from orders import apis

urlpatterns = [
    path(
        "basket",
        rate_limited("basket_add", ip=client_ip, basket=apis.body_basket_token)(
            rate_limited("voucher", ip=voucher_attempt)(apis.BasketAddApi.as_view())
        ),
        name="basket-add",
    ),
    path("basket/<token:token>", apis.BasketApi.as_view(), name="basket"),
    path("basket/<token:token>/items/<id:pk>", apis.BasketItemApi.as_view(), name="basket-item"),
    path(
        "checkout",
        rate_limited("checkout", ip=client_ip, basket=apis.body_basket_token)(
            rate_limited("voucher", ip=voucher_attempt)(apis.CheckoutApi.as_view())
        ),
        name="checkout",
    ),
    path(
        "waiting-list",
        rate_limited("waiting_list", ip=client_ip, email=posted_value("email"))(apis.WaitingListJoinApi.as_view()),
        name="waiting-list-join",
    ),
    path("waiting-list/<token:token>", apis.WaitingListEntryApi.as_view(), name="waiting-list-entry"),
    path("waiting-list/<token:token>/confirm", apis.WaitingListConfirmApi.as_view(), name="waiting-list-confirm"),
    path(
        "orders/lookup",
        rate_limited("lookup", ip=client_ip, email=posted_value("email"))(apis.OrderLookupApi.as_view()),
        name="orders-lookup",
    ),
    path("orders", apis.OrderListApi.as_view(), name="orders"),
    path("orders/<order_code:code>", apis.OrderApi.as_view(), name="order"),
    path("orders/<order_code:code>/cancel", apis.OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<order_code:code>/refunds", apis.OrderRefundApi.as_view(), name="order-refunds"),
    path("check-ins", apis.CheckInApi.as_view(), name="check-ins"),
    path("events/<id:event_id>/cancel", apis.EventCancelApi.as_view(), name="event-cancel"),
    path("events/<id:event_id>/vouchers", apis.EventVouchersApi.as_view(), name="event-vouchers"),
    path("events/<id:event_id>/orders.csv", apis.EventOrdersCsvApi.as_view(), name="event-orders-csv"),
    path("events/<id:event_id>/attendees.csv", apis.EventAttendeesCsvApi.as_view(), name="event-attendees-csv"),
]
