"""The database crashes under a load of checkouts (`pg_ctl stop -m immediate`), stays down, then restarts.

During the outage every answer is a fast retryable 503 problem JSON, /readyz 503 and /healthz 200; after it the app
serves again by itself (no restart), and every shopper told "503, retry" retries with the same key: a request cut off
mid-commit may have placed its order, and the retry must return that one, never a second."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from scripts.chaos.pg import PrivatePostgres
from scripts.chaos.report import Report
from scripts.chaos.shop import CONNECT_TIMEOUT, Checkout, Shop, new_checkout, retryable_503, unexpected
from scripts.lib.http import Answer

SHOPPERS = 6


@dataclass
class Outage:
    """What happened around the crash: every answer, the probes, and when the database went and came back."""

    answers: list[Answer] = field(default_factory=list)
    probes: list[tuple[float, str, int]] = field(default_factory=list)
    went_down: float = 0.0
    came_back: float = 0.0
    recovered_at: float | None = None  # end of the first 201 after the restart

    def first_201_after_restart(self) -> float | None:
        done = [a.started + a.elapsed for a in list(self.answers) if a.started > self.came_back and a.status == 201]
        return min(done, default=None)


def crash_under_load(shop: Shop, pg: PrivatePostgres, ledger: list[Checkout], seconds: float) -> Outage:
    """Shoppers buy and probes poll while the database is down for `seconds`; load goes on until checkouts
    succeed again, then 3 s more."""
    ticket_type = shop.new_ticket_type("outage", capacity=100_000)
    outage, stop, lock = Outage(), threading.Event(), threading.Lock()

    def shopper() -> None:
        while not stop.is_set():
            added, token = shop.basket(ticket_type, 2)
            with lock:
                outage.answers.append(added)
            if token is None:
                time.sleep(0.05)
                continue
            attempt = new_checkout(token, 2)
            with lock:
                ledger.append(attempt)
            answer = shop.checkout(attempt)
            with lock:
                outage.answers.append(answer)

    def prober() -> None:
        while not stop.is_set():
            for path in ("/healthz", "/readyz"):
                answer = shop.call("GET", path)
                outage.probes.append((answer.started, path, answer.status))
            time.sleep(0.2)

    threads = [threading.Thread(target=shopper) for _ in range(SHOPPERS)] + [threading.Thread(target=prober)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    outage.went_down = time.monotonic()
    pg.stop("immediate")
    time.sleep(seconds)
    outage.came_back = time.monotonic()
    pg.start()
    deadline = time.monotonic() + 30
    while outage.recovered_at is None and time.monotonic() < deadline:
        outage.recovered_at = outage.first_201_after_restart()
        time.sleep(0.2)
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(60)
    return outage


def judge(outage: Outage, report: Report) -> None:
    fault, answers = "database down", outage.answers
    before = [a for a in answers if a.started + a.elapsed < outage.went_down]
    during = [a for a in answers if outage.went_down + 0.5 < a.started and a.started + a.elapsed < outage.came_back]
    around = [a for a in answers if a.started + a.elapsed >= outage.went_down]
    not_201 = unexpected(before, lambda a: a.status == 201)
    report.check(
        fault,
        "answers before the crash",
        "201 only",
        f"{len(before)} requests, {len(not_201)} not 201",
        bool(before) and not not_201,
    )
    bad = unexpected(around, lambda a: a.status in (200, 201) or retryable_503(a))
    report.check(
        fault,
        "every answer from the crash on",
        "201 or 503 problem JSON (service_unavailable/database_busy) + Retry-After",
        f"{len(around)} requests, {len(bad)} others {bad[:3]}",
        not bad,
    )
    slowest = max((a.elapsed for a in during), default=0.0)
    report.check(
        fault,
        "answer time while the database is down",
        f"≤ {CONNECT_TIMEOUT + 1} s each (connect_timeout {CONNECT_TIMEOUT} s)",
        f"{len(during)} requests, slowest {slowest:.2f} s",
        bool(during) and slowest <= CONNECT_TIMEOUT + 1,
    )
    down = [
        (path, status) for started, path, status in outage.probes if outage.went_down + 1 < started < outage.came_back
    ]
    readyz = {status for path, status in down if path == "/readyz"}
    healthz = {status for path, status in down if path == "/healthz"}
    observed = f"{sorted(readyz)} and {sorted(healthz)}"
    report.check(
        fault, "/readyz and /healthz during the outage", "503 and 200", observed, readyz == {503} and healthz == {200}
    )
    recovery = outage.recovered_at - outage.came_back if outage.recovered_at else None
    report.check(
        fault,
        "recovery after PostgreSQL restarts (no app restart)",
        "checkouts 201 again within 15 s",
        f"first 201 after {recovery:.1f} s" if recovery is not None else "never",
        recovery is not None and recovery <= 15,
    )
    report.figures["database_down"] = {
        "requests": len(answers),
        "before_outage": len(before),
        "during_outage": len(during),
        "outage_seconds": round(outage.came_back - outage.went_down, 1),
    }


def database_down(
    shop: Shop, pg: PrivatePostgres, report: Report, ledger: list[Checkout], seconds: float = 6.0
) -> None:
    judge(crash_under_load(shop, pg, ledger, seconds), report)
    ready = shop.call("GET", "/readyz").status
    report.check("database down", "/readyz after recovery", "200", ready, ready == 200)
    unanswered = [
        c for c in ledger if c.order_code is None and any(retryable_503(a) or a.status == 0 for a in c.answers)
    ]
    retried = [shop.checkout(c) for c in unanswered]
    report.check(
        "database down",
        "checkouts answered 503 (or cut off), retried with their key",
        "all 201 (placed now or replayed)",
        f"{len(retried)} retried, {sum(a.status == 201 for a in retried)} × 201",
        all(a.status == 201 for a in retried),
    )
