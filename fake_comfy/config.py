"""Configuration of the fake ComfyUI server."""
from __future__ import annotations

from dataclasses import dataclass

from comfy_chaos.fake_comfy.profiles import DEFAULT_VERSION, Profile, get_profile
from comfy_chaos.fake_comfy.timescale import TimeScale


@dataclass(frozen=True, slots=True)
class FakeConfig:
    """`time_scale` multiplies every node duration (0 → run as fast as possible)."""

    time_scale: float = 1.0
    seed: int = 0
    max_upload_size_mb: int = 100  # ComfyUI --max-upload-size; request body cap and feature flag
    history_size: int = 10000  # ComfyUI MAXIMUM_HISTORY_SIZE
    origin_check: bool = True  # ComfyUI's loopback Origin/Host check (off with --enable-cors-header)
    ledger_limit: int | None = None  # keep only the last N prompts/connections/requests (serve); None = all
    upload_quota_mb: int = 256  # total bytes /upload/image may store (the scratch tree is often RAM)
    comfyui_version: str = DEFAULT_VERSION  # the protocol profile (fake_comfy.profiles)

    def __post_init__(self) -> None:
        try:
            TimeScale(self.time_scale)  # the one check: a finite number >= 0 (inf would hang the executor)
        except (TypeError, ValueError):
            raise ValueError(f"FakeConfig.time_scale must be a finite number >= 0, got {self.time_scale!r}") from None
        if self.max_upload_size_mb <= 0:
            raise ValueError(f"FakeConfig.max_upload_size_mb must be > 0, got {self.max_upload_size_mb!r}")
        if self.ledger_limit is not None and self.ledger_limit <= 0:
            raise ValueError(f"FakeConfig.ledger_limit must be > 0 or None, got {self.ledger_limit!r}")
        if self.upload_quota_mb <= 0:
            raise ValueError(f"FakeConfig.upload_quota_mb must be > 0, got {self.upload_quota_mb!r}")
        if self.history_size <= 0:
            raise ValueError(f"FakeConfig.history_size must be > 0, got {self.history_size!r}")
        object.__setattr__(self, "comfyui_version", get_profile(self.comfyui_version).name)

    @property
    def scale(self) -> TimeScale:
        """`time_scale` as the one value that converts node and step durations to real seconds."""
        return TimeScale(self.time_scale)

    @property
    def profile(self) -> Profile:
        return get_profile(self.comfyui_version)

    @property
    def max_upload_size(self) -> int:
        return self.max_upload_size_mb * 1024 * 1024
