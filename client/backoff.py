"""Reconnect delays: exponential backoff with seeded jitter (pure policy, no IO).

Seed numbers: the n-th attempt after a drop waits `min(base * 2**(n-1), 30 s)` where
base is 1 s while tasks are pending and 5 s otherwise. After `max_attempts` the seed
gives up; the reference client keeps trying at the cap ("slow" mode) and meanwhile
relies on HTTP polling, so no pending task is abandoned before its deadline.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from comfy_chaos.client.config import ClientConfig


@dataclass(frozen=True)
class BackoffPolicy:
    base_pending: float = 1.0
    base_idle: float = 5.0
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.0
    max_attempts: int = 10
    after_max: Literal["slow", "give_up"] = "slow"

    @classmethod
    def from_config(cls, config: ClientConfig) -> BackoffPolicy:
        return cls(
            base_pending=config.reconnect_base_pending,
            base_idle=config.reconnect_base_idle,
            factor=config.reconnect_factor,
            cap=config.reconnect_cap,
            jitter=config.reconnect_jitter,
            max_attempts=config.max_reconnect_attempts,
            after_max=config.after_max_attempts,
        )

    def base_delay(self, attempt: int, has_pending: bool) -> float | None:
        """Delay before the `attempt`-th (1-based) reconnect attempt, without jitter; None = give up."""
        if attempt < 1:
            raise ValueError(f"BackoffPolicy.base_delay: attempt is 1-based, got {attempt}")
        if attempt > self.max_attempts:
            return None if self.after_max == "give_up" else self.cap
        base = self.base_pending if has_pending else self.base_idle
        # exponent capped so huge attempt numbers cannot overflow a float
        return min(base * self.factor ** min(attempt - 1, 64), self.cap)

    def delay(self, attempt: int, has_pending: bool, rng: random.Random) -> float | None:
        """`base_delay` spread uniformly by ±jitter (drawn from `rng`, so a seed reproduces it)."""
        base = self.base_delay(attempt, has_pending)
        if base is None or self.jitter == 0:
            return base
        return base * (1.0 + self.jitter * (2.0 * rng.random() - 1.0))


class ReconnectSchedule:
    """Attempt counter + policy + seeded RNG: what the WebSocket driver asks before each retry."""

    def __init__(self, policy: BackoffPolicy, seed: int) -> None:
        self.policy = policy
        self._rng = random.Random(seed)
        self.attempt = 0

    def next_delay(self, has_pending: bool) -> float | None:
        """Count one more attempt and return the wait before it (None = stop reconnecting)."""
        self.attempt += 1
        return self.policy.delay(self.attempt, has_pending, self._rng)

    def reset(self) -> None:
        """Call when a connection was established."""
        self.attempt = 0
