"""The shared PostgreSQL cluster (127.0.0.1:5432, user postgres, trust) and psql, for every script.

Databases are named by URL (`postgres://postgres@127.0.0.1:<port>/<name>`), so the same helpers serve `make chaos`'s
private cluster on its own port.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from scripts.lib.wait import wait_for

SHARED_PORT = 5432


def url(name: str, *, port: int = SHARED_PORT) -> str:
    return f"postgres://postgres@127.0.0.1:{port}/{name}"


def is_ready(port: int = SHARED_PORT) -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)], check=False).returncode == 0


def ensure_postgres() -> None:
    """Starts the shared cluster when it is not answering (CI machines boot with it stopped)."""
    if is_ready():
        return
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
    wait_for("PostgreSQL to accept connections", is_ready, timeout=30, interval=1)


def psql(database_url: str, sql: str) -> str:
    """One statement through psql; its rows as unaligned text (fields separated by a space)."""
    result = subprocess.run(
        ["psql", database_url, "-qtAX", "-F", " ", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"psql {sql!r} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _server(database_url: str) -> tuple[str, str]:
    """(the maintenance database's URL on the same server, the database's name)."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def recreate_database(database_url: str) -> str:
    """An empty database of that name (dropped first, connections and all); returns its URL."""
    server, name = _server(database_url)
    if urlsplit(database_url).port in (None, SHARED_PORT):
        ensure_postgres()
    psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(server, f'CREATE DATABASE "{name}"')
    return database_url


def drop_database(database_url: str) -> None:
    server, name = _server(database_url)
    psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def deadlocks(database_url: str) -> int:
    """Deadlocks PostgreSQL detected in this database since its statistics began (pg_stat_database)."""
    return int(psql(database_url, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))


SHARED_LOG = Path("/var/log/postgresql")


def log_offsets() -> dict[Path, int]:
    """Where the shared cluster's log files end now (to read what is written after)."""
    return {path: path.stat().st_size for path in SHARED_LOG.glob("postgresql-*.log")} if SHARED_LOG.exists() else {}


def logged_deadlocks(since: dict[Path, int], database_url: str) -> int:
    """'deadlock detected' lines for this database written to the shared cluster's log after `since`
    (Debian's log_line_prefix names the database: `user@database`)."""
    _, name = _server(database_url)
    found = 0
    for path, offset in since.items():
        with path.open("rb") as handle:
            handle.seek(offset)
            found += sum(1 for line in handle if b"deadlock detected" in line and f"@{name} ".encode() in line)
    return found
