"""Serve the shop under gunicorn against its own PostgreSQL database, for load tests and benchmarks.

    with served_app(port=18100) as app:
        ...  # app.url, app.token (organizer API token), app.gunicorn_pid, app.database

With `ingress=True` the shop is reached as in production, through an ingress: nginx on `port` stands in for the
ALB and routes as the Helm chart's Ingress does, checkout (`/api/checkout`, `/checkout/`) to gunicorn's checkout
lane (CHECKOUT_PORT = port + 2) and everything else to its main port (port + 1). It needs nginx
(`apt-get install nginx-light`). Without it, gunicorn itself listens on `port`, with no lane.

The email worker (`manage.py send_emails`) runs next to gunicorn with the same environment and database, as it
does in production, so a load test pays for building every confirmation (tickets PDF) on the same cores; the
mail backend (`dummymail://`) delivers nothing. Loopback only; everything it starts is stopped when the block
ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
PG_PORT = 5432  # the shared cluster; `make chaos` passes its own private one (scripts/chaos/pg.py)


@dataclass
class ServedApp:
    url: str
    token: str
    database_url: str
    gunicorn_pid: int
    env: dict[str, str] = field(default_factory=dict)
    email_worker_pid: int = 0

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.gunicorn_pid}/task/{self.gunicorn_pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def worker_rss_mb(self) -> dict[int, float]:
        """Resident memory (MB) of each gunicorn worker alive now, by pid."""
        sizes = {pid: rss_mb(pid) for pid in self.worker_pids()}
        return {pid: size for pid, size in sizes.items() if size is not None}

    def manage(self, *args: str) -> str:
        return manage(*args, env=self.env)

    def emails(self) -> dict[str, int]:
        """Buyer emails in the outbox by status (pending, sent, failed), read from the database."""
        return email_outbox(self.database_url)


def rss_mb(pid: int) -> float | None:
    """A process's resident memory (VmRSS) in MB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def email_outbox(database_url: str) -> dict[str, int]:
    query = "SELECT status, count(*) FROM orders_outboundemail GROUP BY 1"
    result = subprocess.run(
        ["psql", database_url, "-At", "-F", " ", "-c", query],
        capture_output=True,
        text=True,
        check=True,
    )
    counts = {"pending": 0, "sent": 0, "failed": 0}
    for line in result.stdout.split("\n"):
        if line.strip():
            status, count = line.split()
            counts[status] = int(count)
    return counts


def ensure_postgres() -> None:
    def ready() -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False).returncode == 0

    if ready():
        return
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
    for _ in range(30):
        if ready():
            return
        time.sleep(1)
    raise RuntimeError("PostgreSQL did not start")


def recreate_database(name: str, *, pg_port: int = PG_PORT) -> str:
    if pg_port == PG_PORT:
        ensure_postgres()
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        psql = ["psql", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "-q", "-c", sql]
        subprocess.run(psql, check=True)  # noqa: S603 - fixed argv
    return f"postgres://postgres@127.0.0.1:{pg_port}/{name}"


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "aegistickets.settings.production",
            "DJANGO_ENV_FILE": "/nonexistent",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": database_url,
            "DJANGO_DEBUG": "false",
            "RATE_LIMITS_ENABLED": "false",  # one client address sends all the load
            "GUNICORN_ACCESS_LOG": "/dev/null",
            "LOG_LEVEL": "warning",
            # The email worker builds every confirmation (PDF and all) but delivers nothing: no mailbox floods.
            "EMAIL_URL": "dummymail://",
        }
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:  # noqa: S310 - loopback URL
            if response.status == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not become ready within {timeout:g} s")


def static_files_current() -> bool:
    """collectstatic's output is newer than every static source and the pinned requirements (it takes a minute
    or more here: whitenoise compresses every file with brotli each time)."""
    manifest = ROOT / "staticfiles" / "staticfiles.json"
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    static_dirs = [ROOT / "static", *ROOT.glob("*/static")]
    sources = [ROOT / "requirements.txt", *(f for d in static_dirs for f in d.rglob("*") if f.is_file())]
    return all(source.stat().st_mtime < built for source in sources)


def ingress_config(*, port: int, app_port: int, lane_port: int, directory: Path) -> str:
    """nginx as the ingress: the Helm chart's routes (deploy/helm/aegistickets/templates/ingress.yaml)."""
    proxy = (
        "proxy_set_header Host $http_host; "
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; "
        "proxy_set_header X-Forwarded-Proto $scheme; "
        "proxy_read_timeout 300s; proxy_send_timeout 300s; proxy_connect_timeout 300s; "
        "proxy_max_temp_file_size 0;"  # big answers stream through memory buffers, never a temp file
    )
    return f"""
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 10000; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    # Like the ALB: a client's connection is not held by a busy app; a rush queues here.
    upstream app {{ server 127.0.0.1:{app_port}; }}
    upstream lane {{ server 127.0.0.1:{lane_port}; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /api/checkout {{ proxy_pass http://lane; {proxy} }}
        location ^~ /checkout/ {{ proxy_pass http://lane; {proxy} }}
        location / {{ proxy_pass http://app; {proxy} }}
    }}
}}
"""


def nginx_path() -> str | None:
    """Debian's nginx, which is in /usr/sbin: not on every user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


@contextlib.contextmanager
def running_ingress(*, port: int, app_port: int, lane_port: int) -> Iterator[subprocess.Popen[bytes]]:
    nginx = nginx_path()
    if nginx is None:
        raise RuntimeError("the ingress needs nginx: apt-get install nginx-light")
    with tempfile.TemporaryDirectory(prefix="aegis-ingress-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)  # nginx's workers run as another user when it is started by root
        config = directory / "nginx.conf"
        config.write_text(ingress_config(port=port, app_port=app_port, lane_port=lane_port, directory=directory))
        process = subprocess.Popen([nginx, "-c", str(config), "-e", str(directory / "error.log")])  # noqa: S603 - fixed argv
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def served_app(
    *,
    port: int = 18100,
    database: str = "aegistickets_perf",
    workers: int | None = None,
    seed: bool = True,
    env: dict[str, str] | None = None,
    pg_port: int = PG_PORT,
    ingress: bool = False,
) -> Iterator[ServedApp]:
    """A fresh database, migrated and seeded, served by gunicorn -c gunicorn.conf.py on 127.0.0.1:port (behind
    nginx on that port with `ingress`)."""
    database_url = recreate_database(database, pg_port=pg_port)
    ports = {"PORT": str(port + 1), "CHECKOUT_PORT": str(port + 2)} if ingress else {"PORT": str(port)}
    app_env = base_env(database_url, HOST="127.0.0.1", **ports, **(env or {}))
    if workers is not None:
        app_env["WEB_CONCURRENCY"] = str(workers)
    manage("migrate", "--noinput", env=app_env)
    if not static_files_current():
        manage("collectstatic", "--noinput", "-v", "0", env=app_env)
    if seed:
        manage("seed_demo", f"--admin-password={secrets.token_urlsafe(16)}", env=app_env)  # "=": it may start with "-"
    token = manage("create_api_token", "admin", env=app_env).strip() if seed else ""
    server = subprocess.Popen(  # noqa: S603 - our own gunicorn, fixed argv
        [GUNICORN, "-c", "gunicorn.conf.py", "aegistickets.wsgi:application"],
        cwd=ROOT,
        env=app_env,
        stdout=sys.stderr,
        stderr=sys.stderr,
        start_new_session=True,
    )
    # The email worker, as in production: same image (code), environment and database as the web processes.
    worker = subprocess.Popen(  # noqa: S603 - our own manage.py, fixed argv
        [PYTHON, "manage.py", "send_emails"],
        cwd=ROOT,
        env=app_env,
        stdout=subprocess.DEVNULL,  # its start and stop lines; errors go to stderr
        stderr=sys.stderr,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with contextlib.ExitStack() as stack:
            if ingress:
                stack.enter_context(running_ingress(port=port, app_port=port + 1, lane_port=port + 2))
                wait_ready(f"http://127.0.0.1:{port + 2}")  # the lane answers too
            wait_ready(url)
            if worker.poll() is not None:
                raise RuntimeError(f"the email worker exited at start (status {worker.returncode})")
            yield ServedApp(
                url=url,
                token=token,
                database_url=database_url,
                gunicorn_pid=server.pid,
                env=app_env,
                email_worker_pid=worker.pid,
            )
    finally:
        for process in (server, worker):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in (server, worker):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


if __name__ == "__main__":
    # `python -m scripts.perf.harness` serves until Ctrl-C, for manual load tests.
    with served_app(port=int(os.environ.get("PORT", "18100"))) as app:
        print(f"serving {app.url} (organizer token {app.token}); Ctrl-C stops", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
