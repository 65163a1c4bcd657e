"""Events as iCalendar (RFC 5545) files, for "Add to calendar": the event page and the order page link to one
event's file, and the order confirmation carries one with the order's events.

Times are written in the shop's time zone (TIME_ZONE) with its VTIMEZONE, so that a calendar shows the local start
even where it does not know the zone's name. The UID is the event's id under the site's host: adding the same event
twice, or a changed version of it, updates the one entry instead of making a second one.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import icalendar
from django.conf import settings
from django.utils import timezone

from aegistickets.http import site_url
from events.models import Event

PRODUCT_ID = "-//AegisTickets//Tickets//EN"
DESCRIPTION_MAX = 2000


def event_url(event: Event) -> str:
    """The absolute address of the event's public page."""
    return site_url("events:detail", slug=event.slug)


def event_uid(event: Event) -> str:
    """Stable per event: the same event always has the same UID, whatever its name or times become."""
    host = urlsplit(settings.SITE_URL).hostname or "aegistickets"
    return f"event-{event.pk}@{host}"


def _vevent(event: Event) -> icalendar.Event:
    entry = icalendar.Event()
    entry.add("uid", event_uid(event))
    # When this version of the event was written: calendars keep the newer of two files with the same UID.
    entry.add("dtstamp", event.updated_at or timezone.now())
    entry.add("dtstart", timezone.localtime(event.starts_at))
    entry.add("dtend", timezone.localtime(event.ends_at))
    entry.add("summary", event.name)
    entry.add("location", f"{event.venue}, {event.city}")
    entry.add("url", event_url(event))
    if event.description:
        entry.add("description", event.description[:DESCRIPTION_MAX])
    return entry


def events_ics(events: Iterable[Event]) -> bytes:
    """One calendar holding these events (each once, in the order given)."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    seen: set[int] = set()
    for event in events:
        if event.pk not in seen:
            seen.add(event.pk)
            calendar.add_component(_vevent(event))
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


def event_ics(event: Event) -> bytes:
    """The event's own calendar file."""
    return events_ics([event])
