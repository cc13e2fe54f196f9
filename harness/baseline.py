"""CI gate: compare a results file with a stored baseline and list the regressions.

A regression is, for a (scenario, client) present in both files:
  * a task that has a problem now (lost, indeterminate, phantom, duplicate report, ...) and
    did not have that problem in the baseline (matched by task id);
  * a hang or a crash that the baseline did not have;
  * a verdict that got worse (pass → fail, inconclusive → fail);
  * a pair that is new (not in the baseline) and fails: a new failure is a regression, a
    known failure that stays the same is not;
  * latency p95 above the baseline's by more than the relative, the absolute (scenario
    seconds) AND the real-time tolerance (default 0.25 real s, i.e. 2.5 scenario s at time
    scale 0.1: a loaded CI machine's scheduling jitter is real time, and scaled up tenfold
    it would read as a regression);
    tolerance (default +50 % and +0.5 s, scenario seconds).
Several results for one pair (repeats) are merged: problems united, worst verdict, max p95.

    python -m comfy_chaos.harness.baseline compare results.json baseline.json   # exit 1 on regressions
    python -m comfy_chaos.harness.baseline write results.json baseline.json
"""
from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.harness.results import (
    ResultsError,
    ResultsFile,
    ScenarioResult,
    load_results,
    save_results,
)
from comfy_chaos.harness.scoring import task_sort_key

_VERDICT_RANK = {"pass": 0, "inconclusive": 1, "fail": 2}


@dataclass(frozen=True)
class Tolerance:
    """p95 regresses only when above base × (1 + ratio), above base + absolute (scenario
    seconds) and above base + absolute_real ÷ time scale (real seconds)."""

    latency_ratio: float = 0.5
    latency_abs: float = 0.5
    latency_abs_real: float = 0.25


@dataclass(frozen=True)
class Regression:
    scenario: str
    client: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.scenario} / {self.client}: {self.kind}: {self.detail}"


@dataclass
class Comparison:
    regressions: list[Regression] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Changes that are not regressions: new/missing pairs, improvements, pass → inconclusive."""
    matched: int = 0
    """(scenario, client) pairs present in both files: with none, the gate has compared nothing."""
    inconclusive: list[str] = field(default_factory=list)
    """Pairs whose verdict is inconclusive now (the gate may fail on them)."""

    @property
    def ok(self) -> bool:
        return not self.regressions

    def render(self) -> str:
        if self.matched == 0 and not self.regressions:
            lines = ["no run matched the baseline: nothing was compared"]
        else:
            lines = [f"{len(self.regressions)} regression(s) in {self.matched} matched pair(s)"]
        lines += [f"  REGRESSION {r}" for r in self.regressions]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


@dataclass
class _Merged:
    verdict: str = "pass"
    problems: dict[str, set[str]] = field(default_factory=dict)
    hang: bool = False
    crash: bool = False
    p95: float | None = None
    time_scale: float = 1.0  # the smallest of the merged runs' (the widest real-time tolerance)


def _merge(results: list[ScenarioResult]) -> dict[tuple[str, str], _Merged]:
    merged: dict[tuple[str, str], _Merged] = {}
    for r in results:
        m = merged.setdefault(r.key, _Merged())
        if _VERDICT_RANK.get(r.verdict, 2) > _VERDICT_RANK.get(m.verdict, 2) or r.verdict not in _VERDICT_RANK:
            m.verdict = r.verdict
        for task in r.tasks:
            for problem in task.problems:
                m.problems.setdefault(problem, set()).add(task.task_id)
        m.hang |= bool(r.metrics.get("hang"))
        m.crash |= bool(r.metrics.get("crash"))
        m.time_scale = min(m.time_scale, r.time_scale) if r.time_scale > 0 else m.time_scale
        p95 = r.metrics.get("latency_p95")
        if p95 is not None:
            m.p95 = p95 if m.p95 is None else max(m.p95, p95)
    return merged


def _ids(ids: set[str]) -> str:
    return ", ".join(sorted(ids, key=task_sort_key))


def _add_regression(out: Comparison, scenario: str, client: str, kind: str, detail: str) -> None:
    out.regressions.append(Regression(scenario, client, kind, detail))


def compare(current: ResultsFile, baseline: ResultsFile, tolerance: Tolerance = Tolerance()) -> Comparison:
    """List what got worse in `current` compared with `baseline`."""
    now, then = _merge(current.results), _merge(baseline.results)
    out = Comparison()
    for key in sorted(set(then) - set(now)):
        out.notes.append(f"{key[0]} / {key[1]}: in the baseline, not in this run")
    for key in sorted(now):
        scenario, client = key
        cur = now[key]
        base = then.get(key)
        if cur.verdict == "inconclusive":
            out.inconclusive.append(f"{scenario} / {client}")
        if base is None:
            if cur.verdict == "fail":
                _add_regression(out, scenario, client, "new failure", "fails and is not in the baseline")
            else:
                out.notes.append(f"{scenario} / {client}: new (no baseline)")
            continue
        out.matched += 1

        regress = functools.partial(_add_regression, out, scenario, client)
        for problem, ids in sorted(cur.problems.items()):
            new = ids - base.problems.get(problem, set())
            if new:
                regress(problem, f"newly {problem.replace('_', ' ')}: {_ids(new)}")
        for problem, ids in sorted(base.problems.items()):
            fixed = ids - cur.problems.get(problem, set())
            if fixed:
                out.notes.append(f"{scenario} / {client}: no longer {problem.replace('_', ' ')}: {_ids(fixed)}")
        if cur.hang and not base.hang:
            regress("hang", "the client hangs now (it did not in the baseline)")
        if cur.crash and not base.crash:
            regress("crash", "the client crashes now (it did not in the baseline)")
        if cur.verdict == "fail" and base.verdict != "fail":
            regress("verdict", f"{base.verdict} → fail")
        elif base.verdict != cur.verdict:
            out.notes.append(f"{scenario} / {client}: verdict {base.verdict} → {cur.verdict}")
        if cur.p95 is not None and base.p95 is not None:
            real = TimeScale(min(cur.time_scale, base.time_scale)).scenario(tolerance.latency_abs_real)
            limit = max(base.p95 * (1 + tolerance.latency_ratio), base.p95 + tolerance.latency_abs, base.p95 + real)
            if cur.p95 > limit:
                regress(
                    "latency",
                    f"p95 {cur.p95:.2f} s > {limit:.2f} s (baseline {base.p95:.2f} s "
                    f"+{tolerance.latency_ratio:.0%}, +{tolerance.latency_abs:g} s "
                    f"and +{tolerance.latency_abs_real:g} real s)",
                )
    return out


@dataclass(frozen=True)
class GateDecision:
    """The gate's exit code and its one-line verdict."""

    code: int
    summary: str


def gate(comparison: Comparison, baseline: str | Path, *, fail_on_inconclusive: bool = False) -> GateDecision:
    """Exit code of a baseline check: 1 on any regression; 3 when no (scenario, client) pair
    matched the baseline (a wrong or empty baseline compares nothing, so it must not pass);
    2 with `fail_on_inconclusive` and an inconclusive run; else 0 — also when the client has
    failures the baseline already had."""
    if comparison.regressions:
        return GateDecision(1, f"{len(comparison.regressions)} regression(s) against {baseline}")
    if comparison.matched == 0:
        return GateDecision(3, f"no run matched the baseline {baseline}: nothing was compared "
                               "(a baseline for other scenarios or clients?)")
    if fail_on_inconclusive and comparison.inconclusive:
        return GateDecision(2, f"no regression against {baseline} in {comparison.matched} matched pair(s), "
                               f"but {len(comparison.inconclusive)} inconclusive: {', '.join(comparison.inconclusive)}")
    return GateDecision(0, f"no regression against {baseline} in {comparison.matched} matched pair(s)")


def _as_results_file(results: ResultsFile | Iterable[ScenarioResult] | str | Path) -> ResultsFile:
    if isinstance(results, ResultsFile):
        return results
    if isinstance(results, (str, Path)):
        return load_results(results)
    return ResultsFile(run={}, results=list(results))


def check_baseline(
    results: ResultsFile | Iterable[ScenarioResult] | str | Path,
    baseline_path: str | Path,
    tolerance: Tolerance = Tolerance(),
) -> list[str]:
    """The regressions of `results` against the baseline file, one line each (empty: none)."""
    comparison = compare(_as_results_file(results), load_results(baseline_path), tolerance)
    return [str(r) for r in comparison.regressions]


def write_baseline(results: ResultsFile | Iterable[ScenarioResult] | str | Path, baseline_path: str | Path) -> Path:
    """Store results (a results file path, a ResultsFile or results) as the baseline,
    without the bulky per-frame detail."""
    source = _as_results_file(results)
    slim = []
    for r in source.results:
        copy = ScenarioResult.from_dict(r.to_dict())
        copy.frames = {}
        copy.connections = []
        slim.append(copy)
    run = dict(source.run)
    if isinstance(results, (str, Path)):
        run["baseline_of"] = str(results)
    return save_results(baseline_path, ResultsFile(run=run, results=slim))


def main(argv: list[str] | None = None) -> int:
    """Exit 0: no regressions (or written); 1: regressions; 2: inconclusive with
    --fail-on-inconclusive; 3: usage, unreadable file, or no pair matched the baseline."""
    parser = argparse.ArgumentParser(prog="python -m comfy_chaos.harness.baseline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser("compare", help="list regressions of RESULTS against BASELINE")
    cmp_.add_argument("results")
    cmp_.add_argument("baseline")
    cmp_.add_argument("--latency-ratio", type=float, default=Tolerance.latency_ratio)
    cmp_.add_argument("--latency-abs", type=float, default=Tolerance.latency_abs)
    cmp_.add_argument("--latency-abs-real", type=float, default=Tolerance.latency_abs_real)
    cmp_.add_argument("--fail-on-inconclusive", action="store_true", help="exit 2 when a run is inconclusive")
    wr = sub.add_parser("write", help="store RESULTS as the new BASELINE")
    wr.add_argument("results")
    wr.add_argument("baseline")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 3
    try:
        if args.command == "write":
            path = write_baseline(args.results, args.baseline)
            sys.stdout.write(f"baseline written: {path}\n")
            return 0
        comparison = compare(
            load_results(args.results), load_results(args.baseline), Tolerance(args.latency_ratio, args.latency_abs, args.latency_abs_real)
        )
    except ResultsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 3
    sys.stdout.write(comparison.render())
    decision = gate(comparison, args.baseline, fail_on_inconclusive=args.fail_on_inconclusive)
    sys.stdout.write(decision.summary + "\n")
    return decision.code


if __name__ == "__main__":
    sys.exit(main())
