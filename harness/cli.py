"""The `comfy-chaos` command line: one entry point, one subcommand per job.

Exit codes (shared by every subcommand): 0 pass, 1 fail, 2 inconclusive,
3 usage or configuration error.
"""
from __future__ import annotations

import argparse
import sys

EXIT_PASS, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_USAGE = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="comfy-chaos", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["serve", "toxiproxy", "run", "replay", "report", "bench", "shrink"])
    args, rest = parser.parse_known_args(argv)
    if args.command == "serve":
        from fake_comfy.cli import main as serve_main

        return serve_main(rest)
    if args.command == "toxiproxy":
        from harness.toxiproxy.cli import main as toxiproxy_main

        return toxiproxy_main(rest)
    if args.command == "shrink":
        from harness.shrink import main as shrink_main

        return shrink_main(rest)
    if args.command == "bench":
        from harness.bench import main as bench_main

        return bench_main(rest)
    from harness.run_cli import main as run_main

    return run_main(args.command, rest)


if __name__ == "__main__":
    sys.exit(main())
