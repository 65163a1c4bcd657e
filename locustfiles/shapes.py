"""Load shapes: stages like k6's, squeezed into DURATION and scaled to a peak of USERS.

DURATION   squeeze a scenario's shape into this time ("30s", "2m", "90")
USERS      peak number of users (a shape's levels are scaled to it)
"""

from __future__ import annotations

import os
from typing import ClassVar

from locust import LoadTestShape
from locust.util.timespan import parse_timespan


def env_seconds(name: str) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    return float(raw) if raw.replace(".", "", 1).isdigit() else float(parse_timespan(raw))


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def scale_stages(
    stages: tuple[tuple[float, int], ...], *, duration: float | None, users: int | None
) -> list[tuple[float, int]]:
    """The stages squeezed into `duration` seconds and scaled so their peak is `users`."""
    time_factor = duration / sum(seconds for seconds, _ in stages) if duration else 1.0
    user_factor = users / max(level for _, level in stages) if users else 1.0
    return [(seconds * time_factor, max(1, round(level * user_factor)) if level else 0) for seconds, level in stages]


class StagedShape(LoadTestShape):
    """Each stage (seconds, users) ramps linearly from the previous level to `users`."""

    abstract = True
    stages: ClassVar[tuple[tuple[float, int], ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self.plan = scale_stages(self.stages, duration=env_seconds("DURATION"), users=env_int("USERS", 0) or None)

    def tick(self) -> tuple[int, float] | None:
        elapsed, level, end = self.get_run_time(), 0, 0.0
        for seconds, users in self.plan:
            end += seconds
            if elapsed < end:
                change = abs(users - level)
                return users, max(change / seconds if change else max(users, 1), 0.01)
            level = users
        return None


class ConstantShape(LoadTestShape):
    """USERS users (default `users`) for DURATION seconds (default `seconds`), all started at once."""

    abstract = True
    users: ClassVar[int] = 1
    seconds: ClassVar[float] = 60.0

    def tick(self) -> tuple[int, float] | None:
        users = env_int("USERS", self.users)
        return (users, users) if self.get_run_time() < (env_seconds("DURATION") or self.seconds) else None
