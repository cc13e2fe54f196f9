"""ClientConfig: scaling, profiles, validation."""
from __future__ import annotations

import dataclasses

import pytest

from comfy_chaos.client.config import ClientConfig


def test_scaled_multiplies_every_duration_and_nothing_else():
    base = ClientConfig.reference()
    scaled = base.scaled(0.1)
    for f in dataclasses.fields(base):
        a, b = getattr(base, f.name), getattr(scaled, f.name)
        if f.metadata.get("duration") and a is not None:
            expected = tuple(x * 0.1 for x in a) if isinstance(a, tuple) else a * 0.1
            assert b == pytest.approx(expected), f.name
        else:
            assert a == b, f.name


def test_seed_profile_is_the_seed_as_written():
    seed = ClientConfig.seed()
    assert (seed.reconnect_base_pending, seed.reconnect_base_idle, seed.reconnect_cap) == (1.0, 5.0, 30.0)
    assert seed.max_reconnect_attempts == 10 and seed.after_max_attempts == "give_up"
    assert seed.health == "silence" and seed.silence_timeout == 30.0 and seed.silence_check_interval == 10.0
    assert seed.poll_interval == 3.0
    assert not seed.reconcile_on_reconnect
    assert seed.final_check


def test_reference_profile_has_every_fix():
    ref = ClientConfig.reference()
    assert ref.reconcile_on_reconnect and ref.use_hints and ref.empty_history_is_pending
    assert ref.after_max_attempts == "slow" and ref.health == "probe" and ref.ws_heartbeat
    assert ref.submit_mode == "lookup" and ref.client_prompt_id
    assert ref.task_deadline == 600.0


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"poll_interval": -1}, "poll_interval"),
        ({"history_retry_delays": (0.1, -2)}, "history_retry_delays"),
        ({"reconnect_jitter": 1.5}, "reconnect_jitter"),
        ({"submit_attempts": 0}, "submit_attempts"),
    ],
)
def test_bad_values_name_the_field(changes, match):
    with pytest.raises(ValueError, match=match):
        ClientConfig(**changes)


def test_scale_factor_must_be_positive():
    with pytest.raises(ValueError, match="factor"):
        ClientConfig().scaled(0)
