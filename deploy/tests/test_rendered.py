"""The rendered chart, for each values file: the things that matter on a real cluster."""

from __future__ import annotations

import re

import chartrules as rules
import pytest
import yaml

from conftest import CHART, ENVIRONMENTS, ROOT

ENVS = list(ENVIRONMENTS)


def values_for(env: str) -> dict:
    vals = yaml.safe_load((CHART / "values.yaml").read_text())
    for f in ENVIRONMENTS[env]:
        override = yaml.safe_load(open(f).read())  # noqa: SIM115
        for k, v in override.items():
            vals[k] = {**vals[k], **v} if isinstance(v, dict) and isinstance(vals.get(k), dict) else v
    return vals


@pytest.mark.parametrize("env", ENVS)
def test_probes_point_at_real_routes(rendered, env):
    assert rules.app_routes() >= {"/healthz", "/readyz"}
    assert rules.probe_problems(rendered[env]) == []


@pytest.mark.parametrize("env", ENVS)
def test_every_container_is_locked_down(rendered, env):
    assert rules.security_problems(rendered[env]) == []
    assert rules.tmp_problems(rendered[env]) == []


def test_pod_user_is_the_images_user(rendered):
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert user, "Dockerfile has no numeric USER"
    sc = rules.web_deployment(rendered["default"])["spec"]["template"]["spec"]["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (int(user[1]), int(user[2]))
    exposed = re.search(r"^EXPOSE (\d+) (\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert exposed, "Dockerfile should EXPOSE the web port and the checkout lane's"
    c = rules.web_deployment(rendered["default"])["spec"]["template"]["spec"]["containers"][0]
    assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [
        ("http", int(exposed[1])),
        ("checkout", int(exposed[2])),
    ]


@pytest.mark.parametrize("env", ENVS)
def test_images_are_pinned_never_latest(rendered, env):
    assert rules.image_problems(rendered[env]) == []


def test_prod_runs_the_image_by_digest(rendered):
    for name, c, _ in rules.containers(rendered["prod"]):
        assert re.search(r"@sha256:[0-9a-f]{64}$", c["image"]), name


@pytest.mark.parametrize("env", ENVS)
def test_every_container_has_requests_and_limits(rendered, env):
    assert rules.resource_problems(rendered[env]) == []


@pytest.mark.parametrize("env", ENVS)
def test_migrations_run_as_a_hook_after_the_secret_is_synced(rendered, env):
    assert rules.migration_problems(rendered[env]) == []


@pytest.mark.parametrize("env", ENVS)
def test_external_secrets_wiring(rendered, env):
    docs = rendered[env]
    assert rules.find(docs, "ExternalSecret"), "External Secrets is on by default"
    assert rules.external_secret_problems(docs) == []
    (es,) = rules.find(docs, "ExternalSecret")
    assert es["spec"]["target"]["creationPolicy"] == "Orphan"  # survives the hook's re-creation on upgrade
    (store,) = rules.find(docs, "ClusterSecretStore")
    # The operator's own ServiceAccount, the one terraform/ gives the Secrets Manager role.
    assert store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"] == {
        "name": "external-secrets",
        "namespace": "external-secrets",
    }


def test_dedicated_external_secrets_service_account_is_an_early_hook_in_the_release_namespace():
    from conftest import render_docs

    docs = render_docs(sets=["externalSecrets.serviceAccount.create=true", "externalSecrets.serviceAccount.name=es"])
    (sa,) = [d for d in rules.find(docs, "ServiceAccount") if d["metadata"]["name"] == "es"]
    (store,) = rules.find(docs, "ClusterSecretStore")
    ref = store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]
    assert ref == {"name": "es", "namespace": "aegistickets"}
    assert sa["metadata"]["namespace"] == "aegistickets"
    assert rules.hook_weight(sa) < rules.hook_weight(store)
    assert rules.external_secret_problems(docs) == []
    assert rules.migration_problems(docs) == []


@pytest.mark.parametrize("env", ENVS)
def test_ingress_is_an_internet_facing_alb(rendered, env):
    assert rules.ingress_problems(rendered[env], https=env == "prod") == []


@pytest.mark.parametrize("env", ENVS)
def test_metrics_are_not_routed_by_the_public_alb(rendered, env):
    assert rules.find(rendered[env], "Ingress")
    assert rules.metrics_exposure_problems(rendered[env]) == []


@pytest.mark.parametrize("env", ENVS)
def test_network_policy_lets_in_only_the_alb_and_prometheus(rendered, env):
    np = values_for(env)["networkPolicy"]
    assert values_for(env)["checkoutLane"] == {"enabled": True, "containerPort": 8001}
    assert rules.network_policy_problems(rendered[env], {**np, "containerPort": 8000, "checkoutPort": 8001}) == []


# ---- the checkout lane: gunicorn's second port (CHECKOUT_PORT), where the ALB sends checkout ----


def paths_to(docs: list[dict]) -> list[tuple[str, str, str]]:
    """Every Ingress path as (path, pathType, backend port name), in the order listed."""
    return [
        (p["path"], p["pathType"], p["backend"]["service"]["port"].get("name"))
        for ing in rules.find(docs, "Ingress")
        for r in ing["spec"]["rules"]
        for p in r["http"]["paths"]
    ]


@pytest.mark.parametrize("env", ENVS)
def test_checkout_lane_is_exposed_and_gets_the_checkouts(rendered, env):
    docs = rendered[env]
    assert rules.checkout_lane_problems(docs) == []
    c = rules.web_deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [("http", 8000), ("checkout", 8001)]
    env_vars = {e["name"]: e.get("value") for e in c["env"]}
    assert (env_vars["PORT"], env_vars["CHECKOUT_PORT"]) == ("8000", "8001")
    assert {p["httpGet"]["port"] for p in (c["startupProbe"], c["livenessProbe"], c["readinessProbe"])} == {"http"}
    (svc,) = rules.find(docs, "Service")
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
        ("http", 80, "http"),
        ("checkout", 8001, "checkout"),
    ]
    # /metrics blocked first, then the lane, then the catch-all (ALB rule priority follows this order on
    # controllers before v2.4.3, and Exact-then-longest-Prefix on later ones: the same routes either way).
    hosts = len(values_for(env)["ingress"]["hosts"]) or 1
    assert paths_to(docs) == hosts * [
        ("/metrics", "Exact", "use-annotation"),
        ("/metrics/", "Prefix", "use-annotation"),
        ("/api/checkout", "Exact", "checkout"),
        ("/checkout/", "Prefix", "checkout"),
        ("/", "Prefix", "http"),
    ]
    (np,) = rules.find(docs, "NetworkPolicy")
    assert [p["port"] for p in np["spec"]["ingress"][0]["ports"]] == [8000, 8001]


def test_the_alb_sends_checkout_to_the_lane_and_the_rest_to_http(rendered):
    (ing,) = rules.find(rendered["prod"], "Ingress")
    paths = ing["spec"]["rules"][0]["http"]["paths"]
    for controller in ("listed", "sorted"):
        route = {p: rules.alb_route(paths, p, controller)["port"]["name"] for p in ("/api/checkout", "/checkout/")}
        assert route == {"/api/checkout": "checkout", "/checkout/": "checkout"}
        for path in ("/", "/api/basket", "/basket/", "/api/checkouts", "/checkouts", "/api/orders/ABC123"):
            assert rules.alb_route(paths, path, controller)["port"]["name"] == "http", (controller, path)
        assert rules.alb_route(paths, "/metrics", controller)["name"] == "block-metrics"


def test_checkout_lane_off_renders_none_of_it():
    from conftest import render_docs

    docs = render_docs(sets=["checkoutLane.enabled=false"])
    assert rules.checkout_lane_problems(docs) == []
    c = rules.web_deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    assert [p["name"] for p in c["ports"]] == ["http"]
    assert "CHECKOUT_PORT" not in {e["name"] for e in c["env"]}
    (svc,) = rules.find(docs, "Service")
    assert [p["name"] for p in svc["spec"]["ports"]] == ["http"]
    assert "checkout" not in {port for _, _, port in paths_to(docs)}
    assert [path for path, _, _ in paths_to(docs)] == ["/metrics", "/metrics/", "/"]
    np = values_for("default")["networkPolicy"]
    assert rules.network_policy_problems(docs, {**np, "containerPort": 8000}) == []
    (pol,) = rules.find(docs, "NetworkPolicy")
    assert [p["port"] for r in pol["spec"]["ingress"] for p in r["ports"]] == [8000]
    (smoke,) = rules.find(docs, "Pod")
    assert "CHECKOUT_LANE_URL" not in {e["name"] for e in smoke["spec"]["containers"][0]["env"]}
    assert rules.probe_problems(docs) == []
    assert rules.metrics_exposure_problems(docs) == []
    assert rules.ingress_problems(docs, https=False) == []


def test_checkout_lane_port_follows_its_value():
    from conftest import render_docs

    docs = render_docs(sets=["checkoutLane.containerPort=9001"])
    assert rules.checkout_lane_problems(docs) == []
    c = rules.web_deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in c["ports"]}["checkout"] == 9001
    assert {e["name"]: e.get("value") for e in c["env"]}["CHECKOUT_PORT"] == "9001"
    (svc,) = rules.find(docs, "Service")
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]}["checkout"] == 9001
    np = values_for("default")["networkPolicy"]
    assert rules.network_policy_problems(docs, {**np, "containerPort": 8000, "checkoutPort": 9001}) == []


@pytest.mark.parametrize("env", ENVS)
def test_rollout_keeps_capacity_and_spreads_pods(rendered, env):
    dep = rules.web_deployment(rendered[env])
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    spec = dep["spec"]["template"]["spec"]
    assert {c["topologyKey"] for c in spec["topologySpreadConstraints"]} >= {"kubernetes.io/hostname"}
    assert spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    (hpa,) = rules.find(rendered[env], "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert hpa["spec"]["minReplicas"] >= 2
    (pdb,) = rules.find(rendered[env], "PodDisruptionBudget")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert set(pdb["spec"]["selector"]["matchLabels"].items()) <= set(labels.items())
    (svc,) = rules.find(rendered[env], "Service")
    assert set(svc["spec"]["selector"].items()) <= set(labels.items())


def test_replicas_default_to_two_without_the_hpa():
    from conftest import render_docs

    docs = render_docs(sets=["autoscaling.enabled=false"])
    assert rules.web_deployment(docs)["spec"]["replicas"] == 2
    assert not rules.find(docs, "HorizontalPodAutoscaler")


@pytest.mark.parametrize("env", ENVS)
def test_the_email_worker_runs_next_to_the_web_pods(rendered, env):
    assert rules.email_worker_problems(rendered[env]) == []
    (worker,) = rules.email_worker_deployments(rendered[env])
    assert worker["spec"]["replicas"] == values_for(env)["emailWorker"]["replicas"] == 1
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    command = rules.pod_spec(worker)["containers"][0]["command"]
    assert "--batch-size=10" in command
    assert "--poll-seconds=2" in command


def test_the_email_worker_can_be_left_out_and_scaled():
    from conftest import render_docs

    assert rules.email_worker_deployments(render_docs(sets=["emailWorker.enabled=false"])) == []
    docs = render_docs(sets=["emailWorker.replicas=3", "emailWorker.heartbeatMaxAgeSeconds=600"])
    (worker,) = rules.email_worker_deployments(docs)
    assert worker["spec"]["replicas"] == 3
    probe = rules.pod_spec(worker)["containers"][0]["livenessProbe"]["exec"]["command"]
    assert probe[-1].endswith("> 600)")


@pytest.mark.parametrize("env", ENVS)
def test_payments_are_reconciled_every_two_minutes(rendered, env):
    assert rules.reconcile_problems(rendered[env]) == []
    (cron,) = rules.reconcile_cronjobs(rendered[env])
    assert cron["spec"]["schedule"] == "*/2 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    # A run ends before the schedule has piled up more than a few skipped ones behind it.
    assert 0 < cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] <= 600


def test_reconciliation_can_be_switched_off_and_rescheduled():
    from conftest import render_docs

    assert rules.reconcile_cronjobs(render_docs(sets=["reconcilePayments.enabled=false"])) == []
    docs = render_docs(sets=["reconcilePayments.schedule=*/5 * * * *", "reconcilePayments.activeDeadlineSeconds=120"])
    (cron,) = rules.reconcile_cronjobs(docs)
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 120


def test_reconciliation_pushes_its_runs_only_to_a_pushgateway_it_may_reach():
    from conftest import render_docs

    def pushing(docs: list[dict]) -> tuple[str | None, list[dict]]:
        (cron,) = rules.reconcile_cronjobs(docs)
        env = {e["name"]: e.get("value") for e in rules.pod_spec(cron)["containers"][0].get("env", [])}
        (policy,) = rules.find(docs, "NetworkPolicy")
        to_gateway = [rule for rule in policy["spec"]["egress"] if {"port": 9091, "protocol": "TCP"} in rule["ports"]]
        return env.get("METRICS_PUSHGATEWAY_URL"), to_gateway

    assert pushing(render_docs()) == (None, [])  # the default pushes nowhere and opens nothing
    url = "http://prometheus-pushgateway.monitoring.svc:9091"
    pushed_to, egress = pushing(render_docs(sets=[f"reconcilePayments.pushgateway.url={url}"]))
    assert pushed_to == url
    assert egress == [
        {
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "ports": [{"port": 9091, "protocol": "TCP"}],
        }
    ]


def stripe_env(docs: list[dict]) -> dict[str, set[str]]:
    """The Stripe keys each app container reads from a Secret, by container."""
    return {
        name: {e["name"] for e in c.get("env", []) if e["name"].startswith("STRIPE_") and "valueFrom" in e}
        for name, c, _ in rules.containers(docs)
        if any(e["name"] == "DJANGO_SECRET_KEY" for e in c.get("env", []))
    }


@pytest.mark.parametrize("env", ENVS)
def test_stripe_keys_come_from_the_secret_where_stripe_is_offered(rendered, env):
    docs = rendered[env]
    assert rules.stripe_problems(docs) == []
    (cm,) = [d for d in rules.find(docs, "ConfigMap") if "PAYMENT_METHODS" in d.get("data", {})]
    keys = stripe_env(docs)
    assert len(keys) == 4  # web, email worker, reconciliation, migration
    if env == "prod":
        assert cm["data"]["PAYMENT_METHODS"] == "stripe,free"
        assert all(found == set(rules.STRIPE_KEYS) for found in keys.values()), keys
        (es,) = rules.find(docs, "ExternalSecret")
        stripe = [d for d in es["spec"]["data"] if d["secretKey"].startswith("STRIPE_")]
        assert {d["remoteRef"]["key"] for d in stripe} == {"aegistickets/prod/stripe"}
    else:
        assert cm["data"]["PAYMENT_METHODS"] == "test,free"
        assert all(found == set() for found in keys.values()), keys
        (es,) = rules.find(docs, "ExternalSecret")
        assert not [d for d in es["spec"]["data"] if d["secretKey"].startswith("STRIPE_")]
    assert cm["data"]["PAYMENT_MINUTES"] == "15"


def test_stripe_keys_without_a_secret_template_or_external_secrets():
    from conftest import render_docs

    on = ["payments.stripe.enabled=true", "payments.methods={stripe}"]
    docs = render_docs(sets=[*on, "externalSecrets.database.buildUrlFromParts=false"])
    assert rules.stripe_problems(docs) == []
    (es,) = rules.find(docs, "ExternalSecret")
    assert "template" not in es["spec"]["target"]
    # A Secret made by hand (no External Secrets) must hold the keys itself; the pods still read them from it.
    docs = render_docs(sets=[*on, "externalSecrets.enabled=false"])
    assert rules.stripe_problems(docs) == []
    assert all(found == set(rules.STRIPE_KEYS) for found in stripe_env(docs).values())


@pytest.mark.parametrize("env", ENVS)
def test_config_and_hosts(rendered, env):
    docs = rendered[env]
    (cm,) = [d for d in rules.find(docs, "ConfigMap") if "grafana_dashboard" not in d["metadata"].get("labels", {})]
    assert {
        "DJANGO_SECURE_SSL_REDIRECT",
        "HOLD_MINUTES",
        "WEB_CONCURRENCY",
        "METRICS_ALLOWED_NETWORKS",
        "PAYMENT_METHODS",
        "PAYMENT_MINUTES",
    } <= set(cm["data"])
    assert cm["data"]["DJANGO_SECURE_SSL_REDIRECT"] == ("false" if env == "dev" else "true")
    # Every environment sits behind one ALB: X-Forwarded-For is believed for exactly that hop (rate limits).
    assert cm["data"]["TRUSTED_PROXY_HOPS"] == "1"
    env_vars = [e["name"] for e in rules.web_deployment(docs)["spec"]["template"]["spec"]["containers"][0]["env"]]
    # $(POD_IP) only expands if POD_IP is defined earlier: kubelet probes and the ALB health check use the pod IP.
    hosts = next(
        e["value"]
        for e in rules.web_deployment(docs)["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] == "DJANGO_ALLOWED_HOSTS"
    )
    assert hosts.endswith(",$(POD_IP)")
    assert env_vars.index("POD_IP") < env_vars.index("DJANGO_ALLOWED_HOSTS")
    assert "DATABASE_URL" in env_vars
    assert "DJANGO_SECRET_KEY" in env_vars


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_service_monitor_carries_the_release_label(rendered, env):
    (sm,) = rules.find(rendered[env], "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == values_for(env)["monitoring"]["release"]
    (ep,) = sm["spec"]["endpoints"]
    assert ep["path"] == "/metrics"
    assert ep["port"] in {p["name"] for p in rules.find(rendered[env], "Service")[0]["spec"]["ports"]}


def test_helm_test_pod_smoke_tests_readyz_and_events(rendered):
    pods = [p for p in rules.find(rendered["default"], "Pod") if p["metadata"]["annotations"]["helm.sh/hook"] == "test"]
    (pod,) = pods
    script = "\n".join(pod["spec"]["containers"][0]["command"])
    assert '"/readyz"' in script
    assert '"/api/events"' in script
    assert "/api/" in rules.app_routes()
    # The checkout lane answers too (through the Service's checkout port): an image whose gunicorn does not
    # listen on CHECKOUT_PORT fails the test instead of leaving the ALB's checkout rules on a closed port.
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["CHECKOUT_LANE_URL"] == "http://aegistickets.aegistickets.svc:8001"
    assert 'get("/readyz", base=lane)' in script


@pytest.mark.parametrize("env", ENVS)
def test_migration_job_has_a_metrics_directory_that_exists(rendered, env):
    """Without gunicorn nobody creates PROMETHEUS_MULTIPROC_DIR, and prometheus_client fails writing to it."""
    (job,) = [j for j in rules.find(rendered[env], "Job") if "migrate" in j["metadata"]["name"]]
    c = rules.pod_spec(job)["containers"][0]
    multiproc = next(e["value"] for e in c["env"] if e["name"] == "PROMETHEUS_MULTIPROC_DIR")
    assert multiproc in {m["mountPath"] for m in c["volumeMounts"]}
