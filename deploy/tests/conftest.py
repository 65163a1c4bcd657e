"""Fixtures for the chart and image tests: the chart rendered in process (helm-python-sdk), tool paths."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "aegistickets"
SCRIPTS = ROOT / "scripts" / "deploy"
BIN = Path(sys.executable).parent  # the deploy venv's bin: checkov, hadolint, shellcheck
ENVIRONMENTS = {"default": [], "dev": [str(CHART / "values-dev.yaml")], "prod": [str(CHART / "values-prod.yaml")]}

sys.path.insert(0, str(SCRIPTS))


def render_docs(
    values_files: list[str] | None = None, sets: list[str] | None = None, chart: Path = CHART
) -> list[dict]:
    # Imported here, not at the top: pytest run from the app's venv (no helm-python-sdk) with `deploy` as an
    # argument loads this file too, and then collects nothing under deploy/tests (deploy/conftest.py).
    import helmpy

    return [d for d in yaml.safe_load_all(helmpy.render(str(chart), values_files, sets)) if d]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """Each environment's manifests, rendered once."""
    return {env: render_docs(files) for env, files in ENVIRONMENTS.items()}


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    """A scratch copy of the chart to plant defects in."""
    dst = tmp_path / "aegistickets"
    shutil.copytree(CHART, dst)
    return dst


@pytest.fixture(scope="session")
def tool() -> Callable[[str], str]:
    def path(name: str) -> str:
        exe = BIN / name
        if not exe.exists():
            pytest.fail(f"{name} is not installed in {BIN}: run scripts/deploy/check-chart.sh")
        return str(exe)

    return path
