"""Reconciliation runs as a CronJob, a process nobody scrapes: each run pushes what it did to a Prometheus
Pushgateway (METRICS_PUSHGATEWAY_URL), a real one started here, and the alert on stale runs reads it back."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command
from prometheus_client.parser import text_string_to_metric_families

from orders.tests.test_pending_orders import WINDOW, pay, pending_order
from scripts.lib import http
from scripts.lib.processes import free_port, running
from scripts.lib.wait import wait_for

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
JOB = "aegistickets_reconcile_payments"

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(PUSHGATEWAY is None, reason="needs the Pushgateway (apt-get install prometheus-pushgateway)"),
]


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Pushgateway on 127.0.0.1 for this module: its base URL."""
    port = free_port()
    argv = [str(PUSHGATEWAY), f"--web.listen-address=127.0.0.1:{port}", "--web.enable-admin-api"]
    cwd = Path(tmp_path_factory.mktemp("pushgateway"))
    with running(argv, cwd=cwd, env={"PATH": "/usr/bin:/bin"}, output=subprocess.DEVNULL, grace=5):
        base = f"http://127.0.0.1:{port}"
        wait_for("the Pushgateway", lambda: http.get(f"{base}/-/ready", timeout=1).status == 200, timeout=20)
        yield base


@pytest.fixture
def gateway(pushgateway: str, settings) -> str:  # type: ignore[no-untyped-def]
    """The Pushgateway, emptied, as the shop's METRICS_PUSHGATEWAY_URL."""
    requests.put(f"{pushgateway}/api/v1/admin/wipe", timeout=5).raise_for_status()
    settings.METRICS_PUSHGATEWAY_URL = pushgateway
    return pushgateway


def pushed(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The reconciliation job's samples as the Pushgateway serves them to Prometheus: (name, labels) → value."""
    text = requests.get(f"{base}/metrics", timeout=5).text
    own = lambda labels: tuple(sorted((k, v) for k, v in labels.items() if k not in ("job", "instance")))  # noqa: E731
    return {
        (sample.name, own(sample.labels)): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("job") == JOB and sample.name.startswith("aegistickets_")
    }


def test_a_run_pushes_what_it_settled_and_when_it_last_succeeded(gateway, stripe_shop, ticket_type, now):
    pay(pending_order(ticket_type, now - WINDOW - timedelta(minutes=5)).payment)
    before = time.time()

    call_command("reconcile_payments", stdout=StringIO())

    samples = pushed(gateway)
    assert samples[("aegistickets_reconcile_settled", (("outcome", "paid"),))] == 1
    assert samples[("aegistickets_reconcile_settled", (("outcome", "voided"),))] == 0  # every outcome, from 0
    assert samples[("aegistickets_reconcile_errors", ())] == 0
    for name in ("last_run", "last_success"):
        assert before <= samples[(f"aegistickets_reconcile_{name}_timestamp_seconds", ())] <= time.time()


def test_a_failed_run_pushes_its_errors_and_keeps_the_last_success(gateway, stripe_shop, ticket_type, now, settings):
    call_command("reconcile_payments", stdout=StringIO())  # nothing to do: a success
    succeeded = pushed(gateway)[("aegistickets_reconcile_last_success_timestamp_seconds", ())]
    pending_order(ticket_type, now - WINDOW - timedelta(minutes=5))
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # the provider does not answer

    with pytest.raises(CommandError):
        call_command("reconcile_payments", stdout=StringIO())

    samples = pushed(gateway)
    assert samples[("aegistickets_reconcile_errors", ())] == 1
    assert samples[("aegistickets_reconcile_last_success_timestamp_seconds", ())] == succeeded
    assert samples[("aegistickets_reconcile_last_run_timestamp_seconds", ())] >= succeeded


def test_an_unreachable_gateway_does_not_fail_the_run(stripe_shop, ticket_type, now, settings):
    settings.METRICS_PUSHGATEWAY_URL = "http://127.0.0.1:9"
    pay(pending_order(ticket_type, now - WINDOW - timedelta(minutes=5)).payment)
    out, err = StringIO(), StringIO()

    call_command("reconcile_payments", stdout=out, stderr=err)

    assert out.getvalue().strip() == "Settled: paid 1. Provider errors: 0."
    assert "could not push" in err.getvalue()


def test_without_a_gateway_nothing_is_pushed(pushgateway, stripe_shop, settings):
    """The control for the checks above: the samples come from the run, not from the gateway."""
    requests.put(f"{pushgateway}/api/v1/admin/wipe", timeout=5).raise_for_status()
    settings.METRICS_PUSHGATEWAY_URL = ""
    call_command("reconcile_payments", stdout=StringIO())
    assert pushed(pushgateway) == {}
