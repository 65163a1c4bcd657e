"""The codebase's shape: layers that point one way, public APIs only, raw SQL only where it is allowed.

The import contracts themselves are in pyproject.toml ([tool.importlinter]) and `make lint` runs them; the tests here
show that they, and the scans below, catch what they are there to catch.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aegistickets.tests.test_security_lint import tracked_python_files as tracked_files

ROOT = Path(__file__).resolve().parents[2]
APPS = ("aegistickets", "events", "orders")
# Our own code: a private name of one of these is ours to use (a test may stand in for one of our functions).
OURS = {*APPS, "scripts", "locustfiles", "conftest"}
# Underscored names that are public, documented API: Django's model metadata and default manager, namedtuple's
# methods.
PUBLIC_UNDERSCORED = {"_meta", "_default_manager", "_replace", "_asdict", "_fields", "_make"}
# Modules allowed to send SQL of their own, and why. The seat protocol may, for a measured cost (none does today);
# the others read the database server's own state, which has no model.
RAW_SQL_ALLOWED = {
    "orders/seats.py": "the seat protocol (each statement names the cost it avoids)",
    "aegistickets/health.py": "the readiness probe's SELECT 1",
    "aegistickets/metrics.py": "pg_stat_activity and the scrape's statement timeout",
}


def tracked_python_files() -> list[str]:
    """Every tracked Python file but the migrations (generated), relative to the repository."""
    return [str(path.relative_to(ROOT)) for path in tracked_files() if "/migrations/" not in str(path)]


def _our_names(tree: ast.Module) -> set[str]:
    names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS:
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in OURS}
    return names


def private_uses(source: str) -> list[str]:
    """Where a piece of code reads or writes a private attribute of an object that is not ours."""
    tree = ast.parse(source)
    ours = _our_names(tree) | {"self", "cls"}

    def private(name: object) -> bool:
        return isinstance(name, str) and name.startswith("_") and not name.startswith("__")

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] not in OURS:
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names if private(a.name)]
        elif isinstance(node, ast.Attribute) and private(node.attr) and node.attr not in PUBLIC_UNDERSCORED:
            if not (isinstance(node.value, ast.Name) and node.value.id in ours):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            function = ast.unparse(node.func)
            target = node.args[0]
            by_name = function in {"getattr", "setattr", "hasattr", "delattr"} or function.endswith(".setattr")
            named = node.args[1].value
            theirs = not (isinstance(target, ast.Name) and target.id in ours)
            if by_name and private(named) and named not in PUBLIC_UNDERSCORED and theirs:
                found.append(f"{node.lineno}: {function}(…, {named!r})")
    return found


def raw_sql_uses(source: str) -> list[str]:
    """Where a piece of code sends SQL of its own: a cursor's execute, Manager.raw, QuerySet.extra, RawSQL."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"execute", "executemany", "raw", "extra", "RawSQL", "cursor"}:
                found.append(f"{node.lineno}: {ast.unparse(node.func)}(…)")
    return found


def test_no_code_touches_private_attributes_of_django_drf_or_any_library():
    problems = [f"{name}:{use}" for name in tracked_python_files() for use in private_uses((ROOT / name).read_text())]
    assert problems == []


@pytest.mark.parametrize(
    "code",
    [
        "queryset._result_cache = rows",
        "instance._prefetched_objects_cache = {}",
        "getattr(basket, '_prefetched_objects_cache', {})",
        "from django.db.models.query import _prefetch",
        "monkeypatch.setattr(connection, '_commit', fake)",
        "caches['catalog']._cache",
    ],
)
def test_the_private_attribute_scan_catches(code):
    assert private_uses(code)


@pytest.mark.parametrize(
    "code",
    [
        "self._lock = 1",
        "Order._meta.db_table",
        "parts._replace(path='/x')",
        "from orders import services\nmonkeypatch.setattr(services, '_commit', fake)",
    ],
)
def test_the_private_attribute_scan_lets_pass(code):
    assert private_uses(code) == []


def test_raw_sql_only_where_it_is_allowed():
    problems = [
        f"{name}:{use}"
        for name in tracked_python_files()
        if name.startswith(tuple(f"{app}/" for app in APPS)) and "/tests/" not in name
        if name not in RAW_SQL_ALLOWED
        for use in raw_sql_uses((ROOT / name).read_text())
    ]
    assert problems == []


def test_the_raw_sql_scan_catches_a_cursor_and_raw_querysets():
    code = "with connection.cursor() as c:\n    c.execute('SELECT 1')\nOrder.objects.raw('SELECT 1')"
    assert len(raw_sql_uses(code)) == 3


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own venv's lint-imports, fixed argv
        [str(Path(sys.executable).parent / "lint-imports"), "--config", str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def copy_of_the_apps(tmp_path: Path) -> Path:
    for app in APPS:
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        ("events/selectors.py", "from orders import models", "Layers point one way"),
        ("aegistickets/errors.py", "import events.models", "Layers point one way"),
        ("orders/selectors.py", "from orders import services", "No import cycles"),
    ],
)
def test_the_import_contracts_catch_an_upward_import_and_a_cycle(copy_of_the_apps, module, planted, broken):
    path = copy_of_the_apps / module
    path.write_text(path.read_text() + f"\n{planted}\n")
    result = _lint_imports(copy_of_the_apps)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout
    assert "BROKEN" in result.stdout


# A service or selector longer than this is a sequence of named steps waiting to be split (docs/architecture.md).
LONGEST_SERVICE = 40


def test_services_and_selectors_read_as_short_named_steps():
    steps = ("/services.py", "/selectors.py", "/seats.py", "/checkout.py")
    modules = [name for name in tracked_python_files() if name.endswith(steps)]
    assert len(modules) >= 5
    too_long = [
        f"{name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name in modules
        for node in ast.walk(ast.parse((ROOT / name).read_text()))
        if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > LONGEST_SERVICE
    ]
    assert too_long == []
