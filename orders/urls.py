from django.urls import path

from aegistickets import converters  # noqa: F401 - registers <id>, <token>, <order_code>
from orders import views

app_name = "orders"

urlpatterns = [
    path("events/<slug:slug>/basket/", views.basket_add, name="basket-add"),
    path("basket/", views.basket_detail, name="basket"),
    path("basket/items/<id:pk>/remove/", views.basket_remove, name="basket-remove"),
    path("basket/voucher/", views.basket_voucher, name="basket-voucher"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/find/", views.order_find, name="find"),
    path("orders/find/sent/", views.order_find_sent, name="find-sent"),
    path("orders/<order_code:code>/<token:secret>/", views.order_detail, name="detail"),
    path(
        "orders/<order_code:code>/<token:secret>/confirmation/",
        views.order_resend_confirmation,
        name="resend-confirmation",
    ),
    path("orders/<order_code:code>/<token:secret>/names/", views.order_attendee_names, name="attendee-names"),
    path("orders/<order_code:code>/<token:secret>/tickets.pdf", views.order_tickets_pdf, name="tickets-pdf"),
    path("orders/<order_code:code>/<token:secret>/cancel/", views.order_cancel_tickets, name="cancel-tickets"),
    path("orders/<order_code:code>/<token:secret>/pay/", views.order_pay, name="pay"),
    path("orders/<order_code:code>/<token:secret>/pay/return/", views.order_pay_return, name="pay-return"),
    path("events/<slug:slug>/waiting-list/", views.waiting_list_join, name="waiting-list-join"),
    path("waiting-list/<token:token>/", views.waiting_list_entry, name="waiting-list-entry"),
    path("waiting-list/<token:token>/leave/", views.waiting_list_leave, name="waiting-list-leave"),
    path("waiting-list/<token:token>/offer/", views.waiting_list_offer, name="waiting-list-offer"),
    path("check-in/", views.check_in_desk, name="check-in"),
    path("check-in/login/", views.check_in_login, name="check-in-login"),
    path("check-in/count/", views.check_in_count, name="check-in-count"),
    path("payments/<slug:provider>/webhook", views.payment_webhook, name="payment-webhook"),
]
