"""Every timing and switch of the client in one frozen object.

Two ready profiles: `ClientConfig.reference()` (every mechanism, with the fixes) and
`ClientConfig.seed()` (the original web client's behaviour as written, so the harness
can show the difference). All durations are seconds; `.scaled(f)` multiplies each one.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


def _duration(default: Any) -> Any:
    return field(default=default, metadata={"duration": True})


@dataclass(frozen=True)
class ClientConfig:
    # Deadlines and bounds
    task_deadline: float = _duration(600.0)
    http_timeout: float = _duration(10.0)
    connect_timeout: float = _duration(10.0)
    close_timeout: float = _duration(2.0)

    # Reconnect (seed numbers: 1 s with pending tasks, 5 s without, x2, cap 30 s, 10 attempts)
    reconnect_base_pending: float = _duration(1.0)
    reconnect_base_idle: float = _duration(5.0)
    reconnect_factor: float = 2.0
    reconnect_cap: float = _duration(30.0)
    reconnect_jitter: float = 0.2
    max_reconnect_attempts: int = 10
    after_max_attempts: Literal["slow", "give_up"] = "slow"

    # Health check
    health: Literal["probe", "silence"] = "probe"
    ws_heartbeat: float | None = _duration(10.0)
    probe_quiet: float = _duration(5.0)
    probe_interval: float = _duration(5.0)
    echo_timeout: float | None = _duration(2.5)
    silence_timeout: float = _duration(30.0)
    silence_check_interval: float = _duration(10.0)

    # HTTP polling fallback (only while the WebSocket is down)
    poll_interval: float = _duration(3.0)
    poll_via_queue: bool = True
    poll_backoff: bool = True  # a task absent from /queue and /history is re-checked less and less often
    jobs_api: bool = True  # read the queue from GET /api/jobs where the server has it (ComfyUI >= 0.6)

    # Completion
    reconcile_on_reconnect: bool = True
    use_hints: bool = True
    success_grace: float = _duration(0.5)
    history_retry_delays: tuple[float, ...] = _duration((0.1, 0.25, 0.5, 1.0, 2.0))
    empty_history_is_pending: bool = True
    history_requires_completed: bool = False
    final_check: bool = True

    # Submission
    submit_mode: Literal["lookup", "once"] = "lookup"
    client_prompt_id: bool = True
    submit_attempts: int = 5
    submit_retry_delay: float = _duration(0.5)
    submit_lookup_delay: float = _duration(0.5)
    submit_lookups: int = 3

    # Misc
    rng_seed: int = 0
    http_concurrency: int = 8
    max_msg_size: int = 64 * 1024 * 1024
    max_repair_chars: int = 1024 * 1024
    # Not scaled: network and CPU costs do not shrink with the harness's time scale, so the
    # HTTP/connect timeouts and the ping interval never go below this (seconds).
    timeout_floor: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("duration"):
                values = value if isinstance(value, tuple) else (value,)
                for v in values:
                    if v is not None and (not isinstance(v, (int, float)) or v < 0):
                        raise ValueError(f"ClientConfig.{f.name}: expected seconds >= 0, got {value!r}")
        if self.reconnect_factor < 1:
            raise ValueError(f"ClientConfig.reconnect_factor: expected >= 1, got {self.reconnect_factor!r}")
        if not 0 <= self.reconnect_jitter < 1:
            raise ValueError(f"ClientConfig.reconnect_jitter: expected in [0, 1), got {self.reconnect_jitter!r}")
        for name in ("max_reconnect_attempts", "submit_attempts", "submit_lookups", "http_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClientConfig.{name}: expected >= 1, got {getattr(self, name)!r}")

    @property
    def request_timeout(self) -> float:
        """`http_timeout`, never below `timeout_floor`."""
        return max(self.http_timeout, self.timeout_floor)

    @property
    def ws_connect_timeout(self) -> float:
        """`connect_timeout`, never below `timeout_floor`."""
        return max(self.connect_timeout, self.timeout_floor)

    @property
    def heartbeat(self) -> float | None:
        """`ws_heartbeat`, never below `timeout_floor` (None = no pings)."""
        return None if self.ws_heartbeat is None else max(self.ws_heartbeat, self.timeout_floor)

    def scaled(self, factor: float) -> ClientConfig:
        """A copy with every duration multiplied by `factor` (the harness's time_scale)."""
        if not factor > 0:
            raise ValueError(f"ClientConfig.scaled: factor must be > 0, got {factor!r}")
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if not f.metadata.get("duration"):
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            changes[f.name] = tuple(v * factor for v in value) if isinstance(value, tuple) else value * factor
        return dataclasses.replace(self, **changes)

    def replace(self, **changes: Any) -> ClientConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def reference(cls) -> ClientConfig:
        """All mechanisms, including the fixes the seed lacks."""
        return cls()

    @classmethod
    def seed(cls) -> ClientConfig:
        """The seed web client as written: no reconcile, silence health check, gives up after 10 attempts."""
        return cls(
            reconnect_jitter=0.0,
            after_max_attempts="give_up",
            health="silence",
            ws_heartbeat=None,
            echo_timeout=None,
            poll_via_queue=False,
            poll_backoff=False,
            jobs_api=False,
            reconcile_on_reconnect=False,
            use_hints=False,
            history_retry_delays=(),
            empty_history_is_pending=False,
            history_requires_completed=True,
            submit_mode="once",
            client_prompt_id=False,
            submit_attempts=1,
        )
