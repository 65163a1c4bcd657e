"""`make chaos`: faults injected into a served shop, and the books checked afterwards. Loopback only, bounded.

The app runs under gunicorn (gunicorn.conf.py, 3 workers, worker recycling off so a leak would show) against
a PRIVATE PostgreSQL cluster (scripts/chaos/pg.py, port CHAOS_PG_PORT=55432) that this run may crash.

Faults, in this order:
1. slow database: another session holds the hot ticket type's row lock past `lock_timeout`: checkouts end in a
   retryable 503 `database_busy` with Retry-After, in time; nothing is written; the retry places one order.
2. worker killed: a checkout is held inside its transaction (order rows written, seat update waiting on a row
   lock); its gunicorn worker gets SIGKILL: no half-written order; the retry with the same Idempotency-Key
   places exactly one order; the master replaces the worker.
3. database down: PostgreSQL crashes (`pg_ctl stop -m immediate`) under a load of checkouts, stays down, then
   restarts: during the outage every answer is a fast 503 problem JSON, /readyz 503 and /healthz 200; after it
   the app serves again by itself (no restart); every 503'd checkout retried with its key.
4. soak: moderate load for SOAK seconds (60; `make chaos SOAK=600` for the documented 10 minutes): no 5xx,
   worker RSS flat.

Then the books, read straight from the database: every order a client got a 201 for exists exactly once with
all its tickets; no order without tickets; no order a client was not told about; one order per key at most;
sold = paid tickets ≤ capacity for every ticket type; no deadlock in the PostgreSQL log.

    python -m scripts.chaos.run [--soak SECONDS] [--only slow_db,worker_kill,db_down,soak]

Prints `fault | check | expected | observed | PASS/FAIL`, writes reports/chaos/summary.json, exits 1 on a FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from scripts.chaos.pg import PrivatePostgres, private_postgres
from scripts.perf.harness import ROOT, ServedApp, served_app

PORT = int(os.environ.get("CHAOS_PORT", "18450"))
PG_PORT = int(os.environ.get("CHAOS_PG_PORT", "55432"))
DATABASE = "aegistickets_chaos"
WORKERS = 3
CONNECT_TIMEOUT = 3  # DATABASE_CONNECT_TIMEOUT for the app: an outage must be answered within this (+ margin)
LOCK_TIMEOUT_S = 3  # the shop's default DATABASE_LOCK_TIMEOUT_MS


# --- a small HTTP client (stdlib: nothing to install, and one TCP connection per request like a browser retry) --


@dataclass
class Answer:
    method: str
    path: str
    status: int  # 0: no HTTP answer at all (connection reset, timeout)
    started: float
    elapsed: float
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    def is_problem(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/problem+json") and bool(self.code)


def call(base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)  # noqa: S310 - loopback URL
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    started = time.monotonic()
    status, raw, response_headers, error = 0, b"", {}, ""
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - loopback URL
            status, raw, response_headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as http_error:
        status, raw, response_headers = http_error.code, http_error.read(), dict(http_error.headers)
    except OSError as os_error:  # reset, refused, timeout: no HTTP answer
        error = f"{os_error.__class__.__name__}: {os_error}"
    elapsed = time.monotonic() - started
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    lowered = {key.lower(): value for key, value in response_headers.items()}
    return Answer(method, path, status, started, elapsed, parsed, lowered, error)


@dataclass
class Checkout:
    """One shopper's purchase attempt and what they were told, kept for the retries and the books."""

    key: str
    body: dict[str, Any]
    quantity: int
    answers: list[Answer] = field(default_factory=list)

    @property
    def order_code(self) -> str | None:
        for answer in self.answers:
            if answer.status == 201 and isinstance(answer.body, dict):
                return str(answer.body["order"]["code"])
        return None


class Shop:
    def __init__(self, app: ServedApp) -> None:
        self.app = app
        self.base = app.url
        self.auth = {"Authorization": f"Token {app.token}"}

    def organizer(self, method: str, path: str, body: Any = None) -> Any:
        answer = call(self.base, method, path, body, self.auth)
        if answer.status >= 400 or answer.status == 0:
            raise RuntimeError(f"{method} {path}: {answer.status} {answer.body or answer.error}")
        return answer.body

    def new_ticket_type(self, name: str, capacity: int) -> int:
        slug = f"chaos-{name}-{uuid.uuid4().hex[:8]}"
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        event = self.organizer(
            "POST",
            "/api/events",
            {
                "name": f"Chaos {name}",
                "slug": slug,
                "venue": "Fault Hall",
                "city": "Loopback",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=3)).isoformat(),
                "is_published": True,
            },
        )
        body = {"name": "Seat", "price": "25.00", "capacity": capacity, "max_per_order": 4}
        return int(self.organizer("POST", f"/api/events/{event['id']}/ticket-types", body)["id"])

    def basket(self, ticket_type_id: int, quantity: int) -> tuple[Answer, str | None]:
        answer = call(self.base, "POST", "/api/basket", {"ticket_type_id": ticket_type_id, "quantity": quantity})
        token = answer.body.get("token") if answer.status == 201 and isinstance(answer.body, dict) else None
        return answer, token

    def checkout(self, attempt: Checkout) -> Answer:
        answer = call(self.base, "POST", "/api/checkout", attempt.body, {"Idempotency-Key": attempt.key})
        attempt.answers.append(answer)
        return answer


def new_checkout(token: str, quantity: int) -> Checkout:
    buyer = uuid.uuid4().hex[:12]
    body = {"basket": token, "name": f"Chaos {buyer}", "email": f"chaos-{buyer}@example.com", "payment_method": "test"}
    return Checkout(key=str(uuid.uuid4()), body=body, quantity=quantity)


# --- results ---------------------------------------------------------------------------------------------------


@dataclass
class Result:
    fault: str
    check: str
    expected: str
    observed: str
    ok: bool


class Report:
    def __init__(self) -> None:
        self.results: list[Result] = []
        self.figures: dict[str, Any] = {}

    def check(self, fault: str, check: str, expected: str, observed: Any, ok: bool) -> None:
        self.results.append(Result(fault, check, expected, str(observed), bool(ok)))
        print(f"  [{'PASS' if ok else 'FAIL'}] {fault}: {check}: {observed} (expected {expected})", flush=True)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(result.ok for result in self.results)

    def table(self) -> str:
        rows = [("fault", "check", "expected", "observed", "result")]
        rows += [(r.fault, r.check, r.expected, r.observed, "PASS" if r.ok else "FAIL") for r in self.results]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
        lines.insert(1, "-+-".join("-" * width for width in widths))
        return "\n".join(lines)


def unexpected_answers(answers: list[Answer], allowed: Callable[[Answer], bool]) -> list[str]:
    return [f"{a.method} {a.path} → {a.status or a.error} {a.code or ''}".strip() for a in answers if not allowed(a)]


def retryable_503(answer: Answer) -> bool:
    return (
        answer.status == 503
        and answer.is_problem()
        and answer.code in {"service_unavailable", "database_busy"}
        and answer.headers.get("retry-after", "").isdigit()
    )


# --- helpers on the database and the processes ------------------------------------------------------------------


def sql(pg: PrivatePostgres, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg.url(DATABASE), autocommit=True, connect_timeout=5) as connection:
        return connection.execute(query, params).fetchall()  # type: ignore[arg-type]


class RowLock:
    """Another session (an organizer's long transaction, say) holds a ticket type's row lock until released."""

    def __init__(self, pg: PrivatePostgres, ticket_type_id: int) -> None:
        self.connection = psycopg.connect(pg.url(DATABASE), connect_timeout=5)
        self.connection.execute("SELECT id FROM events_tickettype WHERE id = %s FOR UPDATE", (ticket_type_id,))

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()


def worker_serving_backend(app: ServedApp, client_port: int) -> int | None:
    """The gunicorn worker whose PostgreSQL socket has this local port (from pg_stat_activity.client_port)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == client_port:
                inodes.add(fields[9])
    for pid in app.worker_pids():
        try:
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return pid
    return None


def process_alive(pid: int) -> bool:
    """Running (a dead child not yet reaped is a zombie: state Z)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


# --- the faults --------------------------------------------------------------------------------------------------


def slow_database(shop: Shop, pg: PrivatePostgres, report: Report, ledger: list[Checkout]) -> None:
    fault = "slow database"
    ticket_type = shop.new_ticket_type("slow", capacity=20)
    attempts = []
    # As many requests at once as there are workers (more would queue for a worker, not for the lock).
    for _ in range(WORKERS - 1):
        answer, token = shop.basket(ticket_type, 2)
        if token is None:
            raise RuntimeError(f"setup: basket add answered {answer.status} {answer.code}")
        attempts.append(new_checkout(token, 2))
    ledger.extend(attempts)
    lock = RowLock(pg, ticket_type)
    answers: list[Answer] = []
    try:
        threads = [threading.Thread(target=lambda a=a: answers.append(shop.checkout(a))) for a in attempts]
        # and one more shopper trying to add seats of the locked type
        adder: list[Answer] = []
        threads.append(threading.Thread(target=lambda: adder.append(shop.basket(ticket_type, 1)[0])))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        lock.release()
    every = answers + adder
    report.check(
        fault,
        f"{WORKERS - 1} checkouts + 1 basket add at once while the seat row is locked",
        "all 503 database_busy + Retry-After (problem JSON)",
        ", ".join(sorted({f"{a.status} {a.code}" for a in every})),
        len(every) == WORKERS and all(retryable_503(a) and a.code == "database_busy" for a in every),
    )
    slowest = max(a.elapsed for a in every)
    report.check(
        fault,
        "time to answer",
        # lock_timeout bounds each lock wait; a second waiter on one row waits for the first one's tuple lock, then
        # for the row itself: up to two waits.
        f"≤ {2 * LOCK_TIMEOUT_S + 1} s (2 × lock_timeout {LOCK_TIMEOUT_S} s), no hang",
        ", ".join(f"{a.path} {a.elapsed:.2f} s" for a in every),
        slowest <= 2 * LOCK_TIMEOUT_S + 1,
    )
    sold, orders = sql(
        pg,
        "SELECT t.sold, (SELECT count(*) FROM orders_orderline l WHERE l.ticket_type_id = t.id) "
        "FROM events_tickettype t WHERE t.id = %s",
        (ticket_type,),
    )[0]
    report.check(
        fault, "written while refused", "0 orders, 0 sold", f"{orders} orders, {sold} sold", (sold, orders) == (0, 0)
    )
    retried = [shop.checkout(a) for a in attempts]
    report.check(
        fault,
        "retry with the same Idempotency-Key after the lock is gone",
        f"{len(attempts)} × 201",
        ", ".join(str(a.status) for a in retried),
        all(a.status == 201 for a in retried),
    )


def worker_kill(shop: Shop, pg: PrivatePostgres, report: Report, ledger: list[Checkout]) -> None:
    fault = "worker SIGKILL"
    ticket_type = shop.new_ticket_type("kill", capacity=10)
    answer, token = shop.basket(ticket_type, 2)
    if token is None:
        raise RuntimeError(f"setup: basket add answered {answer.status} {answer.code}")
    attempt = new_checkout(token, 2)
    ledger.append(attempt)
    workers_before = set(shop.app.worker_pids())
    lock = RowLock(pg, ticket_type)
    victim = None
    try:
        thread = threading.Thread(target=shop.checkout, args=(attempt,))
        thread.start()
        # The checkout's transaction has written its order and waits for the seat row: find its backend.
        deadline = time.monotonic() + LOCK_TIMEOUT_S - 0.5
        client_port = None
        while time.monotonic() < deadline and client_port is None:
            rows = sql(
                pg,
                "SELECT client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query ILIKE 'UPDATE %%events_tickettype%%'",
            )
            client_port = rows[0][0] if rows else None
            time.sleep(0.02)
        if client_port is not None:
            victim = worker_serving_backend(shop.app, client_port)
        if victim is not None:
            os.kill(victim, signal.SIGKILL)
        thread.join(30)
    finally:
        lock.release()
    report.check(
        fault,
        "a checkout caught inside its transaction (order written, seat update waiting)",
        "its worker found and killed",
        f"worker {victim}" if victim else "not found",
        victim is not None,
    )
    first = attempt.answers[0] if attempt.answers else None
    report.check(
        fault,
        "what the killed request's client saw",
        "no HTTP answer (connection dropped)",
        (first.error[:60] or first.status) if first else "nothing",
        first is not None and first.status == 0,
    )
    time.sleep(1)  # the aborted transaction is gone once PostgreSQL reads the closed socket
    written = sql(
        pg,
        "SELECT count(*) FROM orders_orderline l WHERE l.ticket_type_id = %s",
        (ticket_type,),
    )[0][0]
    report.check(fault, "half-written order left behind", "0 order lines", f"{written} order lines", written == 0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(shop.app.worker_pids()) < WORKERS:
        time.sleep(0.2)
    workers_after = set(shop.app.worker_pids())
    replaced = len(workers_after) == WORKERS and victim not in workers_after
    report.check(
        fault,
        "gunicorn master replaced the worker",
        f"{WORKERS} workers, the victim gone",
        f"{len(workers_after)} workers, {len(workers_after - workers_before)} new",
        replaced,
    )
    retries = [shop.checkout(attempt), shop.checkout(attempt)]
    codes = {a.body["order"]["code"] for a in retries if a.status == 201}
    orders = sql(
        pg,
        "SELECT count(*) FROM orders_idempotencyrecord WHERE key = %s",
        (attempt.key,),
    )[0][0]
    report.check(
        fault,
        "two retries with the same Idempotency-Key",
        "201, 201, same order, 1 order for the key",
        f"{', '.join(str(a.status) for a in retries)}, {len(codes)} code(s), {orders} order(s) for the key",
        all(a.status == 201 for a in retries) and len(codes) == 1 and orders == 1,
    )


def database_down(shop: Shop, pg: PrivatePostgres, report: Report, ledger: list[Checkout], outage: float = 6.0) -> None:
    fault = "database down"
    ticket_type = shop.new_ticket_type("outage", capacity=100_000)
    stop = threading.Event()
    answers: list[Answer] = []
    probes: list[tuple[float, str, int]] = []
    lock = threading.Lock()

    def shopper() -> None:
        while not stop.is_set():
            added, token = shop.basket(ticket_type, 2)
            with lock:
                answers.append(added)
            if token is None:
                time.sleep(0.05)
                continue
            attempt = new_checkout(token, 2)
            with lock:
                ledger.append(attempt)
            answer = shop.checkout(attempt)
            with lock:
                answers.append(answer)

    def prober() -> None:
        while not stop.is_set():
            for path in ("/healthz", "/readyz"):
                answer = call(shop.base, "GET", path)
                probes.append((answer.started, path, answer.status))
            time.sleep(0.2)

    threads = [threading.Thread(target=shopper) for _ in range(6)] + [threading.Thread(target=prober)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    went_down = time.monotonic()
    pg.stop("immediate")
    time.sleep(outage)
    came_back = time.monotonic()
    pg.start()
    # Load goes on until checkouts succeed again (the app recovers by itself), then a few seconds more.
    recovered_at = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            recovered_at = next(
                (a.started + a.elapsed for a in answers if a.started > came_back and a.status == 201), None
            )
        if recovered_at:
            break
        time.sleep(0.2)
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(60)

    before = [a for a in answers if a.started + a.elapsed < went_down]
    during = [a for a in answers if went_down + 0.5 < a.started and a.started + a.elapsed < came_back]
    around = [a for a in answers if a.started + a.elapsed >= went_down]
    report.figures["database_down"] = {
        "requests": len(answers),
        "before_outage": len(before),
        "during_outage": len(during),
        "outage_seconds": outage,
    }
    report.check(
        fault,
        "answers before the crash",
        "201 only",
        f"{len(before)} requests, {len(unexpected_answers(before, lambda a: a.status == 201))} not 201",
        bool(before) and not unexpected_answers(before, lambda a: a.status == 201),
    )
    bad = unexpected_answers(around, lambda a: a.status in (200, 201) or retryable_503(a))
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
    down_probes = [(path, status) for started, path, status in probes if went_down + 1 < started < came_back]
    readyz = {status for path, status in down_probes if path == "/readyz"}
    healthz = {status for path, status in down_probes if path == "/healthz"}
    report.check(
        fault,
        "/readyz and /healthz during the outage",
        "503 and 200",
        f"{sorted(readyz)} and {sorted(healthz)}",
        readyz == {503} and healthz == {200},
    )
    recovery = (recovered_at - came_back) if recovered_at else None
    report.check(
        fault,
        "recovery after PostgreSQL restarts (no app restart)",
        "checkouts 201 again within 15 s",
        f"first 201 after {recovery:.1f} s" if recovery is not None else "never",
        recovery is not None and recovery <= 15,
    )
    final_ready = call(shop.base, "GET", "/readyz").status
    report.check(fault, "/readyz after recovery", "200", final_ready, final_ready == 200)
    # Every shopper told "503, retry" retries with the same key; a request cut off mid-commit may have placed its
    # order: the retry must return that one, never a second.
    unanswered = [
        c for c in ledger if c.order_code is None and any(retryable_503(a) or a.status == 0 for a in c.answers)
    ]
    retried = [shop.checkout(c) for c in unanswered]
    report.check(
        fault,
        "checkouts answered 503 (or cut off), retried with their key",
        "all 201 (placed now or replayed)",
        f"{len(retried)} retried, {sum(a.status == 201 for a in retried)} × 201",
        all(a.status == 201 for a in retried),
    )


def soak(shop: Shop, report: Report, ledger: list[Checkout], seconds: float) -> None:
    fault = "soak"
    ticket_type = shop.new_ticket_type("soak", capacity=1_000_000)
    catalog = call(shop.base, "GET", "/api/events").body["events"]
    stop = threading.Event()
    answers: list[Answer] = []
    lock = threading.Lock()

    def shopper() -> None:
        while not stop.is_set():
            batch = [call(shop.base, "GET", "/api/events"), call(shop.base, "GET", f"/api/events/{catalog[0]['id']}")]
            added, token = shop.basket(ticket_type, 1)
            batch.append(added)
            if token:
                attempt = new_checkout(token, 1)
                batch.append(shop.checkout(attempt))
                with lock:
                    ledger.append(attempt)
            with lock:
                answers.extend(batch)
            time.sleep(0.1)

    threads = [threading.Thread(target=shopper) for _ in range(4)]
    for thread in threads:
        thread.start()
    samples: list[tuple[float, dict[int, float]]] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        samples.append((time.monotonic() - started, shop.app.worker_rss_mb()))
        time.sleep(min(5.0, seconds / 12))
    samples.append((time.monotonic() - started, shop.app.worker_rss_mb()))
    stop.set()
    for thread in threads:
        thread.join(60)
    warm = next(s for s in samples if s[0] >= min(15.0, seconds / 4))
    last = samples[-1]
    growth = {pid: last[1][pid] - warm[1][pid] for pid in last[1] if pid in warm[1]}
    worst = max(growth.values(), default=float("nan"))
    minutes = (last[0] - warm[0]) / 60
    report.figures["soak"] = {
        "seconds": round(last[0], 1),
        "requests": len(answers),
        "requests_per_second": round(len(answers) / last[0], 1),
        "rss_mb_after_warmup": {str(p): round(v, 1) for p, v in warm[1].items()},
        "rss_mb_at_end": {str(p): round(v, 1) for p, v in last[1].items()},
        "samples": [(round(t, 1), {str(p): round(v, 1) for p, v in rss.items()}) for t, rss in samples],
    }
    bad = unexpected_answers(answers, lambda a: a.status in (200, 201))
    report.check(
        fault,
        f"{len(answers)} requests over {last[0]:.0f} s ({len(answers) / last[0]:.0f}/s)",
        "all 200/201",
        f"{len(bad)} others {bad[:3]}",
        bool(answers) and not bad,
    )
    # Flat: after warm-up a worker grows by at most 10 MB, and by at most 3 MB over the second half of the soak
    # (a leak keeps growing; a warming process levels off). Measured: +1.8 MB in 1 minute; +5.9 MB in 10 minutes,
    # +1.2 MB of it in the last 7.
    middle = min(samples, key=lambda s: abs(s[0] - (warm[0] + last[0]) / 2))
    late = {pid: last[1][pid] - middle[1][pid] for pid in last[1] if pid in middle[1]}
    worst_late = max(late.values(), default=float("nan"))
    report.check(
        fault,
        "worker RSS growth after warm-up (same worker processes, recycling off)",
        "≤ 10 MB per worker, ≤ 3 MB over the second half",
        f"worst {worst:+.1f} MB over {minutes:.1f} min, {worst_late:+.1f} MB over the second half "
        f"(end: {statistics.mean(last[1].values()):.0f} MB average)",
        len(growth) == WORKERS and worst <= 10 and worst_late <= 3,
    )


def emails_drained(app: ServedApp, report: Report, timeout: float = 120) -> None:
    """The email worker lived through every fault and sends everything queued (the outbox is drained)."""
    alive = app.email_worker_pid > 0 and process_alive(app.email_worker_pid)
    deadline = time.monotonic() + timeout
    counts = app.emails()
    while alive and counts["pending"] and time.monotonic() < deadline:
        time.sleep(1)
        counts = app.emails()
    report.check(
        "the books",
        "email worker after the faults; the outbox",
        f"alive; every email sent within {timeout:.0f} s",
        f"{'alive' if alive else 'gone'}; "
        f"{counts['sent']} sent, {counts['pending']} pending, {counts['failed']} failed",
        alive and counts["pending"] == 0 and counts["failed"] == 0 and counts["sent"] > 0,
    )


# --- the books ---------------------------------------------------------------------------------------------------


def books(pg: PrivatePostgres, report: Report, ledger: list[Checkout]) -> None:
    fault = "the books"
    told = {c.order_code: c for c in ledger if c.order_code}
    rows = sql(
        pg,
        "SELECT o.code, o.status, "
        "(SELECT count(*) FROM orders_ticket t WHERE t.order_id = o.id), "
        "(SELECT coalesce(sum(l.quantity), 0) FROM orders_orderline l WHERE l.order_id = o.id), "
        "(SELECT k.key FROM orders_idempotencyrecord k WHERE k.order_id = o.id LIMIT 1) "
        "FROM orders_order o",
    )
    in_db = {code: (status, tickets, seats, key) for code, status, tickets, seats, key in rows}
    missing = [code for code in told if code not in in_db]
    wrong = [
        code
        for code, attempt in told.items()
        if code in in_db
        and (in_db[code][0] != "paid" or in_db[code][1] != attempt.quantity or in_db[code][1] != in_db[code][2])
    ]
    report.check(
        fault,
        "orders clients got a 201 for",
        "each exists once, paid, with all its tickets",
        f"{len(told)} orders: {len(missing)} missing, {len(wrong)} wrong",
        bool(told) and not missing and not wrong,
    )
    without_tickets = [code for code, (_, tickets, seats, _key) in in_db.items() if tickets == 0 or tickets != seats]
    report.check(fault, "orders without (all) their tickets", "0", len(without_tickets), not without_tickets)
    chaos_keys = {c.key for c in ledger}
    unknown = [code for code, (*_, key) in in_db.items() if key in chaos_keys and code not in told]
    report.check(fault, "orders placed that no client was told about", "0", len(unknown), not unknown)
    per_key = sql(pg, "SELECT key, count(*) FROM orders_idempotencyrecord GROUP BY key HAVING count(*) > 1")
    report.check(fault, "keys with more than one order", "0", len(per_key), not per_key)
    seats = sql(
        pg,
        "SELECT t.id, t.capacity, t.sold, (SELECT count(*) FROM orders_ticket k "
        "JOIN orders_order o ON o.id = k.order_id WHERE k.ticket_type_id = t.id AND o.status = 'paid') "
        "FROM events_tickettype t",
    )
    off = [row for row in seats if not (row[2] == row[3] <= row[1])]
    report.check(
        fault, "ticket types with sold ≠ paid tickets or sold > capacity", "0", f"{len(off)} of {len(seats)}", not off
    )
    # The outbox: every paid order's confirmation was queued in the order's own transaction, exactly once, and the
    # email worker (started by the harness) got through the crash too: nothing left failed.
    # (The demo orders seed_demo made are not in this count: it queues no emails to its made-up buyers.)
    emails = sql(
        pg,
        "SELECT (SELECT count(*) FROM orders_order o WHERE o.code = ANY(%s) AND (SELECT count(*) "
        "FROM orders_outboundemail e WHERE e.order_id = o.id AND e.kind = 'order_confirmation') <> 1), "
        "(SELECT count(*) FROM orders_outboundemail WHERE status = 'failed')",
        (list(told),),
    )[0]
    report.check(
        fault,
        "orders without exactly one queued confirmation email; emails given up on",
        "0; 0",
        f"{emails[0]}; {emails[1]}",
        emails == (0, 0),
    )
    deadlocks = pg.log_text().count("deadlock detected")
    report.check(fault, "deadlocks in the PostgreSQL log", "0", deadlocks, deadlocks == 0)
    report.figures["books"] = {"orders_in_database": len(in_db), "orders_clients_were_told": len(told)}


FAULTS = ("slow_db", "worker_kill", "db_down", "soak")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soak", type=float, default=float(os.environ.get("SOAK") or 60), help="soak seconds")
    parser.add_argument("--only", default=",".join(FAULTS), help="comma-separated subset of " + ",".join(FAULTS))
    args = parser.parse_args()
    only = set(args.only.split(","))
    report, ledger = Report(), []
    started = time.monotonic()
    env = {
        "DATABASE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "GUNICORN_MAX_REQUESTS": "0",  # a leak must show in the soak, not be hidden by worker recycling
        # The email worker loses the database mid-batch in the crash: what it had claimed is sent again once the
        # claim expires (25 s here instead of 10 minutes, so the drained outbox can be checked in this run).
        "EMAIL_OUTBOX_CLAIM_SECONDS": "25",
        "EMAIL_OUTBOX_POLL_SECONDS": "1",
        "LOG_LEVEL": "error",
    }
    with (
        private_postgres(PG_PORT) as pg,
        served_app(port=PORT, database=DATABASE, workers=WORKERS, pg_port=PG_PORT, env=env) as app,
    ):
        shop = Shop(app)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("slow_db", lambda: slow_database(shop, pg, report, ledger)),
            ("worker_kill", lambda: worker_kill(shop, pg, report, ledger)),
            ("db_down", lambda: database_down(shop, pg, report, ledger)),
            ("soak", lambda: soak(shop, report, ledger, args.soak)),
        ]
        for name, step in steps:
            if name in only:
                print(f"\n--- {name} ---", flush=True)
                step()
        print("\n--- the books ---", flush=True)
        emails_drained(app, report)
        books(pg, report, ledger)
    report.figures["seconds"] = round(time.monotonic() - started, 1)
    report.figures["checkouts_attempted"] = len(ledger)
    out = ROOT / "reports" / "chaos"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(
        json.dumps({"results": [asdict(r) for r in report.results], "figures": report.figures}, indent=2)
    )
    print("\n" + report.table())
    print(
        f"\nchaos: {'PASSED' if report.passed else 'FAILED'} in {report.figures['seconds']} s; {out / 'summary.json'}"
    )
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
