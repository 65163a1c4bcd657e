"""End-to-end proof of the monitoring (`make monitoring-check`): the shop under gunicorn with several workers on
its own PostgreSQL database, scraped by a real Prometheus that loads the real rule file.

It drives known traffic (2xx, 4xx, real 5xx from the fault-injection view, checkouts, probes that must not count),
then asserts through Prometheus' HTTP API (scripts/monitoring/checks.py) that
- the request counters equal exactly the requests sent, by status (multiprocess aggregation: the requests were
  served by several workers, every scrape sums them all);
- the business metrics match what was bought and the database (tickets sold, orders, outcomes, seats remaining);
- every `sli:*` and `slo:*` series exists with sane values (the error rate equals the 5xx share sent);
- every rule evaluates without error and the fast-burn alert fires on that error rate;
- every query of the Grafana dashboard runs and returns data.
Everything it starts (gunicorn, Prometheus, the database, temporary directories) is stopped or removed at the end.
Loopback only, bounded in time (about a minute).

    python -m scripts.monitoring.check_e2e [--rounds 24] [--faults 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from scripts.lib import postgres
from scripts.lib.http import get
from scripts.lib.processes import free_port
from scripts.lib.serve import served
from scripts.lib.wait import TimedOutError, wait_for
from scripts.monitoring import checks, dashboard
from scripts.monitoring.checks import CheckFailedError, expect, log
from scripts.monitoring.prometheus import JOB, running_prometheus
from scripts.monitoring.traffic import Traffic, drive

DATABASE = "aegistickets_monitoring_check"
WORKERS = 3
DEADLINE_SECONDS = 170
STALE = "counter_999999.db"  # a metrics file "from an earlier run": gunicorn's on_starting must remove it


def app_env(workdir: Path) -> dict[str, str]:
    return {
        "WEB_CONCURRENCY": str(WORKERS),
        "FAULT_INJECTION_ENABLED": "true",
        "CATALOG_CACHE_SECONDS": "0",
        "METRICS_DB_CACHE_SECONDS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus-multiproc"),
        "GUNICORN_ACCESS_LOG": str(workdir / "access.log"),
        "GUNICORN_ACCESS_LOG_FORMAT": "text",
        "GUNICORN_CMD_ARGS": "--access-logformat '%(p)s %(s)s %(m)s %(U)s'",  # which worker answered what
    }


def check(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="aegistickets-monitoring-check-"))
    (workdir / "prometheus-multiproc").mkdir()
    (workdir / "prometheus-multiproc" / STALE).write_bytes(b"stale")
    app_port, prom_port = free_port(18140, 18149), free_port(18150, 18159)
    database_url = postgres.url(DATABASE)
    try:
        with (
            served(port=app_port, database_url=database_url, env=app_env(workdir), email_worker=False) as shop,
            running_prometheus(
                port=prom_port, target=f"127.0.0.1:{app_port}", rules=dashboard.RULES, workdir=workdir
            ) as prom,
        ):
            expect(
                not (workdir / "prometheus-multiproc" / STALE).exists(),
                "gunicorn's on_starting emptied the metrics directory",
            )
            status = get(f"{shop.url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status
            expect(status == 403, f"/metrics through a proxy (X-Forwarded-For) is refused ({status})")
            wait_for("the first successful scrape", lambda: prom.value(f'up{{job="{JOB}"}}') == 1.0)

            traffic = Traffic(shop.url)
            # Warm-up: one response of each status class, so that every series exists before the measured phase.
            for path in ("/api/events", "/api/events/999999999", "/api/_fault"):
                traffic.send("GET", path)
            warm = traffic.by_status.copy()
            wait_for("Prometheus to scrape the warm-up", lambda: prom.value(checks.TOTAL) == traffic.total)
            time.sleep(2.5)
            log("driving traffic")
            bought = drive(traffic, faults=args.faults, rounds=args.rounds)
            share = traffic.share_5xx(since=warm)
            log(f"sent {traffic.total} counted requests {dict(traffic.by_status)}, {traffic.untracked} probes")

            checks.exact_totals(prom, traffic, shop.url, workdir / "access.log")
            checks.business_metrics(prom, bought, database_url)
            measured = checks.slis(prom, share)
            fired = checks.rules_and_alerts(prom)
            checks.dashboard_queries(prom)
            expect(get(f"{shop.url}/healthz").status == 200, "gunicorn is still serving")
            log("measured: " + json.dumps(checks.summary(traffic, share, measured, bought, fired)))
    finally:
        postgres.drop_database(database_url)
        shutil.rmtree(workdir, ignore_errors=True)


def _stop(signum: int, frame: Any) -> None:
    raise CheckFailedError(f"stopped by signal {signum} (deadline {DEADLINE_SECONDS} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=24, help="traffic rounds (13 requests each)")
    parser.add_argument("--faults", type=int, default=30, help="requests to the 5xx fault view")
    args = parser.parse_args()
    missing = [tool for tool in ("prometheus", "pg_isready", "psql") if shutil.which(tool) is None]
    if missing:
        print(f"{', '.join(missing)} not found: scripts/monitoring/install_prometheus.sh, PostgreSQL", file=sys.stderr)
        return 2
    started = time.monotonic()
    deadline = threading.Timer(DEADLINE_SECONDS, lambda: os.kill(os.getpid(), signal.SIGTERM))
    deadline.daemon = True
    deadline.start()
    signal.signal(signal.SIGTERM, _stop)
    try:
        check(args)
    except (CheckFailedError, TimedOutError) as failure:
        print(f"\nmonitoring-check FAILED after {time.monotonic() - started:.0f} s: {failure}", file=sys.stderr)
        return 1
    print(f"\nmonitoring-check passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
