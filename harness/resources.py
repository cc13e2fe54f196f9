"""Where the installed package keeps its data: the built-in scenario library, its schema,
the adapter registry and the subprocess adapters.

The data sits beside the code in both layouts: in a checkout (editable install) the
top-level folders `scenarios/` and `adapters/` beside `harness/`; in a wheel the package
data `comfy_chaos/scenarios/` and `comfy_chaos/adapters/` beside `comfy_chaos/harness/`
(pyproject.toml maps them). So the root is the folder that holds `harness/`, whatever the
current directory is.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def builtin_scenarios() -> Path:
    """The built-in scenario library (a folder of YAML files, `scenario.schema.json` in it)."""
    return PACKAGE_ROOT / "scenarios"


def scenario_schema() -> Path:
    return builtin_scenarios() / "scenario.schema.json"


def adapters_root() -> Path:
    """The folder that holds `adapters/registry.toml`; registry paths are relative to it."""
    return PACKAGE_ROOT


def cache_dir() -> Path:
    """A user-writable folder for what the package cannot hold (an adapter's node_modules):
    $COMFY_CHAOS_CACHE, else $XDG_CACHE_HOME/comfy-chaos, else ~/.cache/comfy-chaos."""
    explicit = os.environ.get("COMFY_CHAOS_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "comfy-chaos"
