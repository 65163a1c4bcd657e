"""The catalog's API routes, included under /api/ in the "api" namespace (aegistickets/urls.py)."""

from django.urls import path

from aegistickets import converters  # noqa: F401 - registers <id>, <token>, <order_code>
from events import apis

urlpatterns = [
    path("events", apis.EventsApi.as_view(), name="events"),
    path("events/<id:pk>", apis.EventApi.as_view(), name="event"),
    path("events/<id:pk>/ticket-types", apis.TicketTypeCreateApi.as_view(), name="ticket-type-create"),
    path("ticket-types/<id:pk>", apis.TicketTypeApi.as_view(), name="ticket-type"),
]
