"""Catalog: browsing shoppers on the four catalog reads, the way people browse (a think time between pages).

Each user: the home page → an event page → `GET /api/events` → `GET /api/events/{id}`, 0.5–1.5 s apart.
Shape: 10 s ramp to 50 users, 50 s at 50 (DURATION squeezes it, USERS changes the peak). Gates: the SLOs and
our target, p95 < 50 ms at 50 concurrent users, for every one of the four reads.

(`make bench` also measures the same reads closed-loop with wrk, 50 connections without think time, against a
trivial view: that is the throughput ratio, not this latency target.)

    locust -f locustfiles/catalog.py --headless --host http://127.0.0.1:8000
"""

from __future__ import annotations

import random

from common import EVENT_DETAIL, EVENT_PAGE, EVENTS_LIST, HOME_PAGE, check, expect_html, expect_json
from gates import Gate, error_pct, install_gate, p95_ms, slo_gates
from locust import FastHttpUser, between, task
from shapes import StagedShape


class Browser(FastHttpUser):
    wait_time = between(0.5, 1.5)

    @task
    def browse(self) -> None:
        with self.client.get("/", name=HOME_PAGE, catch_response=True) as response:
            expect_html(response, 200, "Upcoming events")
        self.wait()
        with self.client.get("/api/events", name=EVENTS_LIST, catch_response=True) as response:
            listing = expect_json(response, 200, "count", "events")
        if not listing or not listing["events"]:
            return
        event = random.choice(listing["events"])
        self.wait()
        with self.client.get(f"/events/{event['slug']}/", name=EVENT_PAGE, catch_response=True) as response:
            expect_html(response, 200, "Tickets")
        self.wait()
        with self.client.get(f"/api/events/{event['id']}", name=EVENT_DETAIL, catch_response=True) as response:
            detail = expect_json(response, 200, "id", "ticket_types")
            if detail is not None:
                check(response, detail["id"] == event["id"], "detail of another event")


class CatalogShape(StagedShape):
    stages = ((10, 50), (50, 50))


install_gate(
    "catalog",
    lambda: [
        *slo_gates(),
        Gate("p95 latency at 50 users", "TARGET_P95_MS", "<", 50, p95_ms(), "ms", kind="target", timing=True),
        *(
            Gate(f"p95 {name}", "TARGET_P95_MS", "<", 50, p95_ms(name), "ms", kind="target", timing=True)
            for name in (HOME_PAGE, EVENTS_LIST, EVENT_PAGE, EVENT_DETAIL)
        ),
        Gate("failed requests", "TARGET_ERROR_PCT", "<", 0.1, error_pct, "%", kind="target", timing=True),
    ],
)
