"""mypy and ruff over the code, as CI runs them (both configured in pyproject.toml).

The editable install maps the top-level folders onto `comfy_chaos.*` with an import hook that
mypy cannot follow, so mypy is pointed at a temporary `comfy_chaos/` tree of symlinks to the
three package folders; the same works from a wheel-less checkout, in `.ci/run` and locally.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"harness": "harness", "fake_comfy": "fake_comfy", "client": "client"}  # comfy_chaos.<key> -> folder

pytestmark = pytest.mark.slow


def test_mypy_finds_no_errors_in_the_three_packages(tmp_path: Path) -> None:
    tree = tmp_path / "src" / "comfy_chaos"  # a namespace package: no __init__.py, as installed
    tree.mkdir(parents=True)
    for name, folder in PACKAGES.items():
        (tree / name).symlink_to(ROOT / folder, target_is_directory=True)
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", "--show-error-codes"]
    command += [arg for name in PACKAGES for arg in ("-p", f"comfy_chaos.{name}")]
    done = subprocess.run(command, cwd=tree.parent, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, MYPYPATH=str(tree.parent)))
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert done.returncode == 0 and not errors, f"{len(errors)} mypy errors:\n{done.stdout}{done.stderr}"


def test_ruff_finds_nothing() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", str(ROOT)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
