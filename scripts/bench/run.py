"""`make bench`: every speed target of the shop, measured in one run, printed as target | measured | PASS/FAIL.

One gunicorn (gunicorn.conf.py, the settings CI and the image use) on a fresh PostgreSQL database, one
load generator on the same box. Throughput is judged as a ratio to a trivial Django view (/healthz: a small
JSON body through the whole middleware stack) measured by the same tool in the same run, because this
machine is shared and its absolute speed varies. wrk measures the catalog reads; Locust (locustfiles/)
drives the purchase scenarios. Loopback only; everything stops by itself.

    python -m scripts.bench.run [--quick] [--only PART[,PART…]] [--out reports/bench-<time>]

PART is one of catalog, happy_path, html_flow, stress, flash_sale (default: all, in that order). `--only
flash_sale` measures the rush on fresh workers; in the full run it comes last, after the stress run.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scripts.perf.harness import ROOT, ServedApp, nginx_path, served_app
from scripts.perf.locust_run import ScenarioRun, run_scenario

WRK_REPORT = ROOT / "scripts" / "bench" / "wrk_report.lua"
ROUNDS = 3  # wrk runs per catalog endpoint; the median counts
PG_LOG = Path("/var/log/postgresql")
TOOLS = {"wrk": "wrk", "nginx": "nginx-light"}  # the Debian packages
PARTS = ("catalog", "happy_path", "html_flow", "stress", "flash_sale")
DEADLOCKS_SQL = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"


@dataclass
class Target:
    name: str
    target: str
    measured: str
    passed: bool | None  # None: could not be measured
    info: bool = False  # a figure printed for context, not a target: never fails the bench

    @property
    def verdict(self) -> str:
        if self.info:
            return "INFO"
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


def wrk(url: str, *, seconds: int, connections: int) -> dict[str, float]:
    """wrk with a Lua reporter: throughput, p50/p95/p99 and errors as one JSON line."""
    out = subprocess.run(  # noqa: S603 - fixed argv, loopback URL
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(WRK_REPORT), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return json.load(response)


def psql(database_url: str, sql: str) -> str:
    return subprocess.run(  # noqa: S603 - fixed argv
        ["psql", database_url, "-tAc", sql], capture_output=True, text=True, check=True
    ).stdout.strip()


def pg_log_size() -> dict[Path, int]:
    return {path: path.stat().st_size for path in PG_LOG.glob("postgresql-*.log")} if PG_LOG.exists() else {}


def pg_log_deadlocks(since: dict[Path, int]) -> int:
    found = 0
    for path, offset in since.items():
        with path.open("rb") as handle:
            handle.seek(offset)
            found += handle.read().count(b"deadlock detected")
    return found


def catalog_targets(app: ServedApp, *, seconds: int) -> tuple[list[Target], list[dict]]:
    event = get_json(f"{app.url}/api/events")["events"][0]
    paths = {
        "trivial view (/healthz)": "/healthz",
        "GET /api/events": "/api/events",
        "GET /api/events/{id}": f"/api/events/{event['id']}",
        "GET /": "/",
        "GET /events/<slug>/": f"/events/{event['slug']}/",
    }
    # Three interleaved rounds, each endpoint's median kept: this machine is shared, and one bad 10 s round (another
    # tenant's burst; before gunicorn.conf.py spread worker recycling, several workers rebooting at once) must not
    # decide a ratio. Every round is printed.
    runs: dict[str, list[dict]] = {label: [] for label in paths}
    for round_number in range(1, ROUNDS + 1):
        for label, path in paths.items():
            result = wrk(f"{app.url}{path}", seconds=seconds, connections=50)
            runs[label].append(result)
            print(
                f"  round {round_number}: {label:28s} {result['rps']:8.0f} req/s  p95 {result['p95_ms']:7.1f} ms  "
                f"non-2xx {result['non_2xx_3xx']}  socket errors {result['socket_errors']}",
                flush=True,
            )
    rows = []
    for label, results in runs.items():
        middle = sorted(results, key=lambda r: r["rps"])[len(results) // 2]
        row = dict(middle)
        row["label"] = label
        row["rps_all"] = [round(r["rps"]) for r in results]
        row["non_2xx_3xx"] = sum(r["non_2xx_3xx"] for r in results)
        row["socket_errors"] = sum(r["socket_errors"] for r in results)
        rows.append(row)
    baseline = rows[0]["rps"]
    targets = []
    for row in rows[1:]:
        ratio = row["rps"] / baseline
        clean = row["non_2xx_3xx"] == 0 and row["socket_errors"] == 0
        targets.append(
            Target(
                f"{row['label']} throughput vs trivial view",
                ">= 60%",
                f"{ratio:.0%} ({row['rps']:.0f} req/s, median of {row['rps_all']})",
                ratio >= 0.6 and clean,
            )
        )
    # Closed loop (each connection sends its next request the moment the last one is answered) is a throughput
    # test: its latency is queueing, bounded below by connections / throughput (Little's law), for the trivial
    # view too. Printed for context; the latency target is measured with users who browse (catalog scenario).
    for row in rows:
        targets.append(
            Target(
                f"{row['label']} p95, 50 connections without think time",
                "(context)",
                f"{row['p95_ms']:.1f} ms",
                None,
                info=True,
            )
        )
    return targets, rows


def aggregated_p95(run: ScenarioRun) -> float | None:
    """p95 over every request of the run, from Locust's own stats CSV."""
    for row in run.csv_rows("stats"):
        if row.get("Name") == "Aggregated" and row.get("95%") not in (None, "", "N/A"):
            return float(row["95%"])
    return None


def step_p95(run: ScenarioRun, name: str, method: str = "GET") -> float | None:
    """p95 of one named request, from Locust's own stats CSV."""
    for row in run.csv_rows("stats"):
        if row.get("Name") == name and row.get("Type") == method and row.get("95%") not in (None, "", "N/A"):
            return float(row["95%"])
    return None


def _number(text: object) -> float | None:
    match = re.search(r"-?\d+(\.\d+)?", str(text))
    return float(match.group(0)) if match else None


def figure(run: ScenarioRun, name: str) -> float | None:
    return _number(run.summary.get("figures", {}).get(name))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke of the bench itself)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "reports" / f"bench-{datetime.now().astimezone():%Y%m%d-%H%M%S}"
    )
    parser.add_argument(
        "--only",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        default=list(PARTS),
        help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all)",
    )
    args = parser.parse_args()
    unknown = sorted(set(args.only) - set(PARTS))
    if unknown or not args.only:
        parser.error(f"--only takes some of {', '.join(PARTS)}; not {', '.join(unknown) or 'nothing'}")
    tools = (("wrk", shutil.which("wrk") if "catalog" in args.only else "not needed"), ("nginx", nginx_path()))
    missing = [tool for tool, found in tools if not found]
    if missing:
        print(f"make bench needs {' and '.join(missing)}: apt-get install {' '.join(TOOLS[t] for t in missing)}")
        return 2
    quick = args.quick
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    targets: list[Target] = []
    wrk_rows: list[dict] = []
    started = time.monotonic()
    command = "python -m scripts.bench.run" + (" --quick" if quick else "")
    if args.only != list(PARTS):
        command += f" --only {','.join(args.only)}"

    with served_app(port=18200, database="aegistickets_bench", ingress=True) as app:
        deadlocks_before = int(psql(app.database_url, DEADLOCKS_SQL))
        log_offsets = pg_log_size()
        workers = app.worker_pids()
        print(f"gunicorn {app.gunicorn_pid} with {len(workers)} workers at {app.url}", flush=True)

        def scenario(name: str, settings: dict[str, str]) -> ScenarioRun:
            return run_scenario(name, host=app.url, out_dir=out, token=app.token, settings=settings)

        if "catalog" in args.only:
            print("\n== catalog reads (wrk, 50 connections)", flush=True)
            catalog, wrk_rows = catalog_targets(app, seconds=5 if quick else 10)
            targets += catalog

            print("\n== catalog reads, 50 browsing users (Locust)", flush=True)
            browse = scenario("catalog", {"USERS": "50", "DURATION": "30s" if quick else "2m", "TARGET_P95_MS": "50"})
            for name in ("/", "/api/events", "/events/[slug]/", "/api/events/[id]"):
                p95 = step_p95(browse, name)
                targets.append(
                    Target(f"catalog GET {name} p95 at 50 users", "< 50 ms", f"{p95} ms", p95 is not None and p95 < 50)
                )
            failed = browse.summary.get("failures")
            targets.append(Target("catalog reads failures", "0", str(failed), failed == 0))
        if "happy_path" in args.only:
            print("\n== happy path, 10 users (Locust)", flush=True)
            happy = scenario("happy_path", {"USERS": "10", "DURATION": "30s" if quick else "2m", "TARGET_P95_MS": "50"})
            p95 = aggregated_p95(happy)
            failed = happy.summary.get("failures")
            targets.append(Target("happy path p95 at 10 users", "< 50 ms", f"{p95} ms", p95 is not None and p95 < 50))
            targets.append(Target("happy path failures", "0", str(failed), failed == 0))
        if "html_flow" in args.only:
            print("\n== HTML purchase flow, 20 buyers without think time (Locust)", flush=True)
            html = scenario("html_flow", {"USERS": "20", "DURATION": "20s" if quick else "60s"})
            rate = figure(html, "orders/s")
            targets.append(
                Target(
                    "HTML purchase flow, 20 buyers",
                    ">= 30 orders/s",
                    f"{rate} orders/s",
                    rate is not None and rate >= 30 and html.summary.get("failures") == 0,
                )
            )
        if "stress" in args.only:
            print("\n== stress, 100 users (Locust)", flush=True)
            stress = scenario("stress", {"USERS": "100", "DURATION": "60s" if quick else "7m"})
            p95 = aggregated_p95(stress)
            requests, failures = stress.summary.get("requests") or 0, stress.summary.get("failures")
            failure_pct = 100 * (failures or 0) / requests if requests else None
            targets.append(Target("stress p95 at 100 users", "< 200 ms", f"{p95} ms", p95 is not None and p95 < 200))
            targets.append(
                Target(
                    "stress failures",
                    "< 0.1%",
                    f"{failure_pct:.3f}%" if failure_pct is not None else "n/a",
                    failure_pct is not None and failure_pct < 0.1,
                )
            )
            sizes = list(app.worker_rss_mb().values())
            targets.append(
                Target(
                    "gunicorn worker RSS after stress",
                    "< 150 MB",
                    f"max {max(sizes):.0f} MB of {len(sizes)} workers" if sizes else "n/a",
                    bool(sizes) and max(sizes) < 150,
                )
            )
        if "flash_sale" in args.only:
            print("\n== flash sale (Locust)", flush=True)
            seats, buyers = ("300", "900") if quick else ("1000", "3000")
            flash = scenario("flash_sale", {"FLASH_SEATS": seats, "FLASH_BUYERS": buyers, "USERS": buyers})
            rate = figure(flash, "orders/s")
            oversold = figure(flash, "oversold")
            checkout_p95 = figure(flash, "p95 /api/checkout")
            five_xx = flash.summary.get("checks", {}).get("responses_5xx")
            label = f"flash sale {seats} seats / {buyers} buyers"
            made = rate is not None and rate >= 100
            targets.append(Target(f"{label}: completed orders/s", ">= 100", f"{rate}", made))
            targets.append(
                Target(
                    f"{label}: p95 checkout",
                    "< 500 ms",
                    f"{checkout_p95} ms",
                    checkout_p95 is not None and checkout_p95 < 500,
                )
            )
            targets.append(Target(f"{label}: oversold seats", "0", f"{oversold}", oversold == 0))
            targets.append(Target(f"{label}: 5xx responses", "0", f"{five_xx}", five_xx == 0))
            # The email worker yields the CPU to web requests (EMAIL_WORKER_NICE): how long the buyers' confirmations
            # waited behind the rush.
            drain_started = time.monotonic()
            while (emails := app.emails())["pending"] and time.monotonic() - drain_started < 600:
                time.sleep(1)
            targets.append(
                Target(
                    "confirmation emails sent after the flash sale",
                    "context",
                    f"{emails['sent']} sent, {emails['pending']} pending, "
                    f"{time.monotonic() - drain_started:.0f} s later",
                    None,
                    info=True,
                )
            )

        deadlocks = int(psql(app.database_url, DEADLOCKS_SQL)) - deadlocks_before + pg_log_deadlocks(log_offsets)
        targets.append(Target("deadlocks in PostgreSQL (stats + log)", "0", str(deadlocks), deadlocks == 0))

    width = max(len(t.name) for t in targets)
    lines = [
        f"{'target'.ljust(width)} | goal           | measured                      | result",
        f"{'-' * width}-|----------------|-------------------------------|-------",
    ]
    lines += [f"{t.name.ljust(width)} | {t.target:14s} | {t.measured:29s} | {t.verdict}" for t in targets]
    table = "\n".join(lines)
    print("\n" + table, flush=True)
    passed = all(t.passed for t in targets if not t.info)
    (out / "bench.md").write_text(
        f"# Benchmark {datetime.now().astimezone():%Y-%m-%d %H:%M}\n\n"
        f"`{command}` ({time.monotonic() - started:.0f} s)\n\n"
        f"```\n{table}\n```\n\nwrk rows:\n\n```json\n"
        f"{json.dumps(wrk_rows, indent=1)}\n```\n"
    )
    (out / "bench.json").write_text(json.dumps([t.__dict__ for t in targets], indent=1))
    print(f"\n{'ALL TARGETS PASS' if passed else 'SOME TARGETS FAIL'}; report in {out}/bench.md", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
