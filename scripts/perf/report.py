"""`make perf-report [FULL=1]`: serve the shop under gunicorn on PostgreSQL, run the Locust scenarios, and
write reports/performance-report.md and .html (SLO tables, latency, throughput, per-endpoint success,
flash-sale integrity, plots of latency percentiles and requests/s over time).

Short versions by default (about 3 minutes of load and setup); FULL=1 runs the issue's full shapes and a
flash sale of 1000 seats for 3000 buyers. Raw Locust output (CSV, HTML, logs) stays in reports/perf-<time>/.
Exit code 1 when a scenario failed a gate or a run broke; the report is written either way.
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
from matplotlib.ticker import MaxNLocator  # noqa: E402

from scripts.perf.harness import served_app  # noqa: E402
from scripts.perf.locust_run import ROOT, ScenarioRun, run_scenario  # noqa: E402

REPORTS = ROOT / "reports"
PORT = 18120
DATABASE = "aegistickets_perf_report"  # not the harness default: `make bench` may be using that one

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


# --- measuring the server ---------------------------------------------------------------------------


def deadlocks(database: str) -> int | None:
    """PostgreSQL's own count of deadlocks detected in the database (pg_stat_database)."""
    query = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    argv = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAc", query]  # noqa: S607 - psql on PATH
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    return int(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip().isdigit() else None


# --- plots ------------------------------------------------------------------------------------------


def number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def plot(run: ScenarioRun, path: Path) -> bool:
    """Latency percentiles and requests/s over time (Aggregated rows of Locust's stats history)."""
    rows = [r for r in run.csv_rows("stats_history") if r["Name"] == "Aggregated"]
    if len(rows) < 2:
        return False
    start = int(rows[0]["Timestamp"])
    t = [int(r["Timestamp"]) - start for r in rows]
    users = [number(r["User Count"]) for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.4), sharex=True, constrained_layout=True)
    for column, style in (("50%", "-"), ("95%", "-"), ("99%", "--")):
        top.plot(t, [number(r[column]) for r in rows], style, label=f"p{column.rstrip('%')}", linewidth=1.6)
    top.set_ylabel("response time (ms)")
    top.set_title(f"{run.scenario}: latency percentiles (10 s window) and users")
    top.grid(alpha=0.3)
    top.set_ylim(bottom=0)
    top_users = top.twinx()
    top_users.plot(t, users, color="grey", alpha=0.5, linewidth=1, label="users")
    top_users.set_ylabel("users")
    top_users.set_ylim(bottom=0)
    top_users.yaxis.set_major_locator(MaxNLocator(integer=True))
    lines, labels = top.get_legend_handles_labels()
    more_lines, more_labels = top_users.get_legend_handles_labels()
    top.legend(lines + more_lines, labels + more_labels, loc="best", fontsize=9)
    bottom.plot(t, [number(r["Requests/s"]) for r in rows], label="requests/s", linewidth=1.6)
    bottom.plot(t, [number(r["Failures/s"]) for r in rows], label="failures/s", color="tab:red", linewidth=1.2)
    bottom.set_ylabel("per second")
    bottom.set_xlabel("seconds since start")
    bottom.set_title(f"{run.scenario}: throughput (Locust's rolling ~10 s average)")
    bottom.grid(alpha=0.3)
    bottom.set_ylim(bottom=0)
    bottom.legend(loc="best", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --- the document -----------------------------------------------------------------------------------

Block = tuple[Any, ...]  # ("h1"|"h2"|"h3"|"p"|"pre", text) | ("table", headers, rows) | ("img", path, alt)


def ms(value: str | float) -> str:
    number_ = number(value) if isinstance(value, str) else value
    return "n/a" if math.isnan(number_) else f"{number_:.0f}"


def latency_table(run: ScenarioRun) -> Block:
    headers = ["endpoint", "requests", "failures", "success", "avg ms", "median", "p90", "p95", "p99", "max", "req/s"]
    rows = []
    for r in run.csv_rows("stats"):
        requests, failures = int(r["Request Count"]), int(r["Failure Count"])
        success = f"{100 * (requests - failures) / requests:.2f} %" if requests else "n/a"
        name = "all requests" if r["Name"] == "Aggregated" else f"{r['Type']} {r['Name']}"
        rows.append(
            [
                name,
                str(requests),
                str(failures),
                success,
                ms(r["Average Response Time"]),
                ms(r["50%"]),
                ms(r["90%"]),
                ms(r["95%"]),
                ms(r["99%"]),
                ms(r["Max Response Time"]),
                f"{number(r['Requests/s']):.1f}",
            ]
        )
    return ("table", headers, rows)


def scenario_blocks(run: ScenarioRun, image: Path | None, relative_to: Path) -> list[Block]:
    summary = run.summary
    verdict = "PASS" if run.returncode == 0 else "FAIL"
    blocks: list[Block] = [
        ("h2", f"{run.scenario}: {verdict}"),
        (
            "p",
            f"Settings: {', '.join(f'{k}={v}' for k, v in run.settings.items()) or 'the full shape'}; "
            f"{run.seconds:.0f} s; Locust exit code {run.returncode}; raw output: "
            f"{run.out_dir.relative_to(relative_to)}/{run.scenario}*.",
        ),
    ]
    if not summary:
        return [*blocks, ("p", "The scenario wrote no summary; its log:"), ("pre", run.gate_report())]
    blocks.append(("h3", "SLO gates"))
    blocks.append(
        (
            "table",
            ["SLO", "target", "actual", "PASS/FAIL"],
            [[f"{g['label']} ({g['kind']})", g["target"], g["actual"], g["result"]] for g in summary["gates"]],
        )
    )
    figures = {k: v for k, v in summary.get("figures", {}).items() if not isinstance(v, dict | list)}
    checks = summary["checks"]
    figures.update(
        {
            "requests": summary["requests"],
            "failed requests": summary["failures"],
            "throughput (req/s)": f"{summary['rps']:.1f}",
            "checks passed": f"{checks['total'] - checks['failed']} / {checks['total']}",
            "5xx responses": checks["responses_5xx"],
            "transport errors": checks["transport_errors"],
            "expected refusals (sold out)": ", ".join(f"{k}: {v}" for k, v in checks["expected_refusals"].items())
            or "0",
        }
    )
    blocks.append(("h3", "Figures" if run.scenario != "flash_sale" else "Flash-sale integrity (read from the books)"))
    blocks.append(("table", ["figure", "value"], [[k, str(v)] for k, v in figures.items()]))
    blocks.append(("h3", "Latency and success per endpoint"))
    blocks.append(("p", "Milliseconds; percentiles as Locust computes them (rounded to 2 significant digits)."))
    blocks.append(latency_table(run))
    failures = run.csv_rows("failures")
    if failures:
        blocks.append(("h3", "Failures"))
        blocks.append(
            (
                "table",
                ["method", "name", "error", "count"],
                [[f["Method"], f["Name"], f["Error"], f["Occurrences"]] for f in failures],
            )
        )
    if image:
        blocks.append(("img", image.relative_to(relative_to), f"{run.scenario}: latency percentiles and requests/s"))
    return blocks


def render_markdown(blocks: list[Block]) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind in {"h1", "h2", "h3"}:
            out.append(f"{'#' * int(kind[1])} {block[1]}\n")
        elif kind == "p":
            out.append(f"{block[1]}\n")
        elif kind == "pre":
            out.append(f"```\n{block[1]}\n```\n")
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1].as_posix()})\n")
        elif kind == "table":
            headers, rows = block[1], block[2]

            def cells(row: list[str]) -> str:
                return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"

            out.append("\n".join([cells(headers), "|" + "---|" * len(headers), *(cells(r) for r in rows)]) + "\n")
    return "\n".join(out)


CSS = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0 1.2rem;font-size:13px}
th,td{border:1px solid #ccc;padding:.25rem .55rem;text-align:left}th{background:#f2f2f2}
td.PASS{background:#e3f6e3;font-weight:600}td.FAIL{background:#fbe0e0;font-weight:600}td.INFO{background:#eef}
img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:.6rem;overflow:auto}
"""


def render_html(blocks: list[Block], base: Path) -> str:
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>AegisTickets performance report</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in {"h1", "h2", "h3"}:
            out.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{html.escape(block[1])}</p>")
        elif kind == "pre":
            out.append(f"<pre>{html.escape(block[1])}</pre>")
        elif kind == "img":
            data = base64.b64encode((base / block[1]).read_bytes()).decode()
            out.append(f"<p><img alt='{html.escape(block[2])}' src='data:image/png;base64,{data}'></p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
            body = "".join(
                "<tr>" + "".join(f"<td class='{html.escape(str(c))}'>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in block[2]
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out)


@dataclass
class ServerFacts:
    workers: int
    rss_after_stress_mb: list[float]
    deadlocks_before: int | None
    deadlocks_after: int | None


def git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - read-only
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def document(runs: list[ScenarioRun], facts: ServerFacts, *, full: bool, out_dir: Path) -> list[Block]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    blocks: list[Block] = [
        ("h1", "AegisTickets performance report"),
        (
            "p",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · commit {git_commit()} · "
            f"{'full' if full else 'short'} run (`make perf-report{' FULL=1' if full else ''}`) · "
            f"{os.cpu_count()} × {cpu} · gunicorn -c gunicorn.conf.py with {facts.workers} workers on "
            f"PostgreSQL, Locust (FastHttpUser) on the same machine against 127.0.0.1, rate limits off.",
        ),
        ("h2", "Summary"),
    ]
    rows = []
    for run in runs:
        s = run.summary
        gates = s.get("gates", [])
        p95 = next((g["actual"] for g in gates if "p95" in g["label"]), "n/a")
        failed = [g["label"] for g in gates if g["result"] == "FAIL"]
        rows.append(
            [
                run.scenario,
                "PASS" if run.returncode == 0 else "FAIL",
                str(s.get("requests", "n/a")),
                f"{s['rps']:.1f}" if s else "n/a",
                p95,
                f"{100 * s['failures'] / s['requests']:.2f} %" if s.get("requests") else "n/a",
                ", ".join(failed) or ("none" if s else f"no summary (exit code {run.returncode})"),
            ]
        )
    blocks.append(("table", ["scenario", "result", "requests", "req/s", "p95", "failed", "failed gates"], rows))
    rss = ", ".join(f"{size:.0f}" for size in facts.rss_after_stress_mb) or "n/a"
    deadlocks_seen = (
        facts.deadlocks_after - facts.deadlocks_before
        if facts.deadlocks_after is not None and facts.deadlocks_before is not None
        else None
    )
    blocks.append(
        (
            "table",
            ["server", "value"],
            [
                ["gunicorn workers", str(facts.workers)],
                ["worker RSS after the stress run (MB, target < 150)", rss],
                [
                    "deadlocks PostgreSQL detected during the runs (pg_stat_database)",
                    "n/a" if deadlocks_seen is None else str(deadlocks_seen),
                ],
            ],
        )
    )
    for run in runs:
        image = out_dir / f"{run.scenario}.png"
        blocks += scenario_blocks(run, image if plot(run, image) else None, REPORTS)
    blocks.append(("h2", "How to reproduce"))
    blocks.append(
        (
            "p",
            f"`make perf-report{' FULL=1' if full else ''}` (this report), or against a running server: "
            "`make loadtest SCENARIO=<name> HOST=http://127.0.0.1:8000 [DURATION=.. USERS=..]`.",
        )
    )
    return blocks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full shapes and a 1000-seat / 3000-buyer flash sale")
    parser.add_argument("--scenarios", default=",".join(SHORT), help="comma-separated subset, in this order")
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    plan = FULL if args.full else SHORT
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(chosen) - set(plan)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    out_dir = REPORTS / f"perf-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    runs: list[ScenarioRun] = []
    with served_app(port=args.port, database=DATABASE, env={"LOG_LEVEL": "error"}, ingress=True) as app:
        print(f"serving {app.url} ({time.monotonic() - started:.0f} s to set up)", flush=True)
        workers = len(app.worker_pids())
        facts = ServerFacts(
            workers=workers, rss_after_stress_mb=[], deadlocks_before=deadlocks(DATABASE), deadlocks_after=None
        )
        for scenario in chosen:
            runs.append(run_scenario(scenario, host=app.url, out_dir=out_dir, settings=plan[scenario], token=app.token))
            if scenario == "stress":
                facts.rss_after_stress_mb = list(app.worker_rss_mb().values())
        facts.deadlocks_after = deadlocks(DATABASE)
    blocks = document(runs, facts, full=args.full, out_dir=out_dir)
    markdown, page = REPORTS / "performance-report.md", REPORTS / "performance-report.html"
    markdown.write_text(render_markdown(blocks))
    page.write_text(render_html(blocks, REPORTS))
    failed = [run.scenario for run in runs if run.returncode != 0]
    print(
        f"wrote {markdown.relative_to(ROOT)} and {page.relative_to(ROOT)} (raw: {out_dir.relative_to(ROOT)}) "
        f"in {time.monotonic() - started:.0f} s; failed: {', '.join(failed) or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
