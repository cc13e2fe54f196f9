"""Client adapters (Contract 5): how the harness talks to a client under test.

`load_adapter(spec)` turns a `--client` value into an adapter:

* a name registered in the entry-point group `comfy_chaos.clients` (`reference`,
  `seed`, `naive` are built in) — the value is a class, instantiated without arguments;
* `cmd:<command line>` — a child process speaking JSON lines (docs/adapters.md);
* `isolated:<name>` — a registered in-process adapter run in a child process through
  `python -m harness.adapters.subprocess_host <name>`.
"""
from __future__ import annotations

import sys
from importlib import import_module
from importlib.metadata import entry_points

from harness.adapters.base import AdapterSession, ClientAdapter, Task

__all__ = ["AdapterSession", "ClientAdapter", "Task", "AdapterError", "load_adapter", "registered"]

GROUP = "comfy_chaos.clients"

# Used when the project is not (re)installed, so its entry points are missing or stale.
_BUILTIN = {
    "reference": "harness.adapters.builtin:ReferenceAdapter",
    "seed": "harness.adapters.builtin:SeedAdapter",
    "naive": "harness.adapters.naive:NaiveAdapter",
}


class AdapterError(Exception):
    """A `--client` value that names no adapter, or an adapter that cannot be loaded."""


def registered() -> dict[str, str]:
    """Adapter name → `module:Class` for every known in-process adapter."""
    names = dict(_BUILTIN)
    names.update({ep.name: ep.value for ep in entry_points(group=GROUP)})
    return names


def load_adapter(spec: str) -> ClientAdapter:
    from harness.adapters.subprocess import SubprocessAdapter

    if spec.startswith("cmd:"):
        command = spec[len("cmd:"):].strip()
        if not command:
            raise AdapterError("--client cmd: needs a command line, e.g. 'cmd:python my_adapter.py'")
        return SubprocessAdapter.from_command(command, name=spec)
    if spec.startswith("isolated:"):
        name = spec[len("isolated:"):]
        if name not in registered():
            raise AdapterError(f"--client {spec}: no adapter named {name!r} (known: {', '.join(sorted(registered()))})")
        return SubprocessAdapter([sys.executable, "-m", "harness.adapters.subprocess_host", name], name=spec)
    target = registered().get(spec)
    if target is None:
        raise AdapterError(
            f"--client {spec!r}: unknown adapter (known: {', '.join(sorted(registered()))}; "
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
