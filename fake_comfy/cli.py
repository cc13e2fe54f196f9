"""`comfy-chaos serve`: run the fake ComfyUI server in the foreground until Ctrl-C.

Exit codes: 0 stopped by Ctrl-C/SIGTERM; 3 usage or configuration error (a bad flag, a bad
--faults file, a fault `serve` cannot perform, the port in use) with one line on stderr."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from typing import Any, NoReturn

from comfy_chaos.fake_comfy.config import FakeConfig
from comfy_chaos.fake_comfy.profiles import DEFAULT_VERSION, VERSION_NAMES

#: A long-running server keeps only this many prompts, connection events and requests in its ledger.
SERVE_LEDGER_LIMIT = 10_000


EXIT_USAGE = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="comfy-chaos serve", description="Run the fake ComfyUI server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188, help="0 = ephemeral")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies every node duration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", metavar="FILE", help="fault schedule (YAML), see docs/architecture.md Contract 3")
    parser.add_argument(
        "--comfyui-version",
        default=DEFAULT_VERSION,
        metavar="VERSION",
        help=f"the ComfyUI version to imitate: {', '.join(VERSION_NAMES)} (default {DEFAULT_VERSION})",
    )
    return parser


async def _serve(config: FakeConfig, host: str, port: int, faults_file: str | None) -> int:
    from comfy_chaos.fake_comfy.server import FakeComfy

    faults = None
    if faults_file is not None:
        try:
            from comfy_chaos.fake_comfy.faults import FaultEngine, load_schedule
        except ImportError as exc:
            print(f"comfy-chaos serve: --faults needs fake_comfy.faults, which is not available: {exc}", file=sys.stderr)
            return EXIT_USAGE
        schedule = load_schedule(faults_file)
        problem = _unservable(schedule, faults_file)
        if problem:
            print(f"comfy-chaos serve: {problem}", file=sys.stderr)
            return EXIT_USAGE
        for warning in _untagged_filters(schedule, faults_file):
            print(f"comfy-chaos serve: warning: {warning}", file=sys.stderr)
        faults = FaultEngine(schedule, seed=config.seed, clock=time.monotonic, time_scale=config.time_scale or 1.0)
    server = FakeComfy(config, faults=faults)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await server.start(host=host, port=port)
    try:
        print(
            f"fake ComfyUI {config.profile.comfyui_version} listening on {server.base_url} "
            f"(time_scale={config.time_scale}, seed={config.seed})",
            flush=True,
        )
        await stop.wait()
    finally:
        await server.stop()
    return 0


def _unservable(schedule: Any, source: str) -> str | None:
    """`kind: toxic` needs Toxiproxy between client and server, which `serve` does not run."""
    for index, spec in enumerate(schedule.faults):
        if spec.kind == "toxic":
            return (f"{source}: fault #{index} (kind='toxic'): a Toxiproxy toxic needs Toxiproxy between the "
                    "client and the server, which serve does not run; use it in a scenario (comfy-chaos run), "
                    "or put your own Toxiproxy in front of serve")
    return None


def _untagged_filters(schedule: Any, source: str) -> list[str]:
    """`task:` filters match only prompts tagged by the harness (Contract 1); an app's own
    prompts are untagged, so such a fault would never fire under `serve`."""
    return [
        f"{source}: fault #{index} (kind={spec.kind!r}) filters on task {task!r}, but only prompts tagged by "
        "comfy-chaos (node _meta.chaos_task) have a task id; your app's prompts will never match it"
        for index, spec in enumerate(schedule.faults)
        for task in {spec.when.task if spec.when else None, spec.target.task if spec.target else None} - {None}
    ]


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        config = FakeConfig(
            time_scale=args.time_scale,
            seed=args.seed,
            ledger_limit=SERVE_LEDGER_LIMIT,
            comfyui_version=args.comfyui_version,
        )
    except ValueError as exc:
        print(f"comfy-chaos serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_serve(config, args.host, args.port, args.faults))
    except OSError as exc:
        print(f"comfy-chaos serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a bad --faults file: say which and why
        if type(exc).__name__ == "FaultConfigError":
            print(f"comfy-chaos serve: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
