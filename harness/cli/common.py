"""What the `comfy-chaos` subcommands share: exit codes, the parser that turns bad flags
into a usage error, logging, scenario selection, client checks, and running jobs.

Exit codes (every subcommand): 0 pass, 1 fail, 2 inconclusive, 3 usage or configuration error.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from comfy_chaos.harness import comfyui_version
from comfy_chaos.harness.adapters import AdapterError, load_adapter
from comfy_chaos.harness.batch import run_batch
from comfy_chaos.harness.cli.exitcodes import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    EXIT_USAGE,
)
from comfy_chaos.harness.cli.progress import Progress, describe_backend
from comfy_chaos.harness.eventlog import configure
from comfy_chaos.harness.resources import builtin_scenarios
from comfy_chaos.harness.shard import ShardError, job_key, parse_shard
from comfy_chaos.harness.shutdown import Interrupted, run_guarded
from comfy_chaos.harness.suite import load_all, run_info
from comfy_chaos.harness.toxiproxy.backend import BackendError

#: each command's own default report directory, so one never overwrites another's report
DEFAULT_REPORT_DIRS = {"run": "comfy-chaos-report", "replay": "comfy-chaos-replay", "bench": "comfy-chaos-bench",
                       "merge": "comfy-chaos-merged"}


class UsageError(Exception):
    """Bad flags, a bad scenario file, an unknown client: exit 3 with this message."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise UsageError (exit 3) instead of exiting 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def guarded(command: Callable[[argparse.Namespace], int], parser: Callable[[], argparse.ArgumentParser],
            argv: Sequence[str]) -> int:
    """Parse `argv` and run `command`; a UsageError anywhere prints one line and exits 3."""
    try:
        return command(parser().parse_args(list(argv)))
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE


def configure_logging(verbosity: int) -> None:
    """Logs go to stderr (progress and summary to stdout); quiet unless -v. Every run's
    events are also captured in its own JSON-lines file (`harness.eventlog`)."""
    configure([logging.ERROR, logging.INFO, logging.DEBUG][min(verbosity, 2)])


# --- options -------------------------------------------------------------------------------


def add_client_option(parser: argparse.ArgumentParser, default: Sequence[str]) -> None:
    parser.add_argument("--client", action="append", dest="clients", metavar="CLIENT",
                        help=f"client adapter (repeatable; default {', '.join(default)}): a registered name, "
                        "cmd:<command>, isolated:<name>, py:<module>:<Class>")


def add_scale_and_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time-scale", type=float, default=None, help="override every scenario's time_scale")
    comfyui_version.add_option(parser)  # applied with comfyui_version.with_version
    parser.add_argument("--report-dir", default=None,
                        help="where to write the report (default comfy-chaos-report; replay and bench: "
                        "comfy-chaos-replay, comfy-chaos-bench)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show each run's events on stderr: -v the events (server, faults, Toxiproxy, runner, "
                        "client), -vv also debug detail (default: errors only)")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the fault-free control runs (faster; verdicts then cannot say whether "
                        "the faults caused a failure)")
    parser.add_argument("--unscalable", action="append", default=[], metavar="CLIENT",
                        help="run this client at time scale 1.0: its timers do not scale (repeatable)")


def harness_options(args: argparse.Namespace, clients: Sequence[str]) -> dict[str, Any]:
    """`Harness` keywords from --no-control / --unscalable (each --unscalable must be a --client)."""
    unknown = [name for name in args.unscalable if name not in clients]
    if unknown:
        raise UsageError(f"comfy-chaos: --unscalable {unknown[0]}: not one of the --client values "
                         f"({', '.join(sorted(clients))})")
    return {"control": not args.no_control, "unscalable": list(args.unscalable)}


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """Positional scenario paths, the user's own library, slow scenarios, parallelism."""
    parser.add_argument("paths", nargs="*",
                        help="scenario files or directories (default: the built-in library plus --scenarios)")
    parser.add_argument("--scenarios", action="append", default=[], metavar="DIR",
                        help="a folder of your own scenarios, added to the built-in library (repeatable)")
    parser.add_argument("--no-builtin", action="store_true",
                        help="leave out the built-in scenario library (use with --scenarios)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--run-slow", action="store_true", help="include scenarios tagged slow found in directories")
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="run only the K-th of N deterministic parts (scenario × client × seed × ComfyUI "
                        "version); join the parts' results.json with `comfy-chaos merge`")


def check_time_scale(prog: str, time_scale: float | None) -> None:
    from comfy_chaos.harness.scenario import MAX_TIME_SCALE, MIN_TIME_SCALE

    if time_scale is not None and not MIN_TIME_SCALE <= time_scale <= MAX_TIME_SCALE:
        raise UsageError(f"{prog}: --time-scale: expected a number in [{MIN_TIME_SCALE:g}, {MAX_TIME_SCALE:g}], "
                         f"got {time_scale}")


def report_dir(args: argparse.Namespace, command: str) -> Path:
    """`--report-dir`, or the command's own default directory."""
    return Path(args.report_dir or DEFAULT_REPORT_DIRS[command])


# --- scenario selection ----------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The scenario files a command runs: usable ones, broken ones (errors), slow ones left out."""

    chosen: list[Any]
    broken: list[Any]
    skipped_slow: int


def scenario_paths(args: argparse.Namespace, prog: str) -> list[Path]:
    """The positional paths, or the built-in library (unless --no-builtin) plus --scenarios."""
    if args.paths:
        if args.scenarios or args.no_builtin:
            raise UsageError(f"{prog}: --scenarios/--no-builtin choose the library; give scenario paths or them, not both")
        paths = [Path(p) for p in args.paths]
    else:
        paths = ([] if args.no_builtin else [builtin_scenarios()]) + [Path(p) for p in args.scenarios]
        if not paths:
            raise UsageError(f"{prog}: --no-builtin leaves no scenarios: add --scenarios DIR or scenario paths")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"{prog}: no such file or directory: {', '.join(missing)}")
    return paths


def select_scenarios(args: argparse.Namespace, prog: str) -> Selection:
    """Load the scenario files the command's arguments name. Broken files are returned, not
    raised (they are error items, the rest runs); slow ones are left out unless named or
    --run-slow. A usage error when nothing at all is left to run."""
    if args.jobs < 1:
        raise UsageError(f"{prog}: -j: expected at least 1, got {args.jobs}")
    paths = scenario_paths(args, prog)
    loaded = load_all(paths)
    named = {p.resolve() for p in paths if p.is_file()}
    usable = [e for e in loaded if e.error is None]
    chosen = [e for e in usable if args.run_slow or not e.slow or e.path.resolve() in named]
    broken = [e for e in loaded if e.error is not None]
    if not chosen and not broken:
        raise UsageError(f"{prog}: no scenario files in {', '.join(map(str, paths))}")
    if not chosen and len(broken) == len(loaded):
        raise UsageError("\n".join(str(e.error) for e in broken))
    return Selection(chosen, broken, len(usable) - len(chosen))


def report_broken(broken: Iterable[Any]) -> None:
    """Each unusable scenario file as an ERROR line (like pytest's collection errors)."""
    for entry in broken:
        print(f"ERROR        {entry.path}: invalid scenario", flush=True)
        for line in str(entry.error).splitlines():
            print(f"             {line}", flush=True)


def check_clients(clients: Iterable[str]) -> None:
    for client in clients:
        try:
            load_adapter(client)
        except AdapterError as exc:
            raise UsageError(str(exc)) from None


def chosen_clients(args: argparse.Namespace, default: Sequence[str]) -> list[str]:
    clients = list(dict.fromkeys(args.clients or default))
    check_clients(clients)
    return clients


def shard_jobs(args: argparse.Namespace, jobs: list[tuple[Any, str]], *, seed: int | None = None) -> list[tuple[Any, str]]:
    """With --shard K/N, this shard's part of the jobs (a line says how many); else all."""
    if not args.shard:
        return jobs
    try:
        shard = parse_shard(args.shard)
    except ShardError as exc:
        raise UsageError(str(exc)) from None
    version = getattr(args, "comfyui_version", None)
    mine = shard.select(jobs, lambda job: job_key(job[0], job[1], seed, version))
    print(f"comfy-chaos: shard {shard}: {len(mine)} of {len(jobs)} runs", flush=True)
    return mine


# --- running -------------------------------------------------------------------------------


@dataclass
class Executed:
    """The results of a batch, and the Toxiproxy backend it ran through."""

    results: list[Any]
    backend: dict[str, Any]

    def run_info(self, runner: str, **extra: Any) -> dict[str, Any]:
        """results.json's `run` block: who ran it, the backend (also shown in the HTML)."""
        info = run_info(runner=runner, **{k: v for k, v in extra.items() if v is not None})
        info["toxiproxy"] = describe_backend(self.backend)
        info["toxiproxy_backend"] = dict(self.backend)
        return info


def report_interrupted(stopped: Any) -> None:
    """Say that a signal stopped the command, and whether everything it started is gone
    (`harness.shutdown.Interrupted`): never claimed unless the final sweep confirmed it."""
    if stopped.cleanup.complete:
        print(f"comfy-chaos: interrupted ({stopped.signame}); everything started was stopped", file=sys.stderr)
    else:
        print(f"comfy-chaos: interrupted ({stopped.signame}); NOT everything could be stopped: "
              f"{stopped.cleanup.describe()}", file=sys.stderr)


def execute(
    jobs: list[tuple[Any, str]], *, seed: int | None, time_scale: float | None, parallel: int,
    log_dir: Path | None = None, harness_options: dict[str, Any] | None = None,
) -> Executed | None:
    """Run every (scenario, client) job, `parallel` at a time, showing progress; None if
    interrupted (Ctrl-C). With `log_dir`, each run's events go to
    `<log_dir>/<scenario>--<client>--seed<N>.jsonl`. A Toxiproxy that cannot be reached
    or started is a configuration error (UsageError)."""
    progress = Progress(total=len(jobs), stream=sys.stdout)
    try:
        results = run_guarded(run_batch(jobs, seed=seed, time_scale=time_scale, parallel=parallel, log_dir=log_dir,
                                        on_start=progress.backend, on_result=progress.finished,
                                        harness_options=harness_options))
    except Interrupted as stopped:
        progress.close()
        report_interrupted(stopped)
        return None
    except BackendError as exc:
        raise UsageError(f"comfy-chaos: toxiproxy: {exc}") from None
    finally:
        progress.close()
    return Executed(results, progress.backend_info)


def exit_code(results: Iterable[Any]) -> int:
    verdicts = {r.verdict for r in results}
    if "fail" in verdicts:
        return EXIT_FAIL
    if "inconclusive" in verdicts:
        return EXIT_INCONCLUSIVE
    return EXIT_PASS
