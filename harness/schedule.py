"""The runner's view of a fault schedule: which toxics it drives on the clock, when the
schedule's time-triggered part is over, and the log of what Toxiproxy applied.

Pure code (fed `now`), so the timing rules are testable without a network.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TimedToxic:
    """A `kind: toxic` spec with `when.at`: applied at `at`, removed at `until` (None = at heal)."""

    spec_index: int
    at: float
    until: float | None
    name: str
    type: str
    stream: str
    attributes: dict[str, Any]
    toxicity: float


def toxic_name(spec_index: int, spec: Any) -> str:
    return spec.toxic.name or f"f{spec_index}-{spec.toxic.type}-{spec.toxic.stream}"


def timed_toxics(specs: list[Any], time_scale: float, seed: int) -> list[TimedToxic]:
    """The time-triggered toxics that fire, in schedule order; `probability` drawn per spec
    from `Random(f"toxic:{seed}:{index}")` so one spec's draw never shifts another's."""
    timeline = []
    for index, spec in enumerate(specs):
        if spec.kind != "toxic" or spec.when.at is None:
            continue
        if spec.probability < 1.0 and random.Random(f"toxic:{seed}:{index}").random() >= spec.probability:
            continue
        at = spec.when.at * time_scale
        timeline.append(
            TimedToxic(
                spec_index=index,
                at=at,
                until=None if spec.duration is None else at + spec.duration * time_scale,
                name=toxic_name(index, spec),
                type=spec.toxic.type,
                stream=spec.toxic.stream,
                attributes=dict(spec.toxic.attributes),
                toxicity=spec.toxic.toxicity,
            )
        )
    return timeline


def time_triggered_end(specs: list[Any], time_scale: float) -> float:
    """Seconds after start when every time-triggered fault has ended (0 with none).

    A time-triggered fault without a duration counts as ending when it fires.
    """
    end = 0.0
    for spec in specs:
        if spec.when.at is not None:
            end = max(end, (spec.when.at + (spec.duration or 0.0)) * time_scale)
    return end


def plan_heal(
    *,
    now: float,
    faults_over_at: float,
    active_until: float,
    server_quiet: bool,
    deadline: float,
    grace: float,
) -> bool:
    """Heal now? Once every time-triggered fault is over, no fired fault is still within its
    duration and the server has finished all work; or, at the latest, `grace` before the deadline."""
    if now >= deadline - grace:
        return True
    return server_quiet and now >= faults_over_at and now >= active_until
