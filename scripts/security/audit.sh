#!/usr/bin/env bash
# `make audit`: pip-audit (in its own venv, .venv-audit/) over every package installed from the pinned
# requirements.txt + requirements-dev.txt into .venv (direct and transitive). Fails on any known vulnerability,
# on any package it could not audit (--strict), and loudly when the vulnerability service cannot be reached:
# never a silent pass. Service: PyPI's per-release JSON API (https://pypi.org/pypi/<name>/<version>/json).
set -euo pipefail
cd "$(dirname "$0")/../.."
PIP_AUDIT_VERSION=2.10.1
if [ ! -x .venv-audit/bin/pip-audit ] || ! .venv-audit/bin/pip-audit --version | grep -q " $PIP_AUDIT_VERSION\$"; then
  python3 -m venv .venv-audit
  .venv-audit/bin/pip install -q "pip-audit==$PIP_AUDIT_VERSION"
fi

# Preflight: the vulnerability data lives on the per-release endpoint. Some mirrors/proxies serve only the
# project-level JSON (which lists vulnerabilities of the latest release only): then nothing can be audited.
django_version=$(.venv/bin/python -c "import django; print(django.get_version())")
probe="https://pypi.org/pypi/django/$django_version/json"
code=$(curl -sS -m 20 -o /dev/null -w '%{http_code}' "$probe" 2>/dev/null || true)
if [ "$code" != "200" ]; then
  echo "make audit: FAILED, vulnerability service unreachable: GET $probe answered HTTP '${code:-none}'" >&2
  echo "  (pip-audit needs PyPI's per-release JSON API or api.osv.dev; no result is not a clean result)" >&2
  exit 2
fi
PIPAPI_PYTHON_LOCATION=.venv/bin/python .venv-audit/bin/pip-audit --strict --progress-spinner off --desc on
