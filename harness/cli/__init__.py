"""The `comfy-chaos` command line: one entry point, one subcommand per job.

Exit codes (shared by every subcommand): 0 pass, 1 fail, 2 inconclusive,
3 usage or configuration error.

Everything after the subcommand name is handed to the subcommand untouched, so each
subcommand owns its flags and its `--help` (and `comfy-chaos toxiproxy -host ...`
keeps Toxiproxy's Go-style single-dash flags). Every subcommand module has
`main(argv: list[str]) -> int`.
"""
from __future__ import annotations

import importlib
import sys

from comfy_chaos.harness.cli.exitcodes import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    EXIT_USAGE,
)

__all__ = ["COMMANDS", "EXIT_FAIL", "EXIT_INCONCLUSIVE", "EXIT_PASS", "EXIT_USAGE", "main", "version"]

#: subcommand → (module with `main(argv)`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("comfy_chaos.harness.cli.run", "run scenarios × clients, print a summary, write the report"),
    "replay": ("comfy_chaos.harness.cli.replay", "run one scenario with a given seed"),
    "report": ("comfy_chaos.harness.cli.report", "re-render the HTML report from a results JSON"),
    "bench": ("comfy_chaos.harness.cli.bench", "scenarios × clients × seeds: the comparison matrix"),
    "merge": ("comfy_chaos.harness.cli.merge", "join results.json files (e.g. of --shard runs): one report, one gate"),
    "shrink": ("comfy_chaos.harness.cli.shrink", "reduce a failing scenario's faults to a minimal regression"),
    "install": ("comfy_chaos.harness.cli.install", "set up a subprocess adapter's dependencies (e.g. node)"),
    "serve": ("comfy_chaos.fake_comfy.cli", "run the fake ComfyUI server standalone"),
    "toxiproxy": ("comfy_chaos.harness.toxiproxy.cli", "run the bundled Toxiproxy-compatible server"),
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("comfy-chaos")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _usage() -> str:
    lines = ["usage: comfy-chaos [--version] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`comfy-chaos COMMAND --help` shows a command's options.",
              "Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 usage/config error."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return EXIT_PASS if argv else EXIT_USAGE
    if argv[0] in ("-V", "--version"):
        print(f"comfy-chaos {version()}")
        return EXIT_PASS
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"comfy-chaos: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USAGE
    code: int = importlib.import_module(COMMANDS[command][0]).main(rest)
    return code
