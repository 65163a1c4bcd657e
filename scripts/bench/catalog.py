"""Catalog throughput with wrk, as a fraction of the framework ceiling measured in the same rounds.

Closed loop, 50 connections, no think time. Each round measures the ceiling, then each route on every side, a route's
sides back to back (their order alternating), and each figure is the median of its rounds: this machine is shared,
its speed drifts within seconds, and one bad round (another tenant's burst) must not decide a fraction. Every round
is printed. The closed loop's latency is queueing (bounded below by connections / throughput, Little's law), so its
p95 is printed for context only; the latency targets are measured with browsing users (the catalog Locust scenario).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from scripts.bench.targets import CEILING, ROUTES, Side
from scripts.bench.wrk import wrk
from scripts.lib.http import get_json

ROUNDS = 3


def route_urls(base: str) -> dict[str, str]:
    event = get_json(f"{base}/api/events")["events"][0]
    paths = ("/healthz", "/api/events", f"/api/events/{event['id']}", "/", f"/events/{event['slug']}/")
    return {route: f"{base}{path}" for route, path in zip(ROUTES, paths, strict=True)}


def measure(ceiling_url: str, sides: Sequence[tuple[Side, str]], *, seconds: int) -> None:
    """wrk rounds over the ceiling and each side's routes (side, its base URL); figures go to each side."""
    urls = {side.name: route_urls(base) for side, base in sides}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for number in range(1, ROUNDS + 1):
        plan = [("ceiling", CEILING, ceiling_url)]
        for index, route in enumerate(ROUTES):  # a route's sides back to back, so drift hits both alike
            order = sides if (number + index) % 2 else sides[::-1]
            plan += [(side.name, route, urls[side.name][route]) for side, _ in order]
        for name, route, url in plan:
            result = wrk(url, seconds=seconds)
            results.setdefault((name, route), []).append(result)
            shown = "one view, no middleware" if route == CEILING else route
            print(
                f"  round {number}: {name:7s} {shown:23s} {result['rps']:8.0f} req/s  p95 {result['p95_ms']:7.1f} ms  "
                f"non-2xx {result['non_2xx_3xx']}  socket errors {result['socket_errors']}",
                flush=True,
            )
    ceiling = statistics.median(r["rps"] for r in results[("ceiling", CEILING)])
    for side, _ in sides:
        side.figures[CEILING] = ceiling
        side.notes[CEILING] = "rounds " + ", ".join(f"{r['rps']:.0f}" for r in results[("ceiling", CEILING)])
        errors = 0.0
        for route in ROUTES:
            rounds = results[(side.name, route)]
            rps = statistics.median(r["rps"] for r in rounds)
            side.figures[f"{route} req/s"] = rps
            side.figures[f"{route} of ceiling"] = rps / ceiling if ceiling else None
            side.notes[f"{route} of ceiling"] = f"{rps:.0f} req/s; rounds " + ", ".join(
                f"{r['rps']:.0f}" for r in rounds
            )
            side.figures[f"{route} p95, 50 connections, no think time"] = statistics.median(r["p95_ms"] for r in rounds)
            errors += sum(r["non_2xx_3xx"] + r["socket_errors"] for r in rounds)
        side.figures["catalog wrk non-2xx and socket errors"] = errors
