"""Known traffic for the monitoring check: every request counted by the status it got, so the metrics can be
compared with what was really sent."""

from __future__ import annotations

import collections
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scripts.lib.http import Answer, request

UNTRACKED_PATHS = {"/healthz", "/readyz", "/metrics"}  # the app does not count probes and scrapes as traffic


class TrafficError(AssertionError):
    pass


class Traffic:
    """Sends requests to the app and counts what it sent by status, except the untracked paths."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.by_status: collections.Counter[str] = collections.Counter()
        self.untracked = 0
        self._lock = threading.Lock()

    def send(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        answer = request(method, self.base + path, body, headers, timeout=10)
        with self._lock:
            if urllib.parse.urlsplit(path).path in UNTRACKED_PATHS:
                self.untracked += 1
            else:
                self.by_status[str(answer.status)] += 1
        return answer

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def share_5xx(self, since: collections.Counter[str]) -> float:
        sent = self.by_status - since
        return sum(n for status, n in sent.items() if status.startswith("5")) / sum(sent.values())


def expect_status(answer: Answer, status: int, what: str) -> Any:
    if answer.status != status:
        raise TrafficError(f"{what}: {answer.status or answer.error} {answer.body}")
    return answer.body


def drive(traffic: Traffic, *, faults: int, rounds: int) -> dict[str, int]:
    """Known traffic from 6 threads (a new connection per request, so the workers share it): per round 8 listings,
    an event, a 404, a 400, two probes and a checkout or a sold-out refusal; then `faults` real 500s."""
    events = expect_status(traffic.send("GET", "/api/events"), 200, "GET /api/events")["events"]
    by_slug = {event["slug"]: event for event in events}
    jazz = traffic.send("GET", f"/api/events/{by_slug['harbour-sessions-nordic-jazz']['id']}").body
    owls = traffic.send("GET", f"/api/events/{by_slug['midnight-owls-farewell-show']['id']}").body
    standing = next(t for t in jazz["ticket_types"] if t["name"] == "Standing")
    sold_out = owls["ticket_types"][0]
    bought = {"orders": 0, "tickets": 0, "held": 0, "sold_out": 0, "ticket_type_id": standing["id"]}
    lock = threading.Lock()

    def checkout() -> None:
        added = traffic.send("POST", "/api/basket", {"ticket_type_id": standing["id"], "quantity": 2})
        basket = expect_status(added, 201, "basket add")
        body = {"basket": basket["token"], "name": "Monitoring Check", "email": "check@example.com"}
        key = {"Idempotency-Key": secrets.token_hex(16)}
        expect_status(traffic.send("POST", "/api/checkout", {**body, "payment_method": "test"}, key), 201, "checkout")
        with lock:
            bought["orders"] += 1
            bought["tickets"] += 2
            bought["held"] += 1

    def refused() -> None:
        answer = traffic.send("POST", "/api/basket", {"ticket_type_id": sold_out["id"], "quantity": 1})
        expect_status(answer, 409, "sold-out basket add")
        with lock:
            bought["sold_out"] += 1

    jobs: list[Callable[[], Any]] = []
    for i in range(rounds):
        jobs += [lambda: traffic.send("GET", "/api/events") for _ in range(8)]
        jobs += [lambda: traffic.send("GET", f"/api/events/{jazz['id']}")]
        jobs += [lambda: traffic.send("GET", "/api/events/999999999")]  # 404
        jobs += [lambda: traffic.send("POST", "/api/basket", {"quantity": "many"})]  # 400
        jobs += [lambda: traffic.send("GET", "/healthz"), lambda: traffic.send("GET", "/readyz")]  # untracked
        jobs += [checkout if i % 2 == 0 else refused]
    jobs += [lambda: traffic.send("GET", "/api/_fault") for _ in range(faults)]  # 500
    with ThreadPoolExecutor(max_workers=6) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()
    return bought
