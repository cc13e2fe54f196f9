"""Fake ComfyUI server: speaks ComfyUI's HTTP + WebSocket protocol, then misbehaves on purpose."""
from fake_comfy.config import FakeConfig
from fake_comfy.server import FakeComfy

__all__ = ["FakeComfy", "FakeConfig"]
