"""The WSGI module each gunicorn worker imports at boot: warmed up, and without touching the database."""

import subprocess
import sys

from django.conf import settings


def test_a_worker_boots_warm_and_without_a_database_connection(tmp_path):
    probe = (
        "import django.core.validators as validators, django.urls.resolvers as resolvers\n"
        "calls = []\n"
        "check, resolve = validators.EmailValidator.__call__, resolvers.URLResolver.resolve\n"
        "validators.EmailValidator.__call__ = lambda self, value: calls.append('email') or check(self, value)\n"
        "resolvers.URLResolver.resolve = lambda self, path: calls.append(path) or resolve(self, path)\n"
        "import aegistickets.wsgi\n"
        "from django.db import connections\n"
        "assert all(c.connection is None for c in connections.all(initialized_only=True)), 'connected at import'\n"
        "assert 'email' in calls, 'email validator not warmed'\n"
        "assert set(aegistickets.wsgi.WARM_PATHS) <= set(calls), 'URL resolver not warmed'\n"
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


def test_every_warmed_path_is_a_route():
    from django.urls import resolve

    from aegistickets.wsgi import WARM_PATHS

    for path in WARM_PATHS:
        assert resolve(path).view_name
