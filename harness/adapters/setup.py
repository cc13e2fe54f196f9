"""Setting up a registry adapter's dependencies where the user can write.

An installed package is read-only in spirit (site-packages), and a wheel ships no
node_modules. `comfy-chaos install NAME` copies the shipped `adapters/` folder into a
user cache folder (one copy per content fingerprint, so a newer package never runs an older
copy) and runs the entry's `setup` command there, e.g. `npm ci --prefix adapters/node`.
An adapter then runs from the first root whose `requires` are all met: the package (a
checkout where `npm ci` was run in place) or that copy.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

from comfy_chaos.harness.resources import adapters_root, cache_dir

_IGNORED = shutil.ignore_patterns("node_modules", "__pycache__", "*.pyc", "test")


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not {"node_modules", "__pycache__", "test"} & set(rel.parts) and path.suffix != ".pyc":
            digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def setup_root() -> Path:
    """The user-writable root (holding `adapters/`) that `comfy-chaos install` sets up."""
    return cache_dir() / f"adapters-{_fingerprint(adapters_root() / 'adapters')}"


def candidate_roots() -> list[Path]:
    """Where a registry adapter may run from, in order: the package, then the set-up copy."""
    return [adapters_root(), setup_root()]


class SetupError(Exception):
    """The setup command could not run or failed."""


def run_setup(name: str, entry: dict[str, Any]) -> Path:
    """Copy the adapters into the setup root and run the entry's `setup` argv there."""
    setup = entry.get("setup")
    if not isinstance(setup, list) or not setup or not all(isinstance(p, str) for p in setup):
        raise SetupError(f"adapter {name!r} has no setup command; {entry.get('install') or 'nothing to install'}")
    root = setup_root()
    target = root / "adapters"
    if not target.is_dir():
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(adapters_root() / "adapters", partial / "adapters", ignore=_IGNORED)
        partial.replace(root) if not root.exists() else shutil.rmtree(partial)
    if shutil.which(setup[0]) is None:
        raise SetupError(f"adapter {name!r}: setup needs {setup[0]!r}, which is not on PATH")
    try:
        done = subprocess.run(setup, cwd=root, check=False, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"adapter {name!r}: {' '.join(setup)}: {exc}") from exc
    if done.returncode != 0:
        raise SetupError(f"adapter {name!r}: {' '.join(setup)} exited with {done.returncode} (in {root})")
    return root
