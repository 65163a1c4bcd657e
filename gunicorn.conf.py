"""gunicorn settings, read from the environment. `make run`, CI and the container image all use this file."""

import multiprocessing
import os

_host = os.environ.get("HOST", "127.0.0.1")
bind = [f"{_host}:{os.environ.get('PORT', '8000')}"]
# The checkout lane: a second listening port served by the same workers, for the requests that carry money and
# an expiring seat hold. The ingress sends checkout there and everything else to PORT. A sync worker accepts from
# every ready listener in turn, so in an on-sale rush a checkout waits for a free worker, not behind the thousands
# of basket adds queued on PORT (docs/performance.md). Unset: one port.
if os.environ.get("CHECKOUT_PORT"):
    bind.append(f"{_host}:{os.environ['CHECKOUT_PORT']}")
# WEB_CONCURRENCY: worker processes. Default: four per core. In an on-sale rush a worker spends about half its time
# waiting on PostgreSQL (the hot row's lock, round trips), so more sync workers than cores keep the cores busy;
# threaded workers share one interpreter lock and sold less (docs/performance.md). Each worker holds up to ~125 MB.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 4))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# Connections the kernel queues for the workers to accept. An on-sale rush opens thousands at the same instant;
# past this queue (capped by net.core.somaxconn) the kernel drops SYNs and each such client waits 1 s, 3 s, 7 s
# for its retransmit.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "4096"))
# The longest request line gunicorn accepts (its maximum; the default is 4094). Up to this, an over-long query is
# the API's to refuse (400 problem JSON); past it gunicorn answers 414 itself, as documented in the OpenAPI schema.
limit_request_line = 8190
# Recycle workers now and then so a slow leak can never grow without bound (none is known: `make chaos` soaks with
# recycling off and sees worker memory level off). Spread the restarts widely: a worker takes a second or two to boot
# on a busy box, and workers fed evenly with a small jitter all restart at nearly the same moment, while clients
# wait. 0 turns recycling off.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 2
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# Access log as one JSON object per line when GUNICORN_ACCESS_LOG_FORMAT=json (the container image's default),
# for log collectors; otherwise gunicorn's usual text line. gunicorn only escapes quotes in the values it logs,
# so JSON-escape every value here: a backslash or control character in a URL or user agent stays valid JSON.
if os.environ.get("GUNICORN_ACCESS_LOG_FORMAT", "text").lower() == "json":
    import json

    from gunicorn import glogging

    class JsonSafeAtoms(glogging.SafeAtoms):
        def __init__(self, atoms):
            dict.__init__(self, {k: json.dumps(v)[1:-1] if isinstance(v, str) else v for k, v in atoms.items()})

    class JsonAccessLogger(glogging.Logger):
        atoms_wrapper_class = JsonSafeAtoms

    logger_class = JsonAccessLogger
    access_log_format = (
        '{"time": "%(t)s", "remote_addr": "%(h)s", "forwarded_for": "%({x-forwarded-for}i)s", '
        '"method": "%(m)s", "path": "%(U)s", "query": "%(q)s", "protocol": "%(H)s", "status": %(s)s, '
        '"bytes": "%(b)s", "duration_ms": %(M)s, "referer": "%(f)s", "user_agent": "%(a)s", '
        '"trace_id": "%({x-amzn-trace-id}i)s", "pid": "%(p)s"}'
    )

# Prometheus multiprocess mode (aegistickets/metrics.py): every worker writes its metrics to files in
# PROMETHEUS_MULTIPROC_DIR and a scrape sums them all. gunicorn puts raw_env into the master's environment
# before it loads the app or forks a worker, so prometheus_client starts in multiprocess mode everywhere.
# Default: one directory per port, emptied at every start so a restart begins from zero, never stale files.
_metrics_dir = f"/tmp/aegistickets-prometheus-{os.environ.get('PORT', '8000')}"  # noqa: S108 - checked in on_starting
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={os.environ.get('PROMETHEUS_MULTIPROC_DIR', _metrics_dir)}"]


def on_starting(server):
    """Master start: an empty metrics directory (only prometheus_client's own *.db files are removed)."""
    import pathlib

    directory = pathlib.Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # In a shared /tmp another local user could have planted the directory (or a symlink) first.
    if directory.is_symlink() or directory.stat().st_uid not in (os.getuid(), 0):
        raise RuntimeError(f"{directory} belongs to another user: set PROMETHEUS_MULTIPROC_DIR")
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """A worker is gone: drop its live gauges; its counters stay in the sum (counters never go back)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
