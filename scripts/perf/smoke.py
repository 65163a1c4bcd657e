"""`make loadtest-smoke` (CI): every Locust scenario, briefly (under 60 s of load in all), against the shop served
by gunicorn on PostgreSQL behind the ingress. Fails on any 5xx, failed check or request, or oversold seat; never on
timings (LOADTEST_MODE=smoke turns the latency and rate gates into figures)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from scripts.lib import postgres
from scripts.lib.locust import run_scenario
from scripts.lib.serve import served
from scripts.lib.source import ROOT

PORT = 18130
DATABASE = "aegistickets_smoke"
# Seconds of load: 6 + 10 + 12 + 8 + a flash sale that ends when its 90 buyers have their answer (a few seconds).
SMOKE = {
    "catalog": {"DURATION": "6s", "USERS": "10"},
    "happy_path": {"DURATION": "10s", "USERS": "5"},
    "stress": {"DURATION": "12s", "USERS": "20"},
    "html_flow": {"DURATION": "8s", "USERS": "5"},
    "flash_sale": {"FLASH_SEATS": "30", "FLASH_BUYERS": "90", "FLASH_MAX_SECONDS": "20"},
}
QUIET = {"LOG_LEVEL": "error"}  # 409 sold-out answers are logged as warnings: thousands of lines


def main() -> int:
    out_dir = ROOT / "reports" / f"smoke-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    started = time.monotonic()
    with served(port=PORT, database_url=postgres.url(DATABASE), env=QUIET, ingress=True) as shop:
        print(f"serving {shop.url} ({time.monotonic() - started:.0f} s to set up)", flush=True)
        runs = [
            run_scenario(
                name,
                host=shop.url,
                out_dir=out_dir,
                settings={**settings, "LOADTEST_MODE": "smoke"},
                token=shop.token,
                timeout=120,
            )
            for name, settings in SMOKE.items()
        ]
    for run in runs:
        print(f"{run.scenario:<11} exit {run.returncode}  {run.seconds:5.1f} s  {run.requests} requests")
    failed = [run.scenario for run in runs if run.returncode != 0]
    load = sum(run.seconds for run in runs)
    print(f"load-test smoke: {load:.0f} s of Locust runs; failed: {', '.join(failed) or 'none'} (output: {out_dir})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
