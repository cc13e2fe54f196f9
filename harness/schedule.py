"""The runner's timing rules for a fault schedule: when its time-triggered part is over and
when to heal. Pure code (fed `now`), testable without a network.

Every fault fires in the fault engine (time and event triggers alike); toxics reach
Toxiproxy through the runner's `engine.external` / `engine.external_heal` callbacks.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def toxic_name(spec_index: int, spec: Any) -> str:
    """The Toxiproxy name of a schedule entry's toxic: its own `name`, else derived from the index."""
    return spec.toxic.name or f"f{spec_index}-{spec.toxic.type}-{spec.toxic.stream}"


def time_triggered_end(specs: Sequence[Any]) -> float:
    """Scenario seconds after start when every time-triggered fault has ended (0 with none);
    `Scenario.scaled` gives it in real seconds (`RunTimes.faults_over_s`).

    A time-triggered fault without a duration counts as ending when it fires.
    """
    end = 0.0
    for spec in specs:
        if spec.when.at is not None:
            end = max(end, spec.when.at + (spec.duration or 0.0))
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
