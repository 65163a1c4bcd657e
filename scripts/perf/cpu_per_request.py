"""CPU time per request of the shop's hot paths, in one process, with production settings on PostgreSQL.

    python -m scripts.perf.cpu_per_request [--requests 300] [--rounds 5] [--profile KIND [--dump FILE]]

No server, no load generator, no other process's noise: each request goes through the whole Django stack
(middleware, DRF, services, the ORM, psycopg) with Django's test client, and `time.process_time` counts this
process's CPU only (PostgreSQL's share is not in it). A before/after of a change to the write path is
measured with it (docs/performance.md); `--profile` prints a cProfile of one request type, CPU clock.

Each kind is measured in `--rounds` rounds of `--requests` requests, the kinds taking turns, and the fastest
round counts (as `timeit` takes its best): on a shared machine another process's work slows a round down and
never speeds one up. The median round is printed beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from scripts.lib import postgres
from scripts.lib.serve import app_env, prepare_database
from scripts.lib.source import CURRENT

# --profile's choices: the kinds below by a short name
PROFILED = {
    "add": "POST /api/basket, a new basket",
    "checkout": "POST /api/checkout, 1 ticket",
    "sold-out": "POST /api/basket, sold out",
    "event-page": "GET /events/<slug>/, first visit",
    "home": "GET /",
    "html-order": "HTML order, 6 requests (below)",
}


def expect(response: Any, status: int) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"expected {status}, got {response.status_code}: {response.content[:300]!r}")
    return response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per kind and round (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the fastest counts (default 5)")
    parser.add_argument("--profile", choices=list(PROFILED), help="cProfile one kind (CPU clock)")
    parser.add_argument("--dump", help="with --profile: also write the raw profile here (pstats, snakeviz)")
    args = parser.parse_args()
    env = app_env(postgres.url("aegistickets_cpu"))
    prepare_database(CURRENT, env, seed=False)  # collectstatic too: the pages name their files through its manifest
    os.environ.update(env)
    # As under gunicorn (gunicorn.conf.py): prometheus_client in multiprocess mode, each update a write to a
    # file in this directory. It must be set before prometheus_client is first imported.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="aegis-cpu-metrics-"))

    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.utils import timezone

    from events.models import Event, TicketType

    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client()
    starts = timezone.now() + timedelta(days=30)
    event = Event.objects.create(
        name="CPU",
        slug=f"cpu-{secrets.token_hex(4)}",
        venue="Hall",
        city="Town",
        starts_at=starts,
        ends_at=starts + timedelta(hours=3),
        is_published=True,
    )
    plenty = TicketType.objects.create(event=event, name="Plenty", price="10.00", capacity=10**6, max_per_order=4)
    gone = TicketType.objects.create(event=event, name="Gone", price="10.00", capacity=1, max_per_order=4)

    def add(ticket_type_id: int) -> Any:
        body = json.dumps({"ticket_type_id": ticket_type_id, "quantity": 1})
        return client.post("/api/basket", body, content_type="application/json")

    expect(add(gone.pk), 201)  # the last seat: every later add is answered "sold out"
    tokens: list[str] = []

    def add_ok() -> None:
        tokens.append(expect(add(plenty.pk), 201).json()["token"])

    def checkout() -> None:
        body = {"basket": tokens.pop(), "name": "Cpu Buyer", "email": "cpu@example.com", "payment_method": "test"}
        response = client.post(
            "/api/checkout", json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
        )
        expect(response, 201)

    def sold_out() -> None:
        expect(add(gone.pk), 409)

    browser = Client()  # catalog reads: a visitor of its own, whose cookies a kind may clear

    def page(path: str, *, csrf_cookie: bool) -> None:
        if not csrf_cookie:
            browser.cookies.clear()  # a first visit: the page's forms need a new CSRF token and cookie
        expect(browser.get(path), 200)

    kinds: dict[str, Callable[[], None]] = {
        "GET /healthz (the trivial view)": lambda: client.get("/healthz"),
        "GET /api/events": lambda: page("/api/events", csrf_cookie=True),
        "GET /api/events/{id}": lambda: page(f"/api/events/{event.pk}", csrf_cookie=True),
        "GET /": lambda: page("/", csrf_cookie=True),
        "GET /events/<slug>/, first visit": lambda: page(f"/events/{event.slug}/", csrf_cookie=False),
        "GET /events/<slug>/, CSRF cookie": lambda: page(f"/events/{event.slug}/", csrf_cookie=True),
        "POST /api/basket, sold out": sold_out,
        "POST /api/basket, a new basket": add_ok,
        "POST /api/checkout, 1 ticket": checkout,
    }
    shopper = Client(enforce_csrf_checks=True)  # the HTML purchase flow of locustfiles/html_flow.py
    html_cpu: dict[str, float] = {}  # this round's CPU of each step of the HTML order
    idempotency_key = re.compile(r'name="idempotency_key" value="([^"]+)"')
    form_action = re.compile(r'<form class="ticket-type__form" method="post" action="([^"]+)"')

    def html_order() -> None:
        """One order through the pages, each step's CPU added up under its name."""

        def step(name: str, send: Callable[[], Any], status: int) -> Any:
            started = time.process_time()
            response = expect(send(), status)
            html_cpu[name] = html_cpu.get(name, 0.0) + time.process_time() - started
            return response

        event_page = f"/events/{event.slug}/"
        shown = step("GET event page", lambda: shopper.get(event_page), 200).content.decode()
        token = shopper.cookies[settings.CSRF_COOKIE_NAME].value
        add_form = {"csrfmiddlewaretoken": token, "ticket_type": str(plenty.pk), "quantity": "1"}
        add_url = form_action.search(shown).group(1).split("#")[0]  # where the page's form posts, as a browser does
        step("POST event page (add)", lambda: shopper.post(add_url, add_form), 302)
        step("GET /basket/", lambda: shopper.get("/basket/"), 200)
        checkout_page = step("GET /checkout/", lambda: shopper.get("/checkout/"), 200)
        key = idempotency_key.search(checkout_page.content.decode())
        pay_form = {
            "csrfmiddlewaretoken": token,
            "idempotency_key": key.group(1) if key else "",
            "name": "Html Buyer",
            "email": "html@example.com",
            "payment_method": "test",
        }
        placed = step("POST /checkout/", lambda: shopper.post("/checkout/", pay_form), 302)
        step("GET order page", lambda: shopper.get(placed["Location"]), 200)

    kinds["HTML order, 6 requests (below)"] = html_order
    n, rounds = args.requests, args.rounds
    for _ in range(n * rounds + 1):
        add_ok()  # baskets for the checkouts below
    for request in kinds.values():
        request()  # first use (imports, caches) is not measured
    measured: dict[str, list[float]] = {name: [] for name in kinds}  # ms of CPU per request, one per round
    for _ in range(rounds):
        html_cpu.clear()
        for name, request in kinds.items():
            started = time.process_time()
            for _ in range(n):
                request()
            measured[name].append(1000 * (time.process_time() - started) / n)
        for name, seconds in html_cpu.items():
            measured.setdefault(f"  {name}", []).append(1000 * seconds / n)
    print(f"{'ms of CPU per request (per order for the HTML order)':54s} {'best':>6s} {'median':>7s}")
    for name, values in measured.items():
        print(f"{name:54s} {min(values):6.2f} {statistics.median(values):7.2f}", flush=True)
    if args.profile:
        request = kinds[PROFILED[args.profile]]
        if request is checkout:
            for _ in range(n):
                add_ok()
        profile = cProfile.Profile(time.process_time)
        profile.runcall(lambda: [request() for _ in range(n)])
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        if args.dump:
            profile.dump_stats(args.dump)


if __name__ == "__main__":
    main()
