"""/metrics: what it exports, who may read it, and which requests count as traffic."""

import importlib.util
import os
import runpy
from pathlib import Path

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from aegistickets.metrics import CachedCollector, DatabaseConnectionsCollector, metrics_registry

ROOT = Path(__file__).resolve().parents[2]


def scrape(client, **extra):
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return {s.name: s for family in text_string_to_metric_families(response.content.decode()) for s in family.samples}


def requests_total():
    return REGISTRY.get_sample_value("django_http_requests_before_middlewares_total") or 0.0


def responses(status):
    return REGISTRY.get_sample_value("django_http_responses_total_by_status_total", {"status": status}) or 0.0


def latency_count():
    return REGISTRY.get_sample_value("django_http_requests_latency_including_middlewares_seconds_count") or 0.0


@pytest.mark.django_db
def test_metrics_exports_http_database_and_shop_families_in_prometheus_text(client, ticket_type):
    client.get("/api/events")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    names = {s.name for family in text_string_to_metric_families(response.content.decode()) for s in family.samples}
    assert {
        "django_http_responses_total_by_status_total",
        "django_http_requests_latency_including_middlewares_seconds_bucket",
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "django_db_execute_total",
        "django_db_query_duration_seconds_bucket",
        "aegistickets_checkout_outcomes_total",
        "aegistickets_seats_remaining",
        "aegistickets_holds_active",
    } <= names


@pytest.mark.django_db
def test_probes_and_scrapes_are_not_traffic(client):
    before = (requests_total(), responses("200"), latency_count())
    for path in ("/healthz", "/readyz", "/metrics", "/healthz", "/metrics"):
        assert client.get(path).status_code == 200
    assert (requests_total(), responses("200"), latency_count()) == before

    assert client.get("/api/events").status_code == 200
    assert (requests_total(), responses("200"), latency_count()) == (before[0] + 1, before[1] + 1, before[2] + 1)


@pytest.mark.django_db
def test_client_errors_and_server_errors_are_counted_by_status(settings):
    settings.FAULT_INJECTION_ENABLED = True
    client = Client(raise_request_exception=False)
    before = (responses("404"), responses("500"))
    assert client.get("/api/events/999999").status_code == 404
    response = client.get("/api/_fault")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert (responses("404"), responses("500")) == (before[0] + 1, before[1] + 1)


def view_latency_count(view, method):
    name = "django_http_requests_latency_seconds_by_view_method_count"
    return REGISTRY.get_sample_value(name, {"view": view, "method": method}) or 0.0


@pytest.mark.django_db
def test_a_server_error_counts_its_latency_once_by_view_and_its_exception_by_type(settings):
    settings.FAULT_INJECTION_ENABLED = True
    client = Client(raise_request_exception=False)
    exceptions = ("django_http_exceptions_total_by_type_total", {"type": "InjectedFaultError"})
    before = (view_latency_count("fault", "GET"), REGISTRY.get_sample_value(*exceptions) or 0.0)
    assert client.get("/api/_fault").status_code == 500
    assert (view_latency_count("fault", "GET"), REGISTRY.get_sample_value(*exceptions)) == (
        before[0] + 1,
        before[1] + 1,
    )


@pytest.mark.django_db
def test_a_made_up_method_is_labelled_as_invalid_not_by_its_name(client):
    before = view_latency_count("api:events", "<invalid method>")
    client.generic("BREW", "/api/events")
    assert view_latency_count("api:events", "<invalid method>") == before + 1
    assert view_latency_count("api:events", "BREW") == 0.0


@pytest.mark.django_db
def test_the_fault_view_is_off_by_default(client):
    assert settings.FAULT_INJECTION_ENABLED is False
    response = client.get("/api/_fault")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_latency_buckets_resolve_the_800_ms_slo():
    buckets = settings.PROMETHEUS_LATENCY_BUCKETS
    assert 0.8 in buckets
    assert len([b for b in buckets if 0.025 <= b <= 2.0]) >= 15
    assert buckets[-1] == float("inf")
    assert list(buckets) == sorted(buckets)


def test_the_database_backends_are_django_prometheus_own_for_query_metrics():
    assert connection.settings_dict["ENGINE"].startswith("django_prometheus.db.backends.")


def db_sample(name, **labels):
    labels = {"alias": connection.alias, "vendor": connection.vendor, **labels}
    return REGISTRY.get_sample_value(name, labels) or 0.0


def db_errors():
    return {
        sample.labels["type"]: sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == "django_db_errors_total" and sample.labels.get("alias") == connection.alias
    }


@pytest.mark.django_db
def test_each_statement_is_counted_and_timed_and_a_failed_one_counted_by_error_type():
    before = (db_sample("django_db_execute_total"), db_sample("django_db_query_duration_seconds_count"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute("SELECT 2")
    after = (db_sample("django_db_execute_total"), db_sample("django_db_query_duration_seconds_count"))
    assert after == (before[0] + 2, before[1] + 2)

    errors = db_errors()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    # By the driver's own error type: sqlite3's OperationalError, psycopg's UndefinedTable.
    assert sum(db_errors().values()) == sum(errors.values()) + 1
    assert db_sample("django_db_query_duration_seconds_count") > after[1]  # timed too (savepoints around it)

    many = db_sample("django_db_execute_many_total")
    with connection.cursor() as cursor:
        cursor.executemany("UPDATE django_migrations SET app = app WHERE id = %s", [(-1,), (-2,), (-3,)])
    assert db_sample("django_db_execute_many_total") == many + 3


# --- who may read /metrics ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("peer", ["127.0.0.1", "10.12.0.7", "172.20.1.1", "192.168.5.5", "100.64.3.2", "::1"])
def test_cluster_internal_peers_may_scrape(client, peer):
    assert client.get("/metrics", REMOTE_ADDR=peer).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("peer", ["203.0.113.9", "8.8.8.8", "2001:db8::1", "", "not-an-address"])
def test_public_or_unknown_peers_are_refused(client, peer):
    response = client.get("/metrics", REMOTE_ADDR=peer)
    assert response.status_code == 403
    assert b"django_http" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"], ids=["xff", "forwarded", "x-real-ip"]
)
def test_requests_relayed_by_a_proxy_are_refused_even_from_a_private_address(client, header):
    # The ALB connects from a private VPC address and always adds X-Forwarded-For.
    response = client.get("/metrics", REMOTE_ADDR="10.0.3.17", **{header: "198.51.100.4"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_the_allowed_networks_are_a_setting(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200  # IPv4-mapped


@pytest.mark.django_db
def test_a_scrape_by_pod_ip_over_plain_http_is_answered(client, settings):
    # Prometheus sends Host: <pod IP>:<port>, which is not in ALLOWED_HOSTS, and scrapes over HTTP behind
    # DJANGO_SECURE_SSL_REDIRECT: /metrics answers before host validation and the HTTPS redirect.
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    assert client.get("/metrics", HTTP_HOST="10.42.0.7:8000").status_code == 200
    assert client.get("/api/events", HTTP_HOST="10.42.0.7:8000").status_code == 400


@pytest.mark.django_db
def test_metrics_only_answers_get_and_head(client):
    assert client.post("/metrics").status_code == 405
    assert client.head("/metrics").status_code == 200


# --- scrape-time collectors ---------------------------------------------------------------------------


class BrokenCollector(CachedCollector):
    name = "broken"

    def read(self):
        raise RuntimeError("database unreachable")


def test_a_failing_database_read_yields_read_ok_0_instead_of_failing_the_scrape():
    families = list(BrokenCollector().collect())
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [("aegistickets_metrics_db_read_ok", [0.0])]


@pytest.mark.django_db
def test_connection_gauges_exist_only_on_postgresql():
    names = {family.name for family in DatabaseConnectionsCollector().collect()}
    if connection.vendor == "postgresql":
        assert {"aegistickets_db_connections", "aegistickets_db_connections_max"} <= names
    else:
        assert names == {"aegistickets_metrics_db_read_ok"}


@pytest.mark.postgres
@pytest.mark.django_db
def test_connection_gauges_match_postgresql():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
        )
        usable = cursor.fetchone()[0]
    samples = {
        (s.name, s.labels.get("scope")): s.value
        for family in DatabaseConnectionsCollector().collect()
        for s in family.samples
    }
    assert samples[("aegistickets_db_connections_max", None)] == usable
    assert samples[("aegistickets_db_connections", "database")] >= 1  # this test's own connection
    assert samples[("aegistickets_db_connections", "server")] >= samples[("aegistickets_db_connections", "database")]


@pytest.mark.django_db
def test_a_scrape_outside_multiprocess_mode_reads_this_process_registry(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    names = {family.name for family in metrics_registry().collect()}
    assert "django_http_responses_total_by_status" in names
    assert "aegistickets_seats_remaining" in names


# --- gunicorn hooks -----------------------------------------------------------------------------------


def load_gunicorn_conf(monkeypatch, directory):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gunicorn_start_empties_the_multiprocess_directory_of_stale_metrics_only(monkeypatch, tmp_path):
    directory = tmp_path / "multiproc"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "histogram_456.db").write_bytes(b"stale")
    (directory / "README").write_text("not ours")
    conf = load_gunicorn_conf(monkeypatch, directory)
    conf.on_starting(server=None)
    assert sorted(p.name for p in directory.iterdir()) == ["README"]


def test_gunicorn_creates_a_missing_multiprocess_directory(monkeypatch, tmp_path):
    conf = load_gunicorn_conf(monkeypatch, tmp_path / "new" / "dir")
    conf.on_starting(server=None)
    assert (tmp_path / "new" / "dir").is_dir()


def test_gunicorn_defaults_to_a_per_port_directory_and_keeps_one_set_in_the_environment(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("PORT", "18555")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["raw_env"] == ["PROMETHEUS_MULTIPROC_DIR=/tmp/aegistickets-prometheus-18555"]
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # reading the config changes nothing
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/run/metrics")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["raw_env"] == ["PROMETHEUS_MULTIPROC_DIR=/run/metrics"]


def test_gunicorn_refuses_a_planted_symlink_as_metrics_directory(monkeypatch, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "multiproc").symlink_to(tmp_path / "elsewhere")
    conf = load_gunicorn_conf(monkeypatch, tmp_path / "multiproc")
    with pytest.raises(RuntimeError, match="another user"):
        conf.on_starting(server=None)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory to another user")
def test_gunicorn_refuses_a_metrics_directory_of_another_user(monkeypatch, tmp_path):
    directory = tmp_path / "multiproc"
    directory.mkdir()
    os.chown(directory, 65534, 65534)
    conf = load_gunicorn_conf(monkeypatch, directory)
    with pytest.raises(RuntimeError, match="another user"):
        conf.on_starting(server=None)


def test_gunicorn_listens_on_the_checkout_lane_only_when_asked(monkeypatch):
    monkeypatch.setenv("HOST", "0.0.0.0")  # noqa: S104 - the container's address, only read here
    monkeypatch.setenv("PORT", "8000")
    monkeypatch.delenv("CHECKOUT_PORT", raising=False)
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == ["0.0.0.0:8000"]
    monkeypatch.setenv("CHECKOUT_PORT", "8001")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == ["0.0.0.0:8000", "0.0.0.0:8001"]
