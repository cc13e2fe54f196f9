"""HTTP and server faults against the real FakeComfy: status, headers and exact body bytes."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from comfy_chaos.fake_comfy.testing import W_BASIC, connect, raw_http_get, run_prompt, serving, submit


async def wait_fired(engine, index: int = 0) -> None:
    async with asyncio.timeout(5):
        while index not in engine.fired_specs():
            await asyncio.sleep(0.005)


async def get(server, path: str) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as http, http.get(server.base_url + path) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_http_error_comfy_body_on_api_twin() -> None:
    async with serving([{"kind": "http_error", "params": {"route": "/history"}}]) as (server, engine):
        await wait_fired(engine)
        status, headers, body = await get(server, "/api/history")
        assert status == 500
        assert body == b"500 Internal Server Error\n\nServer got itself in trouble"
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        status, _, body = await get(server, "/api/history")  # count 1: next one is normal
        assert status == 200 and json.loads(body) == {}
        (record,) = server.ledger.faults
        assert record.kind == "http_error" and record.target == {"method": "GET", "path": "/api/history"}
        assert [h.fault for h in server.ledger.http] == ["http_error", None]


async def test_http_error_html_502_for_a_window() -> None:
    spec = {"kind": "http_error", "duration": 60, "params": {"route": "/queue", "status": 502, "body": "html"}}
    async with serving([spec]) as (server, engine):
        await wait_fired(engine)
        for path in ("/queue", "/api/queue"):
            status, headers, body = await get(server, path)
            assert status == 502 and headers["Content-Type"].startswith("text/html")
            assert b"<title>502 Bad Gateway</title>" in body and b"<center>nginx</center>" in body
        status, _, _ = await get(server, "/system_stats")  # another route is untouched
        assert status == 200
        await engine.heal_all()
        status, _, _ = await get(server, "/queue")
        assert status == 200


async def test_http_slow_still_answers_and_is_recorded() -> None:
    async with serving([{"kind": "http_slow", "params": {"route": "/system_stats", "delay": 0.01}}]) as (server, engine):
        await wait_fired(engine)
        status, _, body = await get(server, "/system_stats")
        assert status == 200 and "system" in json.loads(body)
        (record,) = server.ledger.faults
        assert record.kind == "http_slow" and record.detail["delay"] == pytest.approx(0.01)


async def test_http_truncate_declares_full_length_sends_less() -> None:
    async with serving([{"kind": "http_truncate", "params": {"route": "/object_info", "at": 100}}]) as (server, engine):
        await wait_fired(engine)
        head, body = await raw_http_get("127.0.0.1", server.port, "/api/object_info")
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 200 OK"
        length = int(next(line.split(": ")[1] for line in lines if line.lower().startswith("content-length")))
        assert len(body) == 100 < length
        (record,) = server.ledger.faults
        assert record.sent == body and record.detail["content_length"] == length
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)


async def test_prompt_response_lost_but_prompt_queued_and_run() -> None:
    async with serving([{"kind": "prompt_response_lost"}]) as (server, engine):
        await wait_fired(engine)
        from comfy_chaos.fake_comfy.ledger import tag_workflow
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                async with http.post(f"{server.base_url}/api/prompt",
                                     data=json.dumps({"prompt": tag_workflow(W_BASIC, "t9"), "client_id": "c0"})) as resp:
                    await resp.read()
        (record,) = server.ledger.faults
        assert record.kind == "prompt_response_lost"
        lost = json.loads(record.sent)  # the reply the client never got
        async with asyncio.timeout(10):
            while server.ledger.prompts.get(lost["prompt_id"]) is None or \
                    server.ledger.prompts[lost["prompt_id"]].outcome is None:
                await asyncio.sleep(0.01)
        assert server.ledger.prompts[lost["prompt_id"]].task_id == "t9"
        assert server.ledger.prompts[lost["prompt_id"]].outcome == "success"


async def one_finished_prompt(server) -> str:
    """Run one prompt to completion over a WebSocket; its prompt_id."""
    ws = await connect(server)
    try:
        await ws.recv()
        prompt_id, _ = await run_prompt(server, ws)
    finally:
        await ws.close()
    return prompt_id


async def test_history_lag_hides_a_finished_prompt_until_healed() -> None:
    async with serving([{"kind": "history_lag", "params": {"delay": 3600}}]) as (server, engine):
        prompt_id = await one_finished_prompt(server)
        status, _, body = await get(server, f"/history/{prompt_id}")
        assert status == 200 and body == b"{}"
        _, _, body = await get(server, "/api/history")
        assert prompt_id not in json.loads(body)
        kinds = [r.kind for r in server.ledger.faults]
        assert kinds == ["history_lag", "history_lag", "history_lag"]  # lag started, item hidden, list filtered
        await engine.heal_all()
        _, _, body = await get(server, f"/history/{prompt_id}")
        assert json.loads(body)[prompt_id]["status"]["status_str"] == "success"


async def test_history_lag_hides_a_finished_prompt_from_the_jobs_api_too() -> None:
    """A client of the Jobs API must meet the same lag as one reading /history: the job is
    neither queued nor in history yet, so the list leaves it out and its own URL is a 404."""
    async with serving([{"kind": "history_lag", "params": {"delay": 3600}}]) as (server, engine):
        prompt_id = await one_finished_prompt(server)
        status, _, body = await get(server, f"/api/jobs/{prompt_id}")
        assert status == 404 and json.loads(body) == {"error": "Job not found"}
        status, _, body = await get(server, "/api/jobs")
        listed = json.loads(body)
        assert status == 200 and prompt_id not in [job["id"] for job in listed["jobs"]]
        assert listed["pagination"]["total"] == len(listed["jobs"])
        assert [r.kind for r in server.ledger.faults] == ["history_lag"] * 3  # lag started, job hidden, list filtered
        await engine.heal_all()
        status, _, body = await get(server, f"/api/jobs/{prompt_id}")
        assert status == 200 and json.loads(body)["status"] == "completed"
        _, _, body = await get(server, "/api/jobs")
        assert prompt_id in [job["id"] for job in json.loads(body)["jobs"]]


@pytest.mark.parametrize("keep_history", [False, True])
async def test_restart_after_task_complete(keep_history: bool) -> None:
    spec = {"kind": "restart", "when": {"on": "task_complete", "task": "t0"}, "params": {"keep_history": keep_history}}
    async with serving([spec]) as (server, engine):
        ws = await connect(server)
        try:
            await ws.recv()
            prompt_id = await submit(server)
            frames = []
            while True:
                frame = await ws.recv(timeout=10)
                frames.append(frame)
                if frame.opcode == 0:
                    break
        finally:
            await ws.close()
        texts = [f.payload for f in frames if f.opcode == 1]
        assert b"execution_success" in texts[-1]  # the success went out, then the process "died"
        assert [r.kind for r in server.ledger.faults][0] == "restart"
        _, _, body = await get(server, f"/history/{prompt_id}")
        assert (prompt_id in json.loads(body)) is keep_history


async def test_prompt_queued_5xx_queues_and_runs_but_answers_500() -> None:
    """Issue 13 item 12: the trigger of a duplicate-execution bug."""
    async with serving([{"kind": "prompt_queued_5xx", "params": {"status": 502, "body": "html"}}]) as (server, engine):
        await wait_fired(engine)
        from comfy_chaos.fake_comfy.ledger import tag_workflow
        async with aiohttp.ClientSession() as http:
            body = json.dumps({"prompt": tag_workflow(W_BASIC, "t7"), "client_id": "c7"})
            async with http.post(f"{server.base_url}/prompt", data=body) as resp:
                assert resp.status == 502 and b"<center>nginx</center>" in await resp.read()
            async with http.post(f"{server.base_url}/prompt", data=body) as resp:  # count 1: met by c7
                assert resp.status == 200
        (record,) = server.ledger.faults
        assert record.kind == "prompt_queued_5xx" and record.detail["queued"] is True
        assert (record.detail["target_client_id"], record.detail["target_kind"]) == ("c7", "http")
        queued = server.ledger.prompts[record.detail["prompt_id"]]
        async with asyncio.timeout(10):
            while queued.outcome is None:
                await asyncio.sleep(0.01)
        assert queued.task_id == "t7" and queued.outcome == "success"
        assert [h.status for h in server.ledger.http if h.path == "/prompt"] == [502, 200]
        assert [h.fault for h in server.ledger.http if h.path == "/prompt"] == ["prompt_queued_5xx", None]


async def test_prompt_queued_5xx_leaves_a_rejected_prompt_alone() -> None:
    async with serving([{"kind": "prompt_queued_5xx"}]) as (server, engine):
        await wait_fired(engine)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.base_url}/prompt", data=json.dumps({"prompt": {}})) as resp:
                assert resp.status == 400  # not queued: nothing to hide
        (record,) = server.ledger.faults
        assert record.detail["queued"] is False and record.detail["status_kept"] == 400


async def wait_done(server, prompt_id: str) -> None:
    async with asyncio.timeout(10):
        while server.ledger.prompts.get(prompt_id) is None or server.ledger.prompts[prompt_id].outcome is None:
            await asyncio.sleep(0.01)


async def test_one_shot_history_500_stays_open_until_the_polling_client_meets_it() -> None:
    """Issue 13 item 10: a /history 500 right after completion must wait for a polling
    client's next poll (the runner heals after `open_until()`), however late it comes."""
    spec = {"kind": "http_error", "when": {"on": "task_complete", "task": "t0"}, "params": {"route": "/history"}}
    async with serving([spec]) as (server, engine):
        prompt_id = await submit(server, client="poller")  # no WebSocket: a polling client
        await wait_done(server, prompt_id)
        await wait_fired(engine)
        assert engine.open_until() == float("inf")  # the server is quiet; the fault is still owed
        status, _, _ = await get(server, f"/history/{prompt_id}")  # its poll, whenever it comes
        assert status == 500
        assert engine.open_until() is None
        status, _, body = await get(server, f"/history/{prompt_id}")
        assert status == 200 and prompt_id in json.loads(body)
        (entry,) = engine.fault_log()
        assert (entry["target_client_id"], entry["target_kind"], entry["reached"]) == ("poller", "http", True)


async def test_http_window_logs_the_clients_it_never_met() -> None:
    spec = {"kind": "http_error", "duration": 60, "params": {"route": "/history"}}
    async with serving([spec]) as (server, engine):
        await wait_fired(engine)
        for client in ("a", "b"):
            await submit(server, client=client, task=f"t-{client}")
        status, _, _ = await get(server, "/history?clientId=a")
        assert status == 500
        await engine.heal_all()
        log = engine.fault_log()
        assert [(e["target_client_id"], e["reached"]) for e in log] == [("a", True), ("b", False)]
        assert log[1]["detail"]["reason"] == "no request of this client while the fault was open"
        unreached = [r for r in server.ledger.faults if r.detail.get("reached") is False]
        assert [r.detail["target_client_id"] for r in unreached] == ["b"]


async def test_silent_window_logs_a_client_without_websocket() -> None:
    """Issue 13 item 13: silence cannot reach a client that never opened a WebSocket."""
    spec = {"kind": "silent", "when": {"on": "task_start", "task": "t0"}, "duration": 60}
    async with serving([spec]) as (server, engine):
        prompt_id = await submit(server, client="poller")
        await wait_done(server, prompt_id)
        await engine.heal_all()
        start, unreached = engine.fault_log()
        assert start["window"] and start["detail"]["clients"] == [] and start["t_end"] is not None
        assert (unreached["target_client_id"], unreached["target_kind"], unreached["reached"]) == ("poller", "ws", False)
        assert unreached["detail"]["reason"] == "no WebSocket of this client to silence"


async def test_prompt_queued_5xx_knows_an_anonymous_client_by_the_prompt_it_queued() -> None:
    async with serving([{"kind": "prompt_queued_5xx"}]) as (server, engine):
        await wait_fired(engine)
        from comfy_chaos.fake_comfy.ledger import tag_workflow
        async with aiohttp.ClientSession() as http:
            big = json.dumps({"prompt": tag_workflow(W_BASIC, "t8"), "client_id": "anon", "pad": "x" * (2 << 20)})
            async with http.post(f"{server.base_url}/prompt", data=big) as resp:  # body too big to peek
                assert resp.status == 500
        (entry,) = engine.fault_log()
        assert entry["target_client_id"] == "anon" and entry["reached"]
