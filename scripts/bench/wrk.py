"""wrk, closed loop, with a Lua reporter (wrk_report.lua) that prints throughput, latency percentiles and errors as
one JSON line. wrk exits 0 even when every answer is an error: the caller reads `non_2xx_3xx` and `socket_errors`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPORTER = Path(__file__).with_name("wrk_report.lua")


def wrk(url: str, *, seconds: int, connections: int = 50) -> dict[str, float]:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(REPORTER), url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
