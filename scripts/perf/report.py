"""`make perf-report [FULL=1]`: serve the shop under gunicorn on PostgreSQL behind the ingress, run the Locust
scenarios, and write reports/performance-report.md and .html: per scenario the SLO gates, its figures, latency and
success per endpoint (Locust's stats CSV) and plots over time (Locust's stats history).

Short shapes by default (about 3 minutes of load and setup); FULL=1 runs the full shapes and a flash sale of 1000
seats for 3000 buyers. Locust's own output (CSV, HTML report, log) stays in reports/perf-<time>/. Exit code 1 when a
scenario failed a gate or a run broke; the report is written either way.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from scripts.lib import postgres
from scripts.lib.locust import ScenarioRun, number, run_scenario
from scripts.lib.serve import served
from scripts.lib.source import ROOT, git
from scripts.perf import document
from scripts.perf.document import Block
from scripts.perf.plots import plot

REPORTS = ROOT / "reports"
PORT = 18120
DATABASE = "aegistickets_perf_report"
SHORT = {
    "catalog": {"DURATION": "30s"},  # 10 s ramp to 50 browsing users, then 50, squeezed
    "happy_path": {"DURATION": "30s"},  # the 2-minute shape squeezed: ramp to 10, hold, ramp down
    "stress": {"DURATION": "60s"},  # the 7-minute shape squeezed, peak 100 users
    "html_flow": {"DURATION": "30s", "USERS": "20"},
    "flash_sale": {"FLASH_SEATS": "300", "FLASH_BUYERS": "900", "FLASH_MAX_SECONDS": "120"},
}
FULL = {
    "catalog": {},
    "happy_path": {},
    "stress": {},
    "html_flow": {"DURATION": "60s", "USERS": "20"},
    "flash_sale": {"FLASH_SEATS": "1000", "FLASH_BUYERS": "3000", "FLASH_MAX_SECONDS": "600"},
}


@dataclass
class ServerFacts:
    workers: int = 0
    rss_after_stress_mb: list[float] = field(default_factory=list)
    deadlocks: int | None = None


def ms(value: str | None) -> str:
    parsed = number(value)
    return "n/a" if parsed is None else f"{parsed:.0f}"


def latency_table(run: ScenarioRun) -> Block:
    headers = ["endpoint", "requests", "failures", "success", "avg ms", "median", "p90", "p95", "p99", "max", "req/s"]
    rows = []
    for row in run.csv_rows("stats"):
        requests, failures = int(row["Request Count"]), int(row["Failure Count"])
        success = f"{100 * (requests - failures) / requests:.2f} %" if requests else "n/a"
        name = "all requests" if row["Name"] == "Aggregated" else f"{row['Type']} {row['Name']}"
        timings = [ms(row[column]) for column in ("Average Response Time", "50%", "90%", "95%", "99%")]
        rows.append([name, requests, failures, success, *timings, ms(row["Max Response Time"]), row["Requests/s"][:6]])
    return ("table", headers, rows)


def scenario_blocks(run: ScenarioRun, image: Path | None) -> list[Block]:
    blocks: list[Block] = [
        ("h2", f"{run.scenario}: {'PASS' if run.returncode == 0 else 'FAIL'}"),
        (
            "p",
            f"Settings: {', '.join(f'{k}={v}' for k, v in run.settings.items()) or 'the full shape'}; "
            f"{run.seconds:.0f} s; Locust exit code {run.returncode}; Locust's own report: "
            f"{run.html.relative_to(REPORTS)}, CSV files {run.prefix.relative_to(REPORTS)}_*.csv.",
        ),
    ]
    if not run.summary:
        return [*blocks, ("p", "The scenario wrote no summary; its log:"), ("pre", run.gate_report())]
    gates = [[f"{g['label']} ({g['kind']})", g["target"], g["actual"], g["result"]] for g in run.summary["gates"]]
    checks = run.summary.get("checks", {})
    figures = {str(k): v for k, v in run.summary.get("figures", {}).items()}
    figures |= {
        "requests": run.requests,
        "failed requests": run.failures,
        "throughput (req/s)": f"{run.rps or 0:.1f}",
        "checks passed": f"{checks.get('total', 0) - checks.get('failed', 0)} / {checks.get('total', 0)}",
        "5xx responses": checks.get("5xx"),
    }
    blocks += [
        ("h3", "SLO gates"),
        ("table", ["SLO", "target", "actual", "PASS/FAIL"], gates),
        ("h3", "Flash-sale integrity (read from the books)" if run.scenario == "flash_sale" else "Figures"),
        ("table", ["figure", "value"], [[k, v] for k, v in figures.items()]),
        ("h3", "Latency and success per endpoint"),
        ("p", "Milliseconds; percentiles as Locust computes them (rounded to 2 significant digits)."),
        latency_table(run),
    ]
    failures = run.csv_rows("failures")
    if failures:
        rows = [[f["Method"], f["Name"], f["Error"], f["Occurrences"]] for f in failures]
        blocks += [("h3", "Failures"), ("table", ["method", "name", "error", "count"], rows)]
    if image:
        blocks.append(("img", image.relative_to(REPORTS), f"{run.scenario}: latency percentiles and requests/s"))
    return blocks


def summary_row(run: ScenarioRun) -> list[object]:
    gates = run.summary.get("gates", [])
    p95 = next((g["actual"] for g in gates if "p95" in g["label"]), "n/a")
    failed = [g["label"] for g in gates if g["result"] == "FAIL"]
    failed_pct = f"{100 * (run.failures or 0) / run.requests:.2f} %" if run.requests else "n/a"
    verdict = ", ".join(failed) or ("none" if run.summary else f"no summary (exit code {run.returncode})")
    result = "PASS" if run.returncode == 0 else "FAIL"
    return [run.scenario, result, run.requests, f"{run.rps or 0:.1f}", p95, failed_pct, verdict]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    return f"{os.cpu_count()} × {cpu}"


def blocks(runs: list[ScenarioRun], facts: ServerFacts, *, full: bool, out_dir: Path) -> list[Block]:
    command = f"make perf-report{' FULL=1' if full else ''}"
    rss = ", ".join(f"{size:.0f}" for size in facts.rss_after_stress_mb) or "n/a"
    server = [
        ["gunicorn workers", facts.workers],
        ["worker RSS after the stress run (MB, target < 150)", rss],
        ["deadlocks PostgreSQL detected during the runs (pg_stat_database)", facts.deadlocks],
    ]
    head = ["scenario", "result", "requests", "req/s", "p95", "failed", "failed gates"]
    out: list[Block] = [
        ("h1", "AegisTickets performance report"),
        (
            "p",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · commit {git('rev-parse', '--short', 'HEAD')} · "
            f"{'full' if full else 'short'} run (`{command}`) · {machine()} · gunicorn -c gunicorn.conf.py with "
            f"{facts.workers} workers on PostgreSQL behind nginx (the ingress), Locust (FastHttpUser) on the same "
            "machine, rate limits off.",
        ),
        ("h2", "Summary"),
        ("table", head, [summary_row(run) for run in runs]),
        ("table", ["server", "value"], server),
    ]
    for run in runs:
        image = out_dir / f"{run.scenario}.png"
        out += scenario_blocks(run, image if plot(run, image) else None)
    reproduce = f"`{command}` (this report), or against a running server: `make loadtest SCENARIO=<name> HOST=…`."
    return [*out, ("h2", "How to reproduce"), ("p", reproduce)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full shapes and a 1000-seat / 3000-buyer flash sale")
    parser.add_argument("--scenarios", default=",".join(SHORT), help="comma-separated subset, in this order")
    args = parser.parse_args()
    plan = FULL if args.full else SHORT
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    if unknown := set(chosen) - set(plan):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    out_dir = REPORTS / f"perf-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    started = time.monotonic()
    runs: list[ScenarioRun] = []
    facts = ServerFacts()
    database_url = postgres.url(DATABASE)
    with served(port=PORT, database_url=database_url, env={"LOG_LEVEL": "error"}, ingress=True) as shop:
        print(f"serving {shop.url} ({time.monotonic() - started:.0f} s to set up)", flush=True)
        facts.workers = len(shop.worker_pids())
        deadlocks_before = postgres.deadlocks(database_url)
        for scenario in chosen:
            runs.append(
                run_scenario(scenario, host=shop.url, out_dir=out_dir, settings=plan[scenario], token=shop.token)
            )
            if scenario == "stress":
                facts.rss_after_stress_mb = list(shop.worker_rss_mb().values())
        facts.deadlocks = postgres.deadlocks(database_url) - deadlocks_before
    report = blocks(runs, facts, full=args.full, out_dir=out_dir)
    markdown, html = REPORTS / "performance-report.md", REPORTS / "performance-report.html"
    markdown.write_text(document.markdown(report))
    html.write_text(document.page(report, title="AegisTickets performance report", base=REPORTS))
    failed = [run.scenario for run in runs if run.returncode != 0]
    print(
        f"wrote {markdown.relative_to(ROOT)} and {html.relative_to(ROOT)} (Locust's output: "
        f"{out_dir.relative_to(ROOT)}) in {time.monotonic() - started:.0f} s; failed: {', '.join(failed) or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
