"""Happy path: a shopper lists events, opens one, adds 2 tickets, checks out and opens the order page.

Think times: 1 s between steps, 2 s after checkout. Shape: 30 s ramp to 10 users, 1 min at 10, 30 s down
(DURATION squeezes it, USERS changes the peak). Every response is checked (status, JSON shape, the order
code present); a failed check is a failed request.

Gates: the SLOs (p95 < 800 ms, errors < 1 %, checks > 99 %) and our target at 10 users (p95 < 50 ms,
0 failed requests).

    locust -f locustfiles/happy_path.py --headless --host http://127.0.0.1:8000
"""

from __future__ import annotations

import random
from typing import Any

import gevent
from common import (
    BASKET_ADD,
    CATALOG,
    CHECKOUT,
    EVENT_DETAIL,
    EVENTS_LIST,
    ORDER_PAGE,
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
from gates import Gate, error_pct, install_gate, p95_ms, slo_gates
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from shapes import StagedShape

QUANTITY = 2


@events.test_start.add_listener
def _catalog(environment: Environment, **_kw: Any) -> None:
    prepare_catalog(environment.host or "")


class Shopper(FastHttpUser):
    wait_time = constant(1)  # think time before the next visit

    def think(self, seconds: float) -> None:
        gevent.sleep(seconds)

    @task
    def buy_tickets(self) -> None:
        event_id = self.pick_event()
        if event_id is None:
            return
        self.think(1)
        with self.client.get(f"/api/events/{event_id}", name=EVENT_DETAIL, catch_response=True) as response:
            event = expect_json(response, 200, "id", "ticket_types")
            if event is None:
                return
            if not check(response, event["id"] == event_id, "detail of another event"):
                return
            ticket_type = buyable_ticket_type(event, QUANTITY)
        if ticket_type is None:
            return  # sold out since the listing: nothing to buy on this visit
        self.think(1)
        with self.client.post(
            "/api/basket", json=basket_body(ticket_type["id"], QUANTITY), name=BASKET_ADD, catch_response=True
        ) as response:
            if expected_refusal(response):
                return
            basket = expect_json(response, 201, "token", "items", "total")
            if basket is None:
                return
            held = sum(i["quantity"] for i in basket["items"] if i["ticket_type_id"] == ticket_type["id"])
            if not check(response, held == QUANTITY, "basket does not hold the tickets added"):
                return
        self.think(1)
        with self.client.post(
            "/api/checkout",
            json=checkout_body(basket["token"]),
            headers=idempotency_headers(),
            name=CHECKOUT,
            catch_response=True,
        ) as response:
            body = expect_json(response, 201, "order")
            if body is None:
                return
            order = body["order"]
            if not check(response, bool(order.get("code")) and order.get("status") == "paid", "no paid order code"):
                return
            if not check(response, len(order.get("tickets", [])) == QUANTITY, "order lacks its tickets"):
                return
        self.think(2)
        with self.client.get(order["url"], name=ORDER_PAGE, catch_response=True) as response:
            expect_html(response, 200, order["code"])

    def pick_event(self) -> int | None:
        with self.client.get("/api/events", name=EVENTS_LIST, catch_response=True) as response:
            listing = expect_json(response, 200, "count", "events")
            if listing is None:
                return None
            shaped = all({"id", "slug", "available", "sold_out"} <= set(e) for e in listing["events"])
            if not check(response, shaped, "event without id/slug/available/sold_out"):
                return None
            choices = [e["id"] for e in listing["events"] if e["id"] in CATALOG.buyable_event_ids and not e["sold_out"]]
            if not check(response, bool(choices), "no event with tickets on sale in the listing"):
                return None
        return random.choice(choices)


class HappyPathShape(StagedShape):
    stages = ((30, 10), (60, 10), (30, 0))


install_gate(
    "happy_path",
    lambda: [
        *slo_gates(),
        Gate("p95 latency at 10 users", "TARGET_P95_MS", "<", 50, p95_ms(), "ms", kind="target", timing=True),
        Gate("error rate", "TARGET_ERROR_PCT", "<=", 0, error_pct, "%", kind="target", timing=True),
    ],
)
