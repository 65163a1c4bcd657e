"""One headless Locust run of a scenario (locustfiles/<name>.py) and what it wrote: Locust's own CSV files
(`--csv`, `--csv-full-history`) and HTML report, its log, and the scenario's gate summary (`<prefix>_summary.json`,
written by locustfiles/gates.py: the SLO table and the figures Locust does not keep, such as orders/s)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.lib.source import CURRENT

LOCUSTFILES = CURRENT.root / "locustfiles"
# Knobs the scenarios read; cleared so that a run uses exactly the settings it is given.
KNOBS = ("DURATION", "USERS", "LOADTEST_MODE", "LOADTEST_SUMMARY", "AEGIS_API_TOKEN")


def number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None


@dataclass
class ScenarioRun:
    scenario: str
    settings: dict[str, str]
    out_dir: Path
    label: str = ""  # which server it ran against, when a bench compares two
    returncode: int = -1
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> Path:
        return self.out_dir / (f"{self.scenario}-{self.label}" if self.label else self.scenario)

    @property
    def log(self) -> Path:
        return Path(f"{self.prefix}.log")

    @property
    def html(self) -> Path:
        return Path(f"{self.prefix}.html")

    def csv_rows(self, kind: str) -> list[dict[str, str]]:
        """One of Locust's CSV files: stats, stats_history, failures, exceptions."""
        path = Path(f"{self.prefix}_{kind}.csv")
        if not path.exists():
            return []
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def stats(self, name: str = "Aggregated", method: str | None = None) -> dict[str, str]:
        """A row of Locust's stats CSV: one request name (and method), or every request ("Aggregated")."""
        return next(
            (
                row
                for row in self.csv_rows("stats")
                if row["Name"] == name and (method is None or row["Type"] == method)
            ),
            {},
        )

    def p95(self, name: str = "Aggregated", method: str | None = None) -> float | None:
        return number(self.stats(name, method).get("95%"))

    @property
    def requests(self) -> int:
        return int(number(self.stats().get("Request Count")) or 0)

    @property
    def failures(self) -> int | None:
        value = number(self.stats().get("Failure Count"))
        return None if value is None else int(value)

    @property
    def rps(self) -> float | None:
        return number(self.stats().get("Requests/s"))

    def figure(self, name: str) -> Any:
        """A figure the scenario printed at quit (orders/s, oversold, …), from its summary."""
        return self.summary.get("figures", {}).get(name)

    def gate_report(self) -> str:
        """The scenario's own printout at quit: figures and the SLO table."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        start = text.find(f"=== {self.scenario} (")
        if start < 0:
            return f"(no gate report; see {self.log})\n" + text[-3000:]
        end = text.find("\nresult: ", start)
        return text[start : text.find("\n", end + 1) if end >= 0 else len(text)]


def run_scenario(
    scenario: str,
    *,
    host: str,
    out_dir: Path,
    settings: dict[str, str],
    token: str = "",
    label: str = "",
    timeout: float = 1800,
) -> ScenarioRun:
    """`locust --headless` for one scenario with Locust's CSV (full history) and HTML reports in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run = ScenarioRun(scenario=scenario, settings=settings, out_dir=out_dir, label=label)
    env = {k: v for k, v in os.environ.items() if k not in KNOBS and not k.startswith("FLASH_")}
    env.update(settings)
    if token:
        env["AEGIS_API_TOKEN"] = token
    argv = [CURRENT.tool("locust"), "-f", str(LOCUSTFILES / f"{scenario}.py"), "--headless", "--host", host]
    argv += ["--only-summary", "--csv", str(run.prefix), "--csv-full-history", "--html", str(run.html)]
    shown = " ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
    print(f"--- {scenario}{f' on {label}' if label else ''}: {shown}", flush=True)
    started = time.monotonic()
    with run.log.open("w") as log:
        try:
            done = subprocess.run(
                argv, cwd=CURRENT.root, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
            run.returncode = done.returncode
        except subprocess.TimeoutExpired:
            run.returncode = -9
            log.write(f"\nlocust did not finish within {timeout:g} s\n")
    run.seconds = time.monotonic() - started
    summary = Path(f"{run.prefix}_summary.json")
    if summary.exists():
        run.summary = json.loads(summary.read_text())
    print(run.gate_report(), flush=True)
    print(f"--- {scenario}: exit code {run.returncode} after {run.seconds:.0f} s\n", flush=True)
    return run
