from django.urls import path

from aegistickets import converters  # noqa: F401 - registers <id>, <token>, <order_code>
from events import apis, views

app_name = "events"

urlpatterns = [
    path("", views.event_list, name="list"),
    path("events/<slug:slug>/", views.event_detail, name="detail"),
]

api_urlpatterns = [
    path("events", apis.EventsApi.as_view(), name="events"),
    path("events/<id:pk>", apis.EventApi.as_view(), name="event"),
    path("events/<id:pk>/ticket-types", apis.TicketTypeCreateApi.as_view(), name="ticket-type-create"),
    path("ticket-types/<id:pk>", apis.TicketTypeApi.as_view(), name="ticket-type"),
]
