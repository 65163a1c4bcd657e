"""The setting the in-process measurements share (cpu_per_request, library_costs): Django with production settings
on a fresh PostgreSQL database, prometheus_client in multiprocess mode as under gunicorn, and an event on sale."""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import timedelta
from typing import Any

from scripts.lib import postgres
from scripts.lib.serve import app_env, prepare_database
from scripts.lib.source import CURRENT


def set_up_django(database: str) -> None:
    """Django on a fresh database called `database`. prometheus_client writes every update to a file, as under
    gunicorn (gunicorn.conf.py); its directory must be set before prometheus_client is first imported."""
    env = app_env(postgres.url(database))
    prepare_database(CURRENT, env, seed=False)  # collectstatic too: the pages name their files through its manifest
    os.environ.update(env)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix=f"{database}-metrics-"))

    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]


def event_on_sale(name: str) -> Any:
    """A published event a month ahead, with no ticket types yet."""
    from django.utils import timezone

    from events.models import Event, Organizer

    starts = timezone.now() + timedelta(days=30)
    organizer, _ = Organizer.objects.get_or_create(slug="bench", defaults={"name": "Benchmark organizer"})
    return Event.objects.create(
        organizer=organizer,
        name=name,
        slug=f"{name.lower()}-{secrets.token_hex(4)}",
        venue="Hall",
        city="Town",
        starts_at=starts,
        ends_at=starts + timedelta(hours=3),
        is_published=True,
    )
