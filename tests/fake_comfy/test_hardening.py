"""The fake server against hostile input: writes confined to its own folder, bad bodies and
upload names answered 400, slow readers and half-open connections costing only themselves.

Every wait is bounded; nothing here asserts on wall-clock speed.
"""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakehelp import finished, receive_json_until

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig


def _latent(prefix: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "2": {"class_type": "SaveLatent", "inputs": {"samples": ["1", 0], "filename_prefix": prefix}},
    }


def _image(prefix: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


async def _run(http: aiohttp.ClientSession, server: FakeComfy, prompt: dict[str, Any]) -> dict[str, Any]:
    """Submit `prompt` with a socket open; return its history entry once it has finished."""
    async with http.ws_connect(f"{server.base_url}/ws?clientId=w") as ws:
        async with http.post(f"{server.base_url}/prompt", json={"prompt": prompt, "client_id": "w"}) as resp:
            assert resp.status == 200, await resp.text()
            prompt_id = (await resp.json())["prompt_id"]
        await receive_json_until(ws, finished(prompt_id))
    for _ in range(100):  # the history write follows the last frame by one tick
        async with http.get(f"{server.base_url}/history/{prompt_id}") as resp:
            history = await resp.json()
        if prompt_id in history:
            return history[prompt_id]
        await asyncio.sleep(0.01)
    raise AssertionError("no history entry")


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("node", [_latent, _image])
@pytest.mark.parametrize("where", ["absolute", "dotdot", "inner-dotdot"])
async def test_writing_nodes_never_write_outside_the_output_folder(
    server: FakeComfy, http: aiohttp.ClientSession, tmp_path: Path, node: Any, where: str
) -> None:
    target = tmp_path / "target"
    relative = os.path.relpath(target, os.path.join(server.root, "output"))
    prefix = {"absolute": f"{target}/x", "dotdot": f"{relative}/x", "inner-dotdot": f"a/../{relative}/x"}[where]
    entry = await _run(http, server, node(prefix))
    assert not target.exists(), f"{node.__name__} wrote outside the output folder: {sorted(_files_under(tmp_path))}"
    status = entry["status"]
    assert status["status_str"] == "error"
    error = status["messages"][-1][1]
    assert error["exception_type"] == "Exception"
    assert "Saving image outside the output folder is not allowed" in error["exception_message"]


async def test_save_latent_inside_the_output_folder_still_writes(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    entry = await _run(http, server, _latent("latents/a/../b/ComfyUI"))
    assert entry["status"]["status_str"] == "success"
    (latent,) = entry["outputs"]["2"]["latents"]
    assert latent["subfolder"] == "latents/b"  # normalised, as ComfyUI's get_save_image_path does
    assert os.path.isfile(os.path.join(server.root, "output", "latents", "b", latent["filename"]))
