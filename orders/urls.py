from django.urls import path

from aegistickets import converters  # noqa: F401 - registers <id>, <token>, <order_code>
from orders import apis, views

app_name = "orders"

urlpatterns = [
    path("basket/", views.basket_detail, name="basket"),
    path("basket/items/<id:pk>/remove/", views.basket_remove, name="basket-remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/<order_code:code>/<token:secret>/", views.order_detail, name="detail"),
    path("check-in/", views.check_in_desk, name="check-in"),
    path("check-in/login/", views.check_in_login, name="check-in-login"),
    path("check-in/count/", views.check_in_count, name="check-in-count"),
    path("orders/<order_code:code>/<token:secret>/tickets.pdf", views.order_tickets_pdf, name="tickets-pdf"),
]

api_urlpatterns = [
    path("basket", apis.BasketAddApi.as_view(), name="basket-add"),
    path("basket/<token:token>", apis.BasketApi.as_view(), name="basket"),
    path("basket/<token:token>/items/<id:pk>", apis.BasketItemApi.as_view(), name="basket-item"),
    path("checkout", apis.CheckoutApi.as_view(), name="checkout"),
    path("orders", apis.OrderListApi.as_view(), name="orders"),
    path("orders/<order_code:code>", apis.OrderApi.as_view(), name="order"),
    path("orders/<order_code:code>/cancel", apis.OrderCancelApi.as_view(), name="order-cancel"),
    path("check-ins", apis.CheckInApi.as_view(), name="check-ins"),
    path("events/<id:event_id>/orders.csv", apis.EventOrdersCsvApi.as_view(), name="event-orders-csv"),
    path("events/<id:event_id>/attendees.csv", apis.EventAttendeesCsvApi.as_view(), name="event-attendees-csv"),
]
