"""The Helm chart's PrometheusRule and dashboard ConfigMap are the monitoring sources, rendered (part of
`make rules-check`). Runs with the deploy venv (.venv-deploy: helm-python-sdk, PyYAML) and promtool:

- the PrometheusRule rendered with job "aegistickets", extracted back into a plain rule file, passes
  `promtool check rules` and the very same unit tests as the chart's rule file (so it behaves identically);
- rendered with the default job, every selector names the Service's job, and the dashboard ConfigMap holds
  the chart's dashboard file with its `job` constant set to that job, labelled for the Grafana sidecar;
- runbookBaseUrl prefixes every runbook link; rules/dashboard can be switched off; the schema refuses typos.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "deploy"))

import helmpy  # noqa: E402

CHART = str(ROOT / "deploy" / "helm" / "aegistickets")
SOURCE_RULES = ROOT / "deploy" / "helm" / "aegistickets" / "files" / "monitoring" / "aegistickets.rules.yml"
SOURCE_TESTS = ROOT / "deploy" / "monitoring" / "tests"
SOURCE_DASHBOARD = ROOT / "deploy" / "helm" / "aegistickets" / "files" / "monitoring" / "aegistickets.json"
ON = ["monitoring.enabled=true"]


class CheckFailedError(Exception):
    pass


def require(condition: object, message: object) -> None:
    if not condition:
        raise CheckFailedError(message)


def render(*sets: str, name: str = "shop") -> list[dict[str, Any]]:
    text = helmpy.render(CHART, sets=[*ON, *sets], name=name, namespace="tickets")
    return [doc for doc in yaml.safe_load_all(text) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind and (kind != "ConfigMap" or "aegistickets.json" in doc["data"])]
    require(len(found) == 1, f"{len(found)} {kind} rendered")
    return found[0]


def promtool(*args: str, cwd: Path) -> None:
    result = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603, S607 - promtool from PATH
    print(result.stdout.strip())
    require(result.returncode == 0, result.stderr)


def copy_rule_tests(rules: Path, into: Path) -> None:
    """The unit tests, pointed at another rule file (promtool reads rule_files relative to each test file)."""
    into.mkdir()
    for test in sorted(SOURCE_TESTS.glob("*.yml")):
        text = test.read_text()
        (listed,) = yaml.safe_load(text)["rule_files"]
        require(text.count(listed) == 1, f"{test.name}: rule file {listed} named more than once")
        (into / test.name).write_text(text.replace(listed, str(rules)))


def main() -> int:
    # 1. Rendered rules behave exactly like the source: promtool check + the same unit tests.
    rule = one(render("monitoring.rules.job=aegistickets"), "PrometheusRule")
    require(rule["apiVersion"] == "monitoring.coreos.com/v1", rule["apiVersion"])
    require(rule["metadata"]["labels"]["release"] == "kube-prometheus-stack", "no release label")
    require(rule["spec"] == yaml.safe_load(SOURCE_RULES.read_text()), "rendered groups differ from the source")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "rules").mkdir()
        (work / "rules" / SOURCE_RULES.name).write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
        copy_rule_tests(work / "rules" / SOURCE_RULES.name, work / "tests")
        promtool("check", "rules", str(work / "rules" / SOURCE_RULES.name), cwd=work)
        promtool("test", "rules", *sorted(p.name for p in (work / "tests").glob("*.yml")), cwd=work / "tests")
    print("ok: the rendered PrometheusRule passes promtool check and the rules' unit tests")

    # 2. Default job: the Service's name, in the rules and in the dashboard.
    docs = render()
    service = one(docs, "Service")["metadata"]["name"]
    text = json.dumps(one(docs, "PrometheusRule")["spec"])
    require(f'job=\\"{service}\\"' in text, text[:500])
    require('job=\\"aegistickets\\"' not in text, "a selector kept the source's job")
    config_map = one(docs, "ConfigMap")
    require(config_map["metadata"]["labels"].get("grafana_dashboard") == "1", "no Grafana sidecar label")
    board = json.loads(config_map["data"]["aegistickets.json"])
    source = json.loads(SOURCE_DASHBOARD.read_text())
    constants = {v["name"]: v for v in board["templating"]["list"]}
    require(constants["job"]["query"] == service, f"dashboard job {constants['job']['query']!r}")
    constants["job"]["query"] = "aegistickets"
    require(board == source, "the dashboard ConfigMap differs from the source beyond the job")
    print(f"ok: default job {service!r} in every rule selector and in the dashboard; sidecar label set")

    # 3. Runbook links, switches, labels, and the schema.
    base = "https://git.example.org/shop/aegistickets/blob/main"
    rule = one(
        render(f"monitoring.rules.runbookBaseUrl={base}/", "monitoring.rules.labels.team=tickets"), "PrometheusRule"
    )
    urls = [r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    require(urls, "no alerts")
    require(all(u.startswith(f"{base}/docs/runbooks.md#") for u in urls), urls)
    require(rule["metadata"]["labels"].get("team") == "tickets", "monitoring.rules.labels not applied")
    kinds = [d["kind"] for d in render("monitoring.rules.enabled=false", "monitoring.dashboard.enabled=false")]
    require("PrometheusRule" not in kinds, kinds)
    dashboards = [d for d in render("monitoring.dashboard.enabled=false") if "aegistickets.json" in d.get("data", {})]
    require(not dashboards, "dashboard rendered although disabled")
    dashboard_ns = one(render("monitoring.dashboard.namespace=monitoring"), "ConfigMap")["metadata"]["namespace"]
    require(dashboard_ns == "monitoring", f"dashboard namespace {dashboard_ns}")
    try:
        render("monitoring.rules.jobb=x")
    except Exception as error:  # noqa: BLE001 - helm's error type from the shared library
        require("jobb" in str(error) or "additional" in str(error).lower(), f"unexpected error: {error}")
    else:
        raise CheckFailedError("values.schema.json accepted monitoring.rules.jobb")
    print("ok: runbookBaseUrl, extra labels, enabled switches, dashboard namespace, schema refuses unknown keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
