"""The starvation judgement (harness.starvation): pure, fed samples."""
from __future__ import annotations

import asyncio

import pytest

from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.harness.starvation import LagSampler, StarvationMonitor


def fed(time_scale: float, lags_ms: list[float], slips_ms: tuple[float, ...] = ()) -> StarvationMonitor:
    monitor = StarvationMonitor(scale=TimeScale(time_scale))
    t = 0.0
    for lag in lags_ms:
        t += 0.02
        monitor.feed(t, t + lag / 1000)
    for slip in slips_ms:
        monitor.feed_slip(1.0, 1.0 + slip / 1000)
    return monitor


def test_an_idle_machine_is_not_too_slow() -> None:
    judgement = fed(0.1, [0.3] * 200 + [4.0] * 2).judgement()
    assert not judgement.too_slow and judgement.reason is None
    assert judgement.samples == 202 and judgement.lag_p50_ms == pytest.approx(0.3)
    assert judgement.budget_ms == pytest.approx(100.0)


def test_sustained_lag_is_too_slow_and_names_the_time_scale_that_would_work() -> None:
    judgement = fed(0.1, [150.0] * 100).judgement()
    assert judgement.too_slow and judgement.suggested_time_scale == 0.2
    assert judgement.reason == (
        "the machine was too slow: event-loop lag p99 150 ms, max 150 ms at time scale 0.1 "
        "(allowed: p99 100 ms, one stall 1000 ms); try --time-scale 0.2"
    )


def test_the_same_lag_is_fine_at_a_slower_time_scale() -> None:
    assert not fed(0.5, [150.0] * 100).judgement().too_slow


def test_a_few_samples_do_not_make_a_p99_but_one_long_stall_counts() -> None:
    assert not fed(0.1, [400.0] * 99).judgement().too_slow
    assert not fed(0.1, [1.0] * 200 + [900.0]).judgement().too_slow  # under the 1 s floor
    stalled = fed(0.1, [1.0] * 200 + [1800.0]).judgement()
    assert stalled.too_slow and stalled.lag_max_ms == pytest.approx(1800.0)
    assert stalled.suggested_time_scale == 0.2  # 1.8 s is under one stall of 10 scenario s at 0.2


def test_timer_slip_of_the_harness_counts_like_a_stall() -> None:
    judgement = fed(0.1, [1.0] * 150, slips_ms=(1250.0,)).judgement()
    assert judgement.too_slow and "timer slip 1250 ms" in (judgement.reason or "")


def test_beyond_every_suggested_scale_it_says_to_use_another_machine() -> None:
    judgement = fed(1.0, [12000.0] * 100).judgement()
    assert judgement.too_slow and judgement.suggested_time_scale is None
    assert judgement.reason is not None and judgement.reason.endswith("run on a less loaded machine")


async def test_the_sampler_measures_a_blocked_loop() -> None:
    import time

    monitor = StarvationMonitor(scale=TimeScale(0.1))
    sampler = LagSampler(monitor, interval=0.01)
    sampler.start()
    await asyncio.sleep(0.05)
    time.sleep(1.2)  # noqa: ASYNC251 - blocks the loop: the measurement under test
    await asyncio.sleep(0.05)
    await sampler.stop()
    judgement = monitor.judgement()
    assert judgement.lag_max_ms >= 1150 and judgement.too_slow
