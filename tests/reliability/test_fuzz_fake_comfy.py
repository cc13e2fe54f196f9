"""Fuzz the fake ComfyUI server's inputs: HTTP bodies, query strings, API JSON and
WebSocket frames from the client.

Properties (docs/protocol.md section 9, docs/fake_comfy.md "Differences kept on purpose"):
never a 500 (where ComfyUI crashes on bad input the fake answers a 400 JSON error naming
the field), every answer within a bound, errors shaped as ComfyUI's, and afterwards the
server still runs a real prompt end to end and reports it on the WebSocket.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig

from .relhelp import PrivateLoop

pytestmark = pytest.mark.slow  # hundreds of hypothesis examples against a server

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
node_ids = st.sampled_from(["1", "2", "3", "9", "", "01"]) | st.text(max_size=4)
class_types = st.sampled_from(["EmptyImage", "SaveImage", "ImageInvert", "PreviewImage", "NoSuchNode", "ChaosSleep"])
node_inputs = st.dictionaries(
    st.sampled_from(["width", "height", "batch_size", "color", "image", "images", "filename_prefix", "seconds"]),
    json_values | st.tuples(node_ids, st.integers(-2, 3)).map(list),
    max_size=5,
)
nodes = st.fixed_dictionaries({"class_type": class_types, "inputs": node_inputs}) | json_values
prompts = st.dictionaries(node_ids, nodes, max_size=4) | json_values
prompt_bodies = st.fixed_dictionaries(
    {},
    optional={
        "prompt": prompts,
        "client_id": json_values,
        "prompt_id": json_values,
        "number": json_values,
        "front": json_values,
        "extra_data": json_values,
        "partial_execution_targets": json_values,
    },
)
raw_bodies = st.binary(max_size=200) | st.text(max_size=200).map(str.encode)

VALID = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "fuzz/ok"}},
}


class Fake:
    def __init__(self) -> None:
        self.loop = PrivateLoop()
        self.server = FakeComfy(FakeConfig(time_scale=0.0, seed=5))
        self.loop.run(self.server.start())
        self.session = self.loop.run(_session())

    def request(self, method: str, path: str, **kw: Any) -> tuple[int, str, bytes]:
        async def go() -> tuple[int, str, bytes]:
            async with self.session.request(method, self.server.base_url + path, **kw) as resp:
                return resp.status, resp.content_type, await resp.read()

        return self.loop.run(go())

    def close(self) -> None:
        self.loop.run(self.session.close())
        self.loop.run(self.server.stop())
        self.loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    server = Fake()
    try:
        yield server
    finally:
        server.close()


def _assert_clean_error(status: int, content_type: str, body: bytes, where: str) -> Any:
    assert status != 500 and status < 600, f"{where}: {status} {body[:300]!r}"
    if status == 400 and content_type == "application/json":
        parsed = json.loads(body)
        assert isinstance(parsed, dict) and "error" in parsed, f"{where}: 400 without an error object: {body[:300]!r}"
        return parsed
    return None


@FUZZ
@given(body=prompt_bodies)
def test_post_prompt_json_never_500_and_errors_are_comfyui_shaped(fake: Fake, body: dict) -> None:
    status, ctype, raw = fake.request("POST", "/prompt", json=body)
    _assert_clean_error(status, ctype, raw, f"POST /prompt {body!r}")
    assert status in (200, 400), (status, raw[:300])
    parsed = json.loads(raw)
    if status == 200:
        assert isinstance(parsed["prompt_id"], str) and isinstance(parsed["node_errors"], dict)
    else:
        assert isinstance(parsed["error"], dict) and {"type", "message"} <= parsed["error"].keys(), parsed
        assert isinstance(parsed["node_errors"], dict)


@FUZZ
@given(path=st.sampled_from(["/prompt", "/queue", "/history", "/free", "/interrupt", "/upload/image"]), body=raw_bodies)
def test_raw_bodies_never_500(fake: Fake, path: str, body: bytes) -> None:
    status, ctype, raw = fake.request("POST", path, data=body, headers={"Content-Type": "application/json"})
    _assert_clean_error(status, ctype, raw, f"POST {path} {body!r}")


@FUZZ
@given(path=st.sampled_from(["/queue", "/history", "/free", "/interrupt"]), body=json_values)
def test_api_json_never_500(fake: Fake, path: str, body: Any) -> None:
    status, ctype, raw = fake.request("POST", path, json=body)
    _assert_clean_error(status, ctype, raw, f"POST {path} {body!r}")
    assert status in (200, 400), (path, body, status, raw[:300])


query_values = st.text(max_size=12) | st.integers(-5, 10**12).map(str)


@FUZZ
@given(
    path=st.sampled_from(["/history", "/view", "/history/x", "/object_info/EmptyImage", "/models/x", "/api/nope", "/prompt"]),
    query=st.dictionaries(
        st.sampled_from(["max_items", "offset", "filename", "subfolder", "type", "preview", "channel", "clientId"]) | st.text(max_size=6),
        query_values,
        max_size=4,
    ),
)
def test_query_strings_never_500(fake: Fake, path: str, query: dict[str, str]) -> None:
    status, ctype, raw = fake.request("GET", path, params=query)
    _assert_clean_error(status, ctype, raw, f"GET {path}?{query!r}")
    if path == "/view":
        assert status in (200, 400, 403, 404), (query, status)


ws_frames = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(["feature_flags", "x"]), "data": json_values}).map(json.dumps),
    st.binary(max_size=200),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(ws_frames, min_size=1, max_size=6))
def test_websocket_client_frames_never_end_the_server(fake: Fake, frames: list[str | bytes]) -> None:
    """Whatever the client sends, the server keeps its socket usable: after the junk a
    prompt submitted for this client still arrives on it as executing-null."""

    async def go() -> None:
        async with fake.session.ws_connect(f"{fake.server.base_url}/ws?clientId=fuzzws") as ws:
            for frame in frames:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            async with fake.session.post(
                f"{fake.server.base_url}/prompt", json={"prompt": VALID, "client_id": "fuzzws"}
            ) as resp:
                assert resp.status == 200, await resp.text()
                prompt_id = (await resp.json())["prompt_id"]
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if data["type"] == "executing" and data["data"].get("node") is None:
                        if data["data"].get("prompt_id") == prompt_id:
                            return
                elif msg.type != aiohttp.WSMsgType.BINARY:
                    raise AssertionError(f"socket ended after client frames {frames!r}: {msg}")
            raise AssertionError(f"socket closed after client frames {frames!r}")

    fake.loop.run(go())


def test_zz_server_still_serves_after_fuzzing(fake: Fake) -> None:
    """Runs last in the module (name order within the file is definition order): a real
    prompt completes with its outputs in history, and no request so far was a 500."""
    status, _, raw = fake.request("POST", "/prompt", json={"prompt": VALID, "client_id": "after"})
    assert status == 200, raw
    prompt_id = json.loads(raw)["prompt_id"]

    async def wait_done() -> None:
        while fake.server.ledger.prompts[prompt_id].outcome is None:
            fake.server.activity.clear()
            await fake.server.activity.wait()

    fake.loop.run(wait_done())
    assert fake.server.ledger.prompts[prompt_id].outcome == "success"
    status, _, raw = fake.request("GET", f"/history/{prompt_id}")
    assert status == 200 and json.loads(raw)[prompt_id]["status"]["status_str"] == "success"
    assert not [h for h in fake.server.ledger.http if h.status >= 500], "a fuzzed request got a 5xx"
