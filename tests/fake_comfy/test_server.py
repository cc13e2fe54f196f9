"""The aiohttp transport: routes, bad input, socket semantics, restart, fault hook points."""
from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
from comfy_chaos.fake_comfy.events import ServerEvent
from comfy_chaos.fake_comfy.server import HTTP_FAULT_KEY
from comfy_chaos.fake_comfy.testing import W_BASIC, finished, receive_json_until
from comfy_chaos.fake_comfy.wire import OutFrame, WsConn

SLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ChaosSleep", "inputs": {"images": ["1", 0], "seconds": 3600.0}},
    "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
}


async def post_prompt(http: aiohttp.ClientSession, server: FakeComfy, prompt: dict[str, Any], **body: Any) -> dict[str, Any]:
    async with http.post(f"{server.base_url}/prompt", json={"prompt": prompt, **body}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def wait_for(server: FakeComfy, predicate, what: str, timeout: float = 10.0) -> None:
    """Wait (bounded) for a condition on server state, re-checked on each server activity."""
    assert server.activity is not None
    try:
        async with asyncio.timeout(timeout):
            while True:
                server.activity.clear()
                if predicate():
                    return
                await server.activity.wait()
    except TimeoutError:
        raise AssertionError(f"timed out waiting for: {what}") from None


async def test_every_route_is_mirrored_under_api(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    for path in ["/prompt", "/queue", "/history", "/system_stats", "/object_info", "/object_info/EmptyImage",
                 "/embeddings", "/models", "/models/checkpoints", "/features", "/extensions"]:  # fmt: skip
        async with http.get(server.base_url + path) as plain, http.get(server.base_url + "/api" + path) as api:
            assert plain.status == api.status == 200, path
            assert plain.headers["Content-Type"] == "application/json; charset=utf-8"
            assert await plain.json() == await api.json(), path
    async with http.get(server.base_url + "/object_info/NoSuchNode") as resp:
        assert await resp.json() == {}
    async with http.get(server.base_url + "/api/nonexistent") as resp:
        assert resp.status == 404 and resp.headers["Content-Type"] == "application/octet-stream"
        assert await resp.read() == b""
    async with http.get(server.base_url + "/models/nope") as resp:
        assert resp.status == 404


async def test_object_info_lists_every_node_class_with_input_specs(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    async with http.get(server.base_url + "/object_info") as resp:
        info = await resp.json()
    for name in ["EmptyImage", "ImageInvert", "ImageBlur", "PreviewImage", "SaveImage", "SaveImageWebsocket",
                 "GetImageSize", "EmptyLatentImage", "LatentUpscale", "SaveLatent", "ChaosSleep", "ChaosProgress", "ChaosFail"]:  # fmt: skip
        assert info[name]["name"] == name
        assert set(info[name]["input_order"]["required"]) == set(info[name]["input"]["required"])


async def test_json_bodies_use_python_default_separators(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    async with http.get(server.base_url + "/features") as resp:
        assert await resp.text() == (
            '{"supports_preview_metadata": true, "supports_model_type_tags": true, "max_upload_size": 104857600, '
            '"extension": {"manager": {"supports_v4": true}}, "node_replacements": true, "assets": false}'
        )


async def test_bad_input_gets_clear_errors_and_server_keeps_serving(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    url = server.base_url
    async with http.post(url + "/prompt", data="this is not json") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "invalid_json"
    async with http.post(url + "/prompt", json={"prompt": [1, 2]}) as resp:
        assert resp.status == 400 and "prompt" in (await resp.json())["error"]["message"]
    async with http.post(url + "/prompt", json={"prompt": W_BASIC, "client_id": 5}) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["details"] == "client_id"
    async with http.post(url + "/prompt", json={"prompt": W_BASIC, "extra_data": []}) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["details"] == "extra_data"
    async with http.post(url + "/queue", data="{") as resp:
        assert resp.status == 400
    async with http.post(url + "/interrupt", data="not json") as resp:
        assert resp.status == 200  # as ComfyUI: treated as a global interrupt
    async with http.get(url + "/history?max_items=abc") as resp:
        assert resp.status == 400
    async with http.post(url + "/prompt", data=b"x" * (server.config.max_upload_size + 1)) as resp:
        assert resp.status == 413
    async with http.get(url + "/view", params={"filename": "../etc/passwd"}) as resp:
        assert resp.status == 400
    async with http.get(url + "/view", params={"filename": "a.png", "subfolder": "../../x"}) as resp:
        assert resp.status == 403
    async with http.get(url + "/view", params={"filename": "a.png", "type": "nope"}) as resp:
        assert resp.status == 400
    cycle = {"1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
             "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
             "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}  # fmt: skip
    async with http.post(url + "/prompt", json={"prompt": cycle}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "prompt_outputs_failed_validation"
    async with http.get(url + "/ws") as resp:  # plain GET, no upgrade
        assert resp.status == 400
    ws = await http.ws_connect(url + "/ws?clientId=garbage")
    try:
        await receive_json_until(ws, lambda m: m["type"] == "status")
        await ws.send_str("\x00\xff not json")
        await ws.send_str("[" * 100_000)  # nesting deeper than json.loads can take
        await ws.send_bytes(b"\x00\x01")
        body = await post_prompt(http, server, W_BASIC, client_id="garbage")
        await receive_json_until(ws, finished(body["prompt_id"]))
    finally:
        await ws.close()


async def test_oversized_client_frame_closes_with_1009(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    ws = await http.ws_connect(server.base_url + "/ws?clientId=big", max_msg_size=0)
    await receive_json_until(ws, lambda m: m["type"] == "status")
    receiving = asyncio.create_task(ws.receive())
    try:
        await ws.send_str("a" * (4 * 1024 * 1024 + 1))
    except ConnectionError:
        pass  # the server may close before it has read the whole frame
    async with asyncio.timeout(10):
        msg = await receiving
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1009
    await ws.close()


async def test_client_close_code_is_answered_with_1000(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    ws = await http.ws_connect(server.base_url + "/ws?clientId=closer")
    await receive_json_until(ws, lambda m: m["type"] == "status")
    await ws.close(code=4001)
    assert ws.close_code == 1000


async def test_same_client_id_newer_socket_wins_then_is_orphaned(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    url = server.base_url + "/ws?clientId=dup"
    old = await http.ws_connect(url)
    await receive_json_until(old, lambda m: m["type"] == "status")
    new = await http.ws_connect(url)
    await receive_json_until(new, lambda m: m["type"] == "status")
    try:
        body = await post_prompt(http, server, W_BASIC, client_id="dup")
        await receive_json_until(new, finished(body["prompt_id"]))
        await old.close()
        await wait_for(server, lambda: "dup" not in server.core.sockets, "the old socket's close forgot the id")
        events = [c.event for c in server.ledger.connections if c.sid == "dup"]
        assert events == ["open", "replaced", "open", "close", "orphaned"]
        body = await post_prompt(http, server, W_BASIC, client_id="dup")
        await wait_for(server, lambda: server.ledger.prompts[body["prompt_id"]].outcome == "success", "second prompt done")
        await wait_for(server, lambda: server.is_quiescent(), "all frames handed to the transport")
        assert not any(m.delivered for m in server.ledger.prompts[body["prompt_id"]].messages)
        await asyncio.wait_for(new.ping(), 5)  # still open, just unrouted
    finally:
        await new.close()


async def test_ledger_records_messages_connections_and_http(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    ws = await http.ws_connect(server.base_url + "/ws?clientId=led")
    try:
        await receive_json_until(ws, lambda m: m["type"] == "status")
        body = await post_prompt(http, server, W_BASIC, client_id="led")
        await receive_json_until(ws, finished(body["prompt_id"]))
    finally:
        await ws.close()
    record = server.ledger.prompts[body["prompt_id"]]
    assert record.outcome == "success" and record.started_at <= record.completed_at
    types = [m.message_type for m in record.messages]
    assert types[0] == "execution_start" and types[-1] == "executing" and "execution_success" in types
    assert all(m.delivered and m.sid == "led" for m in record.messages)
    assert ("POST", "/prompt", 200) in [(h.method, h.path, h.status) for h in server.ledger.http]
    assert json.loads(json.dumps(server.ledger.to_dict()))["prompts"][body["prompt_id"]]["outcome"] == "success"


async def test_restart_drops_sockets_and_queue(http: aiohttp.ClientSession) -> None:
    server = FakeComfy(FakeConfig(time_scale=1.0, seed=2))
    await server.start()
    try:
        ws = await http.ws_connect(server.base_url + "/ws?clientId=r")
        await receive_json_until(ws, lambda m: m["type"] == "status")
        done = await post_prompt(http, server, W_BASIC, client_id="r")
        await receive_json_until(ws, finished(done["prompt_id"]))
        running = await post_prompt(http, server, SLOW, client_id="r")
        pending = await post_prompt(http, server, W_BASIC, client_id="r")
        await receive_json_until(ws, lambda m: m["type"] == "executing" and m["data"].get("node") == "2")
        await server.restart(keep_history=True)
        async with asyncio.timeout(60):
            msg = await ws.receive()
            while msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):  # sent before the restart,
                msg = await ws.receive()  # still unread on a loaded machine
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
        for pid in (running["prompt_id"], pending["prompt_id"]):
            assert server.ledger.prompts[pid].outcome is None
        async with http.get(server.base_url + "/queue") as resp:
            assert await resp.json() == {"queue_running": [], "queue_pending": []}
        async with http.get(server.base_url + f"/history/{done['prompt_id']}") as resp:
            assert done["prompt_id"] in await resp.json()  # kept
        again = await post_prompt(http, server, W_BASIC)
        assert again["number"] == 0  # counter reset
        await ws.close()
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"GET /prompt HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            await server.restart()
            assert await reader.read() == b""  # the idle keep-alive connection was dropped too
        writer.close()
    finally:
        await server.stop()
    assert not os.path.exists(server.root)


class RecordingFaults:
    """A minimal stand-in for FaultEngine: records the hook calls, refuses one client id."""

    def __init__(self) -> None:
        self.bound: Any = None
        self.started = self.stopped = False
        self.frames: list[OutFrame] = []
        self.events: list[ServerEvent] = []
        self.http: list[str] = []

    def bind(self, server: Any) -> None:
        self.bound = server

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def on_event(self, event: ServerEvent) -> None:
        self.events.append(event)

    def on_ws_connect(self, conn: WsConn) -> bool:
        return conn.sid != "refused"

    async def on_ws_frame(self, conn: WsConn, frame: OutFrame) -> None:
        self.frames.append(frame)
        if frame.message_type == "execution_success":
            return  # dropped
        if frame.text is not None:
            await conn.send_raw_text_frame(frame.text.encode())
        else:
            await conn.send_bytes(frame.data or b"")

    async def on_http(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.http.append(request.path)
        if request.path == "/system_stats":
            request[HTTP_FAULT_KEY] = "http_error"
            return web.Response(status=500, text="injected")
        return await handler(request)


@pytest.mark.filterwarnings("ignore::aiohttp.web.NotAppKeyWarning")  # the fault layer's key is a plain string
async def test_fault_hook_points(http: aiohttp.ClientSession) -> None:
    faults = RecordingFaults()
    server = FakeComfy(FakeConfig(time_scale=0.0), faults=faults)  # type: ignore[arg-type]
    assert faults.bound is server
    await server.start()
    try:
        assert faults.started
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(server.base_url + "/ws?clientId=refused")
        assert refused.value.status == 503
        ws = await http.ws_connect(server.base_url + "/ws?clientId=f")
        body = await post_prompt(http, server, W_BASIC, client_id="f")
        got = await receive_json_until(ws, finished(body["prompt_id"]))
        assert "execution_success" not in [m["type"] for m in got]
        await ws.close()
        async with http.get(server.base_url + "/system_stats") as resp:
            assert resp.status == 500
    finally:
        await server.stop()
    assert faults.stopped
    assert faults.frames[0].message_type == "status"
    record = server.ledger.prompts[body["prompt_id"]]
    success = next(m for m in record.messages if m.message_type == "execution_success")
    assert success.delivered is False
    assert all(m.delivered for m in record.messages if m.message_type != "execution_success")
    assert [c.event for c in server.ledger.connections if c.sid == "refused"] == ["refused"]
    assert ("/system_stats", 500, "http_error") in [(h.path, h.status, h.fault) for h in server.ledger.http]
    kinds = {e.kind for e in faults.events}
    assert {"prompt_accepted", "prompt_started", "node_started", "message", "prompt_completed",
            "ws_connected", "ws_disconnected", "http_request"} <= kinds  # fmt: skip


async def test_set_silent_stops_pong_replies(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    ws = await http.ws_connect(server.base_url + "/ws?clientId=quiet", autoping=False)
    try:
        await receive_json_until(ws, lambda m: m["type"] == "status")
        conn = next(c for c in server.conns.values() if c.sid == "quiet")
        await ws.ping(b"one")
        async with asyncio.timeout(5):
            pong = await ws.receive()
        assert pong.type == aiohttp.WSMsgType.PONG and pong.data == b"one"
        conn.set_silent(True)
        handled = conn.frames_received
        await ws.ping(b"two")
        await wait_for(server, lambda: conn.frames_received > handled, "the server read the ping")
        conn.set_silent(False)
        await ws.ping(b"three")
        async with asyncio.timeout(5):
            pong = await ws.receive()
        assert pong.data == b"three"  # no pong was sent for "two"
    finally:
        await ws.close()


async def test_start_on_a_busy_port_fails_cleanly(server: FakeComfy) -> None:
    second = FakeComfy(FakeConfig())
    with pytest.raises(OSError):
        await second.start(port=server.port)
    assert not os.path.exists(second.root)
    await second.stop()  # harmless after a failed start
