"""A real Prometheus on loopback, scraping one target with the real rule file, and a client for its HTTP API."""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.lib.http import get
from scripts.lib.processes import running
from scripts.lib.wait import wait_for

JOB = "aegistickets"


class QueryError(AssertionError):
    pass


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str) -> Any:
        answer = get(f"{self.url}/api/v1/{path}", timeout=10)
        if answer.status != 200 or not isinstance(answer.body, dict) or answer.body.get("status") != "success":
            raise QueryError(f"/api/v1/{path}: {answer.status or answer.error} {answer.body}")
        return answer.body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query?" + urllib.parse.urlencode({"query": expr}))["result"])

    def value(self, expr: str) -> float | None:
        """The value of a query that returns at most one series."""
        result = self.query(expr)
        if len(result) > 1:
            raise QueryError(f"{expr!r} returned {len(result)} series, expected one: {result}")
        return float(result[0]["value"][1]) if result else None

    def firing(self) -> set[str]:
        return {alert["labels"]["alertname"] for alert in self.api("alerts")["alerts"] if alert["state"] == "firing"}


@contextlib.contextmanager
def running_prometheus(*, port: int, target: str, rules: Path, workdir: Path) -> Iterator[Prometheus]:
    """Prometheus scraping `target` (host:port) every second with `rules`; its log in workdir/prometheus.log."""
    config = workdir / "prometheus.yml"
    settings = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": JOB, "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}],
    }
    config.write_text(json.dumps(settings))  # JSON is YAML
    argv = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    log = workdir / "prometheus.log"
    with log.open("wb") as output, running(argv, cwd=workdir, env={}, output=output, grace=20):
        prometheus = Prometheus(f"http://127.0.0.1:{port}")
        try:
            wait_for("Prometheus to be ready", lambda: get(f"{prometheus.url}/-/ready").status == 200, timeout=60)
            yield prometheus
        except BaseException:
            print("--- prometheus.log (last 40 lines)\n" + "\n".join(log.read_text().splitlines()[-40:]), flush=True)
            raise
