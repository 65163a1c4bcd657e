"""The code a script serves: a source tree and the Python of its own venv.

`CURRENT` is this working tree and its `.venv`. `at_commit(rev)` is another commit, exported with `git archive`
(never a worktree: nothing in the repository's .git changes) beside a venv built from that commit's
requirements.txt; both are kept in .venv/bench/<sha>/ (ignored by git, ruff and pytest), so a second run starts
at once. `make clean` removes them with the project's venv.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".venv" / "bench"


@dataclass(frozen=True)
class Source:
    root: Path
    venv: Path
    label: str

    def tool(self, name: str) -> str:
        """A program of the venv: python, gunicorn, locust, …"""
        return str(self.venv / "bin" / name)


CURRENT = Source(ROOT, ROOT / ".venv", "working tree")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def at_commit(rev: str) -> Source:
    """Another commit's code with its own venv (exported and installed once per commit)."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    home = CACHE / sha[:12]
    tree, venv = home / "src", home / "venv"
    if not (tree / ".exported").exists():
        print(f"exporting {rev} ({sha[:9]}) to {tree}", flush=True)
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        archive = home / "src.tar"
        git("archive", "--format=tar", "-o", str(archive), sha)
        subprocess.run(["tar", "-xf", str(archive), "-C", str(tree)], check=True)
        archive.unlink()
        (tree / ".exported").touch()
    if not (venv / ".installed").exists():
        print(f"installing {rev}'s requirements.txt into {venv} (once)", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(tree / "requirements.txt")], check=True)
        (venv / ".installed").touch()
    return Source(tree, venv, f"{rev} ({sha[:9]})" if not sha.startswith(rev) else sha[:9])
