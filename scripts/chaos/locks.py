"""Faults at a seat row: another session holds the hot ticket type's lock (a slow database), and a worker is
killed while its checkout waits for that lock inside its transaction."""

from __future__ import annotations

import os
import signal
import threading
import time

from scripts.chaos.report import Report
from scripts.chaos.shop import (
    LOCK_TIMEOUT_S,
    WORKERS,
    Checkout,
    RowLock,
    Shop,
    retryable_503,
    sql,
    worker_serving_backend,
)
from scripts.lib.http import Answer


def slow_database(shop: Shop, report: Report, ledger: list[Checkout]) -> None:
    """Checkouts and an add on a row locked past lock_timeout: a retryable 503 database_busy in time, nothing
    written, and the retry places the order."""
    fault, database = "slow database", shop.served.database_url
    ticket_type = shop.new_ticket_type("slow", capacity=20)
    # As many requests at once as there are workers (more would queue for a worker, not for the lock).
    attempts = [shop.new_basket(ticket_type, 2) for _ in range(WORKERS - 1)]
    ledger.extend(attempts)
    answers: list[Answer] = []
    lock = RowLock(database, ticket_type)
    try:
        threads = [threading.Thread(target=lambda a=a: answers.append(shop.checkout(a))) for a in attempts]
        threads.append(threading.Thread(target=lambda: answers.append(shop.basket(ticket_type, 1)[0])))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        lock.release()
    report.check(
        fault,
        f"{WORKERS - 1} checkouts + 1 basket add at once while the seat row is locked",
        "all 503 database_busy + Retry-After (problem JSON)",
        ", ".join(sorted({f"{a.status} {a.code}" for a in answers})),
        len(answers) == WORKERS and all(retryable_503(a) and a.code == "database_busy" for a in answers),
    )
    report.check(
        fault,
        "time to answer",
        # lock_timeout bounds each lock wait; a second waiter on one row waits for the first one's tuple lock, then
        # for the row itself: up to two waits.
        f"≤ {2 * LOCK_TIMEOUT_S + 1} s (2 × lock_timeout {LOCK_TIMEOUT_S} s), no hang",
        ", ".join(f"{a.path} {a.elapsed:.2f} s" for a in answers),
        max(a.elapsed for a in answers) <= 2 * LOCK_TIMEOUT_S + 1,
    )
    sold, orders = sql(
        database,
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


def kill_waiting_checkout(shop: Shop, attempt: Checkout, ticket_type: int) -> int | None:
    """Starts the checkout while another session holds its seat row, finds the worker whose transaction waits for
    that lock (its order rows written), SIGKILLs it; returns its pid."""
    database = shop.served.database_url
    lock = RowLock(database, ticket_type)
    victim = None
    try:
        thread = threading.Thread(target=shop.checkout, args=(attempt,))
        thread.start()
        deadline = time.monotonic() + LOCK_TIMEOUT_S - 0.5
        client_port = None
        while time.monotonic() < deadline and client_port is None:
            rows = sql(
                database,
                "SELECT client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query ILIKE 'UPDATE %%events_tickettype%%'",
            )
            client_port = rows[0][0] if rows else None
            time.sleep(0.02)
        if client_port is not None:
            victim = worker_serving_backend(shop.served, client_port)
        if victim is not None:
            os.kill(victim, signal.SIGKILL)
        thread.join(30)
    finally:
        lock.release()
    return victim


def worker_kill(shop: Shop, report: Report, ledger: list[Checkout]) -> None:
    """A worker killed mid-checkout: no half-written order, the master replaces it, the retry places one order."""
    fault, database = "worker SIGKILL", shop.served.database_url
    ticket_type = shop.new_ticket_type("kill", capacity=10)
    attempt = shop.new_basket(ticket_type, 2)
    ledger.append(attempt)
    workers_before = set(shop.served.worker_pids())
    victim = kill_waiting_checkout(shop, attempt, ticket_type)
    report.check(
        fault,
        "a checkout caught inside its transaction (order written, seat update waiting)",
        "its worker found and killed",
        f"worker {victim}" if victim else "not found",
        victim is not None,
    )
    first = attempt.answers[0] if attempt.answers else None
    seen = (first.error[:60] or first.status) if first else "nothing"
    ok = first is not None and first.status == 0
    report.check(fault, "what the killed request's client saw", "no HTTP answer (connection dropped)", seen, ok)
    time.sleep(1)  # the aborted transaction is gone once PostgreSQL reads the closed socket
    query = "SELECT count(*) FROM orders_orderline l WHERE l.ticket_type_id = %s"
    written = sql(database, query, (ticket_type,))[0][0]
    report.check(fault, "half-written order left behind", "0 order lines", f"{written} order lines", written == 0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(shop.served.worker_pids()) < WORKERS:
        time.sleep(0.2)
    workers_after = set(shop.served.worker_pids())
    report.check(
        fault,
        "gunicorn master replaced the worker",
        f"{WORKERS} workers, the victim gone",
        f"{len(workers_after)} workers, {len(workers_after - workers_before)} new",
        len(workers_after) == WORKERS and victim not in workers_after,
    )
    retries = [shop.checkout(attempt), shop.checkout(attempt)]
    codes = {a.body["order"]["code"] for a in retries if a.status == 201}
    orders = sql(database, "SELECT count(*) FROM orders_idempotencyrecord WHERE key = %s", (attempt.key,))[0][0]
    report.check(
        fault,
        "two retries with the same Idempotency-Key",
        "201, 201, same order, 1 order for the key",
        f"{', '.join(str(a.status) for a in retries)}, {len(codes)} code(s), {orders} order(s) for the key",
        all(a.status == 201 for a in retries) and len(codes) == 1 and orders == 1,
    )
