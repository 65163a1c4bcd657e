"""The container image (Dockerfile) without a Docker engine: it starts the app the way `make run` and CI do, as a
numeric non-root user on port 8000, checks itself on /healthz, and ships every Django app of the project."""

from __future__ import annotations

import json
import re
import runpy
import shlex
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(stage: str = "runtime") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one build stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    out, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, args = line.partition(" ")
        if word.upper() == "FROM":
            current = args.split(" AS ")[-1].strip() if " AS " in args else args
        if current == stage:
            out.append((word.upper(), args.strip()))
    return out


def last(name: str) -> str:
    values = [args for word, args in instructions() if word == name]
    assert values, f"the runtime stage has no {name}"
    return values[-1]


def makefile_run_command() -> list[str]:
    """The gunicorn command of the Makefile's `run` target (started in the background next to the email worker),
    with $(BIN)/ dropped."""
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", text, re.M)
    assert recipe, "Makefile has no run target"
    (line,) = [ln.strip() for ln in recipe[1].splitlines() if ln.strip().startswith("$(BIN)/gunicorn ")]
    command = re.split(r"\s+(?:&|;|&&|\|\|)(?:\s|$)", line)[0]
    return [re.sub(r"^\$\(BIN\)/", "", word) for word in shlex.split(command)]


def test_image_starts_the_app_like_make_run():
    cmd = json.loads(last("CMD"))
    assert cmd == makefile_run_command()
    assert cmd == ["gunicorn", "-c", "gunicorn.conf.py", "aegistickets.wsgi:application"]
    assert not [args for word, args in instructions() if word == "ENTRYPOINT"]


def test_image_runs_as_a_numeric_non_root_user():
    user, _, group = last("USER").partition(":")
    assert user.isdigit()
    assert int(user) >= 10000
    assert group.isdigit()


def test_image_listens_on_8000_on_all_interfaces():
    assert last("EXPOSE") == "8000 8001"  # 8001: the checkout lane, when the chart sets CHECKOUT_PORT
    env = " ".join(args for word, args in instructions() if word == "ENV")
    assert "HOST=0.0.0.0" in env
    assert "PORT=8000" in env


def test_healthcheck_requests_healthz():
    check = last("HEALTHCHECK")
    assert "/healthz" in check
    assert "urllib.request.urlopen" in check  # python: the slim image has no curl


def test_runtime_environment_for_a_read_only_root_filesystem():
    env = " ".join(args for word, args in instructions() if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/" in env
    assert "GUNICORN_ACCESS_LOG_FORMAT=json" in env
    assert "XDG_RUNTIME_DIR=/tmp" in env  # gunicorn's control socket, else it tries $HOME
    # The throwaway collectstatic key lives in one RUN step only, never in the image's environment.
    assert "DJANGO_SECRET_KEY" not in env
    collect = [args for word, args in instructions() if word == "RUN" and "collectstatic" in args]
    assert collect
    assert "DJANGO_SECRET_KEY=" in collect[0]


def test_build_steps_run_before_the_metrics_directory_is_configured():
    """gunicorn creates PROMETHEUS_MULTIPROC_DIR at start; a build step importing the app with it set fails."""
    steps = instructions()
    collect = next(i for i, (word, args) in enumerate(steps) if word == "RUN" and "collectstatic" in args)
    multiproc = next(i for i, (word, args) in enumerate(steps) if word == "ENV" and "PROMETHEUS_MULTIPROC_DIR" in args)
    assert collect < multiproc


def test_runtime_stage_builds_nothing():
    """Compilers and package caches stay in the builder: the runtime stage only copies and collects."""
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    assert not re.search(r"apt-get|pip install|gcc|build-essential", runs)
    assert "--from=builder /opt/venv /opt/venv" in " ".join(args for word, args in instructions() if word == "COPY")


def test_every_project_app_is_copied_into_the_image():
    copied = {args.split()[0].rstrip("/") for word, args in instructions() if word == "COPY" and "--from" not in args}
    local_apps = {app.split(".")[0] for app in settings.INSTALLED_APPS if (ROOT / app.split(".")[0]).is_dir()}
    assert local_apps, "no project apps found"
    missing = (local_apps | {"aegistickets", "templates", "static"}) - copied
    assert not missing, f"Dockerfile does not COPY {sorted(missing)}"
    assert "COPY manage.py gunicorn.conf.py ./" in DOCKERFILE


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") if "*" in ignore else 0] == "*"  # allow-list: everything else is out
    assert "!.env" not in ignore
    assert "**/.env" in ignore


@pytest.fixture
def json_access_logger(monkeypatch):
    from gunicorn.config import Config

    monkeypatch.setenv("GUNICORN_ACCESS_LOG_FORMAT", "json")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", conf["access_log_format"])
    cfg.set("logger_class", conf["logger_class"])
    return cfg.logger_class(cfg)


def test_access_log_is_one_json_object_per_request(json_access_logger, caplog):
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": '/api/events?search=a"b\\c',
        "PATH_INFO": "/api/events",
        "QUERY_STRING": 'search=a"b\\c',
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.3.7",
        "HTTP_USER_AGENT": 'Locust "quoted" \\ agent\x07',
    }
    resp = SimpleNamespace(status="200 OK", sent=512, headers=[("Content-Type", "application/json")])
    req = SimpleNamespace(headers=[("X-FORWARDED-FOR", "203.0.113.9"), ("X-AMZN-TRACE-ID", "Root=1-abc")])
    json_access_logger.access(resp, req, environ, timedelta(milliseconds=42))
    (record,) = [r for r in caplog.records if r.name == "gunicorn.access"]
    entry = json.loads(record.getMessage())
    assert entry["status"] == 200
    assert entry["duration_ms"] == 42
    assert entry["path"] == "/api/events"
    assert entry["query"] == 'search=a"b\\c'
    assert entry["user_agent"] == 'Locust "quoted" \\ agent\x07'
    assert entry["forwarded_for"] == "203.0.113.9"
    assert entry["trace_id"] == "Root=1-abc"


def test_access_log_stays_text_by_default(monkeypatch):
    monkeypatch.delenv("GUNICORN_ACCESS_LOG_FORMAT", raising=False)
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert "logger_class" not in conf
    assert "access_log_format" not in conf
