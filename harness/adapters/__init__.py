"""Client adapters (Contract 5): how the harness talks to a client under test.

`load_adapter(spec)` turns a `--client` value into an adapter:

* a name registered in the entry-point group `comfy_chaos.clients` (`reference`,
  `seed`, `naive` are built in) — the value is a class, instantiated without arguments;
* a name from `adapters/registry.toml` (shipped with the package) — a subprocess client
  (command, `scalable`, `requires` checked before start; it runs from the package or from
  the copy `comfy-chaos install NAME` set up, see `adapters/setup.py`);
* `cmd:<command line>` — a child process speaking JSON lines (docs/adapters.md);
* `py:<module>:<Class>` — an in-process adapter class that is not registered;
* `frontend`, `frontend@<version>`, `web:<path-or-url>` — a web client in headless Chromium
  (`harness.adapters.browser`, docs/browser.md);
* `isolated:<spec>` — an in-process adapter (a name or `py:...`) run in a child process
  through `python -m comfy_chaos.harness.adapters.subprocess_host <spec>`.
"""
from __future__ import annotations

import shutil
import sys
import tomllib
from importlib import import_module
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from comfy_chaos.harness.adapters.base import AdapterSession, ClientAdapter, Task
from comfy_chaos.harness.resources import adapters_root

__all__ = ["AdapterError", "AdapterSession", "ClientAdapter", "Task", "load_adapter", "registered"]

GROUP = "comfy_chaos.clients"

# Used when the project is not (re)installed, so its entry points are missing or stale.
_BUILTIN = {
    "reference": "comfy_chaos.harness.adapters.builtin:ReferenceAdapter",
    "seed": "comfy_chaos.harness.adapters.builtin:SeedAdapter",
    "naive": "comfy_chaos.harness.adapters.naive:NaiveAdapter",
}


REPO_ROOT = adapters_root()  # the checkout, or comfy_chaos/ in an installed wheel
REGISTRY = REPO_ROOT / "adapters" / "registry.toml"


class AdapterError(Exception):
    """A `--client` value that names no adapter, or an adapter that cannot be loaded."""


def subprocess_registry(path: Path = REGISTRY) -> dict[str, dict[str, Any]]:
    """Named subprocess clients from `adapters/registry.toml` (empty if the file is absent)."""
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AdapterError(f"{path}: cannot read the adapter registry: {exc}") from exc


def _missing(requirement: str, root: Path) -> str | None:
    kind, _, what = requirement.partition(":")
    if kind == "exe" and shutil.which(what) is None:
        return f"executable {what!r} not on PATH"
    if kind == "path" and not (root / what).exists():
        return f"{root / what} does not exist"
    if kind == "module" and find_spec(what) is None:
        return f"Python module {what!r} not importable"
    if kind not in ("exe", "path", "module"):
        return f"unknown requirement {requirement!r}"
    return None


def _runnable_root(name: str, entry: dict[str, Any], root: Path) -> Path:
    """The first root (the package, then the copy `comfy-chaos install` set up) where every
    `requires` of the entry is met; else AdapterError naming what is missing at `root`."""
    from comfy_chaos.harness.adapters.setup import candidate_roots

    requires = entry.get("requires", [])
    for candidate in [root] if root != REPO_ROOT else candidate_roots():
        if not any(_missing(r, candidate) for r in requires):
            return candidate
    problems = [p for p in (_missing(r, root) for r in requires) if p]
    install = entry.get("install")
    hint = f"; install with: {install}" if install else ""
    raise AdapterError(f"--client {name}: {'; '.join(problems)}{hint}")


def _from_registry(name: str, entry: dict[str, Any], root: Path) -> Any:
    from comfy_chaos.harness.adapters.subprocess import SubprocessAdapter

    where = f"{REGISTRY}: [{name}]"
    cmd = entry.get("cmd")
    if not isinstance(cmd, list) or not cmd or not all(isinstance(part, str) for part in cmd):
        raise AdapterError(f"{where}: cmd: expected a non-empty list of strings, got {cmd!r}")
    root = _runnable_root(name, entry, root)
    argv = [sys.executable if part == "{python}" else part for part in cmd]
    argv = [str(root / part) if not Path(part).is_absolute() and (root / part).exists() else part for part in argv]
    return SubprocessAdapter(
        argv, name=name, scalable=bool(entry.get("scalable", True)), scalable_declared="scalable" in entry
    )


def registered() -> dict[str, str]:
    """Adapter name → `module:Class` for every known in-process adapter."""
    names = dict(_BUILTIN)
    names.update({ep.name: ep.value for ep in entry_points(group=GROUP)})
    return names


def load_adapter(spec: str) -> ClientAdapter:
    from comfy_chaos.harness.adapters.subprocess import SubprocessAdapter

    if spec.startswith("cmd:"):
        command = spec[len("cmd:"):].strip()
        if not command:
            raise AdapterError("--client cmd: needs a command line, e.g. 'cmd:python my_adapter.py'")
        adapter = SubprocessAdapter.from_command(command, name=spec)
        program = adapter.argv[0]
        if shutil.which(program) is None and not Path(program).is_file():
            raise AdapterError(f"--client {spec}: {program!r} is not an executable on PATH nor a file")
        return adapter
    if spec == "frontend" or spec.startswith(("frontend@", "web:")):
        from comfy_chaos.harness.adapters.browser import load_browser_adapter

        try:
            browser = load_browser_adapter(spec)
        except ValueError as exc:
            raise AdapterError(str(exc)) from exc
        assert browser is not None
        return browser
    if spec.startswith("isolated:"):
        inner = spec[len("isolated:"):]
        if inner not in registered() and not inner.startswith("py:"):
            raise AdapterError(
                f"--client {spec}: no in-process adapter named {inner!r} (known: {', '.join(sorted(registered()))})"
            )
        return SubprocessAdapter(
            [sys.executable, "-m", "comfy_chaos.harness.adapters.subprocess_host", inner], name=spec,
            scalable_declared=True,  # its host says the in-process adapter's `scalable` in the ready line
        )
    target = spec[len("py:"):] if spec.startswith("py:") else registered().get(spec)
    if target is None:
        external = subprocess_registry()
        if spec in external:
            return _from_registry(spec, external[spec], REPO_ROOT)
        known = sorted({*registered(), *external})
        raise AdapterError(
            f"--client {spec!r}: unknown adapter (known: {', '.join(known)}; "
            "or use 'cmd:<command>' / 'isolated:<name>')"
        )
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(import_module(module_name), attr)
        adapter = cls()
    except Exception as exc:
        raise AdapterError(f"--client {spec}: cannot load {target}: {exc!r}") from exc
    if not isinstance(adapter, ClientAdapter):
        raise AdapterError(f"--client {spec}: {target} does not implement ClientAdapter (name, scalable, run)")
    return adapter
