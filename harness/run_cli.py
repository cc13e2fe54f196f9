"""`comfy-chaos run | replay | report` (dispatched from harness/cli.py).

Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 usage or configuration error.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from comfy_chaos.harness.cli import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS, EXIT_USAGE

DEFAULT_REPORT_DIR = "comfy-chaos-report"


class UsageError(Exception):
    """Bad flags, a bad scenario file, an unknown client: exit 3 with this message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _configure_logging(verbosity: int) -> None:
    """Logs go to stderr (progress and summary to stdout); quiet unless -v. Every run's
    events are also captured in its own JSON-lines file (`harness.eventlog`)."""
    import logging

    from comfy_chaos.harness.eventlog import configure

    configure([logging.ERROR, logging.WARNING, logging.INFO][min(verbosity, 2)] if verbosity < 3 else logging.DEBUG)


def main(command: str, argv: list[str]) -> int:
    try:
        if command == "run":
            return _run(_run_parser().parse_args(argv))
        if command == "replay":
            return _replay(_replay_parser().parse_args(argv))
        if command == "report":
            return _report(_report_parser().parse_args(argv))
        raise UsageError(f"comfy-chaos: unknown command {command!r}")
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE


# --- parsers ---------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    from comfy_chaos.harness import comfyui_version

    parser.add_argument("--client", action="append", dest="clients", metavar="CLIENT",
                        help="client adapter (repeatable; default reference): a registered name, "
                        "cmd:<command>, isolated:<name>, py:<module>:<Class>")
    parser.add_argument("--time-scale", type=float, default=None, help="override every scenario's time_scale")
    comfyui_version.add_option(parser)
    parser.add_argument("--report-dir", default=DEFAULT_REPORT_DIR, help=f"where to write the report (default {DEFAULT_REPORT_DIR})")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log to stderr: -v warnings, -vv info, -vvv debug (default: errors only)")


def _run_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="comfy-chaos run", description="Run scenarios against clients and score them.")
    parser.add_argument("paths", nargs="*", help="scenario files or directories (default: the scenarios/ suite)")
    _common(parser)
    parser.add_argument("--seed", type=int, default=None, help="override every scenario's seed")
    parser.add_argument("--baseline", default=None, help="fail on a regression against this baseline file")
    parser.add_argument("--write-baseline", default=None, help="write the results as a new baseline file")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="scenarios run concurrently (default 2)")
    parser.add_argument("--run-slow", action="store_true", help="include scenarios tagged slow found in directories")
    return parser


def _replay_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="comfy-chaos replay", description="Run one scenario with a given seed.")
    parser.add_argument("file", help="the scenario file")
    parser.add_argument("--seed", type=int, required=True)
    _common(parser)
    return parser


def _report_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="comfy-chaos report", description="Re-render the HTML report from a results file.")
    parser.add_argument("results", help="results.json written by comfy-chaos run")
    parser.add_argument("--out", default=None, help="output directory (default: next to the results file)")
    return parser


# --- commands --------------------------------------------------------------------------


def _default_paths() -> list[Path]:
    from comfy_chaos.harness.suite import DEFAULT_SUITE

    local = Path("scenarios")
    return [local if local.is_dir() else DEFAULT_SUITE]


def _check_clients(clients: list[str]) -> None:
    from comfy_chaos.harness.adapters import AdapterError, load_adapter

    for client in clients:
        try:
            load_adapter(client)
        except AdapterError as exc:
            raise UsageError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    from comfy_chaos.harness import comfyui_version
    from comfy_chaos.harness.suite import load_all

    _configure_logging(args.verbose)
    if args.jobs < 1:
        raise UsageError(f"comfy-chaos run: -j: expected at least 1, got {args.jobs}")
    if args.time_scale is not None and args.time_scale <= 0:
        raise UsageError(f"comfy-chaos run: --time-scale: expected a number > 0, got {args.time_scale}")
    paths = [Path(p) for p in args.paths] or _default_paths()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"comfy-chaos run: no such file or directory: {', '.join(missing)}")
    loaded = load_all(paths)
    broken = [entry for entry in loaded if entry.error is not None]
    if broken:
        raise UsageError("\n".join(str(entry.error) for entry in broken))
    named = {p.resolve() for p in paths if p.is_file()}
    chosen = [e for e in loaded if args.run_slow or not e.slow or e.path.resolve() in named]
    skipped = len(loaded) - len(chosen)
    if not chosen:
        raise UsageError(f"comfy-chaos run: no scenario files in {', '.join(map(str, paths))}")
    clients = list(dict.fromkeys(args.clients or ["reference"]))
    _check_clients(clients)
    jobs = [(comfyui_version.with_version(entry.scenario, args.comfyui_version), client) for entry in chosen for client in clients]
    print(f"comfy-chaos: {len(chosen)} scenarios × {len(clients)} clients = {len(jobs)} runs, -j {args.jobs}"
          + (f" ({skipped} slow scenarios skipped; --run-slow to include)" if skipped else ""), flush=True)
    results = _execute(jobs, seed=args.seed, time_scale=args.time_scale, parallel=args.jobs,
                       log_dir=Path(args.report_dir) / "logs")
    if results is None:
        return EXIT_INCONCLUSIVE
    _print_summary(results)
    code = _write_outputs(results, args, command="run")
    return EXIT_FAIL if code == EXIT_FAIL else _exit_code(results)


def _replay(args: argparse.Namespace) -> int:
    from comfy_chaos.harness import comfyui_version
    from comfy_chaos.harness.scenario import ScenarioError, load_scenario

    _configure_logging(args.verbose)
    path = Path(args.file)
    try:
        scenario = comfyui_version.with_version(load_scenario(path), args.comfyui_version)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    clients = list(dict.fromkeys(args.clients or ["reference"]))
    _check_clients(clients)
    results = _execute([(scenario, c) for c in clients], seed=args.seed, time_scale=args.time_scale, parallel=1)
    if results is None:
        return EXIT_INCONCLUSIVE
    for result in results:
        for line in result.reasons:
            print(f"  {line}")
    _write_outputs(results, argparse.Namespace(report_dir=args.report_dir, baseline=None, write_baseline=None),
                   command="replay")
    return _exit_code(results)


def _report(args: argparse.Namespace) -> int:
    from comfy_chaos.harness.results import ResultsError, load_results
    from comfy_chaos.harness.suite import render_html

    try:
        results_file = load_results(args.results)
    except ResultsError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out) if args.out else Path(args.results).parent
    render_html(results_file, out)
    print(f"comfy-chaos: report written to {out / 'index.html'}")
    return _exit_code(results_file.results)


# --- running ---------------------------------------------------------------------------


def _execute(
    jobs: list[tuple[Any, str]], *, seed: int | None, time_scale: float | None, parallel: int,
    log_dir: Path | None = None,
) -> list[Any] | None:
    """Run every (scenario, client) job, `parallel` at a time; None if interrupted (Ctrl-C).
    With `log_dir`, each run's events go to `<log_dir>/<scenario>--<client>--seed<N>.jsonl`."""
    try:
        return asyncio.run(_execute_async(jobs, seed=seed, time_scale=time_scale, parallel=parallel, log_dir=log_dir))
    except KeyboardInterrupt:
        print("comfy-chaos: interrupted; everything started was stopped", file=sys.stderr)
        return None


async def _execute_async(
    jobs: list[tuple[Any, str]], *, seed: int | None, time_scale: float | None, parallel: int,
    log_dir: Path | None = None,
) -> list[Any]:
    from comfy_chaos.harness.runner import Harness
    from comfy_chaos.harness.suite import run_one

    limit = asyncio.Semaphore(parallel)
    results: list[Any] = [None] * len(jobs)

    async with Harness(log_dir=log_dir) as harness:
        print(f"comfy-chaos: toxiproxy {harness.backend_info.get('kind', '?')} at {harness.url}", flush=True)

        async def one(index: int, scenario: Any, client: str) -> None:
            async with limit:
                started = time.monotonic()
                result = await run_one(harness, scenario, client, seed=seed, time_scale=time_scale)
                results[index] = result
                print(_progress_line(result, time.monotonic() - started), flush=True)

        await asyncio.gather(*(one(i, s, c) for i, (s, c) in enumerate(jobs)))
    return results


def _problem_tasks(result: Any) -> str:
    by_class: dict[str, list[str]] = {}
    for task in result.tasks:
        if task.problems:
            by_class.setdefault(task.cls, []).append(task.task_id)
    return "  ".join(f"{cls} {','.join(ids)}" for cls, ids in sorted(by_class.items()))


def _progress_line(result: Any, wall_s: float) -> str:
    metrics = result.metrics
    line = (f"{result.verdict.upper():<12} {result.scenario} [{result.client}] seed {result.seed}  "
            f"{metrics.get('reported', 0)}/{metrics.get('server_completed', 0)} reported  {wall_s:.1f} s")
    problems = _problem_tasks(result)
    if problems:
        line += f"  ({problems})"
    if result.verdict != "pass":
        line += f"\n             replay: {result.replay}"
    return line


def _print_summary(results: list[Any]) -> None:
    from comfy_chaos.harness.report import render_summary

    print()
    print(render_summary(results, reasons=False), end="")


def _write_outputs(results: list[Any], args: argparse.Namespace, *, command: str) -> int:
    """Report, baseline check and baseline writing; EXIT_FAIL on a regression."""
    from comfy_chaos.harness.suite import run_info, write_report

    path = write_report(results, args.report_dir, run_info(runner=f"comfy-chaos {command}"))
    print(f"comfy-chaos: report written to {Path(args.report_dir) / 'index.html'} and {path}")
    code = EXIT_PASS
    if getattr(args, "baseline", None):
        from comfy_chaos.harness.baseline import check_baseline

        problems = check_baseline(results, args.baseline)
        if problems:
            print("comfy-chaos: regressions against the baseline:")
            for line in problems:
                print(f"  {line}")
            code = EXIT_FAIL
        else:
            print(f"comfy-chaos: no regression against {args.baseline}")
    if getattr(args, "write_baseline", None):
        from comfy_chaos.harness.baseline import write_baseline

        write_baseline(results, args.write_baseline)
        print(f"comfy-chaos: baseline written to {args.write_baseline}")
    return code


def _exit_code(results: list[Any]) -> int:
    verdicts = {r.verdict for r in results}
    if "fail" in verdicts:
        return EXIT_FAIL
    if "inconclusive" in verdicts:
        return EXIT_INCONCLUSIVE
    return EXIT_PASS
