#!/usr/bin/env bash
# `make rules-check`: promtool check + unit tests of the Prometheus rules, and the Helm chart's copies of the
# rules and the dashboard identical to their one source under deploy/monitoring/ (`make sync-monitoring`).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/monitoring/install_prometheus.sh

echo "=== promtool check rules"
promtool check rules deploy/monitoring/rules/*.yml
echo "=== promtool test rules"
(cd deploy/monitoring/tests && promtool test rules ./*.yml)

echo "=== Helm chart copies of the monitoring sources"
chart_files=deploy/helm/aegistickets/files/monitoring
stale=0
for source in deploy/monitoring/rules/aegistickets.rules.yml deploy/monitoring/dashboards/aegistickets.json; do
  copy="$chart_files/$(basename "$source")"
  if ! cmp -s "$source" "$copy"; then
    echo "$copy differs from $source: run \`make sync-monitoring\`" >&2
    stale=1
  fi
done
[ "$stale" -eq 0 ] || exit 1
echo "in sync"

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
