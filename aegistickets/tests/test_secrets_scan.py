"""No secrets in the repository, the image or the chart's defaults.

1. detect-secrets (pinned in requirements-dev.txt; offline: no plugin's network verification is enabled) scans every
   tracked file. Each finding must be in `.secrets.baseline`, audited as a false positive (`"is_secret": false`).
   A new finding fails with its file and line: remove a real secret (and rotate it), or mark a false positive
   with `# pragma: allowlist secret` on its line, or add it to the baseline
   (`.venv/bin/detect-secrets scan --baseline .secrets.baseline $(git ls-files)`, then audit the new entry).
2. Focused checks: the settings ship no secret key, the Dockerfile puts no secret in the image's ENV or ARG
   defaults, the Helm values files hold no credential.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from detect_secrets import SecretsCollection
from detect_secrets.settings import transient_settings

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / ".secrets.baseline"
CHART = ROOT / "deploy" / "helm" / "aegistickets"


def tracked_files() -> list[str]:
    out = subprocess.run(  # noqa: S603 - fixed argv, git from PATH
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    # Deleted but not yet committed files are still listed; the baseline is the scanner's own bookkeeping.
    return [name for name in out.split("\0") if name and name != BASELINE.name and (ROOT / name).is_file()]


def baseline() -> dict[str, Any]:
    return json.loads(BASELINE.read_text())


def scan(root: Path, files: list[str]) -> list[tuple[str, str, str, int]]:
    """(file, type, hashed secret, line) for each finding, with the baseline's plugins and filters."""
    config = baseline()
    with transient_settings({"plugins_used": config["plugins_used"], "filters_used": config["filters_used"]}):
        collection = SecretsCollection(root=str(root))
        cwd = os.getcwd()
        os.chdir(root)  # detect-secrets reads the files relative to the working directory
        try:
            for name in files:  # one process: scan_files' process pool gains nothing on a 2-core CI machine
                collection.scan_file(name)
        finally:
            os.chdir(cwd)
    return sorted((name, secret.type, secret.secret_hash, secret.line_number or 0) for name, secret in collection)


# --- detect-secrets over the tracked files ----------------------------------------------------------------


def test_the_scan_is_offline_and_uses_every_plugin():
    config = baseline()
    filters = {f["path"] for f in config["filters_used"]}

    assert not any("verification" in path for path in filters), "verification calls the providers' APIs"
    assert len(config["plugins_used"]) >= 25
    assert {"AWSKeyDetector", "PrivateKeyDetector", "KeywordDetector", "Base64HighEntropyString"} <= {
        p["name"] for p in config["plugins_used"]
    }


def test_no_secrets_in_the_tracked_files():
    known = {(name, s["type"], s["hashed_secret"]) for name, found in baseline()["results"].items() for s in found}
    files = tracked_files()

    new = [
        f"{name}:{line}: {kind}" for name, kind, hashed, line in scan(ROOT, files) if (name, kind, hashed) not in known
    ]

    assert len(files) > 100
    assert not new, "possible secrets (see this module's docstring for what to do):\n" + "\n".join(new)


def test_every_baseline_entry_was_audited_as_a_false_positive():
    unaudited = [
        f"{name}:{s['line_number']}: {s['type']}"
        for name, found in baseline()["results"].items()
        for s in found
        if s.get("is_secret") is not False
    ]

    assert not unaudited, "audit these (`detect-secrets audit .secrets.baseline`):\n" + "\n".join(unaudited)


def test_the_scan_finds_planted_secrets(tmp_path):
    """The control: the same scan on files that do hold secrets (made up here, split so this file holds none)."""
    aws_id = "AKIA" + "Z7QK4MWX2PLR8TVB"
    key = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpF\n"
    (tmp_path / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{aws_id}"\n')
    (tmp_path / "id_rsa").write_text(key + "-----END RSA PRIVATE KEY-----\n")
    (tmp_path / "values.yaml").write_text('password: "Xq3' + 'vL9pTz2Rw8Kd"\n')
    (tmp_path / "README.md").write_text("postgres://shop:" + "hunter2hunter2@db.example.com:5432/shop\n")

    found = {(name, kind) for name, kind, _, _ in scan(tmp_path, ["settings.py", "id_rsa", "values.yaml", "README.md"])}

    assert ("settings.py", "AWS Access Key") in found
    assert ("id_rsa", "Private Key") in found
    assert ("values.yaml", "Secret Keyword") in found
    assert ("README.md", "Basic Auth Credentials") in found


# --- settings: no secret key in the code ----------------------------------------------------------------

SETTINGS = ["aegistickets/settings/base.py", "aegistickets/settings/production.py"]


@pytest.mark.parametrize("path", SETTINGS)
def test_the_settings_assign_no_literal_secret_key(path):
    tree = ast.parse((ROOT / path).read_text())
    literals = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "SECRET_KEY" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    defaults = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "DJANGO_SECRET_KEY"
        and any(k.arg == "default" and k.value.value != "" for k in node.keywords if isinstance(k.value, ast.Constant))
    ]

    assert not literals, f"{path}: SECRET_KEY set to a literal on lines {literals}"
    assert not defaults, f"{path}: DJANGO_SECRET_KEY has a non-empty default on lines {defaults}"


def _secret_key(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "shell", "-c", code],
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
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_debug_without_a_key_gets_a_random_one_per_process():
    """Sessions are signed cookies: a key anyone can read in the repository would let anyone forge an admin's
    session on a debug server that is reachable. Without DJANGO_SECRET_KEY, debug mode draws a fresh key."""
    first, second = _secret_key(DJANGO_DEBUG="true"), _secret_key(DJANGO_DEBUG="true")

    assert first != second
    assert len(first) >= 50
    assert first not in (ROOT / "aegistickets" / "settings" / "base.py").read_text()


# --- the image --------------------------------------------------------------------------------------------

SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|_KEY\b|KEY_ID|CREDENTIAL|DATABASE_URL|PRIVATE", re.IGNORECASE)


def dockerfile_variables() -> dict[str, list[str]]:
    """Names set by ENV and declared by ARG (these persist in the image's config or history)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    names: dict[str, list[str]] = {"ENV": [], "ARG": []}
    for line in text.splitlines():
        word, _, args = line.strip().partition(" ")
        if word.upper() in names:
            names[word.upper()] += re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(?:=|\s|$)", args.split("#")[0])
    return names


def test_the_image_sets_no_secret_in_env_or_arg():
    names = dockerfile_variables()

    assert "PYTHONUNBUFFERED" in names["ENV"]  # the parser reads the file
    assert not [name for name in names["ENV"] + names["ARG"] if SECRET_NAME.search(name)]


# --- the chart's defaults ---------------------------------------------------------------------------------

CREDENTIAL_KEY = re.compile(r"password|passwd|secretkey|secret_key|token|apikey|api_key|accesskey|privatekey", re.I)
# A URL with a password in it: scheme://<user>:<password>@<host>
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@", re.IGNORECASE)


def leaves(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in leaves(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [leaf for i, value in enumerate(node) for leaf in leaves(value, f"{path}[{i}]")]
    return [(path, node)]


def credential_problems(values: Any) -> list[str]:
    problems = []
    for path, value in leaves(values):
        if not isinstance(value, str) or not value:
            continue
        key = re.split(r"[.\[]", path)[-1]
        if CREDENTIAL_KEY.search(key) or (key.isupper() and SECRET_NAME.search(key)):  # env names: upper case
            problems.append(f"{path}: a credential in the values")
        elif URL_WITH_PASSWORD.search(value):
            problems.append(f"{path}: a URL with a password")
    return problems


VALUES_FILES = sorted(CHART.glob("values*.yaml"))


@pytest.mark.parametrize("path", VALUES_FILES, ids=lambda p: p.name)
def test_the_chart_values_hold_no_credentials(path):
    assert not credential_problems(yaml.safe_load(path.read_text()))


def test_the_chart_has_no_secret_of_its_own():
    """The pods' Secret comes from AWS Secrets Manager through External Secrets (or is made by the operator)."""
    templates = "\n".join(p.read_text() for p in sorted((CHART / "templates").rglob("*.yaml")))

    assert not re.search(r"^kind:\s*Secret\s*$", templates, re.MULTILINE)
    assert "stringData" not in templates
    assert "randAlphaNum" not in templates  # a generated default would change on every upgrade


def test_the_values_check_finds_planted_credentials():
    planted = {
        "config": {"extraEnv": {"EMAIL_URL": "smtp+tls://mailer:" + "s3cr3t@smtp.example.com:587", "AWS_KEY_ID": "x"}},
        "secrets": {"password": "".join(["hunter", "2"])},
        "externalSecrets": {"djangoSecretKey": {"remoteKey": "aegistickets/dev/django-secret-key"}},
    }

    assert credential_problems(planted) == [
        ".config.extraEnv.EMAIL_URL: a URL with a password",
        ".config.extraEnv.AWS_KEY_ID: a credential in the values",
        ".secrets.password: a credential in the values",
    ]
    assert VALUES_FILES  # the chart's files are where this test expects them
