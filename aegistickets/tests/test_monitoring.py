"""The monitoring sources (the Helm chart's files/monitoring/, unit tests in deploy/monitoring/tests/): rule
names, runbook links, unit-test coverage, and a dashboard whose every query reads names the rules record or the
app really exports (collected from a real scrape)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.db import connection
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orders.metrics import reconciliation_run
from scripts.monitoring import dashboard

ROOT = Path(__file__).resolve().parents[2]
RULES = dashboard.RULES
RULE_TESTS = ROOT / "deploy" / "monitoring" / "tests" / "aegistickets.rules.test.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"

REQUIRED_RECORDS = {
    "sli:http:request_duration_seconds:p95",
    "sli:http:request_rate:5m",
    "sli:http:error_rate:5m",
    "sli:db:saturation:connections",
    "slo:availability:target",
    "slo:latency:target",
    "slo:error_rate:target",
    *(f"sli:http:error_ratio:rate{window}" for window in ("5m", "30m", "1h", "6h", "1d", "3d")),
}
# Exported only when the database is PostgreSQL (connection saturation); checked there by test_metrics.py.
POSTGRESQL_ONLY = {"aegistickets_db_connections", "aegistickets_db_connections_max"}
# Series Prometheus itself creates for every target.
PROMETHEUS_OWN = {"up"}

promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian `prometheus`; `make rules-check` installs it and CI runs it)",
)


def promtool_test(directory):
    """`promtool test rules` on every test file of a directory."""
    return subprocess.run(  # noqa: S603 - fixed argv, promtool from PATH
        ["promtool", "test", "rules", *sorted(p.name for p in directory.glob("*.yml"))],  # noqa: S607 - promtool from PATH
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )


def rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def records():
    return {rule["record"] for rule in rules() if "record" in rule}


def alerts():
    return [rule for rule in rules() if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_recording_rules_have_the_agreed_names():
    assert records() >= REQUIRED_RECORDS


def test_every_alert_has_a_summary_a_description_a_severity_and_a_runbook_section_that_exists():
    anchors = {github_anchor(line.lstrip("#")) for line in RUNBOOKS.read_text().splitlines() if line.startswith("#")}
    assert len(alerts()) >= 8
    for alert in alerts():
        annotations = alert["annotations"]
        assert annotations["summary"], alert["alert"]
        assert annotations["description"], alert["alert"]
        assert alert["labels"]["severity"] in {"page", "ticket"}, alert["alert"]
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/runbooks.md", alert["alert"]
        assert anchor in anchors, f"{alert['alert']}: no section #{anchor} in docs/runbooks.md"


def test_the_burn_rate_alerts_are_the_sre_workbook_pairs():
    by_name = {alert["alert"]: alert for alert in alerts()}
    pairs = {
        "AegisTicketsErrorBudgetFastBurn": ("14.4", "rate1h", "rate5m", "page"),
        "AegisTicketsErrorBudgetSustainedBurn": ("6", "rate6h", "rate30m", "page"),
        "AegisTicketsErrorBudgetSlowBurn": ("1", "rate3d", "rate6h", "ticket"),
    }
    for name, (factor, long_window, short_window, severity) in pairs.items():
        expr = by_name[name]["expr"]
        assert re.findall(r"sli:http:error_ratio:(\w+) > \((\S+) \*", expr) == [
            (long_window, factor),
            (short_window, factor),
        ], name
        assert "\nand\n" in expr, name
        assert by_name[name]["labels"]["severity"] == severity


def test_every_recording_rule_and_every_alert_has_unit_tests_firing_and_not_firing():
    cases = [case for path in RULE_TESTS.parent.glob("*.yml") for case in yaml.safe_load(path.read_text())["tests"]]
    tested_exprs = {t["expr"] for case in cases for t in case.get("promql_expr_test", [])}
    assert records() <= tested_exprs, f"untested recording rules: {records() - tested_exprs}"
    fired, silent = set(), set()
    for case in cases:
        for t in case.get("alert_rule_test", []):
            (fired if t["exp_alerts"] else silent).add(t["alertname"])
    names = {alert["alert"] for alert in alerts()}
    assert names <= fired, f"never tested firing: {names - fired}"
    assert names <= silent, f"never tested not firing: {names - silent}"


@promtool
def test_promtool_checks_the_rules_and_their_unit_tests_pass():
    check = subprocess.run(  # noqa: S603 - fixed argv, promtool from PATH
        ["promtool", "check", "rules", str(RULES)],  # noqa: S607 - promtool from PATH
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    unit = promtool_test(RULE_TESTS.parent)
    assert unit.returncode == 0, unit.stdout + unit.stderr


@promtool
@pytest.mark.parametrize(
    ("original", "planted"),
    [
        ("sli:http:error_ratio:rate1h > (14.4 *", "sli:http:error_ratio:rate1h > (144 *"),
        ('status=~"5.."}[30m]', 'status=~"[45].."}[30m]'),
        ("expr: vector(0.8)", "expr: vector(0.5)"),
        ("sli:db:saturation:connections > 0.8", "sli:db:saturation:connections > 0.95"),
        ('absent(up{job="aegistickets"} == 1)', 'absent(up{job="aegistickets"})'),
        (
            'aegistickets_emails_oldest_due_age_seconds{job="aegistickets"}) > 600',
            'aegistickets_emails_oldest_due_age_seconds{job="aegistickets"}) > 6000',
        ),
        ('aegistickets_emails_failed{job="aegistickets"}) > 0', 'aegistickets_emails_failed{job="aegistickets"}) > 1'),
        (
            'aegistickets_orders_pending_overdue_seconds{job="aegistickets"}) > 600',
            'aegistickets_orders_pending_overdue_seconds{job="aegistickets"}) > 6000',
        ),
        (
            'aegistickets_payments_unsettled_oldest_seconds{job="aegistickets"}) > 900',
            'aegistickets_payments_unsettled_oldest_seconds{job="aegistickets"}) > 90',
        ),
        ('result="rejected"}[10m]', 'result=~"rejected|ignored"}[10m]'),
    ],
    ids=[
        "burn-factor",
        "4xx-as-errors",
        "latency-target",
        "saturation-threshold",
        "down-when-all-fail",
        "emails-delayed-threshold",
        "emails-failed-threshold",
        "pending-overdue-threshold",
        "payments-unsettled-threshold",
        "ignored-webhooks-as-rejected",
    ],
)
def test_the_unit_tests_catch_a_planted_defect(tmp_path, original, planted):
    text = RULES.read_text()
    assert text.count(original) == 1
    rules_file = tmp_path / RULES.name
    rules_file.write_text(text.replace(original, planted))
    (tmp_path / "tests").mkdir()
    for test_file in RULE_TESTS.parent.glob("*.yml"):
        # promtool reads rule_files relative to the test file: point the copy at the planted rules.
        test_text = test_file.read_text()
        (listed,) = yaml.safe_load(test_text)["rule_files"]
        (tmp_path / "tests" / test_file.name).write_text(test_text.replace(listed, str(rules_file)))
    unit = promtool_test(tmp_path / "tests")
    assert unit.returncode == 1, unit.stdout
    assert "FAILED" in unit.stdout + unit.stderr


# --- names against a real scrape ---------------------------------------------------------------------


@pytest.fixture
def exported_names(api, ticket_type):
    """Sample names of a real /metrics scrape after real traffic: a checkout (HTTP and business counters,
    committed for real) and the scrape-time gauges."""
    basket = api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1}, format="json")
    assert basket.status_code == 201
    checkout = api.post(
        "/api/checkout",
        {"basket": basket.json()["token"], "name": "Ada", "email": "ada@example.com", "payment_method": "test"},
        format="json",
    )
    assert checkout.status_code == 201
    response = api.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    # And what a reconciliation run pushes to the Pushgateway (orders/tests/test_reconcile_metrics.py pushes it).
    text += generate_latest(reconciliation_run(settled={"paid": 1}, errors=0)).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def known(names, exported):
    allowed = exported | records() | PROMETHEUS_OWN
    if connection.vendor != "postgresql":
        allowed |= POSTGRESQL_ONLY
    return names - allowed


@pytest.mark.django_db(transaction=True)
def test_every_dashboard_query_reads_recorded_or_exported_names(exported_names):
    board = dashboard.load()
    queries = list(dashboard.queries(board))
    assert len(queries) >= 20
    for title, expr in queries:
        names = dashboard.metric_names(expr)
        assert not known(names, exported_names), f"panel {title!r}: unknown {known(names, exported_names)}"
    used = set().union(*(dashboard.metric_names(expr) for _, expr in queries))
    assert "aegistickets_tickets_sold_total" in used
    assert "aegistickets_seats_remaining" in used
    assert "aegistickets_checkout_outcomes_total" in used


@pytest.mark.django_db(transaction=True)
def test_every_rule_reads_recorded_or_exported_names(exported_names):
    for rule in rules():
        names = dashboard.metric_names(rule["expr"])
        unknown = known(names, exported_names)
        assert not unknown, f"{rule.get('record') or rule.get('alert')}: unknown {unknown}"


def test_the_name_extraction_finds_metrics_and_ignores_functions_labels_and_keywords():
    expr = (
        'histogram_quantile(0.95, sum by (le, job) (rate(a_bucket{job="$job", le!="x"}[5m])))'
        " / on() group_left() scalar(slo:x:target) and b_total offset 5m or vector(1e3)"
    )
    assert dashboard.metric_names(expr) == {"a_bucket", "slo:x:target", "b_total"}


def test_the_dashboard_is_well_formed_for_grafana():
    board = dashboard.load()
    assert board["uid"] == "aegistickets"
    ids = [panel["id"] for panel in dashboard.panels(board)]
    assert len(ids) == len(set(ids))
    for panel in dashboard.panels(board):
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'job="$job"' in target["expr"] or "job" not in target["expr"], panel["title"]
    assert dashboard.variables(board) == {"job": "aegistickets", "namespace": ".*"}


@promtool
def test_every_dashboard_query_is_valid_promql(tmp_path):
    board = dashboard.load()
    groups = [
        {
            "name": "dashboard",
            "rules": [
                {"record": f"dashboard:query:{i}", "expr": dashboard.substitute(expr, board)}
                for i, (_, expr) in enumerate(dashboard.queries(board))
            ],
        }
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(json.dumps({"groups": groups}))
    check = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)  # noqa: S603, S607 - fixed argv, promtool from PATH
    assert check.returncode == 0, check.stdout + check.stderr
