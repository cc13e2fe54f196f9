"""The `comfy-chaos` command line: one entry point, one subcommand per job.

Exit codes (shared by every subcommand): 0 pass, 1 fail, 2 inconclusive,
3 usage or configuration error.

Everything after the subcommand name is handed to the subcommand untouched, so each
subcommand owns its flags and its `--help` (and `comfy-chaos toxiproxy -host ...`
keeps Toxiproxy's Go-style single-dash flags).
"""
from __future__ import annotations

import importlib
import sys

EXIT_PASS, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_USAGE = 0, 1, 2, 3

#: subcommand → (module with `main`, one-line help). `run_cli.main` also takes the name.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("comfy_chaos.harness.run_cli", "run scenarios × clients, print a summary, write the report"),
    "replay": ("comfy_chaos.harness.run_cli", "run one scenario with a given seed"),
    "report": ("comfy_chaos.harness.run_cli", "re-render the HTML report from a results JSON"),
    "bench": ("comfy_chaos.harness.bench", "scenarios × clients × seeds: the comparison matrix"),
    "shrink": ("comfy_chaos.harness.shrink", "reduce a failing scenario's faults to a minimal regression"),
    "serve": ("comfy_chaos.fake_comfy.cli", "run the fake ComfyUI server standalone"),
    "toxiproxy": ("comfy_chaos.harness.toxiproxy.cli", "run the bundled Toxiproxy-compatible server"),
}

_RUN_CLI_COMMANDS = {"run", "replay", "report"}


def _usage() -> str:
    lines = ["usage: comfy-chaos COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`comfy-chaos COMMAND --help` shows a command's options.",
              "Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 usage/config error."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return EXIT_PASS if argv else EXIT_USAGE
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"comfy-chaos: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USAGE
    module = importlib.import_module(COMMANDS[command][0])
    if command in _RUN_CLI_COMMANDS:
        return module.main(command, rest)
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
