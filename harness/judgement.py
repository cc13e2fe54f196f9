"""Judgements relative to the control run (docs/scoring.md "Slow-burn bars", "Attribution").

Pure functions of a run's metrics, its fault marks and the summary of its control run
(same scenario, client, seed and workload, no faults): the slow-burn bars (latency,
requests, CPU, reconnects — bugs that lose nothing but hurt) and the attribution of a
verdict to the faults or to a clean-run bug.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.harness.coverage import BREAKING_KINDS
from comfy_chaos.harness.record import ControlSummary
from comfy_chaos.harness.results import Attribution, FaultMark, TaskClass

SLOW_DEFAULTS: dict[str, float | None] = {
    "latency_floor": 6.0,
    "latency_factor": 3.0,
    "latency_slack": 5.0,
    "http_per_task": 20.0,
    "http_factor": 5.0,
    "poll_rate": 2.0,
    "peak_rps": 20.0,
    "cpu_per_wall": 0.5,
    "cpu_margin": 0.3,
    "reconnects": None,
}
"""Slow-burn bars when the scenario's `expect:` does not set them."""

RECOVERY_S = 30.0
"""Scenario seconds a client may take to recover from a fault that breaks its connection
or its requests (reconnect backoff 1+2+4+8+16 s, HTTP retry backoff), on top of the
fault windows themselves. Frame and message faults on a healthy socket get no such
allowance."""

LOADED_MACHINE_S = 1.0
"""Real seconds a loaded machine may delay any report (event loops starved of CPU): the
latency floor is never below this, in scenario seconds (10 s at time scale 0.1)."""

NO_CONTROL_CPU = 0.9
"""CPU seconds per wall second that fail a run without a control run (a core kept busy)."""

PROBLEM_CLASSES = frozenset(str(c) for c in TaskClass) - {TaskClass.OK.value, TaskClass.NOT_COMPLETED.value}


@dataclass(frozen=True)
class Failure:
    """A broken bar: `key` names it (a problem class, `hang`, `latency`, …), `line` says it."""

    key: str
    line: str


def union_length(spans: Iterable[tuple[float, float]]) -> float:
    """Total length covered by the (start, end) spans."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(spans):
        if cur_end is None or start > cur_end:
            if cur_end is not None and cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None and cur_start is not None:
        total += cur_end - cur_start
    return total


def allowance(marks: list[FaultMark], scale: TimeScale) -> tuple[float, int]:
    """(scenario seconds the faults may legitimately delay a report, connection-breaking
    faults that reached the client). Windows count for their length; any fault other than
    a frame or message fault adds RECOVERY_S once."""
    reached = [m for m in marks if m.reached]
    windows = scale.scenario(union_length((m.t, m.t_end) for m in reached if m.t_end is not None and m.t_end > m.t))
    breaking = [m for m in reached if m.target_kind != "ws" or m.kind in BREAKING_KINDS]
    return windows + (RECOVERY_S if breaking else 0.0), len(breaking)


class _Bars:
    """The slow-burn settings of one scenario: `expect:` values, else SLOW_DEFAULTS.

    Without faults and without a control run there is nothing to compare with: a slow but
    correct client (one that downloads every image before it reports, say) is not a
    slow-burn bug, so only the bars the scenario sets itself apply (`defaults=False`)."""

    def __init__(self, expect: Mapping[str, Any], *, defaults: bool = True) -> None:
        self.expect = expect
        self.defaults = defaults

    def __call__(self, key: str) -> float | None:
        value = self.expect.get(key)
        if value is None and self.defaults:
            value = SLOW_DEFAULTS[key]
        return None if value is None else float(value)


def slow_burn_failures(
    metrics: Mapping[str, Any],
    *,
    expect: Mapping[str, Any],
    control: ControlSummary | None,
    marks: list[FaultMark],
    scale: TimeScale,
    wall_s: float,
    instances: int,
) -> list[Failure]:
    """Latency, requests, CPU and reconnects against the control run and absolute floors.
    `wall_s` and the marks' times are real seconds; `scale` turns them into scenario seconds."""
    bar = _Bars(expect, defaults=control is not None or bool(marks))
    c: Mapping[str, Any] = control.metrics if control is not None else {}
    extra, breaking = allowance(marks, scale)
    out = _latency(metrics, bar, c, control is not None, extra, scale)
    per_task, http_floor = metrics["http_per_task"], bar("http_per_task")
    if per_task is not None and http_floor is not None and metrics["tasks"]:
        poll_rate = bar("poll_rate") or 0.0
        # polling at poll_rate per client instance over the run, or per pending prompt while
        # it was pending (a client that polls each of its prompts), whichever is more
        pending = float(metrics.get("pending_task_s") or 0.0)
        polls = poll_rate * max(scale.scenario(wall_s) * instances, pending) / metrics["tasks"]
        base = float(c.get("http_per_task") or 0.0)
        limit = max(http_floor, (bar("http_factor") or 1.0) * base) + polls
        if per_task > limit:
            out.append(Failure("http_per_task", f"requests per task {per_task:g} > {limit:.1f} (control {base:g}; "
                               f"expect.http_per_task {http_floor:g}, plus polling at {poll_rate:g}/s per client "
                               "or per pending prompt)"))
    peak, peak_floor = metrics["peak_requests_per_s"], bar("peak_rps")
    if peak_floor is not None and c.get("peak_requests_per_s") is not None:
        base = float(c["peak_requests_per_s"])
        limit = max(peak_floor, (bar("http_factor") or 1.0) * base)
        if peak > limit:
            out.append(Failure("peak_requests_per_s", f"peak {peak:g} requests per scenario second per client > "
                               f"{limit:g} (control {base:g}; expect.peak_rps {peak_floor:g}): a request storm"))
    cpu, cpu_floor = metrics["cpu_per_wall"], bar("cpu_per_wall")
    if cpu is not None and cpu_floor is not None:
        base_cpu = c.get("cpu_per_wall")
        if base_cpu is not None:
            limit = max(cpu_floor, float(base_cpu) + (bar("cpu_margin") or 0.0))
        else:
            limit = max(cpu_floor, NO_CONTROL_CPU)
        if cpu > limit:
            vs = f"control {float(base_cpu):.2f}" if base_cpu is not None else "no control run"
            out.append(Failure("cpu_per_wall", f"CPU {cpu:.2f} s per wall second > {limit:.2f} ({vs}): "
                               "the client keeps a core busy"))
    reconnects, allowed = metrics["reconnects"], bar("reconnects")
    base_reconnects = int(c.get("reconnects") or 0)
    if allowed is None:
        # Each client instance beyond the first may reconnect twice on its own (a health
        # check that times out on a busy machine): fifty reference clients on a loaded
        # machine reconnected once each, which is no storm.
        limit_r = base_reconnects + max(5, 3 * breaking) + 2 * (max(1, instances) - 1) + int(extra / 5)
    else:
        limit_r = base_reconnects + int(allowed)
    if reconnects > limit_r:
        out.append(Failure("reconnects", f"reconnects {reconnects} > {limit_r} (control {base_reconnects}, "
                           f"{breaking} connection-breaking faults): a reconnect storm"))
    return out


def _latency(
    metrics: Mapping[str, Any], bar: _Bars, c: Mapping[str, Any], has_control: bool, extra: float, scale: TimeScale
) -> list[Failure]:
    floor = bar("latency_floor")
    if floor is None:
        return []
    floor = max(floor, scale.scenario(LOADED_MACHINE_S))
    factor = bar("latency_factor") or 1.0
    slack = (bar("latency_slack") or 0.0) + extra
    out = []
    for key, label in (("latency_p95", "p95"), ("latency_max", "max")):
        value, base = metrics[key], float(c.get(key) or 0.0)
        if value is None:
            continue
        limit = max(floor, factor * base, base + slack)
        if value > limit:
            why = f"the floor {floor:g} s (expect.latency_floor, at least {LOADED_MACHINE_S:g} real s)"
            if has_control or extra:
                why += f", {factor:g} × control {base:.2f} s, control + {slack:.1f} s allowed for these faults"
            out.append(Failure("latency", f"latency {label} {value:.2f} s > {limit:.2f} s (the largest of {why})"))
    return out


def attribute(
    verdict: str,
    failures: list[Failure],
    metrics: Mapping[str, Any],
    *,
    control: ControlSummary | None,
    has_faults: bool,
    inconclusive: list[str],
) -> tuple[Attribution, str, bool]:
    """(attribution, its detail, clean_run_bug) of a verdict, from the control run."""
    if not has_faults:
        if verdict == "fail":
            return Attribution.CLEAN_RUN, "fails without any fault (the scenario has none)", True
        return Attribution(verdict), "", False
    clean_bug = control is not None and control.verdict == "fail"
    if verdict == "pass":
        detail = ""
        if control is not None and clean_bug:
            detail = "passes; fails without faults: " + "; ".join(control.failures[:3])
        return Attribution.PASS, detail, clean_bug
    if verdict == "inconclusive":
        return Attribution.INCONCLUSIVE, inconclusive[0] if inconclusive else "", clean_bug
    if control is None:
        return Attribution.UNATTRIBUTED, "no control run to compare with", False
    if control.verdict == "inconclusive":
        return Attribution.UNATTRIBUTED, "the control run was inconclusive: " + "; ".join(control.reasons[1:2]), False
    if not clean_bug:
        return Attribution.FAULT, "fails only under the faults (the control run without faults passes)", False
    added = [f for f in failures if added_by_faults(f, metrics, control)]
    same = "; ".join(control.failures[:3])
    if added:
        added_text = "; ".join(f.line for f in added[:3])
        return Attribution.FAULT, f"fails without faults too ({same}), and the faults added: {added_text}", True
    detail = f"clean-run bug: fails without faults too ({same}); the faults changed nothing that fails"
    return Attribution.CLEAN_RUN, detail, True


def added_by_faults(failure: Failure, metrics: Mapping[str, Any], control: ControlSummary) -> bool:
    """Is this failure of the faulted run beyond what the control run already shows?"""
    key = failure.key
    c = control.metrics
    if key in PROBLEM_CLASSES:
        return int(metrics[key]) > int(control.problems.get(key, 0))
    if key in ("hang", "crash"):
        return not c.get(key)
    if key == "completeness":
        clean = c.get("completeness")
        return float(metrics["completeness"]) < (1.0 if clean is None else float(clean))
    if key == "p95_latency":
        return not any("p95_latency" in line for line in control.failures)
    return True  # slow-burn bars are relative to the control already
