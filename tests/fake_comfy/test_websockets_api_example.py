"""The flow of ComfyUI's script_examples/websockets_api_example.py against the fake.

Same libraries and calls as the example (websocket-client's blocking `WebSocket`,
`urllib.request`): POST /prompt with a client_id, read /ws until `executing` with
`node: null` for that prompt, GET /history/{id}, GET /view for every image. Run in a
thread because the example is synchronous. One version with aiohttp as well.
"""
from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
import uuid

import aiohttp
import websocket

from comfy_chaos.fake_comfy.testing import W_BASIC, receive_json_until


def example_flow(server_address: str, prompt: dict) -> dict[str, list[bytes]]:
    client_id = str(uuid.uuid4())

    def queue_prompt(prompt: dict) -> dict:
        data = json.dumps({"prompt": prompt, "client_id": client_id}).encode("utf-8")
        request = urllib.request.Request(f"http://{server_address}/prompt", data=data)
        return json.loads(urllib.request.urlopen(request, timeout=10).read())

    def get_image(filename: str, subfolder: str, folder_type: str) -> bytes:
        query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": folder_type})
        with urllib.request.urlopen(f"http://{server_address}/view?{query}", timeout=10) as response:
            return response.read()

    def get_history(prompt_id: str) -> dict:
        with urllib.request.urlopen(f"http://{server_address}/history/{prompt_id}", timeout=10) as response:
            return json.loads(response.read())

    ws = websocket.WebSocket()
    ws.connect(f"ws://{server_address}/ws?clientId={client_id}", timeout=10)
    try:
        prompt_id = queue_prompt(prompt)["prompt_id"]
        while True:
            out = ws.recv()
            if isinstance(out, str):
                message = json.loads(out)
                if message["type"] == "executing":
                    data = message["data"]
                    if data["node"] is None and data["prompt_id"] == prompt_id:
                        break
        history = get_history(prompt_id)[prompt_id]
        images: dict[str, list[bytes]] = {}
        for node_id, node_output in history["outputs"].items():
            if "images" in node_output:
                images[node_id] = [get_image(i["filename"], i["subfolder"], i["type"]) for i in node_output["images"]]
        return images
    finally:
        ws.close()


async def test_websockets_api_example_with_websocket_client(server) -> None:
    progress = json.loads(json.dumps(W_BASIC))
    progress["5"] = {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}  # binary previews too
    async with asyncio.timeout(30):
        images = await asyncio.to_thread(example_flow, f"{server.host}:{server.port}", progress)
    assert set(images) == {"3", "4"}
    assert [len(v) for v in images.values()] == [2, 2]
    assert all(data.startswith(b"\x89PNG\r\n\x1a\n") for blobs in images.values() for data in blobs)


async def test_websockets_api_example_flow_with_aiohttp(server, http: aiohttp.ClientSession) -> None:
    client_id = str(uuid.uuid4())
    ws = await http.ws_connect(f"{server.base_url}/ws?clientId={client_id}")
    try:
        resp = await http.post(f"{server.base_url}/prompt", data=json.dumps({"prompt": W_BASIC, "client_id": client_id}))
        assert resp.status == 200
        prompt_id = (await resp.json())["prompt_id"]
        await receive_json_until(
            ws, lambda m: m["type"] == "executing" and m["data"]["node"] is None and m["data"]["prompt_id"] == prompt_id
        )
        history = await (await http.get(f"{server.base_url}/history/{prompt_id}")).json()
        for node_output in history[prompt_id]["outputs"].values():
            for image in node_output["images"]:
                r = await http.get(f"{server.base_url}/view", params=image)
                assert r.status == 200 and (await r.read()).startswith(b"\x89PNG")
        assert set(history[prompt_id]["outputs"]) == {"3", "4"}
    finally:
        await ws.close()
