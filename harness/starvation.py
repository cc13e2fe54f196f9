"""Is the machine too slow for this run's verdict? (issue 18, "Overload")

The in-process client, the fake server and the judge share one event loop, and every
duration of a run is multiplied by its time scale. On a starved machine (CPU hogs, a busy
CI runner) a callback that should run now runs tens of milliseconds late; at time scale
0.1 that is ten times as much scenario time, and a client's scaled timers expire for no
fault of its own. The harness must not blame the client for that.

`StarvationMonitor` is the pure part: fed (due, woke) pairs of a periodic timer, it says
how late the loop ran and whether a failure under that lag can be trusted. `LagSampler`
is the IO part: a small task that sleeps `interval` again and again and feeds the monitor.
Timer slip of the harness's own schedule (a task fed later than it was due) is fed in too.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from comfy_chaos.fake_comfy.timescale import TimeScale

SAMPLE_INTERVAL_S = 0.02
#: How late (in *scenario* seconds) the loop may run at the 99th percentile before a
#: failure no longer says anything about the client: 1 s of scenario time is 100 ms at
#: time scale 0.1. The reference client's scaled timers (ping echo 2.5 s, submit retry
#: 0.5 s, history retries from 0.1 s, all retried) keep working inside it; a busy but
#: healthy machine (2 cores, a test suite on both) stays under it.
LAG_BUDGET_SCENARIO_S = 1.0
#: One stall longer than this many scenario seconds, and than `STALL_FLOOR_S` real seconds,
#: can outlast a client's timeout on its own (the reference client's HTTP timeouts are 10
#: scenario seconds and never under 1 s real).
STALL_BUDGET_SCENARIO_S = 10.0
STALL_FLOOR_S = 1.0
SUGGESTED_SCALES = (0.2, 0.5, 1.0)
MIN_SAMPLES = 100  # below this a p99 is the worst sample: single stalls have their own budget
#: With fewer samples, lag is still sustained when the *mean* lag is above the p99 budget and
#: the run lost at least this many real seconds to it: a starved loop takes few samples
#: (each waits for its own lag), so a short run on a hogged machine never reaches MIN_SAMPLES.
SUSTAINED_LAG_FLOOR_S = 2.0
MAX_SAMPLES = 20_000  # a soak of 10 minutes at 20 ms; older samples are folded into the counts


@dataclass(frozen=True, slots=True)
class Starvation:
    """The judgement on one run's event-loop lag (all times in real milliseconds)."""

    samples: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    stalled_ms: float  # summed lag of every sample
    slip_max_ms: float  # the harness's own timer slip (tasks fed late)
    time_scale: float
    budget_ms: float  # allowed p99 lag at this time scale
    too_slow: bool
    reason: str | None = None
    suggested_time_scale: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class StarvationMonitor:
    """Fed samples, returns a judgement. No clock, no IO. `scale` is the run's time scale."""

    scale: TimeScale
    lag_budget_scenario_s: float = LAG_BUDGET_SCENARIO_S
    stall_budget_scenario_s: float = STALL_BUDGET_SCENARIO_S
    lags: list[float] = field(default_factory=list)
    slips: list[float] = field(default_factory=list)
    stalled: float = 0.0
    count: int = 0
    worst: float = 0.0

    def feed(self, due: float, woke: float) -> None:
        """One timer sample: it was due at `due` and ran at `woke` (seconds, same clock)."""
        lag = max(0.0, woke - due)
        self.count += 1
        self.stalled += lag
        self.worst = max(self.worst, lag)
        if len(self.lags) >= MAX_SAMPLES:
            del self.lags[: MAX_SAMPLES // 2]
        self.lags.append(lag)

    def feed_slip(self, due: float, done: float) -> None:
        """The harness's own schedule: something due at `due` happened at `done`."""
        self.slips.append(max(0.0, done - due))

    def budgets(self, scale: TimeScale) -> tuple[float, float]:
        """(allowed p99 lag, allowed single stall) in real seconds at `scale`."""
        return (
            scale.real(self.lag_budget_scenario_s),
            max(scale.real(self.stall_budget_scenario_s), STALL_FLOOR_S),
        )

    def judgement(self) -> Starvation:
        ordered = sorted(self.lags)
        p50 = _nearest_rank(ordered, 50)
        p99 = _nearest_rank(ordered, 99)
        slip = max(self.slips, default=0.0)
        budget, stall_budget = self.budgets(self.scale)
        reason = None
        suggested = None
        mean = self.stalled / self.count if self.count else 0.0
        by_mean = self.count < MIN_SAMPLES and mean > budget and self.stalled >= SUSTAINED_LAG_FLOOR_S
        sustained = p99 > budget and (self.count >= MIN_SAMPLES or by_mean)
        typical = mean if by_mean else p99  # what must fit a slower time scale's p99 budget
        stall = max(self.worst, slip)
        if sustained or stall > stall_budget:
            suggested = next(
                (
                    factor for factor in SUGGESTED_SCALES
                    if factor > self.scale.factor
                    and (not sustained or typical <= self.budgets(TimeScale(factor))[0])
                    and stall <= self.budgets(TimeScale(factor))[1]
                ),
                None,
            )
            what = (
                (f"event-loop lag mean {mean * 1000:.0f} ms over {self.count} samples, " if by_mean else "event-loop lag ")
                + f"p99 {p99 * 1000:.0f} ms, max {self.worst * 1000:.0f} ms"
                + (f", timer slip {slip * 1000:.0f} ms" if slip > stall_budget else "")
            )
            allowed = f"allowed: p99 {budget * 1000:.0f} ms, one stall {stall_budget * 1000:.0f} ms"
            advice = f"try --time-scale {suggested:g}" if suggested is not None else "run on a less loaded machine"
            reason = f"the machine was too slow: {what} at time scale {self.scale.factor:g} ({allowed}); {advice}"
        return Starvation(
            samples=self.count,
            lag_p50_ms=round(p50 * 1000, 2),
            lag_p99_ms=round(p99 * 1000, 2),
            lag_max_ms=round(self.worst * 1000, 2),
            stalled_ms=round(self.stalled * 1000, 2),
            slip_max_ms=round(slip * 1000, 2),
            time_scale=self.scale.factor,
            budget_ms=round(budget * 1000, 2),
            too_slow=reason is not None,
            reason=reason,
            suggested_time_scale=suggested,
        )


def _nearest_rank(ordered: list[float], p: float) -> float:
    if not ordered:
        return 0.0
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


class LagSampler:
    """The IO half: sleeps `interval` on the running loop and feeds how late it woke up."""

    def __init__(
        self,
        monitor: StarvationMonitor,
        *,
        interval: float = SAMPLE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.monitor = monitor
        self.interval = interval
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> None:
        """Start sampling (once; never again after `stop`)."""
        if self._task is None and not self._stopped:
            self._task = asyncio.create_task(self._sample(), name="starvation-sampler")

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _sample(self) -> None:
        while True:
            due = self.clock() + self.interval
            await asyncio.sleep(self.interval)  # a periodic probe: its lateness is the measurement
            self.monitor.feed(due, self.clock())
