"""Start a real FakeComfy with a fault schedule; drive one prompt through a raw WebSocket."""
from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
from comfy_chaos.fake_comfy.faults import FaultEngine, FaultSchedule
from comfy_chaos.fake_comfy.ledger import tag_workflow
from comfy_chaos.fake_comfy.testing.rawws import CLOSE, Frame, RawWs

W_BASIC: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": 3368601}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "t/basic"}},
    "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
}


@contextlib.asynccontextmanager
async def serving(specs: list[dict[str, Any]], seed: int = 7) -> AsyncIterator[tuple[FakeComfy, FaultEngine]]:
    engine = FaultEngine(FaultSchedule.of(specs), seed=seed, time_scale=1.0)
    server = FakeComfy(FakeConfig(time_scale=0.0, seed=seed), faults=engine)
    await server.start(host="127.0.0.1", port=0)
    try:
        yield server, engine
    finally:
        await server.stop()


async def connect(server: FakeComfy, client: str = "c0", api: bool = False) -> RawWs:
    return await RawWs.connect("127.0.0.1", server.port, f"{'/api' if api else ''}/ws?clientId={client}")


def variant(color: int) -> dict[str, Any]:
    """W_BASIC with another colour, so it is not served from the fake's cache."""
    workflow = json.loads(json.dumps(W_BASIC))
    workflow["1"]["inputs"]["color"] = color
    return workflow


async def submit(server: FakeComfy, client: str = "c0", task: str = "t0", workflow: dict[str, Any] | None = None) -> str:
    async with aiohttp.ClientSession() as http:
        body = {"prompt": tag_workflow(workflow or W_BASIC, task), "client_id": client}
        async with http.post(f"{server.base_url}/prompt", data=json.dumps(body)) as resp:
            assert resp.status == 200, await resp.text()
            return (await resp.json())["prompt_id"]


def is_final(frame: Frame) -> bool:
    return frame.opcode == 1 and b'"type": "executing"' in frame.payload and b'"node": null' in frame.payload


async def run_prompt(server: FakeComfy, ws: RawWs, client: str = "c0", task: str = "t0") -> tuple[str, list[Frame]]:
    """Submit one prompt; collect frames until its final executing, a close or EOF (bounded)."""
    prompt_id = await submit(server, client, task)
    frames = []
    while True:
        frame = await ws.recv(timeout=60)
        frames.append(frame)
        if frame.opcode in (0, CLOSE) or (is_final(frame) and prompt_id.encode() in frame.payload):
            return prompt_id, frames


def text_types(frames: list[Frame]) -> list[str]:
    out = []
    for f in frames:
        if f.opcode == 1:
            try:
                out.append(f.json()["type"])
            except (ValueError, KeyError):
                out.append("<unparsable>")
        else:
            out.append({2: "<binary>", 8: "<close>", 0: "<eof>"}.get(f.opcode, str(f.opcode)))
    return out
