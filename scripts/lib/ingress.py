"""nginx as the load tests' ingress, standing in for the ALB: the Helm chart's routes
(deploy/helm/aegistickets/templates/ingress.yaml), checkout to gunicorn's checkout lane, the rest to its main port.
Needs Debian's nginx (`apt-get install nginx-light`)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from scripts.lib.processes import running

PROXY = (
    "proxy_set_header Host $http_host; "
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; "
    "proxy_set_header X-Forwarded-Proto $scheme; "
    "proxy_read_timeout 300s; proxy_send_timeout 300s; proxy_connect_timeout 300s; "
    "proxy_max_temp_file_size 0;"  # big answers stream through memory buffers, never a temp file
)


def nginx_path() -> str | None:
    """Debian's nginx, which is in /usr/sbin: not on every user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


def config(*, port: int, app_port: int, lane_port: int, directory: Path) -> str:
    temp = "\n".join(f"    {kind}_temp_path {directory}/{kind};" for kind in ("proxy", "fastcgi", "uwsgi", "scgi"))
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
{temp}
    # Like the ALB: a client's connection is not held by a busy app; a rush queues here.
    upstream app {{ server 127.0.0.1:{app_port}; }}
    upstream lane {{ server 127.0.0.1:{lane_port}; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /api/checkout {{ proxy_pass http://lane; {PROXY} }}
        location ^~ /checkout/ {{ proxy_pass http://lane; {PROXY} }}
        location / {{ proxy_pass http://app; {PROXY} }}
    }}
}}
"""


@contextlib.contextmanager
def running_ingress(*, port: int, app_port: int, lane_port: int) -> Iterator[subprocess.Popen[bytes]]:
    nginx = nginx_path()
    if nginx is None:
        raise RuntimeError("the ingress needs nginx: apt-get install nginx-light")
    with tempfile.TemporaryDirectory(prefix="aegis-ingress-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)  # nginx's workers run as another user when it is started by root
        path = directory / "nginx.conf"
        path.write_text(config(port=port, app_port=app_port, lane_port=lane_port, directory=directory))
        argv = [nginx, "-c", str(path), "-e", str(directory / "error.log")]
        with running(argv, cwd=directory, env={}, grace=10) as process:
            yield process
