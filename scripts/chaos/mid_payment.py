"""Faults while a card checkout waits for Stripe to authorize (no lock held, the Payment row already written): the
database crashes before the order's transaction starts, or the worker is killed. Either way no buyer may end with
money held or taken and no order, nor with two orders for one Idempotency-Key.

Stripe's stand-in is paused (SIGSTOP) to hold the checkouts inside the authorize call; the app's Stripe timeout
(STRIPE_TIMEOUT_SECONDS, 2 s here) bounds how long each hold may last before the call times out instead."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from scripts.chaos.payments import (
    STRIPE_TIMEOUT_S,
    judge_intents,
    paying_by_card,
    payment_intents,
    payment_unavailable,
    reconciled,
)
from scripts.chaos.pg import PrivatePostgres
from scripts.chaos.report import Report
from scripts.chaos.shop import (
    WORKERS,
    Checkout,
    Shop,
    retryable_503,
    sql,
    worker_serving_backend,
    workers_connected_to,
)
from scripts.lib.http import Answer
from scripts.lib.localstripe import Localstripe
from scripts.lib.postgres import is_ready

HELD = WORKERS - 1  # checkouts held inside the authorize call at once; one worker stays free


def calling_stripe(shop: Shop, stand_in: Localstripe, count: int) -> list[int]:
    """The workers whose call to Stripe is in flight, once `count` are (or [] before the call would time out)."""
    deadline = time.monotonic() + STRIPE_TIMEOUT_S - 0.8
    while time.monotonic() < deadline:
        workers = workers_connected_to(shop.served, stand_in.port)
        if len(workers) >= count:
            return workers
        time.sleep(0.01)
    return []


def retry_until_placed(shop: Shop, attempt: Checkout, tries: int = 10) -> list[Answer]:
    """The client's retries with its key while the answer says to retry (a worker may still hold a connection the
    crash broke: it answers 503 once, then reconnects)."""
    answers = [shop.checkout(attempt)]
    while len(answers) < tries and (retryable_503(answers[-1]) or payment_unavailable(answers[-1])):
        time.sleep(0.3)
        answers.append(shop.checkout(attempt))
    return answers


def report_retries(
    shop: Shop, report: Report, fault: str, attempts: list[Checkout], retries: list[list[Answer]]
) -> None:
    """Every client's last answer is its paid order, and each key has exactly one order."""
    keys = [a.key for a in attempts]
    query = "SELECT key, count(*) FROM orders_idempotencyrecord WHERE key = ANY(%s) GROUP BY key"
    per_key = dict(sql(shop.served.database_url, query, (keys,)))
    placed = [r[-1] for r in retries]
    report.check(
        fault,
        "the clients' retries with their Idempotency-Keys",
        "each ends 201 paid; exactly 1 order per key",
        "; ".join(" → ".join(str(a.status or a.error[:30]) for a in r) for r in retries)
        + f"; orders per key {sorted(per_key.get(key, 0) for key in keys)}",
        all(a.status == 201 and a.body["order"]["status"] == "paid" for a in placed)
        and all(per_key.get(key) == 1 for key in keys),
    )


def report_settled(
    shop: Shop, stand_in: Localstripe, report: Report, fault: str, before: set[str], ticket_type: int
) -> None:
    """After reconciliation: the fault's PaymentIntents each settled once, and the seats counted right."""
    ran, said = reconciled(shop)
    report.check(fault, "reconcile_payments --older-than 0", "exit 0", said, ran)
    judge_intents(shop, stand_in, report, fault, before)
    query = (
        "SELECT t.sold, t.capacity, (SELECT count(*) FROM orders_ticket k JOIN orders_order o ON o.id = k.order_id "
        "WHERE k.ticket_type_id = t.id AND o.status = 'paid' AND k.cancelled_at IS NULL) "
        "FROM events_tickettype t WHERE t.id = %s"
    )
    sold, capacity, tickets = sql(shop.served.database_url, query, (ticket_type,))[0]
    report.check(
        fault,
        "seats",
        "sold = paid tickets ≤ capacity",
        f"sold {sold}, paid tickets {tickets}, capacity {capacity}",
        sold == tickets <= capacity,
    )


# --- the database lost between authorize and commit ------------------------------------------------------------


def crash_while_authorizing(
    shop: Shop, pg: PrivatePostgres, stand_in: Localstripe, attempts: list[Checkout]
) -> tuple[list[Answer], list[int], float]:
    """The checkouts are held inside the authorize call; PostgreSQL crashes; Stripe answers them while it is down.
    Returns their answers, the workers seen calling Stripe, and how long the calls were held."""
    answers: list[Answer] = []
    threads = [threading.Thread(target=lambda a=a: answers.append(shop.checkout(a))) for a in attempts]
    stand_in.pause()
    try:
        for thread in threads:
            thread.start()
        workers = calling_stripe(shop, stand_in, len(attempts))
        held_at = time.monotonic()
        if workers:
            pg.stop("immediate")
    finally:
        stand_in.resume()
    held = time.monotonic() - held_at
    for thread in threads:
        thread.join(30)
    return answers, workers, held


def db_lost_mid_payment(
    shop: Shop, pg: PrivatePostgres, stand_in: Localstripe, report: Report, ledger: list[Checkout]
) -> None:
    """Card checkouts are authorized while the database is down: a retryable 503, the authorizations voided at once
    (their order never reached its COMMIT); after the restart each retry gets one paid order."""
    fault = "database lost mid-payment"
    ticket_type = shop.new_ticket_type("db-lost-mid-payment", capacity=HELD)
    attempts = [paying_by_card(shop.new_basket(ticket_type, 1)) for _ in range(HELD)]
    ledger.extend(attempts)
    before = set(payment_intents(stand_in))
    try:
        answers, workers, held = crash_while_authorizing(shop, pg, stand_in, attempts)
        voided = [i.status for key, i in payment_intents(stand_in).items() if key not in before]
    finally:
        if not is_ready(pg.port):
            pg.start()
    report.check(
        fault,
        f"{HELD} card checkouts held in the authorize call, then PostgreSQL crashed",
        f"{HELD} workers calling Stripe; crash and Stripe's answers within the Stripe timeout ({STRIPE_TIMEOUT_S} s)",
        f"{len(workers)} workers; Stripe resumed after {held:.2f} s",
        len(workers) == HELD and held < STRIPE_TIMEOUT_S,
    )
    report.check(
        fault,
        "their answers, authorized while the database is down",
        "all 503 service_unavailable + Retry-After",
        ", ".join(sorted(f"{a.status or a.error[:30]} {a.code or ''}" for a in answers)),
        len(answers) == HELD and all(retryable_503(a) and a.code == "service_unavailable" for a in answers),
    )
    report.check(
        fault,
        "their authorizations at Stripe, before the database is back",
        f"{HELD} PaymentIntents, all canceled (voided at once)",
        ", ".join(sorted(voided)) or "none",
        voided == ["canceled"] * HELD,
    )
    report_retries(shop, report, fault, attempts, [retry_until_placed(shop, a) for a in attempts])
    reconnected = workers_reconnected(shop, attempts[0].order_code)
    report.check(
        fault, "workers holding a live database connection again", f"{WORKERS}", reconnected, reconnected == WORKERS
    )
    report_settled(shop, stand_in, report, fault, before, ticket_type)


def workers_reconnected(shop: Shop, order_code: str | None, timeout: float = 15) -> int:
    """After the crash each worker's kept connection is broken and fails the worker's next request, whatever it is:
    concurrent reads of an order (staff API: the worker's own connection; /readyz uses one of its own) until every
    worker has a backend again, matched through pg_stat_activity, so that what follows meets no broken connection.
    Returns how many workers have one."""
    query = "SELECT client_port FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"

    def read(_: int) -> Answer:
        return shop.call("GET", f"/api/orders/{order_code}", headers=shop.auth)

    deadline = time.monotonic() + timeout
    while True:
        ports = [port for (port,) in sql(shop.served.database_url, query) if port]
        owners = {worker_serving_backend(shop.served, port) for port in ports}
        workers = set(shop.served.worker_pids())
        if workers <= owners or time.monotonic() > deadline:
            return len(workers & owners)
        with ThreadPoolExecutor(2 * WORKERS) as pool:
            list(pool.map(read, range(2 * WORKERS)))


# --- a worker killed while Stripe authorizes --------------------------------------------------------------------


def kill_while_authorizing(shop: Shop, stand_in: Localstripe, attempt: Checkout) -> int | None:
    """Holds the checkout inside the authorize call, SIGKILLs the worker making it, then lets Stripe answer (to
    nobody): the authorization exists at Stripe and the shop's Payment row has no answer. Returns the worker."""
    thread = threading.Thread(target=shop.checkout, args=(attempt,))
    victim = None
    stand_in.pause()
    try:
        thread.start()
        workers = calling_stripe(shop, stand_in, 1)
        if workers:
            victim = workers[0]
            os.kill(victim, signal.SIGKILL)
        thread.join(30)
    finally:
        stand_in.resume()
    return victim


def workers_replaced(shop: Shop, victim: int | None, timeout: float = 20) -> set[int]:
    """The workers once the master has replaced the one killed (or the timeout passed), without it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(shop.served.worker_pids()) < WORKERS:
        time.sleep(0.2)
    return set(shop.served.worker_pids()) - {victim or 0}


def orphan_authorization(stand_in: Localstripe, before: set[str], timeout: float = 10) -> list[str]:
    """The statuses of the PaymentIntents made since `before`, once Stripe has answered the dead worker's call."""
    deadline = time.monotonic() + timeout
    made: list[str] = []
    while not made and time.monotonic() < deadline:
        made = [i.status for key, i in payment_intents(stand_in).items() if key not in before]
        time.sleep(0.1)
    return made


def worker_kill_mid_payment(shop: Shop, stand_in: Localstripe, report: Report, ledger: list[Checkout]) -> None:
    """A worker killed while Stripe authorizes its checkout: the retry places one paid order, and reconciliation
    releases the authorization nobody received."""
    fault = "worker SIGKILL mid-payment"
    ticket_type = shop.new_ticket_type("kill-mid-payment", capacity=1)
    attempt = paying_by_card(shop.new_basket(ticket_type, 1))
    ledger.append(attempt)
    before = set(payment_intents(stand_in))
    victim = kill_while_authorizing(shop, stand_in, attempt)
    first = attempt.answers[0] if attempt.answers else None
    report.check(
        fault,
        "a card checkout held in the authorize call; the worker calling Stripe killed",
        "worker found and killed; its client gets no HTTP answer",
        f"worker {victim}; client saw {(first.error[:50] or first.status) if first else 'nothing'}",
        victim is not None and first is not None and first.status == 0,
    )
    made = orphan_authorization(stand_in, before)
    report.check(
        fault,
        "what Stripe made of the dead worker's call",
        "1 PaymentIntent, requires_capture (the buyer's money held, no order)",
        ", ".join(made) or "none",
        made == ["requires_capture"],
    )
    replaced = workers_replaced(shop, victim)
    report.check(
        fault, "gunicorn master replaced the worker", f"{WORKERS} workers", len(replaced), len(replaced) == WORKERS
    )
    report_retries(shop, report, fault, [attempt], [retry_until_placed(shop, attempt)])
    report_settled(shop, stand_in, report, fault, before, ticket_type)
