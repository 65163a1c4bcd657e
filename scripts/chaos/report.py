"""`make chaos`'s verdicts: one line per check (`fault | check | expected | observed | PASS/FAIL`) and the figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Result:
    fault: str
    check: str
    expected: str
    observed: str
    ok: bool


class Report:
    def __init__(self) -> None:
        self.results: list[Result] = []
        self.figures: dict[str, Any] = {}

    def check(self, fault: str, check: str, expected: str, observed: Any, ok: bool) -> None:
        self.results.append(Result(fault, check, expected, str(observed), bool(ok)))
        print(f"  [{'PASS' if ok else 'FAIL'}] {fault}: {check}: {observed} (expected {expected})", flush=True)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(result.ok for result in self.results)

    def table(self) -> str:
        rows = [("fault", "check", "expected", "observed", "result")]
        rows += [(r.fault, r.check, r.expected, r.observed, "PASS" if r.ok else "FAIL") for r in self.results]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
        lines.insert(1, "-+-".join("-" * width for width in widths))
        return "\n".join(lines)
