"""Fake ComfyUI server: speaks ComfyUI's HTTP + WebSocket protocol, then misbehaves on purpose."""
from comfy_chaos.fake_comfy.config import FakeConfig
from comfy_chaos.fake_comfy.server import FakeComfy

__all__ = ["FakeComfy", "FakeConfig"]
