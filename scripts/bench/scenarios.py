"""The bench's Locust parts: each runs one scenario of locustfiles/ against one side and records its figures.

Latencies are Locust's own percentiles from its stats CSV; orders/s, oversold seats and the like are the figures
the scenario prints at quit (locustfiles/gates.py writes them to its summary).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.bench.targets import CATALOG_READS, Side
from scripts.lib.locust import ScenarioRun, run_scenario
from scripts.lib.serve import Served


@dataclass
class Part:
    """One scenario run against one side: where its output goes and how long its shapes are."""

    side: Side
    served: Served
    out: Path
    quick: bool

    def run(self, scenario: str, settings: dict[str, str]) -> ScenarioRun:
        served = self.served
        return run_scenario(
            scenario, host=served.url, out_dir=self.out, settings=settings, token=served.token, label=self.side.name
        )


def number(value: object) -> float | None:
    try:
        return float(str(value).split()[0])
    except (ValueError, IndexError):
        return None


def catalog(part: Part) -> None:
    run = part.run("catalog", {"USERS": "50", "DURATION": "30s" if part.quick else "2m", "TARGET_P95_MS": "50"})
    for name in CATALOG_READS:
        part.side.figures[f"catalog {name} p95 at 50 users"] = run.p95(name, "GET")
    part.side.figures["catalog reads failures"] = run.failures


def happy_path(part: Part) -> None:
    run = part.run("happy_path", {"USERS": "10", "DURATION": "30s" if part.quick else "2m", "TARGET_P95_MS": "50"})
    part.side.figures["happy path p95 at 10 users"] = run.p95()
    part.side.figures["happy path failures"] = run.failures


def html_flow(part: Part) -> None:
    run = part.run("html_flow", {"USERS": "20", "DURATION": "20s" if part.quick else "60s"})
    part.side.figures["HTML purchase flow, 20 buyers"] = number(run.figure("orders/s"))
    part.side.figures["HTML purchase flow failures"] = run.failures


def stress(part: Part) -> None:
    run = part.run("stress", {"USERS": "100", "DURATION": "60s" if part.quick else "7m"})
    part.side.figures["stress p95 at 100 users"] = run.p95()
    part.side.figures["stress failures"] = 100 * (run.failures or 0) / run.requests if run.requests else None
    sizes = list(part.served.worker_rss_mb().values())
    part.side.figures["gunicorn worker RSS after stress (max)"] = max(sizes) if sizes else None
    part.side.notes["gunicorn worker RSS after stress (max)"] = f"{len(sizes)} workers"


def flash_sale(part: Part) -> None:
    seats, buyers = ("300", "900") if part.quick else ("1000", "3000")
    run = part.run("flash_sale", {"FLASH_SEATS": seats, "FLASH_BUYERS": buyers, "USERS": buyers})
    figures = part.side.figures
    figures["flash sale completed orders/s"] = number(run.figure("orders/s"))
    figures["flash sale p95 checkout"] = number(run.figure("p95 /api/checkout"))
    figures["flash sale oversold seats"] = number(run.figure("oversold"))
    figures["flash sale 5xx responses"] = number(run.summary.get("checks", {}).get("5xx"))
    part.side.notes["flash sale completed orders/s"] = f"{seats} seats, {buyers} buyers"
    # The email worker yields the CPU to web requests (EMAIL_WORKER_NICE): how long the buyers' confirmations waited
    # behind the rush. Waiting here also keeps them off the next side's measurement.
    started = time.monotonic()
    while (emails := part.served.emails())["pending"] and time.monotonic() - started < 600:
        time.sleep(1)
    figures["confirmation emails drained after the flash sale"] = time.monotonic() - started
    part.side.notes["confirmation emails drained after the flash sale"] = (
        f"{emails['sent']} sent, {emails['pending']} pending"
    )


PARTS: dict[str, Callable[[Part], None]] = {
    "happy_path": happy_path,
    "html_flow": html_flow,
    "stress": stress,
    "flash_sale": flash_sale,
}
