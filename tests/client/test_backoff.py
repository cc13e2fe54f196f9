"""Reconnect backoff: the seed's numbers, caps, jitter determinism, give-up vs slow mode."""
from __future__ import annotations

import random

import pytest

from comfy_chaos.client.backoff import BackoffPolicy, ReconnectSchedule
from comfy_chaos.client.config import ClientConfig


def test_seed_numbers_with_pending_tasks():
    policy = BackoffPolicy.from_config(ClientConfig.seed())
    # seed: min(1000 * 2^(n-1), 30000) ms
    assert [policy.base_delay(n, True) for n in range(1, 11)] == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]


def test_seed_numbers_without_pending_tasks():
    policy = BackoffPolicy.from_config(ClientConfig.seed())
    assert [policy.base_delay(n, False) for n in range(1, 6)] == [5, 10, 20, 30, 30]


def test_seed_gives_up_after_ten_attempts():
    schedule = ReconnectSchedule(BackoffPolicy.from_config(ClientConfig.seed()), seed=0)
    delays = [schedule.next_delay(True) for _ in range(11)]
    assert delays[:10] == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    assert delays[10] is None


def test_reference_keeps_trying_at_the_cap_after_max_attempts():
    policy = BackoffPolicy.from_config(ClientConfig.reference().replace(reconnect_jitter=0.0))
    assert [policy.base_delay(n, True) for n in (11, 50, 10_000)] == [30, 30, 30]


def test_reset_starts_over():
    schedule = ReconnectSchedule(BackoffPolicy(), seed=0)
    for _ in range(4):
        schedule.next_delay(True)
    schedule.reset()
    assert schedule.next_delay(True) == 1


def test_jitter_is_deterministic_for_a_seed_and_bounded():
    policy = BackoffPolicy.from_config(ClientConfig.reference())
    assert policy.jitter == 0.2
    a = ReconnectSchedule(policy, seed=42)
    b = ReconnectSchedule(policy, seed=42)
    c = ReconnectSchedule(policy, seed=43)
    seq_a = [a.next_delay(True) for _ in range(15)]
    seq_b = [b.next_delay(True) for _ in range(15)]
    seq_c = [c.next_delay(True) for _ in range(15)]
    assert seq_a == seq_b, "seed 42"
    assert seq_a != seq_c
    for n, delay in enumerate(seq_a, start=1):
        base = min(2 ** (n - 1), 30)
        assert 0.8 * base <= delay <= 1.2 * base, (n, delay)


def test_scaled_config_scales_delays():
    policy = BackoffPolicy.from_config(ClientConfig.seed().scaled(0.1))
    assert [round(policy.delay(n, True, random.Random(0)), 9) for n in (1, 2, 6)] == [0.1, 0.2, 3.0]


def test_attempt_is_one_based():
    with pytest.raises(ValueError, match="1-based"):
        BackoffPolicy().base_delay(0, True)
