"""The books after the faults, read straight from the database: every order a client got a 201 for exists exactly
once with all its tickets; no order without tickets; no order a client was not told about; one order per key at
most; sold = paid tickets ≤ capacity for every ticket type; one confirmation email per order, all sent; no deadlock
in the PostgreSQL log."""

from __future__ import annotations

import time

from scripts.chaos.pg import PrivatePostgres
from scripts.chaos.report import Report
from scripts.chaos.shop import Checkout, Shop, sql
from scripts.lib.processes import alive

FAULT = "the books"
ORDERS = (
    "SELECT o.code, o.status, "
    "(SELECT count(*) FROM orders_ticket t WHERE t.order_id = o.id), "
    "(SELECT coalesce(sum(l.quantity), 0) FROM orders_orderline l WHERE l.order_id = o.id), "
    "(SELECT k.key FROM orders_idempotencyrecord k WHERE k.order_id = o.id LIMIT 1) "
    "FROM orders_order o"
)
SEATS = (
    "SELECT t.id, t.capacity, t.sold, (SELECT count(*) FROM orders_ticket k "
    "JOIN orders_order o ON o.id = k.order_id "
    "WHERE k.ticket_type_id = t.id AND o.status = 'paid' AND k.cancelled_at IS NULL) "
    "FROM events_tickettype t"
)
# Every paid order's confirmation was queued in the order's own transaction, exactly once, and nothing was given up
# on. (The demo orders seed_demo made are not counted: it queues no emails to its made-up buyers.)
EMAILS = (
    "SELECT (SELECT count(*) FROM orders_order o WHERE o.code = ANY(%s) AND (SELECT count(*) "
    "FROM orders_outboundemail e WHERE e.order_id = o.id AND e.kind = 'order_confirmation') <> 1), "
    "(SELECT count(*) FROM orders_outboundemail WHERE status = 'failed')"
)


def emails_drained(shop: Shop, report: Report, timeout: float = 120) -> None:
    """The email worker lived through every fault and sends everything queued (the outbox is drained)."""
    served = shop.served
    running = served.email_worker_pid > 0 and alive(served.email_worker_pid)
    deadline = time.monotonic() + timeout
    counts = served.emails()
    while running and counts["pending"] and time.monotonic() < deadline:
        time.sleep(1)
        counts = served.emails()
    report.check(
        FAULT,
        "email worker after the faults; the outbox",
        f"alive; every email sent within {timeout:.0f} s",
        f"{'alive' if running else 'gone'}; "
        f"{counts['sent']} sent, {counts['pending']} pending, {counts['failed']} failed",
        running and counts["pending"] == 0 and counts["failed"] == 0 and counts["sent"] > 0,
    )


def orders(database: str, report: Report, ledger: list[Checkout]) -> None:
    told = {c.order_code: c for c in ledger if c.order_code}
    in_db = {code: (status, tickets, seats, key) for code, status, tickets, seats, key in sql(database, ORDERS)}
    missing = [code for code in told if code not in in_db]
    wrong = [
        code
        for code, attempt in told.items()
        if code in in_db and (in_db[code][0] != "paid" or not in_db[code][1] == attempt.quantity == in_db[code][2])
    ]
    report.check(
        FAULT,
        "orders clients got a 201 for",
        "each exists once, paid, with all its tickets",
        f"{len(told)} orders: {len(missing)} missing, {len(wrong)} wrong",
        bool(told) and not missing and not wrong,
    )
    without_tickets = [code for code, (_, tickets, seats, _key) in in_db.items() if tickets == 0 or tickets != seats]
    report.check(FAULT, "orders without (all) their tickets", "0", len(without_tickets), not without_tickets)
    keys = {c.key for c in ledger}
    unknown = [code for code, (*_, key) in in_db.items() if key in keys and code not in told]
    report.check(FAULT, "orders placed that no client was told about", "0", len(unknown), not unknown)
    per_key = sql(database, "SELECT key, count(*) FROM orders_idempotencyrecord GROUP BY key HAVING count(*) > 1")
    report.check(FAULT, "keys with more than one order", "0", len(per_key), not per_key)
    emails = sql(database, EMAILS, (list(told),))[0]
    expected = "orders without exactly one queued confirmation email; emails given up on"
    report.check(FAULT, expected, "0; 0", f"{emails[0]}; {emails[1]}", emails == (0, 0))
    report.figures["books"] = {"orders_in_database": len(in_db), "orders_clients_were_told": len(told)}


def books(shop: Shop, pg: PrivatePostgres, report: Report, ledger: list[Checkout]) -> None:
    emails_drained(shop, report)
    orders(shop.served.database_url, report, ledger)
    seats = sql(shop.served.database_url, SEATS)
    off = [row for row in seats if not (row[2] == row[3] <= row[1])]
    what = "ticket types with sold ≠ paid tickets or sold > capacity"
    report.check(FAULT, what, "0", f"{len(off)} of {len(seats)}", not off)
    deadlocks = pg.log_text().count("deadlock detected")
    report.check(FAULT, "deadlocks in the PostgreSQL log", "0", deadlocks, deadlocks == 0)
