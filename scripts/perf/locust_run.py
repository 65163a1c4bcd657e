"""Run one Locust scenario headless and collect what it wrote (used by report.py and smoke.py)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LOCUST = str(ROOT / ".venv" / "bin" / "locust")
LOCUSTFILES = ROOT / "locustfiles"
# Knobs the scenarios read; cleared so that a run uses exactly the settings it is given.
SCENARIO_KNOBS = ("DURATION", "USERS", "LOADTEST_MODE", "LOADTEST_SUMMARY", "AEGIS_API_TOKEN")


@dataclass
class ScenarioRun:
    scenario: str
    settings: dict[str, str]
    out_dir: Path
    returncode: int = -1
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> Path:
        return self.out_dir / self.scenario

    @property
    def log(self) -> Path:
        return self.out_dir / f"{self.scenario}.log"

    @property
    def html(self) -> Path:
        return self.out_dir / f"{self.scenario}.html"

    def csv_rows(self, kind: str) -> list[dict[str, str]]:
        path = Path(f"{self.prefix}_{kind}.csv")
        if not path.exists():
            return []
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def gate_report(self) -> str:
        """The scenario's own printout: figures and the SLO table."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        start = text.find(f"=== {self.scenario} (")
        end = text.find("\nresult: ", start)
        if start < 0:
            return f"(no gate report; see {self.log})\n" + text[-3000:]
        return text[start : text.find("\n", end + 1) if end >= 0 else len(text)]


def run_scenario(
    scenario: str,
    *,
    host: str,
    out_dir: Path,
    settings: dict[str, str],
    token: str = "",
    timeout: float = 1800,
) -> ScenarioRun:
    """`locust --headless` for one scenario; CSV (full history), HTML, log and summary JSON in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run = ScenarioRun(scenario=scenario, settings=settings, out_dir=out_dir)
    env = {k: v for k, v in os.environ.items() if k not in SCENARIO_KNOBS and not k.startswith("FLASH_")}
    env.update(settings)
    env["RATE_LIMITS_ENABLED"] = "false"  # documents intent; the server reads it (the harness sets it there)
    if token:
        env["AEGIS_API_TOKEN"] = token
    argv = [
        LOCUST,
        "-f",
        str(LOCUSTFILES / f"{scenario}.py"),
        "--headless",
        "--host",
        host,
        "--only-summary",
        "--csv",
        str(run.prefix),
        "--csv-full-history",
        "--html",
        str(run.html),
    ]
    print(f"--- {scenario}: {' '.join(f'{k}={v}' for k, v in settings.items()) or 'defaults'}", flush=True)
    started = time.monotonic()
    with run.log.open("w") as log:
        try:
            process = subprocess.run(  # noqa: S603 - our own locust, fixed argv
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
            run.returncode = process.returncode
        except subprocess.TimeoutExpired:
            run.returncode = -9
            log.write(f"\nlocust did not finish within {timeout:g} s\n")
    run.seconds = time.monotonic() - started
    summary = Path(f"{run.prefix}_summary.json")
    if summary.exists():
        run.summary = json.loads(summary.read_text())
    print(run.gate_report(), flush=True)
    print(f"--- {scenario}: exit code {run.returncode} after {run.seconds:.0f} s\n", flush=True)
    sys.stdout.flush()
    return run
