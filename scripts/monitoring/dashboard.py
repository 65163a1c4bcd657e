"""The Grafana dashboard's queries and the metric names they use (for tests and `make monitoring-check`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The one copy of each, inside the Helm chart (Helm reads no file outside it).
MONITORING_FILES = ROOT / "deploy" / "helm" / "aegistickets" / "files" / "monitoring"
DASHBOARD = MONITORING_FILES / "aegistickets.json"
RULES = MONITORING_FILES / "aegistickets.rules.yml"


# PromQL words that look like metric names: keywords, aggregation modifiers, functions (followed by "(").
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan", "atan2",
}  # fmt: skip
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL expression) for every query target of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel.get("title", "?"), target["expr"]


def variables(dashboard: dict[str, Any]) -> dict[str, str]:
    """What the template variables stand for outside Grafana: a constant's value, a query variable's "All"."""
    values = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "constant":
            values[variable["name"]] = variable["query"]
        elif variable.get("type") == "query" and variable.get("includeAll"):
            values[variable["name"]] = variable.get("allValue") or ".*"
    return values


def substitute(expr: str, dashboard: dict[str, Any] | None = None) -> str:
    """The expression as Prometheus would receive it from Grafana, with "All" selected."""
    for name, value in sorted(variables(dashboard or load()).items(), key=lambda item: -len(item[0])):
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric and recorded-series names an expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (and the variables in them)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery windows
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        following = text[match.end() :].lstrip()
        if following.startswith("(") or word.lower() in KEYWORDS:
            continue  # a function or a keyword
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the exponent or unit of a number, e.g. 1e3
        names.add(word)
    return names
