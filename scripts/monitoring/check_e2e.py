"""End-to-end proof of the monitoring (`make monitoring-check`): the app under gunicorn with several
workers on its own PostgreSQL database, scraped by a real Prometheus that loads the real rule file.

It drives known traffic (2xx, 4xx, real 5xx from the fault-injection view, checkouts, probes that must not
count), then asserts through Prometheus' HTTP API that
- the request counters equal exactly the requests sent, by status (multiprocess aggregation: the requests
  were served by several workers, every scrape sums them all);
- every `sli:*` and `slo:*` series exists with sane values: request rate > 0, the error rate equals the
  5xx share sent (within tolerance), p95 > 0, DB saturation in (0, 1];
- the fast-burn alert fires on that error rate, every rule evaluates without error;
- business metrics match the database (tickets sold, orders, outcomes, seats remaining);
- every query of the Grafana dashboard runs and returns data.
Everything it starts (gunicorn, Prometheus, the database, temp dirs) is stopped or removed at the end.
Loopback only, bounded in time (about a minute).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.monitoring import dashboard  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
DATABASE = "aegistickets_monitoring_check"
WORKERS = 3
DEADLINE_SECONDS = 170
EXCLUDED_PATHS = {"/healthz", "/readyz", "/metrics"}
JOB = "aegistickets"


class CheckFailedError(AssertionError):
    pass


def log(message: str) -> None:
    print(f"[monitoring-check {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*argv: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv of our own tools
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise CheckFailedError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def ensure_postgres() -> None:
    def ready() -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False).returncode == 0  # noqa: S607 - pg_isready from PATH

    if ready():
        return
    version = sorted(os.listdir("/etc/postgresql"))[0]
    log(f"starting PostgreSQL {version}")
    run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start")
    for _ in range(30):
        if ready():
            return
        time.sleep(1)
    raise CheckFailedError("PostgreSQL did not start")


def psql(sql: str, database: str = "postgres") -> str:
    return run("psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-qtAX", "-c", sql)


# --- HTTP ---------------------------------------------------------------------------------------------


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310 - loopback
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except OSError as error:  # not listening (yet), reset, timeout
        return 0, str(error)
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


class Traffic:
    """Sends requests to the app and counts what it sent by status, except the untracked paths."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.by_status: collections.Counter[str] = collections.Counter()
        self.untracked = 0
        self._lock = threading.Lock()

    def send(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        status, payload = http(method, self.base + path, body, headers)
        with self._lock:
            if urllib.parse.urlsplit(path).path in EXCLUDED_PATHS:
                self.untracked += 1
            else:
                self.by_status[str(status)] += 1
        return status, payload

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def share_5xx(self, since: collections.Counter[str]) -> float:
        sent = self.by_status - since
        return sum(n for status, n in sent.items() if status.startswith("5")) / sum(sent.values())


# --- Prometheus ---------------------------------------------------------------------------------------


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        status, body = http("GET", f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if status != 200 or body.get("status") != "success":
            raise CheckFailedError(f"query {expr!r} failed: {status} {body}")
        return list(body["data"]["result"])

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        if len(result) > 1:
            raise CheckFailedError(f"{expr!r} returned {len(result)} series, expected one: {result}")
        return float(result[0]["value"][1]) if result else None

    def api(self, path: str) -> Any:
        status, body = http("GET", f"{self.url}/api/v1/{path}")
        if status != 200:
            raise CheckFailedError(f"/api/v1/{path}: {status} {body}")
        return body["data"]


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30, interval: float = 0.5) -> Any:
    """Polls until probe() returns something truthy; fails with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise CheckFailedError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


# --- the check ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def started(argv: list[str], *, env: dict[str, str], log_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session (so its children go with it), stopped by its process group."""
    with log_file.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - fixed argv of our own tools
            argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailedError(message)
    log(f"ok: {message}")


def drive_traffic(traffic: Traffic, *, faults: int, rounds: int) -> dict[str, int]:
    """Known traffic from 6 threads (new connection per request, so the workers share it)."""
    status, events = traffic.send("GET", "/api/events")
    if status != 200:
        raise CheckFailedError(f"GET /api/events: {status} {events}")
    by_slug = {event["slug"]: event for event in events["events"]}
    _, jazz = traffic.send("GET", f"/api/events/{by_slug['harbour-sessions-nordic-jazz']['id']}")
    _, owls = traffic.send("GET", f"/api/events/{by_slug['midnight-owls-farewell-show']['id']}")
    standing = next(t for t in jazz["ticket_types"] if t["name"] == "Standing")
    sold_out = owls["ticket_types"][0]
    bought = {"orders": 0, "tickets": 0, "held": 0, "sold_out": 0, "ticket_type_id": standing["id"]}
    lock = threading.Lock()

    def checkout(i: int) -> None:
        status, basket = traffic.send("POST", "/api/basket", {"ticket_type_id": standing["id"], "quantity": 2})
        if status != 201:
            raise CheckFailedError(f"basket add: {status} {basket}")
        status, order = traffic.send(
            "POST",
            "/api/checkout",
            {
                "basket": basket["token"],
                "name": "Monitoring Check",
                "email": "check@example.com",
                "payment_method": "test",
            },
            {"Idempotency-Key": secrets.token_hex(16)},
        )
        if status != 201:
            raise CheckFailedError(f"checkout: {status} {order}")
        with lock:
            bought["orders"] += 1
            bought["tickets"] += 2
            bought["held"] += 1

    def refused(i: int) -> None:
        status, _ = traffic.send("POST", "/api/basket", {"ticket_type_id": sold_out["id"], "quantity": 1})
        if status != 409:
            raise CheckFailedError(f"sold-out basket add answered {status}")
        with lock:
            bought["sold_out"] += 1

    jobs: list[Callable[[], Any]] = []
    for i in range(rounds):
        jobs += [lambda: traffic.send("GET", "/api/events") for _ in range(8)]
        jobs += [lambda: traffic.send("GET", f"/api/events/{jazz['id']}")]
        jobs += [lambda: traffic.send("GET", "/api/events/999999999")]  # 404
        jobs += [lambda: traffic.send("POST", "/api/basket", {"quantity": "many"})]  # 400
        jobs += [lambda: traffic.send("GET", "/healthz"), lambda: traffic.send("GET", "/readyz")]  # untracked
        jobs += [lambda i=i: checkout(i)] if i % 2 == 0 else [lambda i=i: refused(i)]
    jobs += [lambda: traffic.send("GET", "/api/_fault") for _ in range(faults)]  # 500
    with ThreadPoolExecutor(max_workers=6) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()
    return bought


def check(args: argparse.Namespace) -> None:
    started_at = time.monotonic()
    ensure_postgres()
    workdir = Path(tempfile.mkdtemp(prefix="aegistickets-monitoring-check-"))
    app_port, prom_port = free_port(), free_port()
    base = f"http://127.0.0.1:{app_port}"
    database_url = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "PROMETHEUS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="aegistickets.settings.production",
        DJANGO_ENV_FILE="/nonexistent",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=database_url,
        FAULT_INJECTION_ENABLED="true",
        RATE_LIMITS_ENABLED="false",
        CATALOG_CACHE_SECONDS="0",
        METRICS_DB_CACHE_SECONDS="1",
        LOG_LEVEL="warning",
    )
    try:
        psql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        psql(f'CREATE DATABASE "{DATABASE}"')
        log(f"database {DATABASE}: migrate and seed")
        run(PYTHON, "manage.py", "migrate", "--noinput", env=env)
        run(PYTHON, "manage.py", "seed_demo", f"--admin-password={secrets.token_urlsafe(16)}", env=env)

        app_env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(app_port),
            "WEB_CONCURRENCY": str(WORKERS),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus-multiproc"),
            "GUNICORN_ACCESS_LOG": str(workdir / "access.log"),
            "GUNICORN_ACCESS_LOG_FORMAT": "text",
        }
        # Stale files from "an earlier run" must be wiped by gunicorn's on_starting hook.
        (workdir / "prometheus-multiproc").mkdir()
        (workdir / "prometheus-multiproc" / "counter_999999.db").write_bytes(b"stale")
        gunicorn = [GUNICORN, "-c", "gunicorn.conf.py", "--access-logformat", "%(p)s %(s)s %(m)s %(U)s"]
        gunicorn.append("aegistickets.wsgi:application")
        config = workdir / "prometheus.yml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(dashboard.RULES)],
                    "scrape_configs": [
                        {
                            "job_name": JOB,
                            "metrics_path": "/metrics",
                            "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}],
                        }
                    ],
                }
            )
        )
        prometheus = [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--storage.tsdb.retention.time=1h",
        ]
        with (
            started(gunicorn, env=app_env, log_file=workdir / "gunicorn.log") as app,
            started(prometheus, env=env, log_file=workdir / "prometheus.log"),
        ):
            try:
                run_checks(base, Prometheus(f"http://127.0.0.1:{prom_port}"), app, workdir, args)
            except BaseException:
                for name in ("gunicorn.log", "prometheus.log"):
                    print(f"--- {name} (last 40 lines)", file=sys.stderr)
                    lines = (workdir / name).read_text(errors="replace").splitlines()[-40:]
                    print("\n".join(lines), file=sys.stderr)
                raise
    finally:
        with contextlib.suppress(CheckFailedError):
            psql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
        log(f"cleaned up after {time.monotonic() - started_at:.0f} s")


def run_checks(base: str, prom: Prometheus, app: subprocess.Popen[bytes], workdir: Path, args: Any) -> None:
    multiproc = workdir / "prometheus-multiproc"
    wait_for("the app to answer /healthz", lambda: http("GET", f"{base}/healthz")[0] == 200, timeout=60)
    expect(not (multiproc / "counter_999999.db").exists(), "gunicorn's on_starting emptied the metrics directory")
    status, _ = http("GET", f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    expect(status == 403, f"/metrics through a proxy (X-Forwarded-For) is refused ({status})")
    wait_for("Prometheus to be ready", lambda: http("GET", f"{prom.url}/-/ready")[0] == 200, timeout=60)
    wait_for("the first successful scrape", lambda: prom.value(f'up{{job="{JOB}"}}') == 1.0, timeout=30)

    traffic = Traffic(base)
    # Warm-up: one response of each status class, so that every series exists before the measured phase.
    traffic.send("GET", "/api/events")
    traffic.send("GET", "/api/events/999999999")
    traffic.send("GET", "/api/_fault")
    warm = traffic.by_status.copy()
    total_expr = f'sum(django_http_responses_total_by_status_total{{job="{JOB}"}})'
    wait_for("Prometheus to scrape the warm-up", lambda: prom.value(total_expr) == traffic.total)
    time.sleep(2.5)

    log("driving traffic")
    bought = drive_traffic(traffic, faults=args.faults, rounds=args.rounds)
    share = traffic.share_5xx(since=warm)
    log(f"sent {traffic.total} counted requests {dict(traffic.by_status)}, {traffic.untracked} probes/scrapes")

    # 1. Exact totals, through Prometheus, after the scrape that follows the last request.
    wait_for(f"Prometheus to see all {traffic.total} requests", lambda: prom.value(total_expr) == traffic.total)
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
    pids = collections.Counter(
        line.split()[0]
        for line in (workdir / "access.log").read_text().splitlines()
        if len(line.split()) >= 4 and line.split()[3] not in EXCLUDED_PATHS
    )
    expect(len(pids) >= 2, f"the requests were served by {len(pids)} workers {dict(pids)}: one scrape sums them")
    for _ in range(4):  # whichever worker answers a scrape, it reports everyone's requests
        status, text = http("GET", f"{base}/metrics")
        scraped = sum(
            float(line.rsplit(" ", 1)[1])
            for line in str(text).splitlines()
            if line.startswith("django_http_responses_total_by_status_total{")
        )
        expect(scraped == traffic.total, f"a direct scrape of /metrics also counts {scraped:.0f} requests")

    # 2. Business metrics against what was bought and the database.
    time.sleep(2)  # DB gauges are cached for METRICS_DB_CACHE_SECONDS=1; let Prometheus scrape fresh ones
    checks = {
        f'sum(aegistickets_tickets_sold_total{{job="{JOB}"}})': bought["tickets"],
        f'sum(aegistickets_orders_placed_total{{job="{JOB}"}})': bought["orders"],
        f'sum(aegistickets_checkout_outcomes_total{{job="{JOB}", step="checkout", outcome="paid"}})': bought["orders"],
        f'sum(aegistickets_checkout_outcomes_total{{job="{JOB}", step="basket", outcome="held"}})': bought["held"],
        f'sum(aegistickets_checkout_outcomes_total{{job="{JOB}", step="basket", outcome="sold_out"}})': bought[
            "sold_out"
        ],
        f'sum(aegistickets_tickets_sold_total{{job="{JOB}", event="harbour-sessions-nordic-jazz"}})': bought["tickets"],
    }
    for expr, expected in checks.items():
        value = prom.value(expr)
        expect(value == expected, f"{expr} = {value} (expected {expected})")
    seats_sql = (
        "SELECT t.capacity - t.sold - coalesce(sum(h.quantity) FILTER (WHERE h.expires_at > now()), 0) "
        "FROM events_tickettype t LEFT JOIN orders_hold h ON h.ticket_type_id = t.id "
        "WHERE t.id = {id} GROUP BY t.id"
    )
    truth = int(psql(seats_sql.format(id=int(bought["ticket_type_id"])), DATABASE).strip())
    remaining_expr = f'aegistickets_seats_remaining{{job="{JOB}", ticket_type_id="{bought["ticket_type_id"]}"}}'
    wait_for(f"{remaining_expr} to equal the database's {truth}", lambda: prom.value(remaining_expr) == truth)
    log(f"ok: {remaining_expr} = {truth} = capacity - sold - unexpired holds in the database")

    # 3. Every recorded SLI and SLO series, evaluated by Prometheus from the real rule file.
    def recorded() -> bool:
        return all(prom.query(name) for name in record_names())

    wait_for("every recording rule to produce a series", recorded, timeout=20)
    targets = {"slo:availability:target": 0.999, "slo:latency:target": 0.8, "slo:error_rate:target": 0.01}
    for name, target in targets.items():
        expect(prom.value(name) == target, f"{name} = {target}")
    time.sleep(2)  # one more scrape and evaluation after the last request
    rate = prom.value("sli:http:request_rate:5m")
    expect(rate is not None and rate > 0, f"sli:http:request_rate:5m = {rate} req/s > 0")
    error_rate = prom.value("sli:http:error_rate:5m")
    tolerance = 0.01 + 0.1 * share
    expect(
        error_rate is not None and abs(error_rate - share) <= tolerance,
        f"sli:http:error_rate:5m = {error_rate:.4f} matches the 5xx share sent {share:.4f} (± {tolerance:.4f})",
    )
    for window in ("5m", "30m", "1h", "6h", "1d", "3d", "30d"):
        value = prom.value(f"sli:http:error_ratio:rate{window}")
        expect(
            value is not None and abs(value - share) <= tolerance, f"sli:http:error_ratio:rate{window} = {value:.4f}"
        )
    p95 = prom.value("sli:http:request_duration_seconds:p95")
    expect(p95 is not None and 0 < p95 < 10, f"sli:http:request_duration_seconds:p95 = {p95:.4f} s > 0")
    p95_1d = prom.value("sli:http:request_duration_seconds:p95_1d")
    expect(p95_1d is not None and p95_1d > 0, f"sli:http:request_duration_seconds:p95_1d = {p95_1d:.4f} s > 0")
    saturation = prom.value("sli:db:saturation:connections")
    expect(saturation is not None and 0 < saturation <= 1, f"sli:db:saturation:connections = {saturation:.4f}")

    # 4. The rules evaluate cleanly, and the error budget burn we caused pages.
    groups = prom.api("rules")["groups"]
    broken = [
        (rule["name"], rule.get("lastError")) for group in groups for rule in group["rules"] if rule["health"] != "ok"
    ]
    rule_count = sum(len(group["rules"]) for group in groups)
    expect(not broken and rule_count == len(record_names()) + len(alert_names()), f"all {rule_count} rules healthy")

    def firing() -> set[str]:
        return {alert["labels"]["alertname"] for alert in prom.api("alerts")["alerts"] if alert["state"] == "firing"}

    fired = wait_for("the fast-burn alert to fire", lambda: "AegisTicketsErrorBudgetFastBurn" in firing() and firing())
    expect(
        "AegisTicketsDown" not in fired and "AegisTicketsDBConnectionSaturation" not in fired,
        f"firing: {sorted(fired)}",
    )

    # 5. Every dashboard query runs against this Prometheus and returns data.
    empty = []
    queries = list(dashboard.queries(dashboard.load()))
    for title, expr in queries:
        if not prom.query(dashboard.substitute(expr)):
            empty.append(f"{title}: {expr}")
    expect(not empty, f"all {len(queries)} dashboard queries return data" + (f"; empty: {empty}" if empty else ""))
    expect(app.poll() is None, "gunicorn is still serving")
    log(
        "measured: "
        + json.dumps(
            {
                "requests": traffic.total,
                "by_status": dict(traffic.by_status),
                "untracked_probes": traffic.untracked,
                "workers_serving": len(pids),
                "5xx_share_sent": round(share, 4),
                "sli:http:error_rate:5m": round(error_rate or 0, 4),
                "sli:http:request_rate:5m": round(rate or 0, 3),
                "sli:http:request_duration_seconds:p95": round(p95 or 0, 4),
                "sli:db:saturation:connections": round(saturation or 0, 4),
                "tickets_sold": bought["tickets"],
                "firing": sorted(fired),
            }
        )
    )


def _rule_names(key: str) -> list[str]:
    import yaml

    groups = yaml.safe_load(dashboard.RULES.read_text())["groups"]
    return [rule[key] for group in groups for rule in group["rules"] if key in rule]


def record_names() -> list[str]:
    return _rule_names("record")


def alert_names() -> list[str]:
    return _rule_names("alert")


def _stop(signum: int, frame: Any) -> None:
    raise CheckFailedError(f"stopped by signal {signum} (deadline {DEADLINE_SECONDS} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=24, help="traffic rounds (13 requests each)")
    parser.add_argument("--faults", type=int, default=30, help="requests to the 5xx fault view")
    args = parser.parse_args()
    for tool in ("prometheus", "pg_isready", "psql"):
        if shutil.which(tool) is None:
            print(
                f"{tool} not found: run scripts/monitoring/install_prometheus.sh / install PostgreSQL", file=sys.stderr
            )
            return 2
    deadline = threading.Timer(DEADLINE_SECONDS, lambda: os.kill(os.getpid(), signal.SIGTERM))
    deadline.daemon = True
    deadline.start()
    signal.signal(signal.SIGTERM, _stop)
    try:
        check(args)
    except CheckFailedError as failure:
        print(f"\nmonitoring-check FAILED: {failure}", file=sys.stderr)
        return 1
    print("\nmonitoring-check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
