"""A scenario's times in real seconds: computed once when a run starts (`Scenario.scaled`).

The scenario speaks in scenario seconds; the runner thinks only in real seconds. `RunTimes`
is the bridge: every time the runner needs (deadline, grace, the settle window, when each
task is due, how long each fault lasts, when the time-triggered faults are over), converted
through the run's one `TimeScale` (`fake_comfy.timescale`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from comfy_chaos.fake_comfy.faults.spec import FaultSpec
from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.harness.schedule import time_triggered_end

__all__ = ["SETTLE_S", "RunTimes"]

SETTLE_S = 2.0
"""Scenario seconds the judge keeps listening after every task was reported."""


@dataclass(frozen=True, slots=True)
class RunTimes:
    """Everything the runner times, in real seconds after t0 (durations in real seconds)."""

    scale: TimeScale
    deadline_s: float
    grace_s: float
    settle_s: float
    due_s: tuple[float, ...]
    """When task i is due (index = `PlannedTask.index`)."""
    fault_durations_s: tuple[float | None, ...]
    """Each schedule entry's `duration` (None: none), in the order of `Scenario.fault_schedule()`;
    when a fault fires is the fault engine's business (it converts through the same `scale`)."""
    faults_over_s: float
    """When every time-triggered fault has ended (0 with none)."""

    @classmethod
    def of(
        cls, scale: TimeScale, *, deadline: float, grace: float, due: Sequence[float], specs: Sequence[FaultSpec]
    ) -> RunTimes:
        """Scale a scenario's times (`deadline`, `grace`, `due`, `specs` in scenario seconds)."""

        return cls(
            scale=scale,
            deadline_s=scale.real(deadline),
            grace_s=scale.real(grace),
            settle_s=scale.real(SETTLE_S),
            due_s=tuple(scale.real(d) for d in due),
            fault_durations_s=tuple(None if s.duration is None else scale.real(s.duration) for s in specs),
            faults_over_s=scale.real(time_triggered_end(specs)),
        )
