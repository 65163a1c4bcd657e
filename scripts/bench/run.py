"""`make bench`: every speed target of the shop measured in one run, printed as target | goal | measured | result;
with `--compare REV`, the code of another commit measured in the same run, side by side.

The shop is served by gunicorn (its gunicorn.conf.py, the settings CI and the image use) on a fresh PostgreSQL
database behind nginx as the ingress, with the load generator on the same box. Throughput is judged against the
framework ceiling (scripts/bench/ceiling: one Django view, no apps, no middleware) served by the same gunicorn.conf.py
in the same run, because this machine is shared and its absolute speed varies: catalog routes are reported as
fractions of it, and /healthz must keep at least 0.8 of it. wrk measures the catalog reads (catalog.py); Locust
(locustfiles/) drives the purchase scenarios (scenarios.py). Loopback only; everything stops by itself.

With `--compare REV`, REV's code is exported with its own venv (scripts/lib/source.py, cached) and served beside
this tree's, each on its own database; every measurement is taken for both, one after the other (the order
alternating), with the Locust scenarios of this tree, and printed as figure | old | new | new/old.

    python -m scripts.bench.run [--quick] [--only PART[,PART…]] [--compare REV] [--out reports/bench-<time>]

PART is one of catalog, happy_path, html_flow, stress, flash_sale (default: all, in that order). `--only
flash_sale` measures the rush on fresh workers; in the full run it comes last, after the stress run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from scripts.bench import catalog, scenarios
from scripts.bench.targets import Side, comparison_table, judge, passed, targets_table
from scripts.lib import postgres
from scripts.lib.ingress import nginx_path
from scripts.lib.serve import Served, app_env, gunicorn, served
from scripts.lib.source import CURRENT, ROOT, Source, at_commit, git

PARTS = ("catalog", "happy_path", "html_flow", "stress", "flash_sale")
PORTS = {"new": 18200, "old": 18210}  # nginx; gunicorn on +1, its checkout lane on +2
CEILING_PORT = 18220
DATABASES = {"new": "aegistickets_bench", "old": "tool_bench_old"}
CEILING_APP = "scripts.bench.ceiling.wsgi:application"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke of the bench itself)")
    parser.add_argument("--compare", metavar="REV", help="also measure this commit's code, side by side")
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
    return args


def missing_tools(only: list[str]) -> list[str]:
    """The Debian packages to install first."""
    missing = [] if nginx_path() else ["nginx-light"]
    return missing + (["wrk"] if "catalog" in only and not shutil.which("wrk") else [])


def command(args: argparse.Namespace) -> str:
    text = "python -m scripts.bench.run" + (" --quick" if args.quick else "")
    text += f" --only {','.join(args.only)}" if args.only != list(PARTS) else ""
    return text + (f" --compare {args.compare}" if args.compare else "")


def measure(args: argparse.Namespace, sources: dict[str, Source], sides: list[Side]) -> None:
    """Serves every side (and the ceiling) and runs the chosen parts on each, the sides' order alternating."""
    with contextlib.ExitStack() as stack:
        shops: dict[str, Served] = {}
        for side in sides:
            database_url = postgres.url(DATABASES[side.name])
            shop = served(port=PORTS[side.name], database_url=database_url, source=sources[side.name], ingress=True)
            shops[side.name] = stack.enter_context(shop)
            print(f"{side.name}: {side.label} at {shops[side.name].url}", flush=True)
        deadlocks = {side.name: postgres.deadlocks(shops[side.name].database_url) for side in sides}
        log_offsets = postgres.log_offsets()
        schedule = [part for part in PARTS if part in args.only]
        for number, part in enumerate(schedule):
            order = sides if number % 2 == 0 else sides[::-1]
            print(f"\n== {part}", flush=True)
            settle(shops.values())
            if part == "catalog":
                ceiling_env = app_env("", DJANGO_SETTINGS_MODULE="scripts.bench.ceiling.settings")
                ceiling = gunicorn(
                    CURRENT, CEILING_APP, port=CEILING_PORT, env=ceiling_env, ingress=True, ready_path="/"
                )
                with ceiling:
                    ceiling_url = f"http://127.0.0.1:{CEILING_PORT}/"
                    catalog.measure(
                        ceiling_url, [(s, shops[s.name].url) for s in order], seconds=5 if args.quick else 10
                    )
            for side in order:
                settle(shops.values())
                run = scenarios.catalog if part == "catalog" else scenarios.PARTS[part]
                run(scenarios.Part(side=side, served=shops[side.name], out=args.out, quick=args.quick))
        for side in sides:
            database_url = shops[side.name].database_url
            found = postgres.deadlocks(database_url) - deadlocks[side.name]
            side.figures["deadlocks in PostgreSQL (stats + log)"] = found + postgres.logged_deadlocks(
                log_offsets, database_url
            )


def settle(shops: Iterable[Served], timeout: float = 300) -> None:
    """Waits until every served shop's email worker has sent what the previous part queued. A part that sells
    (html_flow sells thousands of orders a minute) leaves its side's worker building a PDF per ticket for a while
    after it: a part started meanwhile would measure that worker's load as well, on one side only."""
    deadline = time.monotonic() + timeout
    while any(shop.emails()["pending"] for shop in shops) and time.monotonic() < deadline:
        time.sleep(2)


def main() -> int:
    args = arguments()
    if missing := missing_tools(args.only):
        print(f"make bench needs: apt-get install {' '.join(missing)}")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    sources = {"new": CURRENT}
    new = Side("new", f"{git('rev-parse', '--short', 'HEAD')} + working tree")
    sides = [new]
    if args.compare:
        sources["old"] = at_commit(args.compare)
        sides.insert(0, Side("old", sources["old"].label))
    measure(args, sources, sides)

    report = [f"# Benchmark {datetime.now().astimezone():%Y-%m-%d %H:%M}", "", f"`{command(args)}`"]
    report[-1] += f" ({time.monotonic() - started:.0f} s)"
    if args.compare:
        report += ["", "## Old and new, same run", "", "```", comparison_table(sides[0], new), "```"]
    for side in sides:
        report += ["", f"## Targets, {side.name}: {side.label}", "", "```", targets_table(judge(side)), "```"]
    text = "\n".join(report) + "\n"
    print("\n" + text, flush=True)
    (args.out / "bench.md").write_text(text)
    (args.out / "bench.json").write_text(json.dumps([asdict(side) for side in sides], indent=1))
    ok = passed(judge(new))
    print(f"{'ALL TARGETS PASS' if ok else 'SOME TARGETS FAIL'}; report in {args.out}/bench.md", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
