#!/usr/bin/env bash
# `make rules-check`: promtool check + unit tests of the Prometheus rules (their one file is the Helm chart's
# files/monitoring/aegistickets.rules.yml), then the chart's rendered PrometheusRule and dashboard ConfigMap.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/monitoring/install_prometheus.sh

echo "=== promtool check rules"
promtool check rules deploy/helm/aegistickets/files/monitoring/*.rules.yml
echo "=== promtool test rules"
(cd deploy/monitoring/tests && promtool test rules ./*.yml)

echo "=== Helm chart: the rendered PrometheusRule and dashboard ConfigMap"
# helm-python-sdk (Helm's Go SDK as a library) in the deploy venv, pinned in requirements-deploy.txt.
venv=.venv-deploy
if ! "$venv/bin/python" -c 'import helm_python, yaml' 2>/dev/null; then
  [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
  mapfile -t pins < <(grep -E '^(helm-python-sdk|PyYAML)==' requirements-deploy.txt)
  flock "$venv/.install.lock" "$venv/bin/pip" install -q "${pins[@]}"
fi
"$venv/bin/python" scripts/monitoring/chart_rules_check.py
echo "rules-check: all checks passed"
