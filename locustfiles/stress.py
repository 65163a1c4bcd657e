"""Stress: mostly reads (the event list, several event pages), 30 % of visits add to a basket, half of
those check out.

Shape: 1 min to 50 users, 3 min to 100, 2 min at 100, 1 min down (DURATION squeezes it, USERS changes the
peak). Gates: an outer limit this load must never cross (p95 < 1200 ms, failures < 5 %) and our targets beside it
(p95 < 200 ms, failures < 0.1 %).

    locust -f locustfiles/stress.py --headless --host http://127.0.0.1:8000
"""

from __future__ import annotations

import random
from typing import Any

from common import (
    BASKET_ADD,
    CATALOG,
    CHECKOUT,
    EVENT_DETAIL,
    EVENT_PAGE,
    EVENTS_LIST,
    HOME_PAGE,
    basket_body,
    buyable_ticket_type,
    check,
    checkout_body,
    expect_html,
    expect_json,
    expected_refusal,
    idempotency_headers,
    prepare_catalog,
)
from gates import Gate, checks_pct, error_pct, install_gate, integrity_gates, p95_ms
from locust import FastHttpUser, between, events, task
from locust.env import Environment
from shapes import StagedShape

ADD_SHARE = 0.30
CHECKOUT_SHARE = 0.5  # of the visits that added tickets


@events.test_start.add_listener
def _catalog(environment: Environment, **_kw: Any) -> None:
    prepare_catalog(environment.host or "")


class Visitor(FastHttpUser):
    wait_time = between(0.5, 1.5)

    @task
    def visit(self) -> None:
        listing = self.list_events()
        if not listing:
            return
        event = None
        for summary in random.sample(listing, k=min(len(listing), random.randint(2, 4))):
            event = self.event_detail(summary["id"]) or event
        if random.random() < 0.25:
            self.event_page(random.choice(listing)["slug"])
        if random.random() >= ADD_SHARE:
            return
        buyable = [e for e in listing if e["id"] in CATALOG.buyable_event_ids and not e["sold_out"]]
        if not buyable:
            return
        event = self.event_detail(random.choice(buyable)["id"])
        quantity = random.randint(1, 2)
        ticket_type = buyable_ticket_type(event, quantity) if event else None
        if ticket_type is None:
            return
        token = self.add(ticket_type["id"], quantity)
        if token and random.random() < CHECKOUT_SHARE:
            self.checkout(token, quantity)

    def list_events(self) -> list[dict[str, Any]] | None:
        with self.client.get("/api/events", name=EVENTS_LIST, catch_response=True) as response:
            body = expect_json(response, 200, "count", "events")
            return body["events"] if body is not None else None

    def event_detail(self, event_id: int) -> dict[str, Any] | None:
        with self.client.get(f"/api/events/{event_id}", name=EVENT_DETAIL, catch_response=True) as response:
            event = expect_json(response, 200, "id", "ticket_types")
            if event is not None and not check(response, event["id"] == event_id, "detail of another event"):
                return None
            return event

    def event_page(self, slug: str) -> None:
        with self.client.get(f"/events/{slug}/", name=EVENT_PAGE, catch_response=True) as response:
            expect_html(response, 200, "Tickets")
        if random.random() < 0.3:
            with self.client.get("/", name=HOME_PAGE, catch_response=True) as response:
                expect_html(response, 200, "Upcoming events")

    def add(self, ticket_type_id: int, quantity: int) -> str | None:
        with self.client.post(
            "/api/basket", json=basket_body(ticket_type_id, quantity), name=BASKET_ADD, catch_response=True
        ) as response:
            if expected_refusal(response):
                return None
            basket = expect_json(response, 201, "token", "items")
            return basket["token"] if basket else None

    def checkout(self, token: str, quantity: int) -> None:
        with self.client.post(
            "/api/checkout",
            json=checkout_body(token),
            headers=idempotency_headers(),
            name=CHECKOUT,
            catch_response=True,
        ) as response:
            body = expect_json(response, 201, "order")
            if body is not None:
                order = body["order"]
                check(response, len(order.get("tickets", [])) == quantity and bool(order.get("code")), "bad order")


class StressShape(StagedShape):
    stages = ((60, 50), (180, 100), (120, 100), (60, 0))


install_gate(
    "stress",
    lambda: [
        Gate("p95 latency, outer limit", "SLO_P95_MS", "<", 1200, p95_ms(), "ms", timing=True),
        Gate("failed requests, outer limit", "SLO_ERROR_PCT", "<", 5.0, error_pct, "%", timing=True),
        Gate("checks passed", "SLO_CHECKS_PCT", ">", 99.0, checks_pct, "%", timing=True),
        Gate("p95 latency at 100 users", "TARGET_P95_MS", "<", 200, p95_ms(), "ms", kind="target", timing=True),
        Gate("failed requests", "TARGET_ERROR_PCT", "<", 0.1, error_pct, "%", kind="target", timing=True),
        *integrity_gates(),
    ],
)
