"""Helpers shared by the fake server tests."""
from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import aiohttp

from comfy_chaos.fake_comfy.core import dumps

__all__ = ["W_BASIC", "dumps", "finished", "receive_json_until"]

W_BASIC: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": 3368601}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "t/basic"}},
    "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
}


async def receive_json_until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> list[dict[str, Any]]:
    """Collect JSON text frames until `done(message)` is true (bounded)."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                out.append(data)
                if done(data):
                    return out
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise AssertionError(f"socket closed while waiting: {msg!r}")


def finished(prompt_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == "executing" and m["data"].get("node") is None and m["data"].get("prompt_id") == prompt_id
