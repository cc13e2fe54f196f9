"""Control runs: the same workload as a scenario, without faults (issue 13, attribution).

A failure means something only next to the same client's fault-free run: "fails only
under the faults" or "fails without faults too" (a clean-run bug). The runner makes one
control run per key and reuses it. Pure helpers here; the running is `Harness.run`.
"""
from __future__ import annotations

import itertools
import json
import re
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.harness.scenario import Scenario

#: Bumped when a change of the fake server or the harness makes older control runs stale
#: (the cache lives in one process, so this only matters for records compared later).
CONTROL_VERSION = 1

#: Scenario fields that are not part of the workload (faults, bars, words).
_NOT_WORKLOAD = {"name", "description", "tags", "faults", "chaos", "expect", "seed", "time_scale"}

#: A request interval this many scenario seconds or more, regular and real-time, looks
#: like a fixed timer when the run is scaled (the reference client's slowest poll is 3 s).
FIXED_TIMER_SCENARIO_S = 8.0
MIN_INTERVALS = 3
REGULAR = 0.15  # intervals within ±15 % of their median count as one timer
_ID = re.compile(r"[0-9a-fA-F-]{8,}|\d+")


def control_scenario(scenario: Scenario) -> Scenario:
    """The scenario's workload, clients, deadline and grace, with no fault of any kind."""
    return scenario.model_copy(update={"faults": [], "chaos": None})


def control_key(scenario: Scenario, client: str, seed: int, time_scale: float) -> str:
    """What makes two control runs the same: workload (every scenario field that is not a
    fault, a bar or a description, so a protocol version set in the scenario counts),
    client, seed, the time scale the client really ran at, and `CONTROL_VERSION`."""
    workload = scenario.model_dump(mode="json", exclude=_NOT_WORKLOAD)
    return json.dumps(
        {"workload": workload, "client": client, "seed": seed, "time_scale": time_scale, "v": CONTROL_VERSION},
        sort_keys=True,
        default=str,
    )


def needs_control(result: Any, expect: Mapping[str, Any]) -> bool:
    """Does this scored run (scored without a control) need its control run? When it
    fails (attribution), and when a slow-burn bar that only a control can judge, or that a
    control tightens, is in question (`harness.judgement`): a peak request rate above its
    floor, CPU per wall second above its floor. Otherwise a control only loosens bars."""
    from comfy_chaos.harness.judgement import SLOW_DEFAULTS

    if result.verdict == "fail":
        return True

    def above(metric: str, key: str) -> bool:
        value, floor = result.metrics.get(metric), expect.get(key)
        floor = SLOW_DEFAULTS[key] if floor is None else floor
        return value is not None and floor is not None and float(value) > float(floor)

    return above("peak_requests_per_s", "peak_rps") or above("cpu_per_wall", "cpu_per_wall")


def unreported(record: Any) -> list[str]:
    """Planned tasks without an on-time result report (a crude "lost" for the runner's
    own decisions; the scorer's classification is the verdict)."""
    reported = {r.task_id for r in record.reports if r.type == "result" and not r.late}
    return [task_id for task_id in record.task_ids if task_id not in reported]


def fixed_timer_hints(http: Iterable[Any], scale: TimeScale, client: str) -> list[str]:
    """Warnings for request series on a fault-free run whose regular interval is long in
    scenario time: at time scale 0.1 a poll every 0.5 s is a poll every 5 scenario seconds,
    which is what a timer that ignores the time scale looks like."""
    if scale.factor >= 1.0:
        return []
    series: dict[str, list[float]] = {}
    for request in http:  # the ledger's HTTP records (`record.HttpEvent`)
        route = f"{request.method} {_ID.sub('{id}', str(request.path).split('?')[0])}"
        series.setdefault(route, []).append(float(request.t))
    hints = []
    for route, times in sorted(series.items()):
        times.sort()
        gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
        if len(gaps) < MIN_INTERVALS:
            continue
        period = statistics.median(gaps)
        regular = [g for g in gaps if abs(g - period) <= REGULAR * period]
        if len(regular) < MIN_INTERVALS or len(regular) < len(gaps) / 2:
            continue
        if scale.scenario(period) >= FIXED_TIMER_SCENARIO_S:
            hints.append(
                f"fixed timers? {client} sends {route} every {period:.2f} s (real) on the fault-free control run "
                f"at time scale {scale.factor:g}, i.e. every {scale.scenario(period):.1f} scenario seconds; if that "
                f"timer does not scale, declare the client unscalable (--unscalable {client}, or "
                '"scalable": false in its ready line)'
            )
    return hints
