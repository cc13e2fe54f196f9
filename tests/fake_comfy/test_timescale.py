"""`TimeScale`, the one value that converts scenario seconds to real seconds and back."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comfy_chaos.fake_comfy.config import FakeConfig
from comfy_chaos.fake_comfy.faults.planner import FaultPlanner
from comfy_chaos.fake_comfy.faults.spec import FaultSchedule
from comfy_chaos.fake_comfy.timescale import TimeScale

factors = st.floats(min_value=0.01, max_value=10.0, allow_nan=False)  # the bounds a run may use
seconds = st.floats(min_value=0.0, max_value=86_400.0, allow_nan=False)  # up to a day (MAX_SECONDS)


@given(factors, seconds)
def test_real_undoes_scenario(factor: float, real_s: float) -> None:
    scale = TimeScale(factor)
    assert scale.real(scale.scenario(real_s)) == pytest.approx(real_s, rel=1e-12, abs=1e-12)


@given(factors, seconds)
def test_scenario_undoes_real_and_real_is_the_old_multiplication(factor: float, scenario_s: float) -> None:
    scale = TimeScale(factor)
    assert scale.real(scenario_s) == scenario_s * factor  # bit for bit what the call sites did
    assert scale.scenario(scale.real(scenario_s)) == pytest.approx(scenario_s, rel=1e-12, abs=1e-12)


def test_examples() -> None:
    scale = TimeScale(0.1)
    assert scale.real(30.0) == pytest.approx(3.0)
    assert scale.scenario(0.25) == pytest.approx(2.5)
    assert TimeScale().factor == 1.0 and TimeScale(1).factor == 1.0 and isinstance(TimeScale(1).factor, float)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, -math.inf])
def test_a_negative_or_non_finite_scale_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="TimeScale.factor must be a finite number >= 0"):
        TimeScale(bad)


@pytest.mark.parametrize("bad", [True, "0.1", None])
def test_a_scale_that_is_not_a_number_is_refused(bad: object) -> None:
    with pytest.raises(TypeError, match="TimeScale.factor must be a number"):
        TimeScale(bad)  # type: ignore[arg-type]


def test_zero_runs_as_fast_as_possible_and_has_no_scenario_time() -> None:
    instant = TimeScale(0.0)
    assert instant.real(12.5) == 0.0
    with pytest.raises(ValueError, match="has no scenario time"):
        instant.scenario(1.0)


def test_of_keeps_a_scale_and_wraps_a_number() -> None:
    scale = TimeScale(0.5)
    assert TimeScale.of(scale) is scale
    assert TimeScale.of(0.5) == scale
    with pytest.raises(ValueError):
        TimeScale.of(-1.0)


def test_the_fake_server_and_the_fault_planner_convert_through_it() -> None:
    assert FakeConfig(time_scale=0.1).scale == TimeScale(0.1)
    assert FakeConfig(time_scale=0.0).scale.real(3.0) == 0.0  # nodes without waiting
    schedule = FaultSchedule.of([{"kind": "silent", "when": {"at": 2}, "duration": 3}])
    for given_scale in (0.25, TimeScale(0.25)):
        planner = FaultPlanner(schedule, seed=1, time_scale=given_scale)
        assert planner.scale == TimeScale(0.25)
        assert planner.seconds(3.0) == 3.0 * 0.25
    with pytest.raises(ValueError, match="time_scale must be > 0"):
        FaultPlanner(schedule, seed=1, time_scale=0.0)


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -0.5])
def test_fake_config_refuses_a_time_scale_with_no_real_seconds(bad: float) -> None:
    with pytest.raises(ValueError, match="FakeConfig.time_scale must be a finite number >= 0"):
        FakeConfig(time_scale=bad)
