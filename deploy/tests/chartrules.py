"""What must hold for the rendered chart, as functions returning the problems they find (empty = fine).

test_rendered.py runs each on every environment's manifests; test_planted_defects.py shows each one catches a
defect planted in otherwise good manifests.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = {"Deployment", "Job", "Pod", "StatefulSet", "DaemonSet", "CronJob"}


def app_routes() -> set[str]:
    """Top-level routes of aegistickets/urls.py and the probe paths aegistickets/probes.py answers before it, read
    from their source (this venv has no Django)."""
    urls = (ROOT / "aegistickets" / "urls.py").read_text()
    probes = (ROOT / "aegistickets" / "probes.py").read_text()
    return {"/" + m for m in re.findall(r'path\("([^"<]*)"', urls)} | set(re.findall(r'"(/[a-z]+)": health\.', probes))


def find(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def pod_spec(doc: dict) -> dict:
    if doc["kind"] == "Pod":
        return doc["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def containers(docs: list[dict]) -> Iterator[tuple[str, dict, dict]]:
    for d in docs:
        if d.get("kind") in WORKLOADS:
            spec = pod_spec(d)
            for c in spec.get("initContainers", []) + spec["containers"]:
                yield f"{d['kind']}/{d['metadata']['name']}/{c['name']}", c, spec


def web_deployment(docs: list[dict]) -> dict:
    (dep,) = [d for d in find(docs, "Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "web"]
    return dep


def probe_problems(docs: list[dict]) -> list[str]:
    routes, problems = app_routes(), []
    c = web_deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"] for p in c["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        got = c.get(probe, {}).get("httpGet", {})
        if got.get("path") != path:
            problems.append(f"{probe} path is {got.get('path')!r}, want {path}")
        if got.get("path") not in routes:
            problems.append(f"{probe} path {got.get('path')!r} is not a route of aegistickets/urls.py")
        if got.get("port") not in ports:
            problems.append(f"{probe} port {got.get('port')!r} is not a container port")
    for ing in find(docs, "Ingress"):
        hc = ing["metadata"]["annotations"].get("alb.ingress.kubernetes.io/healthcheck-path")
        if hc not in routes or hc != "/healthz":
            problems.append(f"ALB health check path {hc!r} must be /healthz, a real route")
    return problems


def security_problems(docs: list[dict]) -> list[str]:
    problems = []
    for name, c, spec in containers(docs):
        pod, sc = spec.get("securityContext", {}), c.get("securityContext", {})
        user = sc.get("runAsUser", pod.get("runAsUser"))
        if not (sc.get("runAsNonRoot") or pod.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot is not set")
        if not isinstance(user, int) or user < 1000:
            problems.append(f"{name}: runAsUser {user!r} is not a numeric non-root user")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            problems.append(f"{name}: capabilities are not exactly drop [ALL]")
        seccomp = sc.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp != "RuntimeDefault":
            problems.append(f"{name}: seccompProfile is {seccomp!r}")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: the pod mounts a Kubernetes API token")
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                problems.append(f"{name}: {flag}")
    return problems


def tmp_problems(docs: list[dict]) -> list[str]:
    """Read-only root filesystem: the app containers need /tmp as an emptyDir (gunicorn, prometheus)."""
    problems = []
    for name, c, spec in containers(docs):
        if name.endswith("smoke"):
            continue
        empty = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        tmp = "/tmp"  # noqa: S108 - the mount path being checked, not a file used here
        if not any(m["mountPath"] == tmp and m["name"] in empty for m in c.get("volumeMounts", [])):
            problems.append(f"{name}: no emptyDir at /tmp")
    return problems


def image_problems(docs: list[dict]) -> list[str]:
    problems = []
    for name, c, _ in containers(docs):
        image = c["image"]
        ref = image.rsplit("/", 1)[-1]
        tag = ref.split("@")[0].partition(":")[2]
        if "@sha256:" not in image and not tag:
            problems.append(f"{name}: image {image} has neither tag nor digest")
        if tag.lower() == "latest":
            problems.append(f"{name}: image {image} uses latest")
        if c.get("imagePullPolicy") != "IfNotPresent":
            problems.append(f"{name}: imagePullPolicy {c.get('imagePullPolicy')!r}, want IfNotPresent")
    return problems


def resource_problems(docs: list[dict]) -> list[str]:
    problems = []
    for name, c, _ in containers(docs):
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if not c.get("resources", {}).get(kind, {}).get(res):
                    problems.append(f"{name}: no {kind}.{res}")
    return problems


def hook_weight(doc: dict) -> int:
    return int(doc["metadata"].get("annotations", {}).get("helm.sh/hook-weight", "0"))


def migration_problems(docs: list[dict]) -> list[str]:
    jobs = [j for j in find(docs, "Job") if "migrate" in j["metadata"]["name"]]
    if len(jobs) != 1:
        return [f"want one migration Job, found {len(jobs)}"]
    job, problems = jobs[0], []
    ann = job["metadata"].get("annotations", {})
    if set(ann.get("helm.sh/hook", "").split(",")) != {"pre-install", "pre-upgrade"}:
        problems.append(f"migration Job hook is {ann.get('helm.sh/hook')!r}")
    if set(ann.get("helm.sh/hook-delete-policy", "").split(",")) != {"before-hook-creation", "hook-succeeded"}:
        problems.append(f"migration Job delete policy is {ann.get('helm.sh/hook-delete-policy')!r}")
    c = pod_spec(job)["containers"][0]
    if c.get("command", []) + c.get("args", []) != ["python", "manage.py", "migrate", "--noinput"]:
        problems.append(f"migration Job runs {c.get('command')} {c.get('args', '')}")
    if c["image"] != web_deployment(docs)["spec"]["template"]["spec"]["containers"][0]["image"]:
        problems.append("migration Job runs another image than the Deployment")
    # The Secret it reads must be synced before it runs: every External Secrets object is an earlier hook.
    for d in docs:
        if d["kind"] in {"ExternalSecret", "ClusterSecretStore"} or (
            d["kind"] == "ServiceAccount" and "external-secrets" in d["metadata"]["name"]
        ):
            hooks = d["metadata"].get("annotations", {}).get("helm.sh/hook", "")
            if "pre-install" not in hooks or hook_weight(d) >= hook_weight(job):
                problems.append(f"{d['kind']}/{d['metadata']['name']} is not a pre-install hook before the Job")
    return problems


def external_secret_problems(docs: list[dict], namespace: str = "aegistickets") -> list[str]:
    stores, secrets = find(docs, "ClusterSecretStore"), find(docs, "ExternalSecret")
    if not secrets:
        return []
    problems = []
    accounts = {(d["metadata"]["name"], d["metadata"]["namespace"]) for d in find(docs, "ServiceAccount")}
    for store in stores:
        ref = store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]
        # A ClusterSecretStore has no namespace: without one in the reference, External Secrets cannot find it.
        if not ref.get("namespace"):
            problems.append("ClusterSecretStore serviceAccountRef has no namespace")
        elif ref["namespace"] == namespace and (ref["name"], namespace) not in accounts:
            problems.append(f"ClusterSecretStore refers to ServiceAccount {ref['name']!r}, not in the chart")
    secret_refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for _, c, _ in containers(docs)
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    for es in secrets:
        spec = es["spec"]
        if spec["secretStoreRef"]["name"] not in {s["metadata"]["name"] for s in stores}:
            problems.append(f"ExternalSecret uses store {spec['secretStoreRef']['name']!r}, not in the chart")
        if spec["target"]["name"] not in secret_refs or len(secret_refs) != 1:
            problems.append(f"ExternalSecret writes {spec['target']['name']!r}, pods read {sorted(secret_refs)}")
        keys = set(spec["target"].get("template", {}).get("data", {})) or {d["secretKey"] for d in spec["data"]}
        if not {"DATABASE_URL", "DJANGO_SECRET_KEY"} <= keys:
            problems.append(f"ExternalSecret provides {sorted(keys)}")
        for item in spec["data"]:
            if re.search(r"-[A-Za-z0-9]{6}$", item["remoteRef"]["key"]):
                problems.append(f"remote key {item['remoteRef']['key']!r} has a random suffix (use the name)")
    return problems


def ingress_problems(docs: list[dict], https: bool) -> list[str]:
    problems = []
    service = find(docs, "Service")[0]
    for ing in find(docs, "Ingress"):
        ann = ing["metadata"]["annotations"]
        want = {
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/healthcheck-path": "/healthz",
        }
        if https:
            want["alb.ingress.kubernetes.io/ssl-redirect"] = "443"
        problems += [f"Ingress {k} is {ann.get(k)!r}, want {v!r}" for k, v in want.items() if ann.get(k) != v]
        if ing["spec"].get("ingressClassName") != "alb":
            problems.append("ingressClassName is not alb")
        listen = json.loads(ann.get("alb.ingress.kubernetes.io/listen-ports", "[]"))
        if https and ({"HTTPS": 443} not in listen or not ann.get("alb.ingress.kubernetes.io/certificate-arn")):
            problems.append("HTTPS listener or ACM certificate missing")
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                port = p["backend"]["service"]["port"]
                if p["backend"]["service"]["name"] == service["metadata"]["name"] and port.get("name") not in {
                    pp["name"] for pp in service["spec"]["ports"]
                }:
                    problems.append(f"Ingress path {p['path']} goes to a port the Service does not have")
    return problems


def metrics_exposure_problems(docs: list[dict]) -> list[str]:
    """/metrics must never reach the pods through the public ALB: a fixed 404 rule, ahead of every forward."""
    problems = []
    for ing in find(docs, "Ingress"):
        ann = ing["metadata"]["annotations"]
        for rule in ing["spec"]["rules"]:
            paths = rule["http"]["paths"]
            blocked = False
            for p in paths:
                backend = p["backend"]["service"]
                is_metrics = p["path"] in {"/metrics", "/metrics/"}
                covers_metrics = p["path"] == "/" or "/metrics".startswith(p["path"].rstrip("/") or "/")
                if is_metrics:
                    action = json.loads(ann.get(f"alb.ingress.kubernetes.io/actions.{backend['name']}", "{}"))
                    if backend["port"].get("name") != "use-annotation" or action.get("type") != "fixed-response":
                        problems.append(f"{p['path']} is routed to {backend['name']}, not to a fixed response")
                    elif action["fixedResponseConfig"]["statusCode"] != "404":
                        problems.append(f"{p['path']} answers {action['fixedResponseConfig']['statusCode']}")
                    else:
                        blocked = True
                elif covers_metrics and p["pathType"] == "Prefix" and not blocked:
                    problems.append(f"path {p['path']} forwards /metrics before any rule blocks it")
    return problems


def network_policy_problems(docs: list[dict], values: dict) -> list[str]:
    pols = find(docs, "NetworkPolicy")
    if len(pols) != 1:
        return [f"want one NetworkPolicy, found {len(pols)}"]
    spec, problems = pols[0]["spec"], []
    if set(spec.get("policyTypes", [])) != {"Ingress", "Egress"}:
        problems.append(f"policyTypes {spec.get('policyTypes')}")
    pod_labels = web_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    if not set(spec["podSelector"]["matchLabels"].items()) <= set(pod_labels.items()):
        problems.append("NetworkPolicy does not select the web pods")
    # The web ports: containerPort and, when the checkout lane is on, its port (values["checkoutPort"]).
    web_ports = [values["containerPort"], *([values["checkoutPort"]] if values.get("checkoutPort") else [])]
    for rule in spec["ingress"]:
        if [p["port"] for p in rule["ports"]] != web_ports:
            problems.append(f"ingress open on {rule['ports']}, want the web ports {web_ports}")
        for src in rule["from"]:
            if "ipBlock" in src and src["ipBlock"]["cidr"] not in values["albSourceCidrs"]:
                problems.append(f"ingress from {src['ipBlock']['cidr']}")
            if "namespaceSelector" in src:
                ns = src["namespaceSelector"]["matchLabels"].get("kubernetes.io/metadata.name")
                if ns not in {values["monitoringNamespace"], *values["ingressNamespaces"]}:
                    problems.append(f"ingress from namespace {ns!r}")
    egress = {(p.get("protocol"), p["port"]) for r in spec["egress"] for p in r["ports"]}
    for need in (("UDP", 53), ("TCP", 53), ("TCP", values["databasePort"])):
        if need not in egress:
            problems.append(f"no egress for {need}")
    for r in spec["egress"]:
        # The release's own pods (the helm test pod among them) reach each other on the same ports as the ALB.
        if any("podSelector" in dst for dst in r["to"]) and [p["port"] for p in r["ports"]] != web_ports:
            problems.append(f"egress to the release's pods on {r['ports']}, want the web ports {web_ports}")
        for dst in r["to"]:
            cidr = dst.get("ipBlock", {}).get("cidr")
            if cidr and any(p["port"] not in {values["databasePort"], 443} for p in r["ports"]):
                problems.append(f"egress to {cidr} on {r['ports']}")
    return problems


def email_worker_deployments(docs: list[dict]) -> list[dict]:
    return [
        d for d in find(docs, "Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "email-worker"
    ]


def email_worker_problems(docs: list[dict]) -> list[str]:
    """The outbox worker: the web pods' image, settings and secrets; `send_emails` with a heartbeat its probes
    read from a writable emptyDir; never selected by the web Service, PDB or HPA."""
    workers = email_worker_deployments(docs)
    if len(workers) != 1:
        return [f"want one email worker Deployment, found {len(workers)}"]
    worker, problems = workers[0], []
    spec, web_spec = pod_spec(worker), pod_spec(web_deployment(docs))
    c, web_c = spec["containers"][0], web_spec["containers"][0]
    command = c.get("command", []) + c.get("args", [])
    if command[:3] != ["python", "manage.py", "send_emails"]:
        problems.append(f"email worker runs {command}")
    if c["image"] != web_c["image"]:
        problems.append("email worker runs another image than the web Deployment")
    if c.get("envFrom") != web_c.get("envFrom"):
        problems.append("email worker does not read the web pods' ConfigMap")
    own = {"PORT", "CHECKOUT_PORT"}  # the web pods' listening ports: the worker listens on none
    missing = {e["name"] for e in web_c.get("env", [])} - own - {e["name"] for e in c.get("env", [])}
    if missing:
        problems.append(f"email worker lacks the web pods' env {sorted(missing)}")
    heartbeat = next((a.split("=", 1)[1] for a in command if a.startswith("--heartbeat-file=")), None)
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    if heartbeat is None or not any(heartbeat.startswith(m.rstrip("/") + "/") for m in mounts):
        problems.append(f"heartbeat file {heartbeat!r} is not on a mounted (writable) volume")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        exec_command = " ".join(c.get(probe, {}).get("exec", {}).get("command", []))
        if not heartbeat or f'"{heartbeat}"' not in exec_command:
            problems.append(f"{probe} does not check the heartbeat file {heartbeat!r}: {exec_command!r}")
    multiproc = next((e.get("value") for e in c.get("env", []) if e["name"] == "PROMETHEUS_MULTIPROC_DIR"), None)
    if multiproc not in mounts:
        problems.append(f"PROMETHEUS_MULTIPROC_DIR {multiproc!r} is not a mounted directory")
    labels = worker["spec"]["template"]["metadata"]["labels"]
    selectors = [(s["kind"], s["spec"]["selector"]) for s in find(docs, "Service")]
    selectors += [(p["kind"], p["spec"]["selector"]["matchLabels"]) for p in find(docs, "PodDisruptionBudget")]
    for kind, selector in selectors:
        if set(selector.items()) <= set(labels.items()):
            problems.append(f"the {kind} selects the email worker's pods")
    for hpa in find(docs, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]:
            problems.append("the HPA scales the email worker")
    return problems


# ---- payments: reconciliation CronJob, Stripe keys ----

STRIPE_KEYS = ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET")


def reconcile_cronjobs(docs: list[dict]) -> list[dict]:
    return [
        d
        for d in find(docs, "CronJob")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "reconcile-payments"
    ]


def reconcile_problems(docs: list[dict]) -> list[str]:
    """`reconcile_payments` on a schedule: never two runs at once, a run that hangs ended, a missed one skipped; the
    web pods' image, settings, secrets and ServiceAccount; its pods under the release's NetworkPolicy (HTTPS to the
    provider) but never selected by the web Service or PDB."""
    jobs = reconcile_cronjobs(docs)
    if len(jobs) != 1:
        return [f"want one reconcile_payments CronJob, found {len(jobs)}"]
    cron, problems = jobs[0], []
    spec, job_spec = cron["spec"], cron["spec"]["jobTemplate"]["spec"]
    if spec.get("concurrencyPolicy") != "Forbid":
        problems.append(f"concurrencyPolicy is {spec.get('concurrencyPolicy')!r}, want Forbid")
    if not job_spec.get("activeDeadlineSeconds"):
        problems.append("the Job has no activeDeadlineSeconds: a hung run blocks every later one")
    if not spec.get("startingDeadlineSeconds"):
        problems.append("no startingDeadlineSeconds: after a long controller outage the CronJob may never start again")
    pod, web_pod = pod_spec(cron), pod_spec(web_deployment(docs))
    c, web_c = pod["containers"][0], web_pod["containers"][0]
    command = c.get("command", []) + c.get("args", [])
    if command[:3] != ["python", "manage.py", "reconcile_payments"]:
        problems.append(f"the CronJob runs {command}")
    if pod.get("restartPolicy") != "Never":
        problems.append(f"restartPolicy {pod.get('restartPolicy')!r}")
    if c["image"] != web_c["image"]:
        problems.append("the CronJob runs another image than the web Deployment")
    if c.get("envFrom") != web_c.get("envFrom"):
        problems.append("the CronJob does not read the web pods' ConfigMap")
    own = {"PORT", "CHECKOUT_PORT"}
    missing = {e["name"] for e in web_c.get("env", [])} - own - {e["name"] for e in c.get("env", [])}
    if missing:
        problems.append(f"the CronJob lacks the web pods' env {sorted(missing)}")
    if pod.get("serviceAccountName") != web_pod.get("serviceAccountName"):
        problems.append(f"ServiceAccount {pod.get('serviceAccountName')!r}, not the app's")
    multiproc = next((e.get("value") for e in c.get("env", []) if e["name"] == "PROMETHEUS_MULTIPROC_DIR"), None)
    if multiproc not in {m["mountPath"] for m in c.get("volumeMounts", [])}:
        problems.append(f"PROMETHEUS_MULTIPROC_DIR {multiproc!r} is not a mounted directory")
    labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    for pol in find(docs, "NetworkPolicy"):
        if not set(pol["spec"]["podSelector"]["matchLabels"].items()) <= set(labels.items()):
            problems.append("the NetworkPolicy does not select the CronJob's pods")
    selectors = [(s["kind"], s["spec"]["selector"]) for s in find(docs, "Service")]
    selectors += [(p["kind"], p["spec"]["selector"]["matchLabels"]) for p in find(docs, "PodDisruptionBudget")]
    for kind, selector in selectors:
        if set(selector.items()) <= set(labels.items()):
            problems.append(f"the {kind} selects the CronJob's pods")
    return problems


def stripe_problems(docs: list[dict]) -> list[str]:
    """PAYMENT_METHODS offering stripe: every app container gets the three keys from the app's Secret (the settings
    refuse to start without them). Once any container reads them, the ExternalSecret (when there is one) writes them
    and the NetworkPolicy lets HTTPS out."""
    problems = []
    (config,) = [d for d in find(docs, "ConfigMap") if "PAYMENT_METHODS" in d.get("data", {})]
    offered = "stripe" in config["data"]["PAYMENT_METHODS"].split(",")
    with_keys = set()
    for name, c, _ in containers(docs):
        env = {e["name"]: e for e in c.get("env", [])}
        if "DJANGO_SECRET_KEY" not in env:
            continue  # not the app (the helm test pod)
        refs = {k: env[k].get("valueFrom", {}).get("secretKeyRef", {}) for k in STRIPE_KEYS if k in env}
        if refs:
            with_keys.add(name)
        secret = env["DJANGO_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"]
        for key in STRIPE_KEYS:
            ref = refs.get(key)
            if offered and not ref:
                problems.append(f"{name}: PAYMENT_METHODS offers stripe, but {key} is not set")
            elif ref and (ref.get("name"), ref.get("key")) != (secret, key):
                problems.append(f"{name}: {key} comes from {ref}, not the app's Secret {secret!r}")
    if not with_keys:
        return problems
    for es in find(docs, "ExternalSecret"):
        spec = es["spec"]
        keys = set(spec["target"].get("template", {}).get("data", {})) or {d["secretKey"] for d in spec["data"]}
        fetched = {d["secretKey"] for d in spec["data"]}
        for key in STRIPE_KEYS:
            if key not in keys or key not in fetched:
                problems.append(f"the ExternalSecret does not write {key}")
    for pol in find(docs, "NetworkPolicy"):
        if not any(p["port"] == 443 for r in pol["spec"]["egress"] for p in r["ports"]):
            problems.append("the NetworkPolicy lets no HTTPS out: Stripe is unreachable")
    return problems


# ---- the checkout lane (values.yaml checkoutLane; gunicorn.conf.py CHECKOUT_PORT) ----

# Request paths the ALB must send to the Service's `checkout` port while the lane is on (the API checkout, the HTML
# checkout form and its POST), and paths that must stay on `http` whatever the lane does.
LANE_REQUESTS = ("/api/checkout", "/checkout/")
MAIN_REQUESTS = (
    "/",
    "/healthz",
    "/api/events",
    "/api/basket",
    "/api/basket/tok",
    "/api/checkouts",
    "/api/orders",
    "/basket/",
    "/checkouts",
    "/events/some-event/",
    "/admin/",
    "/payments/stripe/webhook",
)


def alb_path_patterns(path: str, path_type: str) -> list[str]:
    """The ALB path-pattern values the AWS Load Balancer Controller makes of an Ingress path
    (pkg/ingress/model_build_listener_rules.go: Prefix /foo/ -> /foo and /foo/*; Prefix / -> /*)."""
    if path_type != "Prefix":
        return [path]
    if path == "/":
        return ["/*"]
    return [path.rstrip("/"), path.rstrip("/") + "/*"]


def alb_rule_order(paths: list[dict], controller: str) -> list[dict]:
    """The order of an Ingress rule's paths as ALB rule priorities: "listed" (controllers before v2.4.3) or
    "sorted" (v2.4.3+: Exact first, then Prefix longest first, then the rest as listed)."""
    if controller == "listed":
        return list(paths)
    exact = [p for p in paths if p["pathType"] == "Exact"]
    prefix = sorted((p for p in paths if p["pathType"] == "Prefix"), key=lambda p: -len(p["path"]))
    return exact + prefix + [p for p in paths if p["pathType"] not in {"Exact", "Prefix"}]


def alb_route(paths: list[dict], request_path: str, controller: str) -> dict | None:
    """The backend of the first ALB rule (by priority) whose path pattern matches; None: no rule matches."""
    for p in alb_rule_order(paths, controller):
        if any(fnmatch.fnmatchcase(request_path, pat) for pat in alb_path_patterns(p["path"], p["pathType"])):
            return p["backend"]["service"]
    return None


def checkout_lane_problems(docs: list[dict]) -> list[str]:
    """With a `checkout` container port (the lane on): gunicorn is told it (CHECKOUT_PORT), the Service exposes it,
    and the ALB sends the checkout paths there and every other path to `http`, in either rule order; probes and
    the ServiceMonitor stay on `http`. Without one: no CHECKOUT_PORT, no Service port, every path to `http`."""
    problems = []
    c = web_deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    lane = ports.get("checkout")
    service = find(docs, "Service")[0]
    svc_ports = {p["name"]: p for p in service["spec"]["ports"]}
    if env.get("PORT") != str(ports.get("http")):
        problems.append(f"PORT is {env.get('PORT')!r}, the http container port {ports.get('http')}")
    if lane is None:
        if "CHECKOUT_PORT" in env:
            problems.append("CHECKOUT_PORT is set, but the container has no checkout port")
        if "checkout" in svc_ports:
            problems.append("the Service has a checkout port, but the container has none")
    else:
        if env.get("CHECKOUT_PORT") != str(lane):
            problems.append(f"CHECKOUT_PORT is {env.get('CHECKOUT_PORT')!r}, the checkout container port {lane}")
        if svc_ports.get("checkout", {}).get("targetPort") not in {"checkout", lane}:
            problems.append("the Service has no checkout port to the checkout container port")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if c.get(probe, {}).get("httpGet", {}).get("port") not in {"http", ports.get("http")}:
            problems.append(f"{probe} is not on the http port")
    for sm in find(docs, "ServiceMonitor"):
        scraped = [ep.get("port") for ep in sm["spec"]["endpoints"]]
        if scraped != ["http"]:
            problems.append(f"ServiceMonitor scrapes {scraped}: the same workers' metrics, want ['http'] only")
    want = dict.fromkeys(LANE_REQUESTS, "checkout" if lane else "http") | dict.fromkeys(MAIN_REQUESTS, "http")
    for ing in find(docs, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for controller in ("listed", "sorted"):
                for path, port in want.items():
                    got = alb_route(rule["http"]["paths"], path, controller)
                    got_port = got["port"].get("name") if got and got["name"] == service["metadata"]["name"] else None
                    if got_port != port:
                        where = f"{got['name']}:{got['port']}" if got else "no rule"
                        problems.append(f"{controller} rule order: {path} goes to {where}, want the Service's {port}")
    return problems
