"""Read ComfyUI's JSON frames from an aiohttp WebSocket until a condition holds."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

__all__ = ["finished", "receive_json_until"]

async def receive_json_until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> list[dict[str, Any]]:
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
    """True for the `executing` frame with node null that ends `prompt_id`."""
    return lambda m: m["type"] == "executing" and m["data"].get("node") is None and m["data"].get("prompt_id") == prompt_id
