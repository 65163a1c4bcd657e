"""Serve the shop on a fresh database and wait for it: the one way every tooling script gets a running shop.

    with served(port=18200, database_url=postgres.url("aegistickets_bench"), ingress=True) as shop:
        ...  # shop.url, shop.token (organizer API token), shop.worker_pids(), shop.emails()

What it does, through the project's stable surfaces only (manage.py commands, environment variables, HTTP):
drop and create the database, `migrate`, `createcachetable`, `collectstatic` when the static files are older than
their sources, `seed_demo` and an organizer token (`create_api_token admin`); then gunicorn with the source's own
gunicorn.conf.py and the email worker (`send_emails`) beside it, as in production, so a load test pays for
every confirmation on the same cores (EMAIL_URL=dummymail:// delivers nothing). It returns once /readyz answers.

- `source`: whose code (default this tree and .venv; `source.at_commit(rev)` for another commit).
- `ingress=True`: nginx on `port` as the ALB's stand-in, gunicorn on port+1 and its checkout lane on port+2.
- `env`: more variables for every process (WEB_CONCURRENCY, LOG_LEVEL, GUNICORN_*, …).
Loopback only; everything it started is stopped when the block ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.lib import postgres
from scripts.lib.http import get
from scripts.lib.ingress import running_ingress
from scripts.lib.processes import children, rss_mb, running, stop_cleanly_on_sigterm
from scripts.lib.source import CURRENT, Source
from scripts.lib.wait import wait_for

WSGI_APP = "aegistickets.wsgi:application"


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of every process of a served shop: production settings, no env file, no rate limits."""
    # Nothing of the caller's own shop settings leaks in; gunicorn.conf.py picks a metrics directory per port.
    dropped = ("DJANGO_", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "aegistickets.settings.production",
        "DJANGO_ENV_FILE": "/nonexistent",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url,
        "RATE_LIMITS_ENABLED": "false",  # one client address sends all the load
        "GUNICORN_ACCESS_LOG": "/dev/null",
        "LOG_LEVEL": "warning",
        "EMAIL_URL": "dummymail://",  # every confirmation is built (PDF and all), none delivered
        **extra,
    }


def manage(source: Source, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [source.tool("python"), "manage.py", *args], cwd=source.root, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def static_files_current(root: Path) -> bool:
    """collectstatic's output is newer than every static source and the pinned requirements (it takes a minute or
    more: whitenoise compresses every file with brotli each time)."""
    manifest = root / "staticfiles" / "staticfiles.json"
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    sources = [root / "requirements.txt", *(f for d in [root / "static", *root.glob("*/static")] for f in d.rglob("*"))]
    return all(path.stat().st_mtime < built for path in sources if path.is_file())


def prepare_database(source: Source, env: dict[str, str], *, seed: bool = True) -> str:
    """A new, migrated database with the demo data; returns an organizer API token ("" without seed)."""
    postgres.recreate_database(env["DATABASE_URL"])
    manage(source, "migrate", "--noinput", env=env)
    manage(source, "createcachetable", env=env)
    if not static_files_current(source.root):
        manage(source, "collectstatic", "--noinput", "-v", "0", env=env)
    if not seed:
        return ""
    manage(source, "seed_demo", f"--admin-password={secrets.token_urlsafe(16)}", env=env)  # "=": it may start with "-"
    return manage(source, "create_api_token", "admin", env=env).strip()


@contextlib.contextmanager
def gunicorn(
    source: Source, app: str, *, port: int, env: dict[str, str], ingress: bool = False, ready_path: str = "/readyz"
) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn -c <source>/gunicorn.conf.py serving `app` on 127.0.0.1:port (behind nginx with `ingress`), until
    `ready_path` answers 200."""
    ports = {"PORT": str(port + 1), "CHECKOUT_PORT": str(port + 2)} if ingress else {"PORT": str(port)}
    argv = [source.tool("gunicorn"), "-c", "gunicorn.conf.py", app]
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(running(argv, cwd=source.root, env={**env, "HOST": "127.0.0.1", **ports}))
        urls = [f"http://127.0.0.1:{port}"]
        if ingress:
            stack.enter_context(running_ingress(port=port, app_port=port + 1, lane_port=port + 2))
            urls.append(f"http://127.0.0.1:{port + 2}")  # the lane answers too

        def up(url: str) -> bool:
            return server.poll() is not None or get(url + ready_path, timeout=2).status == 200

        for url in urls:
            wait_for(f"{url}{ready_path}", lambda url=url: up(url), timeout=90)
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn ({source.label}) exited at start with status {server.returncode}")
        yield server


@dataclass
class Served:
    url: str
    token: str
    database_url: str
    env: dict[str, str]
    source: Source
    gunicorn_pid: int
    email_worker_pid: int = 0

    def worker_pids(self) -> list[int]:
        return children(self.gunicorn_pid)

    def worker_rss_mb(self) -> dict[int, float]:
        """Resident memory (MB) of each gunicorn worker alive now, by pid."""
        sizes = {pid: rss_mb(pid) for pid in self.worker_pids()}
        return {pid: size for pid, size in sizes.items() if size is not None}

    def manage(self, *args: str) -> str:
        return manage(self.source, *args, env=self.env)

    def emails(self) -> dict[str, int]:
        """Buyer emails in the outbox by status (pending, sent, failed)."""
        rows = postgres.psql(self.database_url, "SELECT status, count(*) FROM orders_outboundemail GROUP BY 1")
        counts = {"pending": 0, "sent": 0, "failed": 0}
        counts.update({line.split()[0]: int(line.split()[1]) for line in rows.splitlines() if line.strip()})
        return counts


@contextlib.contextmanager
def served(
    *,
    port: int,
    database_url: str,
    source: Source = CURRENT,
    env: dict[str, str] | None = None,
    ingress: bool = False,
    email_worker: bool = True,
) -> Iterator[Served]:
    """The shop on a fresh database, served and ready (see the module's docstring)."""
    stop_cleanly_on_sigterm()
    shop_env = app_env(database_url, **(env or {}))
    token = prepare_database(source, shop_env)
    with contextlib.ExitStack() as stack:
        worker = None
        if email_worker:
            argv = [source.tool("python"), "manage.py", "send_emails"]
            worker = stack.enter_context(running(argv, cwd=source.root, env=shop_env, output=subprocess.DEVNULL))
        server = stack.enter_context(gunicorn(source, WSGI_APP, port=port, env=shop_env, ingress=ingress))
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(f"the email worker exited at start (status {worker.returncode})")
        yield Served(
            url=f"http://127.0.0.1:{port}",
            token=token,
            database_url=database_url,
            env=shop_env,
            source=source,
            gunicorn_pid=server.pid,
            email_worker_pid=worker.pid if worker else 0,
        )


if __name__ == "__main__":
    # `python -m scripts.lib.serve` serves until Ctrl-C, for manual load tests (make loadtest HOST=…).
    import signal

    port = int(os.environ.get("PORT", "18100"))
    with served(port=port, database_url=postgres.url("aegistickets_perf"), ingress=True) as shop:
        print(f"serving {shop.url} (organizer token {shop.token}); Ctrl-C stops", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
