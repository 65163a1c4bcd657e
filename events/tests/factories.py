from datetime import timedelta
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from events.models import Event, Organizer, TicketType, Voucher


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")


class OrganizerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organizer
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Organizer {n}")
    slug = factory.Sequence(lambda n: f"organizer-{n}")


def main_organizer() -> Organizer:
    """The organizer a test's events belong to unless it says otherwise, and whose staff `organizer()` makes."""
    found, _ = Organizer.objects.get_or_create(slug="main", defaults={"name": "Main organizer"})
    return found


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    organizer = factory.LazyFunction(main_organizer)
    name = factory.Sequence(lambda n: f"Concert {n}")
    slug = factory.Sequence(lambda n: f"concert-{n}")
    description = "An evening of music."
    venue = "Philharmonie"
    city = "Berlin"
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    ends_at = factory.LazyAttribute(lambda e: e.starts_at + timedelta(hours=3))
    is_published = True


class TicketTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketType

    event = factory.SubFactory(EventFactory)
    name = factory.Sequence(lambda n: f"Standard {n}")
    price = Decimal("25.00")
    capacity = 100
    max_per_order = 10


class VoucherFactory(factory.django.DjangoModelFactory):
    """10 % off any ticket of the main organizer's events, five times."""

    class Meta:
        model = Voucher
        skip_postgeneration_save = True

    organizer = factory.LazyFunction(main_organizer)
    code = factory.Sequence(lambda n: f"SAVE{n:04d}")
    discount_type = Voucher.DiscountType.PERCENT
    value = Decimal("10")
    max_redemptions = 5


def organizer(*, refund: bool = False, of: Organizer | None = None) -> Any:
    """A staff user with the admin's rights on the shop's models (view, add, change, delete of events, ticket
    types, orders, …), as an organizer's role is set up in the admin, and a member of `of` (the main organizer
    unless given); with `refund`, also the right to cancel and refund orders, which moves money."""
    user = UserFactory(is_staff=True)
    (of or main_organizer()).members.add(user)
    rights = Permission.objects.filter(content_type__app_label__in=["events", "orders"])
    user.user_permissions.add(*(rights if refund else rights.exclude(codename="refund_order")))
    return user
