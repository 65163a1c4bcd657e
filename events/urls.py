from django.urls import path

from aegistickets import converters  # noqa: F401 - registers <id>, <token>, <order_code>
from events import views

app_name = "events"

urlpatterns = [
    path("", views.event_list, name="list"),
    path("events/<slug:slug>/", views.event_detail, name="detail"),
    path("events/<slug:slug>/event.ics", views.event_calendar, name="calendar"),
]
