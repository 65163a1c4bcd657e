"""WSGI entry point: gunicorn serves `aegistickets.wsgi:application`.

Each gunicorn worker imports it as it boots, before it accepts a connection, so what `warm_up` does here is paid
then, not by the first shoppers every new or recycled worker serves (lazy imports and regexes compiled on first
use are a visible share of fresh workers' time in an on-sale rush: docs/performance.md). Not `preload_app`: the
app's import creates Prometheus' multiprocess files, whose directory gunicorn.conf.py prepares only after a
preloaded app would have been imported.
"""

import contextlib
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegistickets.settings.production")

application = get_wsgi_application()


# The hot paths' URLs; each resolves (aegistickets/tests/test_wsgi.py).
WARM_PATHS = ("/", "/api/events", "/api/basket", "/api/checkout", "/checkout/", "/basket/")


def warm_up() -> None:
    """First-use costs of the shop's hot paths, none of which touches the database or the network: the URL
    resolver (every URLconf, view and serializer module imported, every route's regex compiled, reverse()'s
    tables) and Django's email validator (its domain regex takes ~50 ms of CPU to compile; every checkout runs it).
    """
    from django.core.validators import EmailValidator
    from django.urls import Resolver404, get_resolver

    EmailValidator()("warm-up@example.com")
    resolver = get_resolver()
    resolver.reverse_dict  # noqa: B018 - builds reverse()'s tables (a checkout answer links to its order page)
    for path in WARM_PATHS:
        with contextlib.suppress(Resolver404):  # a route renamed: nothing to warm (the test says so)
            resolver.resolve(path)


warm_up()
