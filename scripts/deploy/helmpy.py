#!/usr/bin/env python3
"""Offline `helm lint` / `helm template` with PyPI helm-python-sdk (it bundles the Helm v4 Go SDK as a shared
library: no helm binary, no cluster, no network). Used by check-chart.sh and deploy/tests/.

  helmpy.py lint     CHART [-f values.yaml ...] [--set k=v ...] [--strict] [--kube-version v1.28.0]
  helmpy.py template CHART [-f values.yaml ...] [--set k=v ...] [--name REL] [--namespace NS] [-o out.yaml]

Exit codes: 0 ok, 1 lint errors (or warnings with --strict) or a render error (values.schema.json, `fail`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import helm_python as helm

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def collect_values(values_files: list[str] | None = None, sets: list[str] | None = None) -> dict:
    """Values as `helm -f ... --set ...` would merge them (later wins)."""
    vals: dict = {}
    for f in values_files or []:
        vals = _deep_merge(vals, helm.values_from_yaml(Path(f).read_text()) or {})
    for s in sets or []:
        vals = _deep_merge(vals, helm.parse_set_string(s))
    return vals


def render(
    chart: str,
    values_files: list[str] | None = None,
    sets: list[str] | None = None,
    *,
    name: str = "aegistickets",
    namespace: str = "aegistickets",
) -> str:
    """The chart's manifests as one multi-document YAML string (like `helm template`); raises helm.HelmError."""
    vals = collect_values(values_files, sets)
    with helm.Chart.load(chart) as ch:
        ch.validate_schema(vals or None)  # values.schema.json
        rendered = ch.render(vals or None, name=name, namespace=namespace, is_install=True)
    docs = [
        f"# Source: {path}\n{rendered[path].strip()}\n"
        for path in sorted(rendered)
        if not path.endswith("NOTES.txt") and rendered[path].strip()
    ]
    return "---\n" + "---\n".join(docs)


def lint(
    chart: str,
    values_files: list[str] | None,
    sets: list[str] | None,
    *,
    strict: bool,
    kube_version: str,
    namespace: str,
) -> int:
    rep = helm.lint(
        chart, collect_values(values_files, sets) or None, strict=strict, kube_version=kube_version, namespace=namespace
    )
    worst = 0
    for m in rep.get("messages", []):
        worst = max(worst, m["severity"])
        print(f"[{SEVERITY.get(m['severity'], m['severity'])}] {m['path']}: {m['error']}")
    failed = bool(rep.get("errors")) or worst >= 3 or (strict and worst >= 2)
    print(f"==> linted {rep.get('total_charts_linted')} chart(s), {'FAILED' if failed else 'OK'}", file=sys.stderr)
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd in ("lint", "template"):
        s = sub.add_parser(cmd)
        s.add_argument("chart")
        s.add_argument("-f", "--values", action="append")
        s.add_argument("--set", action="append")
        s.add_argument("--namespace", default="aegistickets")
        if cmd == "lint":
            s.add_argument("--strict", action="store_true")
            s.add_argument("--kube-version", default="v1.28.0")
        else:
            s.add_argument("--name", default="aegistickets")
            s.add_argument("-o", "--output")
    a = p.parse_args()
    if a.cmd == "lint":
        return lint(a.chart, a.values, a.set, strict=a.strict, kube_version=a.kube_version, namespace=a.namespace)
    try:
        text = render(a.chart, a.values, a.set, name=a.name, namespace=a.namespace)
    except helm.HelmError as e:
        print(f"Error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if a.output:
        Path(a.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
