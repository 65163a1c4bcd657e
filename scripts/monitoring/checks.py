"""What `make monitoring-check` asserts, group by group, through Prometheus' HTTP API (and the database)."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any

import yaml

from scripts.lib import postgres
from scripts.lib.http import get
from scripts.lib.wait import wait_for
from scripts.monitoring import dashboard
from scripts.monitoring.prometheus import JOB, Prometheus
from scripts.monitoring.traffic import UNTRACKED_PATHS, Traffic

TOTAL = f'sum(django_http_responses_total_by_status_total{{job="{JOB}"}})'


class CheckFailedError(AssertionError):
    pass


def log(message: str) -> None:
    print(f"[monitoring-check {time.strftime('%H:%M:%S')}] {message}", flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailedError(message)
    log(f"ok: {message}")


def rule_names(key: str) -> list[str]:
    """The names of the rule file's recording rules ("record") or alerts ("alert")."""
    groups = yaml.safe_load(dashboard.RULES.read_text())["groups"]
    return [rule[key] for group in groups for rule in group["rules"] if key in rule]


def exact_totals(prom: Prometheus, traffic: Traffic, base: str, access_log: Path) -> None:
    """The request counters equal the requests sent, by status, though several workers served them."""
    wait_for(f"Prometheus to see all {traffic.total} requests", lambda: prom.value(TOTAL) == traffic.total)
    by_status = {
        series["metric"]["status"]: int(float(series["value"][1]))
        for series in prom.query(f'sum by (status) (django_http_responses_total_by_status_total{{job="{JOB}"}})')
    }
    expect(by_status == dict(traffic.by_status), f"responses by status equal those sent: {by_status}")
    for expr in (
        f'sum(django_http_requests_before_middlewares_total{{job="{JOB}"}})',
        f'sum(django_http_requests_latency_including_middlewares_seconds_count{{job="{JOB}"}})',
    ):
        value = prom.value(expr)
        expect(value == traffic.total, f"{expr} = {value} = requests sent (probes and scrapes not counted)")
    # The access log's lines are "<pid> <status> <method> <path>" (GUNICORN_CMD_ARGS in check_e2e.py).
    lines = [line.split() for line in access_log.read_text().splitlines()]
    pids = collections.Counter(fields[0] for fields in lines if len(fields) >= 4 and fields[3] not in UNTRACKED_PATHS)
    expect(len(pids) >= 2, f"the requests were served by {len(pids)} workers {dict(pids)}: one scrape sums them")
    for _ in range(4):  # whichever worker answers a scrape, it reports everyone's requests
        text = str(get(f"{base}/metrics").body)
        prefix = "django_http_responses_total_by_status_total{"
        scraped = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))
        expect(scraped == traffic.total, f"a direct scrape of /metrics also counts {scraped:.0f} requests")


def business_metrics(prom: Prometheus, bought: dict[str, int], database_url: str) -> None:
    """The shop's own counters equal what was bought, and the seat gauge equals the database."""
    time.sleep(2)  # DB gauges are cached for METRICS_DB_CACHE_SECONDS=1; let Prometheus scrape fresh ones
    outcome = 'sum(aegistickets_checkout_outcomes_total{{job="{}", step="{}", outcome="{}"}})'
    expected = {
        f'sum(aegistickets_tickets_sold_total{{job="{JOB}"}})': bought["tickets"],
        f'sum(aegistickets_orders_placed_total{{job="{JOB}"}})': bought["orders"],
        outcome.format(JOB, "checkout", "paid"): bought["orders"],
        outcome.format(JOB, "basket", "held"): bought["held"],
        outcome.format(JOB, "basket", "sold_out"): bought["sold_out"],
        f'sum(aegistickets_tickets_sold_total{{job="{JOB}", event="harbour-sessions-nordic-jazz"}})': bought["tickets"],
    }
    for expr, value in expected.items():
        measured = prom.value(expr)
        expect(measured == value, f"{expr} = {measured} (expected {value})")
    ticket_type = int(bought["ticket_type_id"])
    seats = (
        "SELECT t.capacity - t.sold - coalesce(sum(h.quantity) FILTER (WHERE h.expires_at > now()), 0) "
        "FROM events_tickettype t LEFT JOIN orders_hold h ON h.ticket_type_id = t.id WHERE t.id = {} GROUP BY t.id"
    )
    truth = int(postgres.psql(database_url, seats.format(ticket_type)))  # an int from the API, not user text
    remaining = f'aegistickets_seats_remaining{{job="{JOB}", ticket_type_id="{ticket_type}"}}'
    wait_for(f"{remaining} to equal the database's {truth}", lambda: prom.value(remaining) == truth)
    log(f"ok: {remaining} = {truth} = capacity - sold - unexpired holds in the database")


def slis(prom: Prometheus, share_5xx: float) -> dict[str, float]:
    """Every recorded SLI and SLO series exists, evaluated by Prometheus from the real rule file, with sane values."""
    wait_for("every recording rule to produce a series", lambda: all(prom.query(n) for n in rule_names("record")))
    for name, target in {
        "slo:availability:target": 0.999,
        "slo:latency:target": 0.8,
        "slo:error_rate:target": 0.01,
    }.items():
        expect(prom.value(name) == target, f"{name} = {target}")
    time.sleep(2)  # one more scrape and evaluation after the last request
    measured = {
        name: prom.value(name)
        for name in (
            "sli:http:request_rate:5m",
            "sli:http:error_rate:5m",
            "sli:http:request_duration_seconds:p95",
            "sli:http:request_duration_seconds:p95_1d",
            "sli:db:saturation:connections",
        )
    }
    rate, error_rate = measured["sli:http:request_rate:5m"], measured["sli:http:error_rate:5m"]
    expect(rate is not None and rate > 0, f"sli:http:request_rate:5m = {rate} req/s > 0")
    tolerance = 0.01 + 0.1 * share_5xx
    expect(
        error_rate is not None and abs(error_rate - share_5xx) <= tolerance,
        f"sli:http:error_rate:5m = {error_rate} matches the 5xx share sent {share_5xx:.4f} (± {tolerance:.4f})",
    )
    for window in ("5m", "30m", "1h", "6h", "1d", "3d", "30d"):
        value = prom.value(f"sli:http:error_ratio:rate{window}")
        ok = value is not None and abs(value - share_5xx) <= tolerance
        expect(ok, f"sli:http:error_ratio:rate{window} = {value}")
    for name in ("sli:http:request_duration_seconds:p95", "sli:http:request_duration_seconds:p95_1d"):
        expect(measured[name] is not None and 0 < measured[name] < 10, f"{name} = {measured[name]} s > 0")
    saturation = measured["sli:db:saturation:connections"]
    expect(saturation is not None and 0 < saturation <= 1, f"sli:db:saturation:connections = {saturation}")
    return {name: round(value or 0, 4) for name, value in measured.items()}


def rules_and_alerts(prom: Prometheus) -> set[str]:
    """Every rule evaluates cleanly, and the error-budget burn the faults caused pages."""
    groups = prom.api("rules")["groups"]
    broken = [(rule["name"], rule.get("lastError")) for g in groups for rule in g["rules"] if rule["health"] != "ok"]
    count = sum(len(group["rules"]) for group in groups)
    expected = len(rule_names("record")) + len(rule_names("alert"))
    expect(not broken and count == expected, f"all {count} rules healthy" + (f"; broken: {broken}" if broken else ""))

    def fast_burn() -> set[str] | None:
        firing = prom.firing()
        return firing if "AegisTicketsErrorBudgetFastBurn" in firing else None

    fired = wait_for("the fast-burn alert to fire", fast_burn)
    calm = "AegisTicketsDown" not in fired and "AegisTicketsDBConnectionSaturation" not in fired
    expect(calm, f"firing: {sorted(fired)}")
    return fired


def dashboard_queries(prom: Prometheus) -> None:
    """Every query of the Grafana dashboard runs against this Prometheus and returns data."""
    queries = list(dashboard.queries(dashboard.load()))
    empty = [f"{title}: {expr}" for title, expr in queries if not prom.query(dashboard.substitute(expr))]
    expect(not empty, f"all {len(queries)} dashboard queries return data" + (f"; empty: {empty}" if empty else ""))


def summary(
    traffic: Traffic, share: float, measured: dict[str, Any], bought: dict[str, int], fired: set[str]
) -> dict[str, Any]:
    return {
        "requests": traffic.total,
        "by_status": dict(traffic.by_status),
        "untracked_probes": traffic.untracked,
        "5xx_share_sent": round(share, 4),
        **measured,
        "tickets_sold": bought["tickets"],
        "firing": sorted(fired),
    }
