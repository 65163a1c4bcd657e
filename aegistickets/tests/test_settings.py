"""Settings come from the environment only, and refuse to start unsafe."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k" * 20 + "-Zq8vX2nLr5Tw9Ys3Bd7Hf1Jm4Pc6Ga0Ue"


def manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run(  # noqa: S603 - fixed argv, our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_ENV_FILE": "/nonexistent",
            "DJANGO_SETTINGS_MODULE": "aegistickets.settings.production",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_debug_may_start_without_a_secret_key():
    assert manage("check", DJANGO_DEBUG="true").returncode == 0


def test_deploy_check_is_clean_behind_tls():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_SECURE_SSL_REDIRECT="true",
        DJANGO_ALLOWED_HOSTS="shop.example.com",
    )
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize("value", ["0", "-5", "ten"])
def test_hold_minutes_must_be_a_positive_number(value):
    result = manage("check", DJANGO_SECRET_KEY=STRONG_KEY, HOLD_MINUTES=value)
    assert result.returncode != 0


def test_secret_key_is_read_from_the_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"DJANGO_SECRET_KEY={STRONG_KEY}\nHOLD_MINUTES=3\n")
    result = manage(
        "shell", "-c", "from django.conf import settings; print(settings.HOLD_MINUTES)", DJANGO_ENV_FILE=str(env_file)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "3"
