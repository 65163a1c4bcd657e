"""A card checkout's COMMIT goes through at PostgreSQL but its acknowledgement never reaches the app.

A second gunicorn (one worker, the same database and environment, no email worker of its own) is served through
the proxy of pgproxy.py only for this fault, so the other faults and the soak keep their direct connections (and
the worker-to-backend matching through pg_stat_activity.client_port). The app must read the order back on a new
connection and capture: the client gets 201 with its order, the buyer pays once."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from scripts.chaos.payments import paying_by_card, payment_intents
from scripts.chaos.pg import PrivatePostgres
from scripts.chaos.pgproxy import commit_ack_loss
from scripts.chaos.report import Report
from scripts.chaos.shop import Checkout, Shop, sql
from scripts.lib.localstripe import Localstripe
from scripts.lib.serve import WSGI_APP, gunicorn

ORDER = (
    "SELECT o.status, o.payment_reference, o.total, (SELECT count(*) FROM orders_ticket t WHERE t.order_id = o.id) "
    "FROM orders_order o JOIN orders_idempotencyrecord k ON k.order_id = o.id WHERE k.key = %s"
)


@contextlib.contextmanager
def served_through(shop: Shop, database_url: str) -> Iterator[Shop]:
    """The same shop served by one more gunicorn (one worker) on the next port, its database at `database_url`."""
    port = (urlsplit(shop.base).port or 80) + 1
    env = shop.served.env | {"DATABASE_URL": database_url, "WEB_CONCURRENCY": "1"}
    with gunicorn(shop.served.source, WSGI_APP, port=port, env=env) as server:
        served = dataclasses.replace(
            shop.served, url=f"http://127.0.0.1:{port}", env=env, gunicorn_pid=server.pid, email_worker_pid=0
        )
        yield Shop(served)


def lost_commit_ack(
    shop: Shop, pg: PrivatePostgres, stand_in: Localstripe, report: Report, ledger: list[Checkout]
) -> None:
    """The order's COMMIT lands, its acknowledgement is lost: the app finds the order on a new connection, captures
    once, and answers 201."""
    fault = "commit acknowledgement lost"
    ticket_type = shop.new_ticket_type("lost-ack", capacity=2)
    attempt = paying_by_card(shop.new_basket(ticket_type, 2))
    ledger.append(attempt)
    before = set(payment_intents(stand_in))
    database = urlsplit(shop.served.database_url).path.lstrip("/")
    with commit_ack_loss(pg.port) as proxy, served_through(shop, proxy.url(database)) as through:
        proxy.arm()
        answer = through.checkout(attempt)
    report.check(
        fault,
        'the COMMIT of the transaction that inserted into "orders_order"',
        "let through once; PostgreSQL answered COMMIT; the answer withheld, both sides closed",
        "; ".join(f"{cut.sql} answered {'/'.join(cut.answer) or 'nothing'}" for cut in proxy.cuts) or "never cut",
        [cut.answer for cut in proxy.cuts] == [["COMMIT"]],
    )
    order = answer.body.get("order", {}) if answer.status == 201 and isinstance(answer.body, dict) else {}
    report.check(
        fault,
        "what the client got",
        "201, the order paid, 2 tickets",
        f"{answer.status or answer.error[:40]} {order.get('status', answer.code or '')} "
        f"{len(order.get('tickets', []))} tickets",
        answer.status == 201 and order.get("status") == "paid" and len(order.get("tickets", [])) == 2,
    )
    rows = sql(shop.served.database_url, ORDER, (attempt.key,))
    intents = {key: captures(i) for key, i in payment_intents(stand_in).items() if key not in before}
    reference, total = (rows[0][1], int(rows[0][2] * 100)) if rows else ("", 0)
    report.check(
        fault,
        "the order in the database; its payment at Stripe",
        "1 order for the key, paid, 2 tickets; 1 PaymentIntent, the one it names, captured once for the total",
        f"{len(rows)} order(s) {[(r[0], r[3]) for r in rows]}; (status, captures) {list(intents.values())}",
        len(rows) == 1 and (rows[0][0], rows[0][3]) == ("paid", 2) and intents == {reference: ("succeeded", [total])},
    )


def captures(intent: Any) -> tuple[str, list[int]]:
    """A PaymentIntent's status and the amounts of its captured charges."""
    charges = intent.to_dict().get("charges", {}).get("data", [])
    return intent.status, [charge["amount"] for charge in charges if charge.get("captured")]
