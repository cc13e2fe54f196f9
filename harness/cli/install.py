"""`comfy-chaos install NAME...`: set up a registry adapter's dependencies (e.g. the Node
adapter's node_modules) in a user-writable cache folder, so `--client NAME` works after a
plain `pip install`. Exit 0 set up, 1 the setup command failed, 3 unknown name."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from comfy_chaos.harness.adapters import AdapterError, load_adapter, subprocess_registry
from comfy_chaos.harness.adapters.setup import SetupError, run_setup
from comfy_chaos.harness.cli import common

PROG = "comfy-chaos install"


def parser() -> argparse.ArgumentParser:
    p = common.Parser(prog=PROG, description="Set up a subprocess adapter's dependencies (adapters/registry.toml).")
    p.add_argument("names", nargs="+", metavar="NAME", help="a subprocess adapter from the registry, e.g. node")
    return p


def run(args: argparse.Namespace) -> int:
    registry = subprocess_registry()
    unknown = [n for n in args.names if n not in registry]
    if unknown:
        raise common.UsageError(f"{PROG}: not in the adapter registry: {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(registry))})")
    code = common.EXIT_PASS
    for name in args.names:
        try:
            root = run_setup(name, registry[name])
            load_adapter(name)
        except (SetupError, AdapterError) as exc:
            print(f"{PROG}: {exc}", flush=True)
            code = common.EXIT_FAIL
            continue
        print(f"{PROG}: {name} set up in {root}; --client {name} is ready", flush=True)
    return code


def main(argv: Sequence[str]) -> int:
    return common.guarded(run, parser, argv)
