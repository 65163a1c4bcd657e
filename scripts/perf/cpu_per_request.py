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
import pstats
import re
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from scripts.perf.in_process import event_on_sale, set_up_django

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


class Shop:
    """An event with a ticket type of plenty and one sold out, and the requests measured against it."""

    IDEMPOTENCY_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
    ADD_FORM = re.compile(r'<form class="ticket-type__form" method="post" action="([^"]+)"')

    def __init__(self) -> None:
        from django.test import Client

        from events.models import TicketType

        self.event = event_on_sale("CPU")
        self.plenty = TicketType.objects.create(
            event=self.event, name="Plenty", price="10.00", capacity=10**6, max_per_order=4
        )
        self.gone = TicketType.objects.create(event=self.event, name="Gone", price="10.00", capacity=1, max_per_order=4)
        self.client = Client()  # the API's caller
        self.browser = Client()  # catalog reads: a visitor of its own, whose cookies a kind may clear
        self.shopper = Client(enforce_csrf_checks=True)  # the HTML purchase flow of locustfiles/html_flow.py
        self.tokens: list[str] = []  # baskets waiting for a checkout
        self.html_cpu: dict[str, float] = {}  # this round's CPU of each step of the HTML order
        expect(self.add(self.gone.pk), 201)  # the last seat: every later add is answered "sold out"

    def kinds(self) -> dict[str, Callable[[], Any]]:
        slug, pk = self.event.slug, self.event.pk
        return {
            "GET /healthz (the trivial view)": lambda: self.client.get("/healthz"),
            "GET /api/events": lambda: self.page("/api/events", csrf_cookie=True),
            "GET /api/events/{id}": lambda: self.page(f"/api/events/{pk}", csrf_cookie=True),
            "GET /": lambda: self.page("/", csrf_cookie=True),
            "GET /events/<slug>/, first visit": lambda: self.page(f"/events/{slug}/", csrf_cookie=False),
            "GET /events/<slug>/, CSRF cookie": lambda: self.page(f"/events/{slug}/", csrf_cookie=True),
            "POST /api/basket, sold out": self.sold_out,
            "POST /api/basket, a new basket": self.add_ok,
            "POST /api/checkout, 1 ticket": self.checkout,
            "HTML order, 6 requests (below)": self.html_order,
        }

    def add(self, ticket_type_id: int) -> Any:
        body = json.dumps({"ticket_type_id": ticket_type_id, "quantity": 1})
        return self.client.post("/api/basket", body, content_type="application/json")

    def add_ok(self) -> None:
        self.tokens.append(expect(self.add(self.plenty.pk), 201).json()["token"])

    def sold_out(self) -> None:
        expect(self.add(self.gone.pk), 409)

    def checkout(self) -> None:
        body = {"basket": self.tokens.pop(), "name": "Cpu Buyer", "email": "cpu@example.com", "payment_method": "test"}
        response = self.client.post(
            "/api/checkout", json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
        )
        expect(response, 201)

    def page(self, path: str, *, csrf_cookie: bool) -> None:
        if not csrf_cookie:
            self.browser.cookies.clear()  # a first visit: the page's forms need a new CSRF token and cookie
        expect(self.browser.get(path), 200)

    def step(self, name: str, send: Callable[[], Any], status: int) -> Any:
        """One request of the HTML order, its CPU added up under its name."""
        started = time.process_time()
        response = expect(send(), status)
        self.html_cpu[name] = self.html_cpu.get(name, 0.0) + time.process_time() - started
        return response

    def html_order(self) -> None:
        from django.conf import settings

        shopper, event_page = self.shopper, f"/events/{self.event.slug}/"
        shown = self.step("GET event page", lambda: shopper.get(event_page), 200).content.decode()
        token = shopper.cookies[settings.CSRF_COOKIE_NAME].value
        add_form = {"csrfmiddlewaretoken": token, "ticket_type": str(self.plenty.pk), "quantity": "1"}
        add_url = self.ADD_FORM.search(shown).group(1).split("#")[0]  # where the page's form posts, as a browser does
        self.step("POST event page (add)", lambda: shopper.post(add_url, add_form), 302)
        self.step("GET /basket/", lambda: shopper.get("/basket/"), 200)
        checkout_page = self.step("GET /checkout/", lambda: shopper.get("/checkout/"), 200)
        key = self.IDEMPOTENCY_KEY.search(checkout_page.content.decode())
        pay_form = {
            "csrfmiddlewaretoken": token,
            "idempotency_key": key.group(1) if key else "",
            "name": "Html Buyer",
            "email": "html@example.com",
            "payment_method": "test",
        }
        placed = self.step("POST /checkout/", lambda: shopper.post("/checkout/", pay_form), 302)
        self.step("GET order page", lambda: shopper.get(placed["Location"]), 200)


def measure(shop: Shop, kinds: dict[str, Callable[[], Any]], *, n: int, rounds: int) -> dict[str, list[float]]:
    """ms of CPU per request of each kind, one figure per round, the kinds taking turns within a round."""
    for _ in range(n * rounds + 1):
        shop.add_ok()  # baskets for the checkouts
    for request in kinds.values():
        request()  # first use (imports, caches) is not measured
    measured: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(rounds):
        shop.html_cpu.clear()
        for name, request in kinds.items():
            started = time.process_time()
            for _ in range(n):
                request()
            measured[name].append(1000 * (time.process_time() - started) / n)
        for name, seconds in shop.html_cpu.items():
            measured.setdefault(f"  {name}", []).append(1000 * seconds / n)
    return measured


def profile(shop: Shop, request: Callable[[], Any], *, n: int, dump: str | None) -> None:
    """A cProfile (CPU clock) of n requests of one kind, the 40 most expensive by cumulative time."""
    if request == shop.checkout:
        for _ in range(n):
            shop.add_ok()
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(lambda: [request() for _ in range(n)])
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    if dump:
        profiler.dump_stats(dump)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per kind and round (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the fastest counts (default 5)")
    parser.add_argument("--profile", choices=list(PROFILED), help="cProfile one kind (CPU clock)")
    parser.add_argument("--dump", help="with --profile: also write the raw profile here (pstats, snakeviz)")
    args = parser.parse_args()
    set_up_django("aegistickets_cpu")
    shop = Shop()
    kinds = shop.kinds()
    measured = measure(shop, kinds, n=args.requests, rounds=args.rounds)
    print(f"{'ms of CPU per request (per order for the HTML order)':54s} {'best':>6s} {'median':>7s}")
    for name, values in measured.items():
        print(f"{name:54s} {min(values):6.2f} {statistics.median(values):7.2f}", flush=True)
    if args.profile:
        profile(shop, kinds[PROFILED[args.profile]], n=args.requests, dump=args.dump)


if __name__ == "__main__":
    main()
