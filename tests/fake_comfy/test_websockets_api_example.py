"""The flow of ComfyUI's script_examples/websockets_api_example.py, unchanged, against the fake."""
from __future__ import annotations

import json
import uuid

import aiohttp


from fakehelp import W_BASIC, receive_json_until


async def test_websockets_api_example_flow(server, http: aiohttp.ClientSession) -> None:
    client_id = str(uuid.uuid4())
    ws = await http.ws_connect(f"{server.base_url}/ws?clientId={client_id}")
    try:
        resp = await http.post(f"{server.base_url}/prompt", data=json.dumps({"prompt": W_BASIC, "client_id": client_id}))
        assert resp.status == 200
        prompt_id = (await resp.json())["prompt_id"]

        def done(message):
            return message["type"] == "executing" and message["data"]["node"] is None and message["data"]["prompt_id"] == prompt_id

        await receive_json_until(ws, done)
        history = await (await http.get(f"{server.base_url}/history/{prompt_id}")).json()
        outputs = history[prompt_id]["outputs"]
        images = {}
        for node_id, node_output in outputs.items():
            if "images" in node_output:
                images[node_id] = []
                for image in node_output["images"]:
                    r = await http.get(f"{server.base_url}/view", params=image)
                    assert r.status == 200
                    images[node_id].append(await r.read())
        assert set(images) == {"3", "4"}
        assert all(len(b) == 2 for b in [images["3"], images["4"]])
        assert all(data.startswith(b"\x89PNG\r\n\x1a\n") for blobs in images.values() for data in blobs)
    finally:
        await ws.close()
