"""Shopper self-service: finding orders by email, the confirmation again, attendee names, "Add to calendar"."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from decimal import Decimal

import icalendar
import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from aegistickets.errors import AttendeeChangesClosedError, ConfirmationUnavailableError, ValidationFailedError
from events.calendar import event_uid
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, outbox, selectors, selfservice, services
from orders.checkout import Attendee
from orders.models import Order, OutboundEmail, Ticket
from orders.tests.test_admin import place_order

pytestmark = pytest.mark.django_db

FIND_URL = "/orders/find/"
LOOKUP_API = "/api/orders/lookup"


def send_all(now: datetime | None = None) -> outbox.OutboxRun:
    """The email worker's step."""
    return outbox.outbox_send_due(now=now or timezone.now(), limit=100)


def lookup_rows() -> list[OutboundEmail]:
    return list(OutboundEmail.objects.filter(kind=OutboundEmail.Kind.ORDER_LOOKUP).order_by("pk"))


def order_link(order: Order) -> str:
    return settings.SITE_URL.rstrip("/") + f"/orders/{order.code}/{order.secret}/"


def links_in(body: str) -> list[str]:
    return re.findall(r"/orders/(AT-[A-Z0-9]{6})/[A-Za-z0-9_-]+/", body)


@pytest.fixture
def limits(settings):
    """Rate limits on, fresh counters and a stopped clock (a window ending mid-test would reset a count)."""
    settings.RATE_LIMITS_ENABLED = True
    caches[settings.RATELIMIT_USE_CACHE].clear()
    with time_machine.travel(timezone.now(), tick=False):
        yield settings.RATE_LIMITS


def bare_order(email: str, *, status: str = Order.Status.PAID, created_at: datetime) -> Order:
    """An order row of its own (no lines): what the lookup reads."""
    pending = {"payment_deadline": created_at + timedelta(minutes=15)} if status == Order.Status.PENDING else {}
    return Order.objects.create(
        status=status,
        name="Ada",
        email=email,
        total=Decimal("0.00"),
        currency="EUR",
        payment_method="test",
        created_at=created_at,
        **pending,
    )


# --- find my orders ---------------------------------------------------------------------------------------------


class TestFindAnswer:
    def test_the_page_answers_the_same_bytes_with_or_without_orders(self, ticket_type):
        place_order((ticket_type, 1), email="ada@example.com")
        answers = []
        for address in ("ada@example.com", "nobody@example.com"):
            client = Client()
            posted = client.post(FIND_URL, {"email": address})
            followed = client.get(posted["Location"])
            # The language switcher's CSRF token is masked afresh for every response, whatever the address.
            page = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", followed.content)
            answers.append((posted.status_code, posted["Location"], posted.content, page))
        assert answers[0] == answers[1]
        assert answers[0][:2] == (302, "/orders/find/sent/")
        assert "Check your inbox" in answers[0][3].decode()
        assert [row.recipient for row in lookup_rows()] == ["ada@example.com", "nobody@example.com"]

    def test_the_api_answers_the_same_body_with_or_without_orders(self, api, ticket_type):
        place_order((ticket_type, 1), email="ada@example.com")
        with_orders = api.post(LOOKUP_API, {"email": "ada@example.com"}, format="json")
        without = api.post(LOOKUP_API, {"email": "nobody@example.com"}, format="json")
        assert (with_orders.status_code, without.status_code) == (202, 202)
        assert with_orders.content == without.content
        assert with_orders.json()["status"] == "email_queued"
        assert len(lookup_rows()) == 2

    def test_the_request_runs_the_same_queries_with_or_without_orders(self, ticket_type):
        place_order((ticket_type, 1), email="ada@example.com")
        counted = []
        for address in ("ada@example.com", "nobody@example.com"):
            with CaptureQueriesContext(connection) as queries:
                selfservice.order_lookup_request(email=address, language="", now=timezone.now())
            counted.append([re.sub(r"'[^']*'|\d+", "?", query["sql"]) for query in queries.captured_queries])
        assert counted[0] == counted[1]
        assert not any("orders_order" in sql and "SELECT" in sql for sql in counted[0])  # no lookup in the request

    def test_a_bad_address_is_400_and_queues_nothing(self, api, client):
        assert api.post(LOOKUP_API, {"email": "not an address"}, format="json").status_code == 400
        page = client.post(FIND_URL, {"email": "not an address"})
        assert page.status_code == 400
        assert "Enter a valid email address." in page.content.decode()
        assert lookup_rows() == []

    def test_the_find_page_is_linked_from_every_page(self, client):
        body = client.get("/").content.decode()
        assert f'href="{FIND_URL}"' in body
        assert client.get(FIND_URL).status_code == 200


class TestFindEmail:
    def test_an_address_with_orders_gets_their_links_newest_first(self, ticket_type, now):
        older = bare_order("ada@example.com", created_at=now - timedelta(days=2))
        newer = bare_order("ada@example.com", status=Order.Status.PENDING, created_at=now - timedelta(days=1))
        cancelled = bare_order("ada@example.com", status=Order.Status.CANCELLED, created_at=now - timedelta(hours=1))
        bare_order("ada@example.com", status=Order.Status.EXPIRED, created_at=now)
        bare_order("ada@example.com", status=Order.Status.FAILED, created_at=now)
        bare_order("grace@example.com", created_at=now)
        selfservice.order_lookup_request(email="ada@example.com", language="", now=now)

        assert send_all(now) == outbox.OutboxRun(sent=1)

        (message,) = mail.outbox
        assert message.to == ["ada@example.com"]
        assert links_in(message.body) == [cancelled.code, newer.code, older.code]
        assert f"/orders/{older.code}/{older.secret}/" in message.body
        html = message.alternatives[0][0]
        assert f'href="{order_link(older)}"' in html
        assert lookup_rows()[0].status == OutboundEmail.Status.SENT

    def test_an_address_without_orders_gets_no_email_and_the_row_ends_skipped(self, now):
        bare_order("ada@example.com", status=Order.Status.EXPIRED, created_at=now)
        selfservice.order_lookup_request(email="nobody@example.com", language="", now=now)
        selfservice.order_lookup_request(email="ada@example.com", language="", now=now)

        assert send_all(now) == outbox.OutboxRun(skipped=2)

        assert mail.outbox == []
        assert {row.status for row in lookup_rows()} == {OutboundEmail.Status.SKIPPED}
        assert send_all(now + timedelta(days=1)) == outbox.OutboxRun()  # never retried

    def test_the_address_matches_whatever_its_case(self, now):
        order = bare_order("Ada.Lovelace@Example.COM", created_at=now)
        selfservice.order_lookup_request(email="  ada.LOVELACE@example.com ", language="", now=now)
        send_all(now)
        (message,) = mail.outbox
        assert message.to == ["ada.lovelace@example.com"]
        assert links_in(message.body) == [order.code]

    def test_at_most_twenty_orders_the_newest(self, now):
        orders = [bare_order("ada@example.com", created_at=now - timedelta(hours=i)) for i in range(22)]
        selfservice.order_lookup_request(email="ada@example.com", language="", now=now)
        send_all(now)
        (message,) = mail.outbox
        assert links_in(message.body) == [order.code for order in orders[:20]]

    def test_the_list_is_as_it_is_when_the_email_is_sent(self, ticket_type, now):
        selfservice.order_lookup_request(email="ada@example.com", language="", now=now)
        order = place_order((ticket_type, 1), email="ada@example.com")  # placed after asking, before sending
        mail.outbox.clear()
        send_all(timezone.now())
        lookup = next(m for m in mail.outbox if "Your orders" in m.subject)
        assert links_in(lookup.body) == [order.code]

    def test_the_email_names_each_orders_events(self, ticket_type):
        order = place_order((ticket_type, 2), email="ada@example.com")
        mail.outbox.clear()
        selfservice.order_lookup_request(email="ada@example.com", language="", now=timezone.now())
        send_all()
        lookup = next(m for m in mail.outbox if "Your orders" in m.subject)
        assert f"{order.code} · {ticket_type.event.name} · Paid" in lookup.body

    def test_the_admin_lists_skipped_emails(self, admin_client, now):
        selfservice.order_lookup_request(email="nobody@example.com", language="", now=now)
        send_all(now)
        url = reverse("admin:orders_outboundemail_changelist")
        response = admin_client.get(url, {"status__exact": "skipped"})
        assert response.status_code == 200
        assert [row.recipient for row in response.context["cl"].result_list] == ["nobody@example.com"]
        assert "Skipped" in admin_client.get(url).content.decode()


@pytest.mark.postgres
def test_the_lookup_reads_the_lower_email_index(ticket_type):
    place_order((ticket_type, 1), email="Ada@example.com")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the table is tiny: make the planner show what it can use
        plan = selectors.address_orders("ADA@example.com").explain()
    assert "order_email_lower_idx" in plan
    assert "Sort" not in plan  # the index gives the order too


class TestFindLimits:
    def test_three_an_hour_per_address(self, api, limits):
        answers = [api.post(LOOKUP_API, {"email": "Ada@example.com"}, format="json") for _ in range(4)]
        assert [answer.status_code for answer in answers] == [202, 202, 202, 429]
        assert answers[3].json()["code"] == "rate_limited"
        assert int(answers[3]["Retry-After"]) > 0
        # The address counts whatever its case; another address is still served.
        assert api.post(LOOKUP_API, {"email": "ADA@EXAMPLE.COM"}, format="json").status_code == 429
        assert api.post(LOOKUP_API, {"email": "grace@example.com"}, format="json").status_code == 202
        assert len(lookup_rows()) == 4

    def test_ten_an_hour_per_client(self, api, limits):
        codes = [api.post(LOOKUP_API, {"email": f"p{i}@example.com"}, format="json").status_code for i in range(11)]
        assert codes == [202] * 10 + [429]
        other_client = Client(REMOTE_ADDR="10.9.8.7")
        assert other_client.post(FIND_URL, {"email": "p99@example.com"}).status_code == 302
        assert len(lookup_rows()) == 11

    def test_the_page_says_clearly_why_and_when_to_come_back(self, client, limits):
        for _ in range(3):
            assert client.post(FIND_URL, {"email": "ada@example.com"}).status_code == 302
        refused = client.post(FIND_URL, {"email": "ada@example.com"})
        assert refused.status_code == 429
        body = refused.content.decode()
        assert "Please try again later" in body
        minutes = int(re.search(r"Please try again in about (\d+) minutes?\.", body).group(1))
        assert abs(minutes * 60 - int(refused["Retry-After"])) <= 60
        assert len(lookup_rows()) == 3


# --- the confirmation again ---------------------------------------------------------------------------------------


def resend_url(order: Order) -> str:
    return f"/orders/{order.code}/{order.secret}/confirmation/"


def page_url(order: Order) -> str:
    return f"/orders/{order.code}/{order.secret}/"


class TestResend:
    def test_queues_the_confirmation_to_the_orders_own_address(self, client, ticket_type):
        order = place_order((ticket_type, 2), email="ada@example.com")
        send_all()
        mail.outbox.clear()

        response = client.post(resend_url(order), {"email": "mallory@example.com"}, follow=True)

        assert response.status_code == 200
        assert "We are sending your confirmation again" in response.content.decode()
        assert send_all().sent == 1
        (message,) = mail.outbox
        assert message.to == ["ada@example.com"]
        assert message.subject.startswith("Your tickets for")
        names = [name for name, _, _ in message.attachments]
        assert names == [f"tickets-{order.code}.pdf", f"events-{order.code}.ics"]

    @pytest.mark.parametrize("status", [Order.Status.PENDING, Order.Status.CANCELLED])
    def test_an_order_without_a_confirmation_is_409(self, client, now, status):
        order = bare_order("ada@example.com", status=status, created_at=now)
        with pytest.raises(ConfirmationUnavailableError):
            selfservice.order_confirmation_resend(order_id=order.pk, now=now)
        response = client.post(resend_url(order))
        assert response.status_code == 409
        assert "there is no confirmation to send" in response.content.decode()
        assert not OutboundEmail.objects.filter(order=order).exists()

    def test_a_wrong_link_is_404(self, client, ticket_type):
        order = place_order((ticket_type, 1))
        assert client.post(f"/orders/{order.code}/{'x' * 32}/confirmation/").status_code == 404
        assert client.get(resend_url(order)).status_code == 405

    def test_three_an_hour_per_order(self, client, ticket_type, limits):
        order, other = place_order((ticket_type, 1)), place_order((ticket_type, 1), email="grace@example.com")
        codes = [client.post(resend_url(order)).status_code for _ in range(4)]
        assert codes == [302, 302, 302, 429]
        assert "Please try again later" in client.post(resend_url(order)).content.decode()
        assert client.post(resend_url(other)).status_code == 302
        assert OutboundEmail.objects.filter(order=order, kind=OutboundEmail.Kind.ORDER_CONFIRMATION).count() == 1 + 3

    def test_someone_who_knows_only_the_code_cannot_use_up_the_buyers_resends(self, client, ticket_type, limits):
        order = place_order((ticket_type, 1))
        wrong = f"/orders/{order.code}/{'x' * 32}/confirmation/"
        assert [Client().post(wrong).status_code for _ in range(3)] == [404] * 3
        assert [client.post(resend_url(order)).status_code for _ in range(3)] == [302] * 3

    def test_ten_an_hour_per_client(self, client, limits):
        ticket_type = TicketTypeFactory(capacity=20)
        orders = [place_order((ticket_type, 1)) for _ in range(11)]
        codes = [client.post(resend_url(order)).status_code for order in orders]
        assert codes == [302] * 10 + [429]


# --- add to calendar ------------------------------------------------------------------------------------------


class TestCalendar:
    def _event(self) -> Event:
        starts = datetime(2027, 3, 5, 19, 30, tzinfo=timezone.get_current_timezone())
        return EventFactory(
            name="Aurora Quartet",
            slug="aurora-quartet",
            venue="Pierre Boulez Saal",
            city="Berlin",
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
        )

    def test_the_event_file_parses_back_with_its_times_place_and_link(self, client, settings):
        event = self._event()
        response = client.get("/events/aurora-quartet/event.ics")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/calendar; charset=utf-8"
        (entry,) = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
        assert entry.decoded("dtstart") == event.starts_at
        assert entry.decoded("dtend") == event.ends_at
        assert str(entry.decoded("dtstart").tzinfo) == settings.TIME_ZONE
        assert entry.decoded("dtstart").hour == 19  # local time, with its zone
        assert str(entry["summary"]) == "Aurora Quartet"
        assert str(entry["location"]) == "Pierre Boulez Saal, Berlin"
        assert str(entry["url"]) == settings.SITE_URL.rstrip("/") + "/events/aurora-quartet/"
        assert str(entry["uid"]) == event_uid(event)
        assert b"BEGIN:VTIMEZONE" in response.content

    def test_the_uid_stays_when_the_event_changes(self, client, settings):
        settings.SITE_URL = "https://shop.example"
        event = self._event()
        first = icalendar.Calendar.from_ical(client.get("/events/aurora-quartet/event.ics").content)
        Event.objects.filter(pk=event.pk).update(
            name="Aurora Quartet (moved)", starts_at=event.starts_at - timedelta(days=1)
        )
        second = icalendar.Calendar.from_ical(client.get("/events/aurora-quartet/event.ics").content)
        uids = [str(cal.walk("VEVENT")[0]["uid"]) for cal in (first, second)]
        assert uids[0] == uids[1] == f"event-{event.pk}@shop.example"
        assert str(second.walk("VEVENT")[0]["summary"]) == "Aurora Quartet (moved)"

    def test_an_unpublished_event_has_none(self, client):
        EventFactory(slug="secret-gig", is_published=False)
        assert client.get("/events/secret-gig/event.ics").status_code == 404

    def test_the_event_and_order_pages_link_to_it(self, client):
        ticket_type = TicketTypeFactory(event=self._event())
        order = place_order((ticket_type, 1))
        link = 'href="/events/aurora-quartet/event.ics"'
        assert link in client.get("/events/aurora-quartet/").content.decode()
        assert link in client.get(page_url(order)).content.decode()

    def test_the_confirmation_carries_the_orders_events(self, ticket_type):
        other = TicketTypeFactory(event=self._event())
        order = place_order((ticket_type, 1), (other, 1))
        send_all()
        (message,) = mail.outbox
        name, content, mimetype = message.attachments[1]
        assert (name, mimetype) == (f"events-{order.code}.ics", "text/calendar")
        summaries = [str(entry["summary"]) for entry in icalendar.Calendar.from_ical(content).walk("VEVENT")]
        assert summaries == [ticket_type.event.name, "Aurora Quartet"]


# --- attendee names -------------------------------------------------------------------------------------------


@pytest.fixture
def named(now):  # type: ignore[no-untyped-def]
    """A conference that prints names on badges, whose buyers may change them for a week."""
    event = EventFactory(
        name="PyCon Kraków", attendee_data=Event.AttendeeData.NAME, attendee_changes_until=now + timedelta(days=7)
    )
    return TicketTypeFactory(event=event, name="Conference", capacity=20)


def named_order(ticket_type, *names: str, email: str = "ada@example.com") -> Order:  # type: ignore[no-untyped-def]
    now = timezone.now()
    token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=len(names), now=now).token
    attendees = [Attendee(ticket_type.pk, name) for name in names]
    return checkout.order_place(
        token=token, name="Ada Lovelace", email=email, payment_method="test", now=now, attendees=attendees
    ).order


def names_of(order: Order) -> list[str]:
    return list(order.tickets.order_by("pk").values_list("attendee_name", flat=True))


class TestRenameService:
    def test_changes_the_names_given_and_keeps_the_others(self, named, now):
        order = named_order(named, "Grace Hopper", "Alan Turing")
        first = order.tickets.order_by("pk").first()
        changed = selfservice.tickets_rename(order_id=order.pk, names={first.code: "  Katherine Johnson "}, now=now)
        assert [ticket.code for ticket in changed] == [first.code]
        assert names_of(order) == ["Katherine Johnson", "Alan Turing"]

    @pytest.mark.parametrize(
        "until", [timedelta(seconds=0), -timedelta(minutes=1), None], ids=["at the deadline", "after", "not allowed"]
    )
    def test_closed_after_the_deadline_or_when_not_allowed(self, named, now, until):
        order = named_order(named, "Grace Hopper")
        Event.objects.filter(pk=named.event_id).update(attendee_changes_until=None if until is None else now + until)
        code = order.tickets.get().code
        with pytest.raises(AttendeeChangesClosedError) as refused:
            selfservice.tickets_rename(order_id=order.pk, names={code: "Alan Turing"}, now=now)
        assert refused.value.code == "attendee_changes_closed"
        assert refused.value.extra == {"tickets": [code]}
        assert names_of(order) == ["Grace Hopper"]

    @pytest.mark.parametrize("name", ["", "   ", "x" * 201])
    def test_a_name_checkout_would_refuse_is_400_and_nothing_changes(self, named, now, name):
        order = named_order(named, "Grace Hopper", "Alan Turing")
        first, second = order.tickets.order_by("pk")
        with pytest.raises(ValidationFailedError) as refused:
            selfservice.tickets_rename(order_id=order.pk, names={first.code: "Ada", second.code: name}, now=now)
        assert list(refused.value.errors) == [f"name_{second.code}"]
        assert names_of(order) == ["Grace Hopper", "Alan Turing"]

    def test_never_another_orders_tickets(self, named, now):
        order = named_order(named, "Grace Hopper")
        other = named_order(named, "Alan Turing", email="alan@example.com")
        theirs = other.tickets.get().code
        with pytest.raises(ValidationFailedError) as refused:
            selfservice.tickets_rename(
                order_id=order.pk, names={order.tickets.get().code: "Ada", theirs: "Mallory"}, now=now
            )
        assert refused.value.errors == {"tickets": [f"Not tickets of this order: {theirs}."]}
        assert names_of(order) == ["Grace Hopper"]
        assert names_of(other) == ["Alan Turing"]

    def test_not_a_cancelled_ticket_nor_an_unnamed_event(self, named, ticket_type, now):
        order = named_order(named, "Grace Hopper", "Alan Turing")
        first = order.tickets.order_by("pk").first()
        Ticket.objects.filter(pk=first.pk).update(cancelled_at=now)
        with pytest.raises(AttendeeChangesClosedError):
            selfservice.tickets_rename(order_id=order.pk, names={first.code: "Ada"}, now=now)
        Event.objects.filter(pk=ticket_type.event_id).update(attendee_changes_until=now + timedelta(days=1))
        unnamed = place_order((ticket_type, 1))
        with pytest.raises(AttendeeChangesClosedError):
            selfservice.tickets_rename(order_id=unnamed.pk, names={unnamed.tickets.get().code: "Ada"}, now=now)

    def test_the_tickets_pdf_shows_the_new_name(self, client, named, now):
        order = named_order(named, "Grace Hopper")
        selfservice.tickets_rename(order_id=order.pk, names={order.tickets.get().code: "Katherine Johnson"}, now=now)
        pdf = client.get(f"/orders/{order.code}/{order.secret}/tickets.pdf").content
        text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
        assert "Name: Katherine Johnson" in text
        assert "Grace Hopper" not in text


class TestRenamePage:
    def names_url(self, order: Order) -> str:
        return f"/orders/{order.code}/{order.secret}/names/"

    def test_the_order_page_offers_the_form_and_saves_it(self, client, named):
        order = named_order(named, "Grace Hopper", "Alan Turing")
        first, second = order.tickets.order_by("pk")
        page = client.get(page_url(order)).content.decode()
        assert "Change the names on your tickets" in page
        assert f'name="name_{first.code}" value="Grace Hopper"' in page

        response = client.post(
            self.names_url(order), {f"name_{first.code}": "Katherine Johnson", f"name_{second.code}": "Alan Turing"}
        )

        assert (response.status_code, response["Location"]) == (302, page_url(order))
        assert names_of(order) == ["Katherine Johnson", "Alan Turing"]
        assert "For Katherine Johnson" in client.get(page_url(order)).content.decode()

    def test_a_blank_name_is_shown_next_to_its_field(self, client, named):
        order = named_order(named, "Grace Hopper")
        code = order.tickets.get().code
        response = client.post(self.names_url(order), {f"name_{code}": " "})
        assert response.status_code == 400
        body = response.content.decode()
        assert f'id="id_name_{code}-errors"' in body
        assert names_of(order) == ["Grace Hopper"]

    def test_after_the_deadline_the_page_says_why(self, client, named, now):
        order = named_order(named, "Grace Hopper")
        code = order.tickets.get().code
        Event.objects.filter(pk=named.event_id).update(attendee_changes_until=now - timedelta(minutes=1))

        page = client.get(page_url(order)).content.decode()
        assert "Change the names on your tickets" not in page
        assert "could be changed until" in page

        response = client.post(self.names_url(order), {f"name_{code}": "Alan Turing"})
        assert response.status_code == 409
        assert "can no longer be changed here" in response.content.decode()
        assert names_of(order) == ["Grace Hopper"]

    def test_the_order_page_still_runs_one_query(self, named, django_assert_num_queries):
        order = named_order(named, "Grace Hopper", "Alan Turing")
        with django_assert_num_queries(1):
            body = Client().get(page_url(order)).content.decode()
        assert "Change the names on your tickets" in body
        assert "Email my confirmation again" in body
        assert "Add to calendar" in body


# --- the organizer sets the deadline --------------------------------------------------------------------------


def test_the_organizer_api_sets_the_deadline(staff_api, named, now):
    until = (now + timedelta(days=3)).isoformat()
    response = staff_api.patch(f"/api/events/{named.event_id}", {"attendee_changes_until": until}, format="json")
    assert response.status_code == 200
    assert response.json()["attendee_changes_until"] is not None
    assert Event.objects.get(pk=named.event_id).attendee_changes_until == now + timedelta(days=3)
    cleared = staff_api.patch(f"/api/events/{named.event_id}", {"attendee_changes_until": None}, format="json")
    assert cleared.json()["attendee_changes_until"] is None


def test_the_admin_edits_the_deadline(admin_client, named):
    page = admin_client.get(reverse("admin:events_event_change", args=[named.event_id])).content.decode()
    assert 'name="attendee_changes_until_0"' in page
