"""The transport driven by the real FaultEngine (Contract 3): the hook points line up."""
from __future__ import annotations

import asyncio
import time

import aiohttp

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
from comfy_chaos.fake_comfy.faults import FaultEngine, FaultSchedule
from comfy_chaos.fake_comfy.ledger import tag_workflow
from comfy_chaos.fake_comfy.testing import W_BASIC, finished, receive_json_until


async def test_drop_marks_the_ledger_message_and_client_misses_it() -> None:
    schedule = FaultSchedule.of([{"kind": "drop", "when": {"on": "message", "type": "execution_success", "task": "t1"}}])
    engine = FaultEngine(schedule, seed=1, clock=time.monotonic, time_scale=1.0)
    server = FakeComfy(FakeConfig(time_scale=0.0, seed=1), faults=engine)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(server.base_url + "/ws?clientId=c1")
            try:
                ids = []
                for task in ("t0", "t1"):
                    async with http.post(server.base_url + "/prompt", json={"prompt": tag_workflow(W_BASIC, task), "client_id": "c1"}) as resp:
                        ids.append((await resp.json())["prompt_id"])
                got = await receive_json_until(ws, finished(ids[1]))
            finally:
                await ws.close()
    finally:
        await server.stop()
    successes = [m["data"]["prompt_id"] for m in got if m["type"] == "execution_success"]
    assert successes == [ids[0]]
    t1 = server.ledger.prompts[ids[1]]
    assert t1.task_id == "t1" and t1.outcome == "success"
    dropped = [m for m in t1.messages if m.message_type == "execution_success"]
    assert [(m.delivered, m.fault) for m in dropped] == [(False, "drop")]
    assert all(m.delivered for m in server.ledger.prompts[ids[0]].messages)
    assert [f.kind for f in server.ledger.faults] == ["drop"]


async def test_restart_fault_drops_the_socket_and_the_running_prompt() -> None:
    slow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ChaosSleep", "inputs": {"images": ["1", 0], "seconds": 3600.0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    schedule = FaultSchedule.of([{"kind": "restart", "when": {"on": "node_start", "task": "t0", "node": "2"}}])
    engine = FaultEngine(schedule, seed=1, clock=time.monotonic, time_scale=1.0)
    server = FakeComfy(FakeConfig(time_scale=1.0, seed=1), faults=engine)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(server.base_url + "/ws?clientId=c1")
            async with http.post(server.base_url + "/prompt", json={"prompt": tag_workflow(slow, "t0"), "client_id": "c1"}) as resp:
                prompt_id = (await resp.json())["prompt_id"]
            async with asyncio.timeout(10):
                while True:
                    msg = await ws.receive()
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
            await ws.close()
            async with http.get(server.base_url + "/queue") as resp:
                assert await resp.json() == {"queue_running": [], "queue_pending": []}
    finally:
        await server.stop()
    assert server.ledger.prompts[prompt_id].outcome is None
    assert "abort" in [c.event for c in server.ledger.connections]
