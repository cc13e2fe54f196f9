"""Fake ComfyUI server: speaks ComfyUI's HTTP + WebSocket protocol, then misbehaves on purpose.

`FakeComfy` and `FakeConfig` are imported on first use, so that light modules such as
`fake_comfy.profiles` (read by the CLIs and the pytest plugin) do not pull in aiohttp.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from comfy_chaos.fake_comfy.config import FakeConfig
    from comfy_chaos.fake_comfy.server import FakeComfy

__all__ = ["FakeComfy", "FakeConfig"]


def __getattr__(name: str) -> Any:
    if name == "FakeComfy":
        from comfy_chaos.fake_comfy.server import FakeComfy

        return FakeComfy
    if name == "FakeConfig":
        from comfy_chaos.fake_comfy.config import FakeConfig

        return FakeConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
