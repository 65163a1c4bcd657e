"""Shared parts of the Locust scenarios: checks, the organizer API, load shapes and the SLO gate.

Checks: every response a scenario makes is validated (status, JSON shape, content) inside
`catch_response=True`; the first failed check marks the request failed in Locust's statistics and is
counted in CHECKS. The SLO gate runs when Locust quits: it prints `SLO | target | actual | result`,
writes `<csv prefix>_summary.json` next to Locust's CSV files (read by scripts/perf/report.py) and sets
the process exit code (1 when any enforced gate fails).

Environment knobs (all optional):
    DURATION        squeeze a scenario's load shape into this time ("30s", "2m", "90")
    USERS           peak number of users (a shape's levels are scaled to it)
    LOADTEST_MODE   "full" (default) or "smoke": in smoke mode timing and rate gates are only reported;
                    any 5xx, any failed check or request, and any oversold seat still fail the run
    AEGIS_API_TOKEN organizer API token: scenarios create their own on-sale event with it
    <gate env>      each gate's threshold, e.g. SLO_P95_MS=800, TARGET_P95_MS=50; "off" disables it
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import requests
from locust import LoadTestShape, events
from locust.env import Environment
from locust.util.timespan import parse_timespan

log = logging.getLogger("aegis.loadtest")

MODE = os.environ.get("LOADTEST_MODE", "full").strip().lower()
SMOKE = MODE == "smoke"
API_TOKEN = os.environ.get("AEGIS_API_TOKEN", "").strip()
RUN_ID = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + f"-{random.randrange(16**4):04x}"

# Request names: ids and secrets are folded so Locust groups one endpoint into one row.
EVENTS_LIST = "/api/events"
EVENT_DETAIL = "/api/events/[id]"
BASKET_ADD = "/api/basket"
CHECKOUT = "/api/checkout"
ORDER_PAGE = "/orders/[code]/[secret]/"
SOLD_OUT_CODES = frozenset({"sold_out", "insufficient_inventory"})


# --- checks ---------------------------------------------------------------------------------------


@dataclass
class CheckCounter:
    total: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    responses_5xx: int = 0
    transport_errors: int = 0
    expected_refusals: Counter[str] = field(default_factory=Counter)  # correct "no" answers, e.g. sold_out

    def reset(self) -> None:
        self.total = self.failed = self.responses_5xx = self.transport_errors = 0
        self.failures.clear()
        self.expected_refusals.clear()


CHECKS = CheckCounter()


def check(response: Any, ok: bool, message: str) -> bool:
    """One check on one response; a failed check marks the request failed (with `message`)."""
    CHECKS.total += 1
    if ok:
        return True
    CHECKS.failed += 1
    meta = response.request_meta
    CHECKS.failures[f"{meta['request_type']} {meta['name']}: {message}"] += 1
    response.failure(message)
    return False


def json_body(response: Any) -> Any:
    try:
        return response.json()
    except (ValueError, TypeError):
        return None


def problem_code(response: Any) -> str | None:
    """The stable `code` of a problem+json answer, or None."""
    body = json_body(response)
    return body.get("code") if isinstance(body, dict) else None


def status_problem(response: Any, expected: Collection[int]) -> str:
    if not response.status_code:
        error = getattr(response, "error", None)
        return f"no response ({type(error).__name__ if error else 'connection failed'})"
    return f"status {response.status_code}, expected {' or '.join(map(str, sorted(expected)))}"


def expect_json(response: Any, status: int | Collection[int], *keys: str) -> dict[str, Any] | None:
    """Checks the status and that the body is a JSON object with `keys`; returns the body or None."""
    statuses = {status} if isinstance(status, int) else set(status)
    if not check(response, response.status_code in statuses, status_problem(response, statuses)):
        return None
    body = json_body(response)
    if not check(response, isinstance(body, dict), "body is not a JSON object"):
        return None
    missing = [key for key in keys if key not in body]
    if not check(response, not missing, f"JSON lacks {', '.join(missing)}"):
        return None
    response.success()
    return body


def expect_html(response: Any, status: int, *needles: str) -> str | None:
    """Checks the status of an HTML page and that it contains every needle; returns the text or None."""
    if not check(response, response.status_code == status, status_problem(response, {status})):
        return None
    text = response.text or ""
    missing = [needle for needle in needles if needle not in text]
    if not check(response, not missing, "page lacks expected content"):
        return None
    response.success()
    return text


def expected_refusal(response: Any, codes: Collection[str] = SOLD_OUT_CODES) -> bool:
    """A 409 with one of `codes` is a correct answer (seats are gone), not a failure: mark it so."""
    if response.status_code != 409:
        return False
    code = problem_code(response)
    if code not in codes:
        return False
    CHECKS.total += 1
    CHECKS.expected_refusals[code] += 1
    response.success()
    return True


@events.request.add_listener
def _count_server_errors(response: Any = None, exception: Any = None, **_kw: Any) -> None:
    status = getattr(response, "status_code", None) or 0
    if status >= 500:
        CHECKS.responses_5xx += 1
    elif status == 0 and exception is not None:
        CHECKS.transport_errors += 1


# --- shop helpers -----------------------------------------------------------------------------------


def basket_body(ticket_type_id: int, quantity: int, basket: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ticket_type_id": ticket_type_id, "quantity": quantity}
    if basket:
        body["basket"] = basket
    return body


def checkout_body(basket: str) -> dict[str, Any]:
    buyer = uuid.uuid4().hex[:12]
    return {"basket": basket, "name": f"Load {buyer}", "email": f"load-{buyer}@example.com", "payment_method": "test"}


def idempotency_headers() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def buyable_ticket_type(event: dict[str, Any], quantity: int) -> dict[str, Any] | None:
    """A ticket type of an event detail that is on sale with at least `quantity` seats shown."""
    choices = [
        t
        for t in event.get("ticket_types", [])
        if t.get("on_sale") and t.get("available", 0) >= quantity and t.get("max_per_order", 0) >= quantity
    ]
    return random.choice(choices) if choices else None


class Organizer:
    """The organizer API (Authorization: Token), outside Locust's statistics: setup and the books."""

    def __init__(self, host: str, token: str) -> None:
        self.host = host.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Token {token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = path if path.startswith("http") else f"{self.host}{path}"
        response = self.session.request(method, url, timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def create_event(self, *, name: str, slug: str, days_from_now: int) -> dict[str, Any]:
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days_from_now)
        return self._call(
            "POST",
            "/api/events",
            json={
                "name": name,
                "slug": slug,
                "venue": "Load Test Hall",
                "city": "Loopback",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=3)).isoformat(),
                "is_published": True,
            },
        )

    def create_ticket_type(self, event_id: int, *, name: str, price: str, capacity: int, max_per_order: int) -> Any:
        return self._call(
            "POST",
            f"/api/events/{event_id}/ticket-types",
            json={"name": name, "price": price, "capacity": capacity, "max_per_order": max_per_order},
        )

    def ticket_type(self, pk: int) -> dict[str, Any]:
        return self._call("GET", f"/api/ticket-types/{pk}")

    def orders(self, event_id: int) -> tuple[int, list[dict[str, Any]]]:
        """(count, every order of the event), following the pages."""
        first = self._call("GET", f"/api/orders?event={event_id}")
        orders, page = list(first["orders"]), first
        while page.get("next"):
            page = self._call("GET", page["next"])
            orders.extend(page["orders"])
        return first["count"], orders

    def public_events(self) -> list[dict[str, Any]]:
        """Every upcoming event of the public catalog (all pages)."""
        page = self._call("GET", "/api/events")
        found = list(page["events"])
        while page.get("next"):
            page = self._call("GET", page["next"])
            found.extend(page["events"])
        return found

    def public_event(self, pk: int) -> dict[str, Any]:
        return self._call("GET", f"/api/events/{pk}")


LOAD_EVENT_SLUG = "load-test-arena"
LOAD_CAPACITY = 1_000_000


@dataclass
class Catalog:
    """What shoppers may buy: events with a ticket type on sale (snapshot at test start)."""

    buyable_event_ids: set[int] = field(default_factory=set)
    load_event: dict[str, Any] | None = None  # a big on-sale event made for load tests (with a token)


CATALOG = Catalog()


def prepare_catalog(host: str) -> Catalog:
    """Finds what is on sale; with AEGIS_API_TOKEN, first makes sure a big load-test event exists."""
    client = Organizer(host, API_TOKEN)
    load_event = None
    if API_TOKEN:
        load_event = next((e for e in client.public_events() if e["slug"] == LOAD_EVENT_SLUG), None)
        if load_event is None:
            made = client.create_event(name="Load Test Arena", slug=LOAD_EVENT_SLUG, days_from_now=2)
            for name, price in (("Standing", "25.00"), ("Seated", "45.00"), ("Lounge", "95.00")):
                client.create_ticket_type(made["id"], name=name, price=price, capacity=LOAD_CAPACITY, max_per_order=10)
            load_event = made
        load_event = client.public_event(load_event["id"])
    else:
        log.warning("AEGIS_API_TOKEN is not set: buying from the catalog as it is (sold-out answers are expected)")
    buyable = set()
    for event in client.public_events():
        detail = client.public_event(event["id"])
        if any(t["on_sale"] for t in detail["ticket_types"]):
            buyable.add(event["id"])
    CATALOG.buyable_event_ids = buyable
    CATALOG.load_event = load_event
    log.info(
        "catalog: %d events with tickets on sale%s", len(buyable), " (load-test event ready)" if load_event else ""
    )
    return CATALOG


# --- load shapes ------------------------------------------------------------------------------------


def env_seconds(name: str) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    return float(raw) if raw.replace(".", "", 1).isdigit() else float(parse_timespan(raw))


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class Stage:
    seconds: float
    users: int


def scale_stages(stages: Iterable[tuple[float, int]], *, duration: float | None, users: int | None) -> list[Stage]:
    """The stages squeezed into `duration` seconds and scaled so their peak is `users`."""
    plan = [Stage(float(s), int(u)) for s, u in stages]
    total = sum(stage.seconds for stage in plan)
    peak = max(stage.users for stage in plan)
    time_factor = duration / total if duration else 1.0
    user_factor = users / peak if users else 1.0
    return [
        Stage(stage.seconds * time_factor, max(1, round(stage.users * user_factor)) if stage.users else 0)
        for stage in plan
    ]


class StagedShape(LoadTestShape):
    """Stages like k6's: each (seconds, users) ramps linearly from the previous level to `users`.

    DURATION squeezes the whole shape proportionally, USERS replaces its peak (levels scale with it).
    """

    abstract = True
    stages: ClassVar[tuple[tuple[float, int], ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self.plan = scale_stages(self.stages, duration=env_seconds("DURATION"), users=env_int("USERS", 0) or None)

    def describe(self) -> str:
        return " → ".join(f"{stage.users} users in {stage.seconds:g} s" for stage in self.plan)

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        level, end = 0, 0.0
        for stage in self.plan:
            end += stage.seconds
            if elapsed < end:
                change = abs(stage.users - level)
                rate = change / stage.seconds if change else max(stage.users, 1)
                return stage.users, max(rate, 0.01)
            level = stage.users
        return None


# --- SLO gates --------------------------------------------------------------------------------------

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
}


@dataclass
class Gate:
    """One SLO: `actual <op> threshold`. `env` names the variable that overrides the threshold."""

    label: str
    env: str
    op: str
    threshold: float
    measure: Callable[[Environment], float | None]
    unit: str = ""
    kind: str = "SLO"  # "SLO" (issue / reference), "target" (our speed targets), "integrity"
    timing: bool = False  # timings and rates are only reported in smoke mode

    def resolve(self) -> Gate | None:
        raw = os.environ.get(self.env, "").strip().lower()
        if raw in {"off", "none", "disabled"}:
            return None
        if raw:
            self.threshold = float(raw)
        return self


@dataclass
class GateResult:
    label: str
    kind: str
    target: str
    actual: str
    result: str  # PASS, FAIL, INFO
    env: str
    threshold: float
    value: float | None


def fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "%":
        return f"{value:.2f} %" if value < 100 else "100 %"
    text = f"{value:.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.1f}"
    return f"{text} {unit}".strip()


def evaluate(environment: Environment, gates: Iterable[Gate]) -> list[GateResult]:
    results = []
    for gate in filter(None, (g.resolve() for g in gates)):
        value = gate.measure(environment)
        if SMOKE and gate.timing:
            verdict = "INFO"
        elif value is None:
            verdict = "FAIL"  # nothing measured: the scenario did not run
        else:
            verdict = "PASS" if OPS[gate.op](value, gate.threshold) else "FAIL"
        results.append(
            GateResult(
                label=gate.label,
                kind=gate.kind,
                target=f"{gate.op} {fmt(gate.threshold, gate.unit)}",
                actual=fmt(value, gate.unit),
                result=verdict,
                env=gate.env,
                threshold=gate.threshold,
                value=value,
            )
        )
    return results


def table(results: list[GateResult]) -> str:
    rows = [("SLO", "target", "actual", "PASS/FAIL")] + [
        (f"{r.label} ({r.kind})", r.target, r.actual, r.result) for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


# Measures. Latencies in ms, rates in percent.


def p95_ms(environment: Environment) -> float | None:
    total = environment.stats.total
    return total.get_response_time_percentile(0.95) if total.num_requests else None


def step_p95_ms(name: str, method: str = "POST") -> Callable[[Environment], float | None]:
    def measure(environment: Environment) -> float | None:
        entry = environment.stats.entries.get((name, method))
        return entry.get_response_time_percentile(0.95) if entry and entry.num_requests else None

    return measure


def error_pct(environment: Environment) -> float | None:
    total = environment.stats.total
    return 100.0 * total.fail_ratio if total.num_requests else None


def checks_pct(environment: Environment) -> float | None:
    return 100.0 * (CHECKS.total - CHECKS.failed) / CHECKS.total if CHECKS.total else None


def failed_requests(environment: Environment) -> float | None:
    return float(environment.stats.total.num_failures)


def failed_checks(environment: Environment) -> float | None:
    return float(CHECKS.failed) if CHECKS.total else None


def server_errors(environment: Environment) -> float | None:
    return float(CHECKS.responses_5xx)


def slo_gates(*, p95_ms_max: float = 800, error_pct_max: float = 1.0, checks_pct_min: float = 99.0) -> list[Gate]:
    """The shop's SLOs (p95 < 800 ms, error rate < 1 %, checks > 99 %) and the integrity gates."""
    return [
        Gate("p95 latency", "SLO_P95_MS", "<", p95_ms_max, p95_ms, "ms", timing=True),
        Gate("error rate", "SLO_ERROR_PCT", "<", error_pct_max, error_pct, "%", timing=True),
        Gate("checks passed", "SLO_CHECKS_PCT", ">", checks_pct_min, checks_pct, "%", timing=True),
        *integrity_gates(),
    ]


def integrity_gates() -> list[Gate]:
    gates = [Gate("5xx responses", "MAX_5XX", "<=", 0, server_errors, kind="integrity")]
    if SMOKE:
        gates += [
            Gate("failed checks", "SMOKE_MAX_FAILED_CHECKS", "<=", 0, failed_checks, kind="integrity"),
            Gate("failed requests", "SMOKE_MAX_FAILED_REQUESTS", "<=", 0, failed_requests, kind="integrity"),
        ]
    return gates


def summary_path(environment: Environment) -> Path | None:
    explicit = os.environ.get("LOADTEST_SUMMARY", "").strip()
    if explicit:
        return Path(explicit)
    prefix = getattr(environment.parsed_options, "csv_prefix", None) if environment.parsed_options else None
    return Path(f"{prefix}_summary.json") if prefix else None


def install_gate(
    scenario: str,
    gates: Callable[[], list[Gate]],
    *,
    figures: Callable[[Environment], dict[str, Any]] | None = None,
) -> None:
    """At quit: print the scenario's figures and SLO table, write the summary, set the exit code."""

    @events.test_start.add_listener
    def _reset(environment: Environment, **_kw: Any) -> None:
        CHECKS.reset()

    @events.quitting.add_listener
    def _gate(environment: Environment, **_kw: Any) -> None:
        extra = figures(environment) if figures else {}
        results = evaluate(environment, gates())
        failed = [r for r in results if r.result == "FAIL"]
        lines = [f"\n=== {scenario} ({MODE}) ==="]
        lines += [f"{key}: {value}" for key, value in extra.items() if not isinstance(value, dict | list)]
        lines.append(
            f"checks: {CHECKS.total - CHECKS.failed}/{CHECKS.total} passed; 5xx: {CHECKS.responses_5xx}; "
            f"transport errors: {CHECKS.transport_errors}; expected refusals: {dict(CHECKS.expected_refusals)}"
        )
        lines += [f"  failed check ×{count}: {what}" for what, count in CHECKS.failures.most_common(10)]
        lines += ["", table(results), f"result: {'FAIL' if failed else 'PASS'}"]
        print("\n".join(lines), flush=True)  # noqa: T201 - the report is for the person running the test
        path = summary_path(environment)
        if path:
            total = environment.stats.total
            path.write_text(
                json.dumps(
                    {
                        "scenario": scenario,
                        "mode": MODE,
                        "host": environment.host,
                        "passed": not failed,
                        "gates": [r.__dict__ for r in results],
                        "figures": extra,
                        "checks": {
                            "total": CHECKS.total,
                            "failed": CHECKS.failed,
                            "failures": dict(CHECKS.failures),
                            "responses_5xx": CHECKS.responses_5xx,
                            "transport_errors": CHECKS.transport_errors,
                            "expected_refusals": dict(CHECKS.expected_refusals),
                        },
                        "requests": total.num_requests,
                        "failures": total.num_failures,
                        "rps": total.total_rps,
                        "finished_at": time.time(),
                    },
                    indent=2,
                    default=str,
                )
            )
        environment.process_exit_code = 1 if failed else 0
