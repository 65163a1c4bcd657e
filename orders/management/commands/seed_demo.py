"""Demo catalog, real demo sales and a demo `admin` user. Idempotent: a second run changes nothing.

Events are looked up by slug; an event is filled (ticket types, sales) only in the run that creates it.
Sold seats are sold through the shop's own services (basket, then checkout with the `test` payment
method), so sold counters, orders, lines and tickets agree exactly as they would after real sales.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from aegistickets.errors import ApplicationError, ValidationFailedError
from events.models import Event, Organizer, TicketType
from events.services import VoucherSpec, event_create, event_update, ticket_type_create, vouchers_create
from orders.checkout import order_place
from orders.models import Order
from orders.outbox import outbox_discard
from orders.payments import payment_methods
from orders.services import basket_add

ADMIN_USERNAME = "admin"
DEMO_PAYMENT_METHOD = "test"


@dataclass(frozen=True)
class DemoTicketType:
    name: str
    price: str
    capacity: int
    description: str = ""
    max_per_order: int = 10
    sold: int = 0  # seats to sell through checkout when the event is created
    sale_starts_in: timedelta | None = None
    hidden: bool = False  # sold only with a voucher that names it


@dataclass(frozen=True)
class DemoVoucher:
    code: str
    discount_type: str
    value: str
    max_redemptions: int
    ticket_types: tuple[str, ...] = ()  # names of the event's ticket types; empty: all
    comment: str = ""


# Two organizers, so that the admin and the API show each one's staff only their own events.
DEMO_ORGANIZERS = {
    "nachtklang": "Nachtklang Konzerte",
    "web-craft": "Web Craft e.V.",
}


@dataclass(frozen=True)
class DemoEvent:
    slug: str
    name: str
    venue: str
    city: str
    description: str
    days_from_now: int
    starts_at_hour: int
    starts_at_minute: int
    duration: timedelta
    ticket_types: list[DemoTicketType] = field(default_factory=list)
    # Buyers may cancel their own tickets until this long before the start (None: they may not).
    buyer_cancellation_before: timedelta | None = None
    organizer: str = "nachtklang"  # a key of DEMO_ORGANIZERS
    vouchers: list[DemoVoucher] = field(default_factory=list)
    # Questions checkout asks about each ticket (events.services `questions` entries), set once the demo sales are
    # made, as an organizer adding them later would.
    questions: list[dict[str, Any]] = field(default_factory=list)


DEMO_EVENTS = [
    DemoEvent(
        slug="lena-hart-unplugged",
        name="Lena Hart — Unplugged",
        venue="Privatclub",
        city="Berlin",
        description=(
            "Songwriter Lena Hart plays her new album with just a guitar and a piano in Kreuzberg's "
            "smallest basement club. Fifty chairs, no phones on stage, one encore promised."
        ),
        days_from_now=3,
        starts_at_hour=20,
        starts_at_minute=0,
        duration=timedelta(hours=2, minutes=30),
        ticket_types=[
            # Nearly sold out: 3 of 50 seats left.
            DemoTicketType("Seated", "35.00", capacity=50, sold=47, description="Free seating, doors at 19:00."),
        ],
    ),
    DemoEvent(
        slug="harbour-sessions-nordic-jazz",
        name="Harbour Sessions: Nordic Jazz Night",
        venue="Fabrik",
        city="Hamburg",
        description=(
            "Three trios from Oslo, Copenhagen and Hamburg share one stage in Ottensen's old machine "
            "factory. Expect long improvisations and a late jam session."
        ),
        days_from_now=10,
        starts_at_hour=19,
        starts_at_minute=30,
        duration=timedelta(hours=4),
        buyer_cancellation_before=timedelta(days=2),
        ticket_types=[
            DemoTicketType("Standing", "29.00", capacity=250, sold=12, description="Ground floor, standing."),
            DemoTicketType("Seated", "49.00", capacity=120, sold=6, description="Gallery, numbered seats."),
            DemoTicketType(
                "VIP", "119.00", capacity=20, max_per_order=4, sold=2, description="Front tables, drinks included."
            ),
        ],
        vouchers=[DemoVoucher("HARBOUR10", "percent", "10", 100, comment="jazz club members")],
    ),
    DemoEvent(
        slug="midnight-owls-farewell-show",
        name="The Midnight Owls — Farewell Show",
        venue="Täubchenthal",
        city="Leipzig",
        description=(
            "After twelve years and four albums the Midnight Owls say goodbye with one last show in "
            "their home town. Support act: Paper Lanterns."
        ),
        days_from_now=14,
        starts_at_hour=20,
        starts_at_minute=0,
        duration=timedelta(hours=3),
        ticket_types=[
            # Sold out: every seat of every ticket type is sold.
            DemoTicketType("Standing", "32.00", capacity=60, sold=60),
            DemoTicketType("Balcony", "42.00", capacity=24, sold=24),
        ],
    ),
    DemoEvent(
        slug="web-craft-day-munich",
        name="Web Craft Day Munich",
        organizer="web-craft",
        questions=[
            {"text": "T-shirt size", "kind": "choice", "required": True, "options": ["S", "M", "L", "XL"]},
            {"text": "Dietary needs", "kind": "text"},
            {"text": "Joining the workshops?", "kind": "yes_no"},
        ],
        venue="Alte Kongresshalle",
        city="Munich",
        description=(
            "A one-day conference on building fast, accessible web shops: twelve talks, two workshops "
            "and a hallway track. Community tickets are free for students and open-source maintainers."
        ),
        days_from_now=21,
        starts_at_hour=9,
        starts_at_minute=0,
        duration=timedelta(hours=9),
        ticket_types=[
            DemoTicketType(
                "Community", "0.00", capacity=80, max_per_order=2, sold=5, description="Free; students and maintainers."
            ),
            DemoTicketType("Regular", "149.00", capacity=200, sold=8, description="Talks, workshops and lunch."),
            DemoTicketType("Supporter", "299.00", capacity=25, max_per_order=2, description="Funds ten free tickets."),
            DemoTicketType(
                "Speaker", "149.00", capacity=20, max_per_order=1, hidden=True, description="For our speakers."
            ),
        ],
        vouchers=[
            DemoVoucher("SPEAKERS", "price", "0", 20, ticket_types=("Speaker",), comment="speakers' invitation"),
            DemoVoucher("WEBCRAFT20", "percent", "20", 50, ticket_types=("Regular",), comment="newsletter"),
        ],
    ),
    DemoEvent(
        slug="rheinklang-open-air",
        name="Rheinklang Open Air",
        venue="Tanzbrunnen",
        city="Cologne",
        description=(
            "Two days of indie, electronica and brass on the Rhine bank, with the cathedral across the "
            "water. Ticket sales open soon."
        ),
        days_from_now=45,
        starts_at_hour=14,
        starts_at_minute=0,
        duration=timedelta(hours=33),
        ticket_types=[
            DemoTicketType("Day ticket", "49.00", capacity=3000, sale_starts_in=timedelta(days=2)),
            DemoTicketType("Weekend ticket", "89.00", capacity=2000, sale_starts_in=timedelta(days=2)),
            DemoTicketType("VIP weekend", "189.00", capacity=150, max_per_order=4, sale_starts_in=timedelta(days=2)),
        ],
    ),
]


@dataclass
class Sales:
    orders: int = 0
    tickets: int = 0
    order_ids: list[int] = field(default_factory=list)


class Command(BaseCommand):
    help = "Creates demo events with real sales and a demo `admin` superuser; running it again changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--admin-password",
            default=None,
            help="Password for a newly created `admin` user (default: $DEMO_ADMIN_PASSWORD, else generated).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        existing = set(
            Event.objects.filter(slug__in=[demo.slug for demo in DEMO_EVENTS]).values_list("slug", flat=True)
        )
        needs_sales = any(demo.slug not in existing and any(t.sold for t in demo.ticket_types) for demo in DEMO_EVENTS)
        if needs_sales and DEMO_PAYMENT_METHOD not in payment_methods():
            raise CommandError(
                f"seed_demo sells its demo seats with the `{DEMO_PAYMENT_METHOD}` payment method; "
                "add it to PAYMENT_METHODS."
            )

        created, present, sales = [], [], Sales()
        buyer = Order.objects.filter(email__startswith="demo-buyer").count()
        for demo in DEMO_EVENTS:
            if demo.slug in existing:
                present.append(demo.name)
                continue
            try:
                # One event at a time, all or nothing: a failed run leaves no half-sold event behind.
                with transaction.atomic():
                    event_sales = self._create_event(demo, now=now, first_buyer=buyer + 1)
                    # Demo buyers (example.com) get no confirmation emails: with `make run`'s console backend the
                    # email worker would print each one's PDF attachment to the terminal. Dropped from the outbox
                    # in the transaction that queued them, so no worker ever sees them.
                    outbox_discard(order_ids=event_sales.order_ids)
            except ValidationFailedError as error:
                if "slug" not in (error.errors or {}):
                    raise CommandError(f"Could not create {demo.name!r}: {error.detail} {error.errors}") from error
                present.append(demo.name)  # created by a concurrent run since we looked
                continue
            except ApplicationError as error:
                raise CommandError(f"Could not create {demo.name!r}: {error.detail}") from error
            buyer += event_sales.orders
            sales.orders += event_sales.orders
            sales.tickets += event_sales.tickets
            created.append(demo.name)
            self.stdout.write(
                f'Created "{demo.name}" ({demo.city}, in {demo.days_from_now} days): {len(demo.ticket_types)} '
                f"ticket type(s), {event_sales.tickets} seats sold in {event_sales.orders} orders."
            )
        for name in present:
            self.stdout.write(f'Already present: "{name}" (left unchanged).')

        self._ensure_admin(options["admin_password"])
        # The demo admin runs the first organizer's events: the organizer API's event creation (the load tests')
        # needs no organizer named for it.
        first = Organizer.objects.filter(slug=DEMO_EVENTS[0].organizer).first()
        if first is not None:
            first.members.add(
                get_user_model()._default_manager.get(**{get_user_model().USERNAME_FIELD: ADMIN_USERNAME})
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo events: {len(created)} created, {len(present)} already present; "
                f"{sales.orders} demo orders with {sales.tickets} tickets placed."
            )
        )

    def _create_event(self, demo: DemoEvent, *, now: datetime, first_buyer: int) -> Sales:
        local = timezone.localtime(now) + timedelta(days=demo.days_from_now)
        starts_at = local.replace(hour=demo.starts_at_hour, minute=demo.starts_at_minute, second=0, microsecond=0)
        organizer, _ = Organizer.objects.get_or_create(
            slug=demo.organizer, defaults={"name": DEMO_ORGANIZERS[demo.organizer]}
        )
        event = event_create(
            organizer=organizer,
            name=demo.name,
            slug=demo.slug,
            venue=demo.venue,
            city=demo.city,
            description=demo.description,
            starts_at=starts_at,
            ends_at=starts_at + demo.duration,
            is_published=True,
            buyer_cancellation_until=(
                starts_at - demo.buyer_cancellation_before if demo.buyer_cancellation_before else None
            ),
        )
        sales = Sales()
        for position, spec in enumerate(demo.ticket_types):
            ticket_type = ticket_type_create(
                event_id=event.pk,
                name=spec.name,
                description=spec.description,
                price=Decimal(spec.price),
                capacity=spec.capacity,
                max_per_order=spec.max_per_order,
                sale_starts_at=now + spec.sale_starts_in if spec.sale_starts_in else None,
                position=position,
                requires_voucher=spec.hidden,
            )
            self._sell(ticket_type, spec.sold, now=now, first_buyer=first_buyer + sales.orders, sales=sales)
        self._make_vouchers(demo, event)
        if demo.questions:
            event_update(event_id=event.pk, data={"questions": demo.questions})
        return sales

    def _make_vouchers(self, demo: DemoEvent, event: Event) -> None:
        names = dict(event.ticket_types.values_list("name", "pk"))
        for voucher in demo.vouchers:
            spec = VoucherSpec(
                discount_type=voucher.discount_type,
                value=Decimal(voucher.value),
                max_redemptions=voucher.max_redemptions,
                ticket_type_ids=tuple(names[name] for name in voucher.ticket_types),
                comment=voucher.comment,
            )
            vouchers_create(organizer=event.organizer, event=event, spec=spec, code=voucher.code)

    def _sell(self, ticket_type: TicketType, seats: int, *, now: datetime, first_buyer: int, sales: Sales) -> None:
        """Real checkouts of at most max_per_order seats each, like shoppers would make them."""
        buyer = first_buyer
        while seats > 0:
            quantity = min(seats, ticket_type.max_per_order)
            basket = basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=quantity, now=now)
            placed = order_place(
                token=basket.token,
                name=f"Demo Buyer {buyer}",
                email=f"demo-buyer{buyer}@example.com",
                payment_method=DEMO_PAYMENT_METHOD,
                now=now,
            )
            seats -= quantity
            buyer += 1
            sales.order_ids.append(placed.order.pk)
            sales.orders += 1
            sales.tickets += quantity

    def _ensure_admin(self, password: str | None) -> None:
        user_model = get_user_model()
        if user_model._default_manager.filter(**{user_model.USERNAME_FIELD: ADMIN_USERNAME}).exists():
            self.stdout.write(
                f"Admin user {ADMIN_USERNAME} already exists; its password is unchanged "
                f"(reset it with: python manage.py changepassword {ADMIN_USERNAME})."
            )
            return
        # Like createsuperuser's DJANGO_SUPERUSER_PASSWORD: a command-line default, not a setting.
        password = password or os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user_model._default_manager.create_superuser(
            **{user_model.USERNAME_FIELD: ADMIN_USERNAME}, email="admin@example.com", password=password
        )
        self.stdout.write(f"Admin: username {ADMIN_USERNAME}, password {password}")
