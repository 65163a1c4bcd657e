"""A private PostgreSQL cluster that `make chaos` may stop, crash and restart.

Never the shared cluster on 5432: `initdb` into a temporary directory (as the `postgres` user when run as root,
because PostgreSQL refuses to run as root), served on 127.0.0.1 only, on its own port, removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.lib.postgres import is_ready
from scripts.lib.wait import wait_for


def _bindir() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql")


@dataclass
class PrivatePostgres:
    port: int
    directory: Path
    bindir: Path

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgresql.log"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=100"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """mode "immediate" is a crash: no checkpoint, every session cut off; the restart replays the WAL."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def private_postgres(port: int = 55432) -> Iterator[PrivatePostgres]:
    if is_ready(port):
        raise RuntimeError(f"something already answers on 127.0.0.1:{port}; pick another CHAOS_PG_PORT")
    directory = Path(tempfile.mkdtemp(prefix="aegistickets-chaos-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user="postgres", group="postgres")
    cluster = PrivatePostgres(port=port, directory=directory, bindir=_bindir())
    try:
        cluster.init()
        cluster.start()
        wait_for(f"the private PostgreSQL on {port}", lambda: is_ready(port), timeout=30)
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
