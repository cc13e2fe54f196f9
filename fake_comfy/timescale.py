"""The time scale of a run: the one value that turns scenario seconds into real seconds.

Every duration a scenario, a fault or a node gives is in *scenario* seconds; a run at time
scale 0.1 lives them ten times faster. `TimeScale` is the only place that converts: the
harness makes one when a run starts (`harness.timing.RunTimes`, from `Scenario.scaled`), the
fault planner and the fake server's executor convert through it, and the scorer makes one
from the run record to turn real seconds back into scenario seconds. It lives in
`fake_comfy` because the fake server and its fault planner need it and must not import the
harness.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimeScale:
    """Real seconds per scenario second.

    0 is allowed for the fake server alone ("as fast as possible": every node and step delay
    becomes 0); it has no inverse, so `scenario()` refuses it. Runs are bounded to
    0.01..10 by the scenario model and the command line.
    """

    factor: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)):
            raise TypeError(f"TimeScale.factor must be a number, got {self.factor!r}")
        if not (math.isfinite(self.factor) and self.factor >= 0):
            raise ValueError(f"TimeScale.factor must be a finite number >= 0, got {self.factor!r}")
        object.__setattr__(self, "factor", float(self.factor))

    @classmethod
    def of(cls, value: TimeScale | float) -> TimeScale:
        """`value` as a `TimeScale` (the boundary where a plain number comes in)."""
        return value if isinstance(value, TimeScale) else cls(value)

    def real(self, scenario_s: float) -> float:
        """Scenario seconds → real seconds."""
        return scenario_s * self.factor

    def scenario(self, real_s: float) -> float:
        """Real seconds → scenario seconds (undoes `real`)."""
        if self.factor == 0:
            raise ValueError("time scale 0 (as fast as possible) has no scenario time")
        return real_s / self.factor
