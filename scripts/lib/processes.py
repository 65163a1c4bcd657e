"""Processes the scripts start (each in its own session, stopped with its children) and what they read from /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM unwinds the script like Ctrl-C, so every `running` block stops what it started (Python's default
    would exit at once and leave gunicorn, nginx and the email worker behind). A handler already set is kept."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


@contextlib.contextmanager
def running(
    argv: list[str], *, cwd: Path, env: dict[str, str], output: IO[bytes] | int | None = None, grace: float = 30
) -> Iterator[subprocess.Popen[bytes]]:
    """The process for the block; then SIGTERM to its whole process group, SIGKILL after `grace` seconds."""
    process = subprocess.Popen(  # noqa: S603 - fixed argv of the project's own tools
        argv,
        cwd=cwd,
        env=env,
        stdout=sys.stderr if output is None else output,
        # A log file gets both streams; with no output (or DEVNULL for chatty start lines) errors still show.
        stderr=sys.stderr if output in (None, subprocess.DEVNULL) else subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop(process, grace=grace)


def stop(process: subprocess.Popen[bytes], *, grace: float = 30) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def children(pid: int) -> list[int]:
    """The direct children of a process (a gunicorn master's workers)."""
    listing = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in listing.read_text().split()] if listing.exists() else []


def rss_mb(pid: int) -> float | None:
    """A process's resident memory (VmRSS) in MB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), None)


def alive(pid: int) -> bool:
    """Running (a dead child not yet reaped is a zombie: state Z)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


def free_port(low: int = 18300, high: int = 18399) -> int:
    """The first port in [low, high] nothing listens on (the tooling's ports are 18100-18399)."""
    for port in range(low, high + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")
