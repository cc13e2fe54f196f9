"""`Scenario.scaled(k)`: a scenario's times in real seconds, computed once for a run."""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.harness.scenario import Scenario, parse_scenario
from comfy_chaos.harness.timing import SETTLE_S, RunTimes


def old_time_triggered_end(specs: list[Any], time_scale: float) -> float:
    """What `harness.schedule.time_triggered_end` computed before it left the scaling to the view."""
    end = 0.0
    for spec in specs:
        if spec.when.at is not None:
            end = max(end, (spec.when.at + (spec.duration or 0.0)) * time_scale)
    return end


def assert_the_old_multiplications(scenario: Scenario, k: float) -> None:
    """The view at `k` holds exactly (bit for bit) what the runner used to multiply out."""
    times = scenario.scaled(k)
    specs = scenario.fault_schedule()
    assert times.scale == TimeScale(k)
    assert times.deadline_s == scenario.deadline * k
    assert times.grace_s == scenario.grace * k
    assert times.settle_s == SETTLE_S * k
    assert times.due_s == tuple(p.due * k for p in sorted(scenario.plan(), key=lambda p: p.index))
    assert times.fault_durations_s == tuple(None if s.duration is None else s.duration * k for s in specs)
    assert times.faults_over_s == old_time_triggered_end(specs, k)


fault = st.one_of(
    st.builds(
        lambda at, duration: {"kind": "silent", "when": {"at": at}, **({"duration": duration} if duration else {})},
        st.floats(0, 1000), st.one_of(st.none(), st.floats(0.001, 1000)),
    ),
    st.builds(lambda n: {"kind": "drop", "when": {"on": "message", "nth": n}}, st.integers(1, 5)),
    st.builds(lambda d: {"kind": "http_slow", "when": {"on": "task_start", "task": "t0"}, "duration": d},
              st.floats(0.001, 1000)),
)


@settings(max_examples=60, deadline=None)
@given(
    k=st.floats(0.01, 10.0),
    tasks=st.integers(1, 20),
    deadline=st.floats(1.0, 86_400.0),
    grace=st.floats(0.0, 600.0),
    share=st.one_of(st.none(), st.floats(0.0, 0.99)),
    faults=st.lists(fault, max_size=6),
)
def test_the_view_at_k_equals_the_old_multiplications(
    k: float, tasks: int, deadline: float, grace: float, share: float | None, faults: list[dict[str, Any]]
) -> None:
    submit: dict[str, Any] = {"pattern": "burst"}
    if share is not None:  # the last task is due before the deadline
        submit = {"pattern": "interval", "interval": share * deadline / tasks}
    scenario = Scenario.model_validate({
        "name": "times", "time_scale": k, "deadline": deadline, "grace": grace,
        "workload": {"tasks": tasks, "submit": submit}, "faults": faults,
    })
    assert_the_old_multiplications(scenario, k)


def test_an_example_in_numbers() -> None:
    scenario = parse_scenario("""
name: example
deadline: 60
grace: 5
workload: {tasks: 3, submit: {pattern: interval, interval: 4}}
faults:
  - {kind: silent, when: {at: 2}, duration: 3}
  - {kind: drop, when: {at: 10}}
  - {kind: close, when: {on: task_start, task: t1}}
  - {kind: http_slow, when: {on: task_start, task: t2}, duration: 50}
""")
    times = scenario.scaled(0.1)
    assert times.deadline_s == pytest.approx(6.0) and times.grace_s == pytest.approx(0.5)
    assert times.settle_s == pytest.approx(0.2)
    assert times.due_s == pytest.approx((0.0, 0.4, 0.8))
    assert times.fault_durations_s[0] == pytest.approx(0.3)
    assert times.fault_durations_s[1:3] == (None, None)
    assert times.fault_durations_s[3] == pytest.approx(5.0)
    assert times.faults_over_s == pytest.approx(1.0)  # the drop at 10 s; event triggers do not count
    assert scenario.scaled(TimeScale(0.1)) == times


def test_chaos_faults_are_in_the_view_in_schedule_order() -> None:
    scenario = parse_scenario("""
name: chaotic
seed: 3
workload: {tasks: 6}
faults:
  - {kind: silent, when: {at: 1}, duration: 2}
chaos: {faults: 5}
""")
    assert len(scenario.fault_schedule()) == 6
    assert_the_old_multiplications(scenario, 0.2)


def test_the_view_is_frozen_and_scaling_needs_a_valid_scale() -> None:
    times = parse_scenario("name: x\n").scaled(0.5)
    assert isinstance(times, RunTimes)
    with pytest.raises(dataclasses.FrozenInstanceError):
        times.deadline_s = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        parse_scenario("name: x\n").scaled(-1.0)
