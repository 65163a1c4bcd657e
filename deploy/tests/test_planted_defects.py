"""Each check of scripts/deploy/check-chart.sh, shown to fail on a defect planted in otherwise good input.

The tools are the ones the script runs (from the same venv); the good input passes each of them (controls).
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import chartrules as rules
import helm_python
import pytest
import yaml

from conftest import ROOT, SCRIPTS, render_docs


def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT, check=False)  # noqa: S603 - argv from this file: our scripts and tools


def dump(tmp_path: Path, name: str, docs: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def web(docs: list[dict]) -> dict:
    return rules.web_deployment(docs)["spec"]["template"]["spec"]["containers"][0]


def worker(docs: list[dict]) -> dict:
    (deployment,) = rules.email_worker_deployments(docs)
    return deployment["spec"]["template"]["spec"]["containers"][0]


def reconcile(docs: list[dict]) -> dict:
    (cron,) = rules.reconcile_cronjobs(docs)
    return cron


def reconcile_container(docs: list[dict]) -> dict:
    return rules.pod_spec(reconcile(docs))["containers"][0]


def without_env(container: dict, name: str) -> None:
    container["env"] = [e for e in container["env"] if e["name"] != name]


# ---- values.schema.json and the templates' own `fail` ----


@pytest.mark.parametrize(
    ("bad_set", "message"),
    [
        ("image.tag=latest", "/image/tag"),
        ("image.tag=LATEST", "/image/tag"),
        ("image.digest=sha256:abc", "/image/digest"),
        ("image.pullPolicy=Never", "/image/pullPolicy"),
        ("podSecurityContext.runAsUser=0", "/podSecurityContext/runAsUser"),
        ("containerPort=80", "/containerPort"),
        ("ingress.tls=true", "additional properties 'tls'"),
        ("config.extraEnv.DJANGO_SECRET_KEY=oops", "invalid propertyName 'DJANGO_SECRET_KEY'"),
        ("autoscaling.minReplicas=1", "/autoscaling/minReplicas"),
        ("checkoutLane.containerPort=443", "/checkoutLane/containerPort"),
        ("checkoutLane.enabled=yes", "/checkoutLane/enabled"),
        ("config.extraEnv.CHECKOUT_PORT=8001", "invalid propertyName 'CHECKOUT_PORT'"),
        ("config.extraEnv.STRIPE_SECRET_KEY=sk_live_x", "invalid propertyName 'STRIPE_SECRET_KEY'"),
        ("config.extraEnv.PAYMENT_METHODS=test", "invalid propertyName 'PAYMENT_METHODS'"),
        ("payments.paymentMinutes=0", "/payments/paymentMinutes"),
        ("payments.stripe.enabled=yes", "/payments/stripe/enabled"),
        ("reconcilePayments.schedule=every two minutes", "/reconcilePayments/schedule"),
        ("reconcilePayments.activeDeadlineSeconds=0", "/reconcilePayments/activeDeadlineSeconds"),
    ],
)
def test_schema_refuses_bad_values(bad_set, message):
    with pytest.raises(helm_python.HelmError, match=re.escape(message)):
        render_docs(sets=[bad_set])


@pytest.mark.parametrize(
    ("bad_set", "message"),
    [
        ("checkoutLane.containerPort=8000", "must differ from containerPort"),
        ("service.port=8001", "must differ from service.port"),
    ],
)
def test_checkout_lane_on_a_taken_port_is_refused_by_the_template(bad_set, message):
    with pytest.raises(helm_python.HelmError, match=message):
        render_docs(sets=[bad_set])
    render_docs(sets=[bad_set, "checkoutLane.enabled=false"])  # the lane off: nothing clashes


@pytest.mark.parametrize(
    ("bad_sets", "message"),
    [
        (["payments.methods={stripe}"], "set payments.stripe.enabled=true"),
        (
            ["payments.stripe.enabled=true", "networkPolicy.allowHttpsEgress=false"],
            "needs networkPolicy.allowHttpsEgress",
        ),
    ],
)
def test_stripe_without_its_keys_or_a_way_out_is_refused_by_the_template(bad_sets, message):
    with pytest.raises(helm_python.HelmError, match=message):
        render_docs(sets=bad_sets)


def test_latest_from_app_version_is_refused_by_the_template(chart_copy):
    chart_yaml = chart_copy / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace('appVersion: "0.1.0"', 'appVersion: "latest"'))
    with pytest.raises(helm_python.HelmError, match="never `latest`"):
        render_docs(chart=chart_copy)


# ---- helm lint --strict ----


def test_helm_lint_fails_on_a_template_error(chart_copy):
    ok = run(sys.executable, SCRIPTS / "helmpy.py", "lint", chart_copy, "--strict")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    svc = chart_copy / "templates" / "service.yaml"
    svc.write_text(svc.read_text().replace("{{ .Values.service.type }}", "{{ .Values.service.type "))
    bad = run(sys.executable, SCRIPTS / "helmpy.py", "lint", chart_copy, "--strict")
    assert bad.returncode == 1
    assert "service.yaml" in bad.stdout + bad.stderr


# ---- Kubernetes 1.28 schemas ----


@pytest.fixture(scope="module")
def good_docs() -> list[dict]:
    return render_docs([str(ROOT / "deploy/helm/aegistickets/values-prod.yaml")])


def test_kubernetes_validate_control(tmp_path, good_docs):
    res = run(sys.executable, SCRIPTS / "k8s_validate.py", "-k", "1.28.0", dump(tmp_path, "good.yaml", good_docs))
    assert res.returncode == 0, res.stdout


def test_kubernetes_validate_fails_on_an_unknown_field(tmp_path, good_docs):
    docs = copy.deepcopy(good_docs)
    web(docs)["imagePullPolcy"] = "IfNotPresent"
    res = run(sys.executable, SCRIPTS / "k8s_validate.py", "-k", "1.28.0", dump(tmp_path, "bad.yaml", docs))
    assert res.returncode == 1
    assert "imagePullPolcy" in res.stdout


def test_kubernetes_validate_fails_on_a_wrong_type(tmp_path, good_docs):
    docs = copy.deepcopy(good_docs)
    web(docs)["ports"][0]["containerPort"] = "8000"
    res = run(sys.executable, SCRIPTS / "k8s_validate.py", "-k", "1.28.0", dump(tmp_path, "bad.yaml", docs))
    assert res.returncode == 1
    assert "containerPort" in res.stdout


def test_kubernetes_validate_fails_on_an_api_removed_before_1_28(tmp_path, good_docs):
    docs = copy.deepcopy(good_docs)
    rules.find(docs, "PodDisruptionBudget")[0]["apiVersion"] = "policy/v1beta1"  # removed in 1.25
    res = run(sys.executable, SCRIPTS / "k8s_validate.py", "-k", "1.28.0", dump(tmp_path, "bad.yaml", docs))
    assert res.returncode == 1
    assert "PodDisruptionBudget" in res.stdout


# ---- CRD schemas ----

CRDVALIDATE = SCRIPTS / "crd" / "crdvalidate.mjs"


def test_crd_validation_control(tmp_path, good_docs):
    assert {d["kind"] for d in good_docs} >= {"ExternalSecret", "ClusterSecretStore", "ServiceMonitor"}
    res = run("node", CRDVALIDATE, dump(tmp_path, "good.yaml", good_docs))
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(
    ("kind", "plant", "message"),
    [
        ("ExternalSecret", lambda d: d["spec"]["target"].update(creationPolicy="Sometimes"), "creationPolicy"),
        ("ExternalSecret", lambda d: d["spec"]["secretStoreRef"].update(kind="SecretVault"), "kind"),
        ("ClusterSecretStore", lambda d: d["spec"]["provider"]["aws"].update(service="S3"), "service"),
        ("ServiceMonitor", lambda d: d["spec"].pop("selector"), "selector"),
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(interval="often"), "interval"),
        ("ExternalSecret", lambda d: d.update(apiVersion="external-secrets.io/v2"), "no schema"),
    ],
)
def test_crd_validation_fails_on_a_bad_custom_resource(tmp_path, good_docs, kind, plant, message):
    docs = copy.deepcopy(good_docs)
    plant(rules.find(docs, kind)[0])
    res = run("node", CRDVALIDATE, dump(tmp_path, "bad.yaml", docs))
    assert res.returncode == 1, res.stdout
    assert message in res.stdout


# ---- checkov ----


def checkov(tool, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(tool("checkov"), "--skip-download", "--compact", "--quiet", *args)


def test_checkov_kubernetes_fails_on_a_privileged_container(tmp_path, tool, good_docs):
    docs = copy.deepcopy(good_docs)
    web(docs)["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)
    res = checkov(tool, "--framework", "kubernetes", "-f", dump(tmp_path, "bad.yaml", docs))
    assert res.returncode == 1
    assert "CKV_K8S_16" in res.stdout  # "Container should not be privileged"
    assert "CKV_K8S_20" in res.stdout  # allowPrivilegeEscalation


def test_checkov_skips_need_the_annotation(tmp_path, tool, good_docs):
    """Without the chart's justified skip annotations, the skipped checks do fail: the skips are not decoration."""
    docs = copy.deepcopy(good_docs)
    for d in docs:
        for key in [k for k in d["metadata"].get("annotations", {}) if k.startswith("checkov.io/skip")]:
            del d["metadata"]["annotations"][key]
    res = checkov(tool, "--framework", "kubernetes", "-f", dump(tmp_path, "noskip.yaml", docs))
    assert res.returncode == 1
    assert "CKV_K8S_35" in res.stdout  # secrets as environment variables
    assert "CKV_K8S_8" in res.stdout  # the test pod has no liveness probe


@pytest.fixture
def bad_dockerfile(tmp_path) -> Path:
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001:10001" in text
    assert "COPY static/ static/" in text
    text = text.replace("USER 10001:10001", "USER root").replace("COPY static/ static/", "ADD static/ static/")
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return path


def test_hadolint_fails_on_root_user_and_add(tool, bad_dockerfile):
    res = run(tool("hadolint"), "--no-color", bad_dockerfile)
    assert res.returncode == 1
    assert "DL3002" in res.stdout  # last USER should not be root
    assert "DL3020" in res.stdout  # COPY instead of ADD


def test_checkov_dockerfile_fails_on_root_user_and_add(tool, bad_dockerfile):
    res = checkov(tool, "--framework", "dockerfile", "-f", bad_dockerfile)
    assert res.returncode == 1
    assert "CKV_DOCKER_8" in res.stdout  # last USER root
    assert "CKV_DOCKER_4" in res.stdout  # ADD


# ---- shellcheck ----


def test_shellcheck_fails_on_an_unquoted_variable(tmp_path, tool):
    script = tmp_path / "bad.sh"
    script.write_text("#!/usr/bin/env bash\nrm -rf $1/build\n")
    res = run(tool("shellcheck"), script)
    assert res.returncode == 1
    assert "SC2086" in res.stdout


# ---- the rendered-YAML rules (test_rendered.py) ----


def ingress_paths(docs: list[dict]) -> list[dict]:
    return rules.find(docs, "Ingress")[0]["spec"]["rules"][0]["http"]["paths"]


def ingress_path(docs: list[dict], path: str) -> dict:
    (backend,) = [p["backend"]["service"] for p in ingress_paths(docs) if p["path"] == path]
    return backend


def test_rendered_rules_pass_on_the_good_render(good_docs):
    assert rules.probe_problems(good_docs) == []
    assert rules.security_problems(good_docs) == []


@pytest.mark.parametrize(
    ("rule", "plant"),
    [
        (rules.probe_problems, lambda d: web(d)["readinessProbe"]["httpGet"].update(path="/ready")),
        (rules.probe_problems, lambda d: web(d)["livenessProbe"]["httpGet"].update(port=8080)),
        (rules.security_problems, lambda d: web(d)["securityContext"].update(readOnlyRootFilesystem=False)),
        (rules.security_problems, lambda d: web(d)["securityContext"]["capabilities"].update(add=["NET_ADMIN"])),
        (rules.security_problems, lambda d: web(d)["securityContext"].update(runAsUser=0)),
        (rules.tmp_problems, lambda d: web(d).update(volumeMounts=[])),
        (rules.image_problems, lambda d: web(d).update(image="repo/aegistickets:latest")),
        (rules.image_problems, lambda d: web(d).update(image="repo/aegistickets")),
        (rules.resource_problems, lambda d: web(d)["resources"].pop("limits")),
        (rules.migration_problems, lambda d: rules.find(d, "ExternalSecret")[0]["metadata"].update(annotations={})),
        (
            rules.migration_problems,
            lambda d: rules.find(d, "Job")[0]["spec"]["template"]["spec"]["containers"][0].update(
                command=["python", "manage.py", "migrate"]
            ),
        ),
        (
            rules.external_secret_problems,
            lambda d: rules.find(d, "ClusterSecretStore")[0]["spec"]["provider"]["aws"]["auth"]["jwt"][
                "serviceAccountRef"
            ].pop("namespace"),
        ),
        (
            rules.external_secret_problems,
            lambda d: rules.find(d, "ExternalSecret")[0]["spec"]["data"][0]["remoteRef"].update(
                key="aegistickets/prod/database-AbC123"
            ),
        ),
        (
            lambda d: rules.ingress_problems(d, https=True),
            lambda d: rules.find(d, "Ingress")[0]["metadata"]["annotations"].update(
                {"alb.ingress.kubernetes.io/target-type": "instance"}
            ),
        ),
        (
            rules.metrics_exposure_problems,
            lambda d: [
                r["http"].update(paths=r["http"]["paths"][2:]) for r in rules.find(d, "Ingress")[0]["spec"]["rules"]
            ],
        ),
        (
            rules.metrics_exposure_problems,
            lambda d: [r["http"]["paths"].reverse() for r in rules.find(d, "Ingress")[0]["spec"]["rules"]],
        ),
        (
            rules.email_worker_problems,
            lambda d: worker(d)["livenessProbe"]["exec"]["command"].__setitem__(-1, "import sys; sys.exit(0)"),
        ),
        (
            rules.email_worker_problems,
            lambda d: worker(d)["command"].__setitem__(-1, "--heartbeat-file=/var/run/alive"),
        ),
        (rules.email_worker_problems, lambda d: worker(d).update(command=["python", "manage.py", "send_email"])),
        (rules.email_worker_problems, lambda d: worker(d)["env"].pop()),
        (rules.email_worker_problems, lambda d: rules.find(d, "Service")[0]["spec"]["selector"].popitem()),
        (rules.security_problems, lambda d: worker(d)["securityContext"].update(readOnlyRootFilesystem=False)),
        (rules.resource_problems, lambda d: worker(d)["resources"].pop("requests")),
        # Reconciliation: runs allowed to pile up; no deadline for a hung run; another command; a secret missing;
        # pods outside the NetworkPolicy (no HTTPS to the provider) or behind the web Service.
        (rules.reconcile_problems, lambda d: reconcile(d)["spec"].update(concurrencyPolicy="Allow")),
        (rules.reconcile_problems, lambda d: reconcile(d)["spec"]["jobTemplate"]["spec"].pop("activeDeadlineSeconds")),
        (rules.reconcile_problems, lambda d: reconcile(d)["spec"].pop("startingDeadlineSeconds")),
        (rules.reconcile_problems, lambda d: reconcile_container(d).update(command=["python", "manage.py", "migrate"])),
        (rules.reconcile_problems, lambda d: without_env(reconcile_container(d), "DATABASE_URL")),
        (rules.reconcile_problems, lambda d: rules.pod_spec(reconcile(d)).update(serviceAccountName="default")),
        (
            rules.reconcile_problems,
            lambda d: reconcile(d)["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"].pop(
                "app.kubernetes.io/instance"
            ),
        ),
        (
            rules.reconcile_problems,
            lambda d: reconcile(d)["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"].update(
                {"app.kubernetes.io/component": "web"}
            ),
        ),
        (rules.security_problems, lambda d: reconcile_container(d)["securityContext"].update(privileged=True)),
        (rules.resource_problems, lambda d: reconcile_container(d)["resources"].pop("limits")),
        # Stripe (values-prod offers it): a container without a key, a key from another Secret, the ExternalSecret
        # not writing one, HTTPS egress gone.
        (rules.stripe_problems, lambda d: without_env(reconcile_container(d), "STRIPE_WEBHOOK_SECRET")),
        (
            rules.stripe_problems,
            lambda d: without_env(
                rules.find(d, "Job")[0]["spec"]["template"]["spec"]["containers"][0], "STRIPE_SECRET_KEY"
            ),
        ),
        (
            rules.stripe_problems,
            lambda d: next(e for e in web(d)["env"] if e["name"] == "STRIPE_SECRET_KEY")["valueFrom"][
                "secretKeyRef"
            ].update(name="stripe"),
        ),
        (
            rules.stripe_problems,
            lambda d: rules.find(d, "ExternalSecret")[0]["spec"]["target"]["template"]["data"].pop(
                "STRIPE_PUBLISHABLE_KEY"
            ),
        ),
        (
            rules.stripe_problems,
            lambda d: rules.find(d, "NetworkPolicy")[0]["spec"].update(
                egress=[r for r in rules.find(d, "NetworkPolicy")[0]["spec"]["egress"] if r["ports"][0]["port"] != 443]
            ),
        ),
        # The webhook endpoint must reach the web pods' main port: a rule sending /payments/ elsewhere.
        (
            rules.checkout_lane_problems,
            lambda d: ingress_paths(d).insert(
                0,
                {
                    "path": "/payments/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": "block-metrics", "port": {"name": "use-annotation"}}},
                },
            ),
        ),
        # The checkout lane: the API checkout back on http; the catch-all listed ahead of the lane (an older
        # controller then gives it the higher priority); the lane without CHECKOUT_PORT (gunicorn never listens)
        # or without its Service port; CHECKOUT_PORT left behind without the lane; Prometheus scraping both ports.
        (rules.checkout_lane_problems, lambda d: ingress_path(d, "/api/checkout").update(port={"name": "http"})),
        (rules.checkout_lane_problems, lambda d: ingress_paths(d).insert(2, ingress_paths(d).pop())),
        (
            rules.checkout_lane_problems,
            lambda d: web(d).update(env=[e for e in web(d)["env"] if e["name"] != "CHECKOUT_PORT"]),
        ),
        (
            rules.checkout_lane_problems,
            lambda d: next(e for e in web(d)["env"] if e["name"] == "CHECKOUT_PORT").update(value="8000"),
        ),
        (rules.checkout_lane_problems, lambda d: rules.find(d, "Service")[0]["spec"]["ports"].pop()),
        (rules.checkout_lane_problems, lambda d: web(d)["ports"].pop()),
        (rules.checkout_lane_problems, lambda d: web(d)["readinessProbe"]["httpGet"].update(port="checkout")),
        (
            rules.checkout_lane_problems,
            lambda d: rules.find(d, "ServiceMonitor")[0]["spec"]["endpoints"].append(
                {"port": "checkout", "path": "/metrics"}
            ),
        ),
    ],
)
def test_rendered_rules_catch_planted_defects(good_docs, rule, plant):
    docs = copy.deepcopy(good_docs)
    assert rule(docs) == []
    plant(docs)
    assert rule(docs) != []


def test_network_policy_rule_catches_an_open_port(good_docs):
    values = {
        "containerPort": 8000,
        "albSourceCidrs": ["10.1.0.0/16"],
        "monitoringNamespace": "monitoring",
        "ingressNamespaces": [],
        "databasePort": 5432,
    }
    docs = copy.deepcopy(good_docs)
    assert rules.network_policy_problems(docs, values) != [], "the good render also opens the checkout lane"
    values["checkoutPort"] = 8001
    assert rules.network_policy_problems(docs, values) == []
    rules.find(docs, "NetworkPolicy")[0]["spec"]["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}})
    assert rules.network_policy_problems(docs, values) != []


@pytest.mark.parametrize("rule", ["ingress", "egress"])
def test_network_policy_rule_catches_a_closed_checkout_lane(good_docs, rule):
    """The lane's port shut where the main port is open: the ALB's checkouts (in) or the helm test (out) refused."""
    values = {
        "containerPort": 8000,
        "checkoutPort": 8001,
        "albSourceCidrs": ["10.1.0.0/16"],
        "monitoringNamespace": "monitoring",
        "ingressNamespaces": [],
        "databasePort": 5432,
    }
    docs = copy.deepcopy(good_docs)
    assert rules.network_policy_problems(docs, values) == []
    spec = rules.find(docs, "NetworkPolicy")[0]["spec"]
    (web_rule,) = [r for r in spec[rule] if rule == "ingress" or any("podSelector" in t for t in r["to"])]
    web_rule["ports"] = [p for p in web_rule["ports"] if p["port"] != 8001]
    assert rules.network_policy_problems(docs, values) != []
