"""Prints an organizer API token for a user, and nothing else: `TOKEN=$(python manage.py create_api_token admin)`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Prints the API token of a staff user (creating it if needed); use it as `Authorization: Token <key>`. "
        "Only the key goes to stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--rotate", action="store_true", help="Delete the user's current token and print a new one."
        )
        parser.add_argument(
            "--allow-non-staff",
            action="store_true",
            help="Also issue a token to a non-staff user (the organizer API will still refuse it).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; token authentication would refuse it.")
        if not user.is_staff and not options["allow_non_staff"]:
            raise CommandError(
                f"User {username!r} is not staff, and the organizer API is staff-only. "
                "Make them staff, or pass --allow-non-staff."
            )
        with transaction.atomic():
            if options["rotate"]:
                Token.objects.filter(user=user).delete()
            token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
