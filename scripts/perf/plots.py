"""Latency percentiles and requests/s over a run, drawn from Locust's stats history (`--csv-full-history`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
from matplotlib.ticker import MaxNLocator  # noqa: E402

from scripts.lib.locust import ScenarioRun, number  # noqa: E402


def series(rows: list[dict[str, str]], column: str) -> list[float]:
    return [value if (value := number(row[column])) is not None else float("nan") for row in rows]


def plot(run: ScenarioRun, path: Path) -> bool:
    """Two panels: p50/p95/p99 with the user count, and requests/s with failures/s. False when too short to draw."""
    rows = [row for row in run.csv_rows("stats_history") if row["Name"] == "Aggregated"]
    if len(rows) < 2:
        return False
    start = int(rows[0]["Timestamp"])
    t = [int(row["Timestamp"]) - start for row in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.4), sharex=True, constrained_layout=True)
    for column, style in (("50%", "-"), ("95%", "-"), ("99%", "--")):
        top.plot(t, series(rows, column), style, label=f"p{column.rstrip('%')}", linewidth=1.6)
    top.set(ylabel="response time (ms)", title=f"{run.scenario}: latency percentiles (10 s window) and users")
    users = top.twinx()
    users.plot(t, series(rows, "User Count"), color="grey", alpha=0.5, linewidth=1, label="users")
    users.set_ylabel("users")
    users.set_ylim(bottom=0)
    users.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = top.get_legend_handles_labels()
    more_handles, more_labels = users.get_legend_handles_labels()
    top.legend(handles + more_handles, labels + more_labels, loc="best", fontsize=9)
    bottom.plot(t, series(rows, "Requests/s"), label="requests/s", linewidth=1.6)
    bottom.plot(t, series(rows, "Failures/s"), label="failures/s", color="tab:red", linewidth=1.2)
    bottom.set(ylabel="per second", xlabel="seconds since start", title=f"{run.scenario}: throughput (~10 s average)")
    bottom.legend(loc="best", fontsize=9)
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
        axes.set_ylim(bottom=0)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
