"""The bench's figures, its speed targets and its two tables.

A side (the code under test: this tree, or the commit it is compared with) collects figures by key. Each target
reads one figure: PASS/FAIL against its goal, or INFO (a figure for context that never fails the bench). With a
comparison, every figure is printed once more for both sides: figure | old | new | new/old.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

ROUTES = ("/healthz", "GET /api/events", "GET /api/events/{id}", "GET /", "GET /events/<slug>/")
CATALOG_READS = ("/", "/api/events", "/events/[slug]/", "/api/events/[id]")  # Locust's request names
CEILING = "framework ceiling req/s"
HEALTHZ_SHARE = 0.8


@dataclass
class Side:
    """One served code base and what was measured on it."""

    name: str  # "new" (this tree) or "old" (the commit compared with)
    label: str  # what it is, for the report (the commit)
    figures: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # context shown beside a figure (wrk rounds, emails)


@dataclass
class Target:
    name: str
    goal: str
    measured: str
    passed: bool | None  # None: not measured
    info: bool = False

    @property
    def verdict(self) -> str:
        return "INFO" if self.info else {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


@dataclass(frozen=True)
class Rule:
    key: str  # the figure
    unit: str
    goal: str = ""  # "" for a figure shown for context
    test: Callable[[float], bool] | None = None
    tables: str = "both"  # "targets" or "comparison" when the other table shows the figure in another row


def below(limit: float) -> Callable[[float], bool]:
    return lambda value: operator.lt(value, limit)


def at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: operator.ge(value, limit)


def none(value: float) -> bool:
    return value == 0


RULES: list[Rule] = [
    Rule(CEILING, "req/s"),
    Rule("/healthz of ceiling", "share", f">= {HEALTHZ_SHARE:.2f}", at_least(HEALTHZ_SHARE), tables="targets"),
    *(Rule(f"{route} of ceiling", "share", tables="targets") for route in ROUTES[1:]),
    *(Rule(f"{route} req/s", "req/s", tables="comparison") for route in ROUTES),
    Rule("catalog wrk non-2xx and socket errors", "count", "0", none),
    *(Rule(f"{route} p95, 50 connections, no think time", "ms") for route in ROUTES),
    *(Rule(f"catalog {name} p95 at 50 users", "ms", "< 50 ms", below(50)) for name in CATALOG_READS),
    Rule("catalog reads failures", "count", "0", none),
    Rule("happy path p95 at 10 users", "ms", "< 50 ms", below(50)),
    Rule("happy path failures", "count", "0", none),
    Rule("HTML purchase flow, 20 buyers", "orders/s", ">= 30 orders/s", at_least(30)),
    Rule("HTML purchase flow failures", "count", "0", none),
    Rule("stress p95 at 100 users", "ms", "< 200 ms", below(200)),
    Rule("stress failures", "%", "< 0.1 %", below(0.1)),
    Rule("gunicorn worker RSS after stress (max)", "MB", "< 150 MB", below(150)),
    Rule("flash sale completed orders/s", "orders/s", ">= 100", at_least(100)),
    Rule("flash sale p95 checkout", "ms", "< 500 ms", below(500)),
    Rule("flash sale oversold seats", "count", "0", none),
    Rule("flash sale 5xx responses", "count", "0", none),
    Rule("confirmation emails drained after the flash sale", "s"),
    Rule("deadlocks in PostgreSQL (stats + log)", "count", "0", none),
]


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "share":
        return f"{value:.2f}"
    if unit in ("orders/s", "%"):
        return f"{value:.{3 if unit == '%' else 1}f} {unit}"
    return f"{value:.0f}" + ("" if unit in ("count", "req/s") else f" {unit}")


def judge(side: Side) -> list[Target]:
    """The targets of the figures this side has (a bench with ONLY= measures some)."""
    targets = []
    for rule in RULES:
        if rule.key not in side.figures or rule.tables == "comparison":
            continue
        value = side.figures[rule.key]
        measured = fmt(value, rule.unit) + (f" ({side.notes[rule.key]})" if rule.key in side.notes else "")
        passed = None if value is None or rule.test is None else rule.test(value)
        targets.append(Target(rule.key, rule.goal or "(context)", measured, passed, info=rule.test is None))
    return targets


def passed(targets: list[Target]) -> bool:
    return all(t.passed for t in targets if not t.info)


def text_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "-|-".join("-" * width for width in widths))
    return "\n".join(lines)


def targets_table(targets: list[Target]) -> str:
    return text_table(
        ("target", "goal", "measured", "result"), [(t.name, t.goal, t.measured, t.verdict) for t in targets]
    )


def shown(side: Side, rule: Rule) -> str:
    """A figure for the comparison; a route's throughput with its fraction of the ceiling."""
    text = fmt(side.figures.get(rule.key), rule.unit)
    share = side.figures.get(rule.key.replace(" req/s", " of ceiling"))
    return f"{text} ({share:.2f} of the ceiling)" if rule.unit == "req/s" and share is not None else text


def comparison_table(old: Side, new: Side) -> str:
    """figure | old | new | new/old, for every figure measured on both sides."""
    rows = []
    for rule in RULES:
        if rule.key not in new.figures or rule.tables == "targets":
            continue
        before, after = old.figures.get(rule.key), new.figures.get(rule.key)
        ratio = f"{after / before:.2f}" if before and after is not None else "n/a"
        rows.append((rule.key, shown(old, rule), shown(new, rule), ratio))
    return text_table(("figure", f"old: {old.label}", f"new: {new.label}", "new/old"), rows)
