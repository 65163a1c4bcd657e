#!/usr/bin/env python3
"""Validate Kubernetes manifests offline against the API schemas bundled in PyPI kubernetes-validate.

Stricter than its CLI: unknown fields are errors, and so is an apiVersion/kind without a schema for the target
version (a removed API such as batch/v1beta1 CronJob, a typo), unless its API group is a CRD group; those are
validated by crd/crdvalidate.mjs, which in turn refuses any version of those groups it has no schema for.

usage: k8s_validate.py [-k 1.28.0] [--crd-group GROUP ...] FILE ...      exit 1 on any invalid object
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from kubernetes_validate import utils as kv

CRD_GROUPS = ["monitoring.coreos.com", "external-secrets.io"]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+")
    p.add_argument("-k", "--kubernetes-version", default="1.28.0")
    p.add_argument("--crd-group", action="append", default=None, help="API group validated elsewhere; repeatable")
    a = p.parse_args()
    crd_groups = set(a.crd_group or CRD_GROUPS)
    bad = ok = skipped = 0
    for fn in a.files:
        for i, doc in enumerate(d for d in yaml.safe_load_all(Path(fn).read_text()) if d):
            for d in doc["items"] if doc.get("kind", "").endswith("List") and "items" in doc else [doc]:
                name = f"{fn}#{i} {d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
                group = str(d.get("apiVersion", "")).rpartition("/")[0]
                if group in crd_groups:
                    skipped += 1
                    continue
                try:
                    kv.validate(d, a.kubernetes_version, strict=True)
                    ok += 1
                except kv.ValidationError as e:
                    bad += 1
                    print(f"ERROR {name}: {'.'.join(str(x) for x in e.path)}: {e.message}")
                except kv.SchemaNotFoundError as e:
                    bad += 1
                    print(f"ERROR {name}: {e.message} (removed or unknown API)")
                except KeyError as e:
                    bad += 1
                    print(f"ERROR {name}: missing {e}")
    print(f"==> k8s {a.kubernetes_version}: {ok} valid, {bad} invalid, {skipped} custom resources left to crdvalidate")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
