"""ruff's security rules (S, flake8-bandit) stay on, and every exception to them says why."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from orders.templatetags.tickets import ticket_qr

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
# A noqa comment (per line, or per file after "ruff:"; any case) → its codes ("S603, S607") and what follows them
# (the reason: " - fixed argv").
NOQA = re.compile(r"#\s*(?:ruff:\s*)?(?i:noqa):?\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?(?P<rest>.*)$")
NOQA_WORD = "".join(["no", "qa"])  # spelt apart: the cases below must not read as directives to the scan


def tracked_python_files() -> list[Path]:
    out = subprocess.run(  # noqa: S603 - fixed argv, git from PATH
        ["git", "ls-files", "-z", "*.py"],  # noqa: S607 - git from PATH
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def unexplained_noqa(line: str) -> str | None:
    """Why a line's noqa comment is not acceptable, or None."""
    match = NOQA.search(line)
    if match is None:
        return None
    if not match["codes"]:
        return f"a blanket `# {NOQA_WORD}` silences every rule, the security ones included: name the codes"
    codes = re.split(r"\s*,\s*", match["codes"])
    if any(re.fullmatch(r"S[0-9]+", code) for code in codes) and not re.match(r"\s*-\s*\S.{3,}", match["rest"]):
        return f"a security rule silenced without a reason: `# {NOQA_WORD}: S603 - <why this is safe>`"
    return None


def test_ruff_runs_the_security_rules():
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["ruff"]["lint"]

    assert "S" in config["select"]
    assert "S" not in config.get("ignore", [])


def test_every_silenced_security_rule_says_why():
    files = tracked_python_files()
    problems = [
        f"{path.relative_to(ROOT)}:{number}: {why}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if (why := unexplained_noqa(line))
    ]

    assert len(files) > 100
    assert not problems, "\n".join(problems)


def test_every_per_file_exception_to_the_security_rules_says_why():
    """In pyproject.toml a per-file ignore of S codes needs a comment on the line above."""
    lines = PYPROJECT.read_text().splitlines()
    start = lines.index("[tool.ruff.lint.per-file-ignores]")
    problems = []
    for number in range(start + 1, len(lines)):
        line = lines[number]
        if line.startswith("["):
            break
        if re.search(r'"S[0-9]+"', line) and not lines[number - 1].lstrip().startswith("#"):
            problems.append(line)

    assert not problems


@pytest.mark.parametrize(
    ("line", "verdict"),
    [
        ("x = run(cmd)  # {noqa}: S603 - fixed argv", None),
        ("x = run(cmd)  # {noqa}: S603, S607 - promtool from PATH", None),
        ("import x  # {noqa}: F401", None),
        ("x = run(cmd)  # {noqa}: S603", "reason"),
        ("x = run(cmd)  # {noqa}: E501, S603", "reason"),
        ("x = run(cmd)  # {noqa}: S603 -", "reason"),
        ("x = run(cmd)  # {NOQA}: S603", "reason"),
        ("# ruff: {noqa}: S101", "reason"),
        ("x = run(cmd)  # {noqa}", "blanket"),
        ("# ruff: {noqa}", "blanket"),
        ("x = 1", None),
    ],
)
def test_the_noqa_check_tells_an_explained_exception_from_a_bare_one(line, verdict):
    why = unexplained_noqa(line.format(noqa=NOQA_WORD, NOQA=NOQA_WORD.upper()))

    assert (why is None) if verdict is None else (verdict in why)


def test_the_one_mark_safe_escapes_what_it_is_given():
    """The reason given for silencing S308 in orders/templatetags/tickets.py, checked."""
    svg = ticket_qr("ABC234", title='<script>alert("x")</script>')

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert svg.startswith("<svg")
