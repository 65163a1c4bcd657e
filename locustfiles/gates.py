"""The SLO gate of every scenario, decided when Locust quits, from the statistics Locust keeps.

Locust writes the reports itself (`--csv`, `--csv-full-history`, `--html`). What it has no notion of is a verdict:
at quit each scenario's gates are evaluated against `environment.stats` (and the few figures a scenario keeps
itself: checks, orders/s, the flash sale's books), printed as `SLO | target | actual | PASS/FAIL` after the
scenario's figures, written with them to `<csv prefix>_summary.json` (or LOADTEST_SUMMARY) for the scripts that
run scenarios, and turned into the exit code (`environment.process_exit_code`: 1 when an enforced gate fails).

Each gate's threshold comes from its environment variable when set (SLO_P95_MS=800, TARGET_P95_MS=50, …);
"off" disables it. In smoke mode (LOADTEST_MODE=smoke) timing and rate gates are reported, never enforced.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import CHECKS, MODE, SMOKE
from locust import events
from locust.env import Environment

Measure = Callable[[Environment], float | None]
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
}
SERVER_ERRORS = [0]  # 5xx answers: Locust counts failures, not why they failed


@events.request.add_listener
def _count_server_errors(response: Any = None, **_kw: Any) -> None:
    if (getattr(response, "status_code", None) or 0) >= 500:
        SERVER_ERRORS[0] += 1


@events.test_start.add_listener
def _reset(**_kw: Any) -> None:
    CHECKS.clear()
    SERVER_ERRORS[0] = 0


@dataclass
class Gate:
    """One SLO: `measure(environment) <op> threshold`; `env` names the variable that overrides the threshold."""

    label: str
    env: str
    op: str
    threshold: float
    measure: Measure
    unit: str = ""
    kind: str = "SLO"  # "SLO", "target" (our speed targets) or "integrity"
    timing: bool = False  # timings and rates are only reported in smoke mode

    def evaluate(self, environment: Environment) -> dict[str, Any] | None:
        raw = os.environ.get(self.env, "").strip().lower()
        if raw in {"off", "none", "disabled"}:
            return None
        threshold = float(raw) if raw else self.threshold
        value = self.measure(environment)
        if SMOKE and self.timing:
            result = "INFO"
        elif value is None:
            result = "FAIL"  # nothing measured: the scenario did not run
        else:
            result = "PASS" if OPS[self.op](value, threshold) else "FAIL"
        target, actual = f"{self.op} {fmt(threshold, self.unit)}", fmt(value, self.unit)
        return {"label": self.label, "kind": self.kind, "target": target, "actual": actual, "result": result}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    if unit == "%":
        text = f"{value:.2f}"
    else:
        text = f"{value:.0f}" if abs(value) >= 100 or value.is_integer() else f"{value:.1f}"
    return f"{text} {unit}".strip()


# --- measures, from Locust's statistics (latencies in ms, rates in percent) --------------------------


def p95_ms(name: str | None = None, method: str = "GET") -> Measure:
    """p95 of every request, or of one named request."""

    def measure(environment: Environment) -> float | None:
        entry = environment.stats.total if name is None else environment.stats.entries.get((name, method))
        return entry.get_response_time_percentile(0.95) if entry and entry.num_requests else None

    return measure


def error_pct(environment: Environment) -> float | None:
    total = environment.stats.total
    return 100.0 * total.fail_ratio if total.num_requests else None


def checks_pct(environment: Environment) -> float | None:
    return 100.0 * (CHECKS["total"] - CHECKS["failed"]) / CHECKS["total"] if CHECKS["total"] else None


def slo_gates(*, p95_ms_max: float = 800, error_pct_max: float = 1.0) -> list[Gate]:
    """The shop's SLOs (p95 < 800 ms, error rate < 1 %, checks > 99 %) and the integrity gates."""
    return [
        Gate("p95 latency", "SLO_P95_MS", "<", p95_ms_max, p95_ms(), "ms", timing=True),
        Gate("error rate", "SLO_ERROR_PCT", "<", error_pct_max, error_pct, "%", timing=True),
        Gate("checks passed", "SLO_CHECKS_PCT", ">", 99.0, checks_pct, "%", timing=True),
        *integrity_gates(),
    ]


def integrity_gates() -> list[Gate]:
    """No 5xx ever; in smoke mode also no failed check or request."""
    gates = [Gate("5xx responses", "MAX_5XX", "<=", 0, lambda _e: float(SERVER_ERRORS[0]), kind="integrity")]
    if SMOKE:
        gates += [
            Gate(
                "failed checks",
                "SMOKE_MAX_FAILED_CHECKS",
                "<=",
                0,
                lambda _e: float(CHECKS["failed"]),
                kind="integrity",
            ),
            Gate(
                "failed requests",
                "SMOKE_MAX_FAILED_REQUESTS",
                "<=",
                0,
                lambda e: float(e.stats.total.num_failures),
                kind="integrity",
            ),
        ]
    return gates


# --- at quit ----------------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    cells = [("SLO", "target", "actual", "PASS/FAIL")]
    cells += [(f"{r['label']} ({r['kind']})", r["target"], r["actual"], r["result"]) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def summary_path(environment: Environment) -> Path | None:
    explicit = os.environ.get("LOADTEST_SUMMARY", "").strip()
    prefix = getattr(environment.parsed_options, "csv_prefix", None) if environment.parsed_options else None
    return Path(explicit) if explicit else Path(f"{prefix}_summary.json") if prefix else None


def install_gate(
    scenario: str, gates: Callable[[], list[Gate]], *, figures: Callable[[Environment], dict[str, Any]] | None = None
) -> None:
    """At quit: print the scenario's figures and gate table, write the summary, set the exit code."""

    @events.quitting.add_listener
    def _gate(environment: Environment, **_kw: Any) -> None:
        extra = figures(environment) if figures else {}
        rows = [row for row in (gate.evaluate(environment) for gate in gates()) if row]
        passed = all(row["result"] != "FAIL" for row in rows)
        lines = [f"\n=== {scenario} ({MODE}) ===", *(f"{key}: {value}" for key, value in extra.items())]
        lines.append(f"checks: {CHECKS['total'] - CHECKS['failed']}/{CHECKS['total']} passed; 5xx: {SERVER_ERRORS[0]}")
        lines += ["", table(rows), f"result: {'PASS' if passed else 'FAIL'}"]
        print("\n".join(lines), flush=True)  # noqa: T201 - the verdict is for the person running the test
        path = summary_path(environment)
        if path:
            summary = {"scenario": scenario, "mode": MODE, "passed": passed, "gates": rows, "figures": extra}
            summary["checks"] = {"total": CHECKS["total"], "failed": CHECKS["failed"], "5xx": SERVER_ERRORS[0]}
            path.write_text(json.dumps(summary, indent=2, default=str))
        environment.process_exit_code = 0 if passed else 1
