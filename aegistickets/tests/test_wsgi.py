"""The WSGI module each gunicorn worker imports at boot: warmed up, and without touching the database."""

import subprocess
import sys

from django.conf import settings


def test_a_worker_boots_warm_and_without_a_database_connection(tmp_path):
    probe = (
        "import re, aegistickets.wsgi\n"
        "from django.db import connections\n"
        "from django.core.validators import EmailValidator\n"
        "assert all(c.connection is None for c in connections.all(initialized_only=True)), 'connected at import'\n"
        "assert isinstance(EmailValidator.domain_regex._wrapped, re.Pattern), 'email regex not compiled'\n"
        "from django.urls import get_resolver\n"
        "assert get_resolver()._populated, 'URL resolver not populated'\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "aegistickets.settings.production",
        "DJANGO_ENV_FILE": "/nonexistent",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY * 2,
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none",  # nothing listens: any connection attempt fails
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed argv
        [sys.executable, "-c", probe], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
