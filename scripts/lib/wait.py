"""Polling with a deadline: the one way the scripts wait for a server, a scrape or a drained queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOutError(AssertionError):
    """What was waited for did not happen in time (an AssertionError: the checks report it as a failure)."""


def wait_for(what: str, probe: Callable[[], T], *, timeout: float = 30, interval: float = 0.25) -> T:
    """Calls probe() until it returns something truthy, and returns that; raises TimedOutError with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimedOutError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")
        time.sleep(interval)
