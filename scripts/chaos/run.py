"""`make chaos`: faults injected into a served shop, and the books checked afterwards. Loopback only, bounded.

The shop runs under gunicorn (gunicorn.conf.py, 3 workers, worker recycling off so a leak would show) against a
PRIVATE PostgreSQL cluster (pg.py, port CHAOS_PG_PORT=55432) that this run may crash, never the shared one.

Faults, in this order:
1. slow database (locks.py): another session holds the hot ticket type's row lock past `lock_timeout`: checkouts end
   in a retryable 503 `database_busy` with Retry-After, in time; nothing is written; the retry places one order.
2. worker killed (locks.py): a checkout is held inside its transaction (order rows written, seat update waiting on a
   row lock); its gunicorn worker gets SIGKILL: no half-written order; the retry with the same Idempotency-Key
   places exactly one order; the master replaces the worker.
3. database down (outage.py): PostgreSQL crashes under a load of checkouts, stays down, then restarts.
4. payment provider down (payments.py): Stripe (localstripe, paused) stops answering while buyers pay by card: a
   retryable 503 payment_unavailable in time, no order, no seat; the retries are paid once it answers again.
5. webhooks (payments.py): Stripe's webhook for a pending order arrives twice, then a later event, before the
   buyer's return: paid once, captured once.
6. database lost mid-payment (mid_payment.py): card checkouts are held inside Stripe's authorize call, PostgreSQL
   crashes, Stripe answers while it is down: a retryable 503 and the authorizations voided at once; after the
   restart each retry with its key gets one paid order.
7. commit acknowledgement lost (lost_ack.py): a second gunicorn reaches PostgreSQL through a proxy (pgproxy.py) that
   lets the order's COMMIT through and withholds the answer: the app reads the order back, captures once, 201.
8. worker killed mid-payment (mid_payment.py): the worker waiting for Stripe's authorization gets SIGKILL; Stripe
   authorizes for nobody; the retry gets one paid order and reconcile_payments releases the orphan authorization.
9. soak (soak.py): moderate load for SOAK seconds (60; `make chaos SOAK=600` for 10 minutes): no 5xx, RSS flat.
Then the books (books.py), read straight from the database, and the payments held against what Stripe says: every
PaymentIntent at Stripe captured exactly when one paid order names it, none left holding money without one.
Stripe is localstripe behind a proxy that adds Stripe's Idempotency-Key (scripts/lib/localstripe.py).

    python -m scripts.chaos.run [--soak SECONDS] [--only slow_db,worker_kill,db_down,stripe_down,webhooks,
        db_lost_mid_payment,lost_commit_ack,worker_kill_mid_payment,soak]

Prints `fault | check | expected | observed | PASS/FAIL`, writes reports/chaos/summary.json, exits 1 on a FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import asdict

from scripts.chaos.books import books
from scripts.chaos.locks import slow_database, worker_kill
from scripts.chaos.lost_ack import lost_commit_ack
from scripts.chaos.mid_payment import db_lost_mid_payment, worker_kill_mid_payment
from scripts.chaos.outage import database_down
from scripts.chaos.payments import STRIPE_TIMEOUT_S, payment_books, provider_down, webhooks
from scripts.chaos.pg import PrivatePostgres, private_postgres
from scripts.chaos.report import Report
from scripts.chaos.shop import CONNECT_TIMEOUT, WORKERS, Shop
from scripts.chaos.soak import soak
from scripts.lib.localstripe import PUBLISHABLE_KEY, SECRET_KEY, Localstripe, running_localstripe
from scripts.lib.serve import served
from scripts.lib.source import ROOT

PORT = int(os.environ.get("CHAOS_PORT", "18160"))
PG_PORT = int(os.environ.get("CHAOS_PG_PORT", "55432"))
DATABASE = "aegistickets_chaos"
FAULTS = (
    "slow_db",
    "worker_kill",
    "db_down",
    "stripe_down",
    "webhooks",
    "db_lost_mid_payment",
    "lost_commit_ack",
    "worker_kill_mid_payment",
    "soak",
)
WEBHOOK_SECRET = f"whsec_{secrets.token_hex(16)}"  # pragma: allowlist secret
APP_ENV = {
    "WEB_CONCURRENCY": str(WORKERS),
    "DATABASE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
    "GUNICORN_MAX_REQUESTS": "0",  # a leak must show in the soak, not be hidden by worker recycling
    # The email worker loses the database mid-batch in the crash: what it had claimed is sent again once the claim
    # expires (25 s here instead of 10 minutes, so the drained outbox can be checked in this run).
    "EMAIL_OUTBOX_CLAIM_SECONDS": "25",
    "EMAIL_OUTBOX_POLL_SECONDS": "1",
    "LOG_LEVEL": "error",
    "PAYMENT_METHODS": "test,free,stripe",
    "STRIPE_SECRET_KEY": SECRET_KEY,
    "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
    "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "STRIPE_TIMEOUT_SECONDS": str(STRIPE_TIMEOUT_S),
}


def faults(
    shop: Shop, pg: PrivatePostgres, stand_in: Localstripe, report: Report, soak_seconds: float
) -> list[tuple[str, Callable[..., None]]]:
    return [
        ("slow_db", lambda ledger: slow_database(shop, report, ledger)),
        ("worker_kill", lambda ledger: worker_kill(shop, report, ledger)),
        ("db_down", lambda ledger: database_down(shop, pg, report, ledger)),
        ("stripe_down", lambda ledger: provider_down(shop, stand_in, report, ledger)),
        ("webhooks", lambda ledger: webhooks(shop, stand_in, WEBHOOK_SECRET, report)),
        ("db_lost_mid_payment", lambda ledger: db_lost_mid_payment(shop, pg, stand_in, report, ledger)),
        ("lost_commit_ack", lambda ledger: lost_commit_ack(shop, pg, stand_in, report, ledger)),
        ("worker_kill_mid_payment", lambda ledger: worker_kill_mid_payment(shop, stand_in, report, ledger)),
        ("soak", lambda ledger: soak(shop, report, ledger, soak_seconds)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soak", type=float, default=float(os.environ.get("SOAK") or 60), help="soak seconds")
    parser.add_argument("--only", default=",".join(FAULTS), help="comma-separated subset of " + ",".join(FAULTS))
    args = parser.parse_args()
    only = set(args.only.split(","))
    report, ledger = Report(), []
    started = time.monotonic()
    with (
        private_postgres(PG_PORT) as pg,
        running_localstripe() as stand_in,
        served(port=PORT, database_url=pg.url(DATABASE), env=APP_ENV | {"STRIPE_API_BASE": stand_in.base}) as app,
    ):
        shop = Shop(app)
        steps = report.figures.setdefault("seconds_by_step", {"setup": round(time.monotonic() - started, 1)})
        for name, fault in faults(shop, pg, stand_in, report, args.soak):
            if name in only:
                print(f"\n--- {name} ---", flush=True)
                at = time.monotonic()
                fault(ledger)
                steps[name] = round(time.monotonic() - at, 1)
        print("\n--- the books ---", flush=True)
        at = time.monotonic()
        books(shop, pg, report, ledger)
        payment_books(shop, stand_in, report)
        steps["books"] = round(time.monotonic() - at, 1)
    report.figures["seconds"] = round(time.monotonic() - started, 1)
    report.figures["checkouts_attempted"] = len(ledger)
    out = ROOT / "reports" / "chaos"
    out.mkdir(parents=True, exist_ok=True)
    summary = {"results": [asdict(r) for r in report.results], "figures": report.figures}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n" + report.table())
    verdict = "PASSED" if report.passed else "FAILED"
    print(f"\nchaos: {verdict} in {report.figures['seconds']} s; {out / 'summary.json'}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
