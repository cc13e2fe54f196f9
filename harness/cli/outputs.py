"""After the runs: summary, report, JUnit XML, the baseline gate and the new baseline —
shared by `run` and `merge`, which decide the same way."""
from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from comfy_chaos.harness.baseline import compare, gate, write_baseline
from comfy_chaos.harness.cli import common
from comfy_chaos.harness.junit import junit_xml, write_junit
from comfy_chaos.harness.report import render_summary
from comfy_chaos.harness.results import ResultsError, ResultsFile, load_results
from comfy_chaos.harness.suite import write_report


def add_gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", default=None,
                        help="gate on this baseline: exit 1 only on a regression (worse than the baseline per "
                        "scenario × client), 3 when no run matched it")
    parser.add_argument("--write-baseline", default=None, metavar="FILE",
                        help="write the results as a baseline (refused if they regressed against it; --force)")
    parser.add_argument("--force", action="store_true", help="with --write-baseline: overwrite even after a regression")
    parser.add_argument("--fail-on-inconclusive", action="store_true",
                        help="exit 2 when any run is inconclusive, also when the baseline gate passes")
    parser.add_argument("--junitxml", default=None, metavar="FILE", help="also write the results as JUnit XML")


def fresh_logs(out: Path) -> Path:
    """The report's logs/ folder, emptied: a report never shows another run's stale logs."""
    logs = out / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    return logs


def finish(results: list[Any], args: argparse.Namespace, out: Path, *, run: dict[str, Any],
           broken: Sequence[Any] = ()) -> int:
    """Summary, report, JUnit, gate and baseline writing; returns the exit code."""
    print()
    print(render_summary(results, reasons=False), end="")
    if broken:
        print(f"{len(broken)} scenario file(s) could not be loaded: " + ", ".join(str(e.path) for e in broken))
    path = write_report(results, out, run)
    print(f"comfy-chaos: report written to {out / 'index.html'} and {path}")
    return decide(results, args, broken)


def decide(results: list[Any], args: argparse.Namespace, broken: Sequence[Any] = ()) -> int:
    """JUnit XML, the baseline gate and baseline writing; the exit code (3 if a scenario
    file was broken, whatever the gate said)."""
    if args.junitxml:
        data = junit_xml(results, broken=[(str(e.path), str(e.error)) for e in broken],
                         inconclusive_is_error=args.fail_on_inconclusive)
        print(f"comfy-chaos: JUnit XML written to {write_junit(args.junitxml, data)}")
    code = _gate(results, args)
    if broken:
        return common.EXIT_USAGE
    return code


def _gate(results: list[Any], args: argparse.Namespace) -> int:
    current = ResultsFile(run={}, results=results)
    code = common.exit_code(results)  # without a baseline: the verdicts decide
    regressed_against: set[Path] = set()
    if args.baseline:
        try:
            comparison = compare(current, load_results(args.baseline))
        except ResultsError as exc:
            raise common.UsageError(f"--baseline: {exc}") from None
        if comparison.regressions:
            print("comfy-chaos: regressions against the baseline:")
            for regression in comparison.regressions:
                print(f"  {regression}")
            regressed_against.add(Path(args.baseline).resolve())
        decision = gate(comparison, args.baseline, fail_on_inconclusive=args.fail_on_inconclusive)
        print(f"comfy-chaos: {decision.summary}")
        code = decision.code
    if args.write_baseline:
        target = Path(args.write_baseline)
        if target.resolve() not in regressed_against and target.is_file() and not args.force:
            try:
                if compare(current, load_results(target)).regressions:
                    regressed_against.add(target.resolve())
            except ResultsError:
                pass  # an unreadable old baseline is simply replaced
        if target.resolve() in regressed_against and not args.force:
            print(f"comfy-chaos: baseline NOT written: this run regressed against {target}; "
                  "fix the regression, or pass --force to accept it as the new baseline")
            return code if code == common.EXIT_USAGE else common.EXIT_FAIL
        write_baseline(current, target)
        print(f"comfy-chaos: baseline written to {target}")
    return code
