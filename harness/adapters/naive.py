"""A deliberately naive ComfyUI client: the flow of ComfyUI's own
`script_examples/websockets_api_example.py`.

One WebSocket with a clientId, `POST /prompt`, wait for `executing` with `node: null`
for that prompt, then `GET /history/{id}`. No reconnect, no sanitizing, no timeouts on
the wait, no polling fallback. Where the example script would die (the socket closes,
a frame is not JSON) this client dies too: every task still waiting is never reported.
A per-task failure (the POST or the history read raises) becomes that task's error
result, as the example's caller would see an exception for that call.

It exists so the harness can show that it catches a broken client.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import structlog

from comfy_chaos.harness.adapters.base import AdapterSession, Task

log = structlog.get_logger(__name__)


class NaiveClientDied(Exception):
    """The single WebSocket failed; the example script would have crashed here."""


class NaiveAdapter:
    name = "naive"
    scalable = True

    async def run(self, session: AdapterSession) -> None:
        client_id = uuid.uuid4().hex
        session.ready("naive", "1", caps=[])
        waiting: dict[str, asyncio.Future[None]] = {}
        dead = asyncio.Event()
        workers: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(base_url=session.base_url) as http:
            ws = await http.ws_connect("/ws", params={"clientId": client_id}, heartbeat=None)
            reader = asyncio.create_task(self._read(ws, waiting))

            async def intake() -> None:
                async for task in session.tasks():
                    workers.add(asyncio.create_task(self._one(http, client_id, task, session, waiting, dead)))

            feeding = asyncio.create_task(intake())
            try:
                await asyncio.wait([reader, feeding], return_when=asyncio.FIRST_COMPLETED)
                pending = {w for w in workers if not w.done()}
                while not reader.done() and pending:
                    # only unfinished workers: a finished one would end every wait at once (a busy loop)
                    await asyncio.wait([reader, *pending], return_when=asyncio.FIRST_COMPLETED)
                    pending = {w for w in pending if not w.done()}
                if reader.done():
                    # The socket is gone, as in the example script when ws.recv() raises: every
                    # task still waiting for its frame is never reported; a task whose frame
                    # already came finishes its /history read (plain HTTP) first.
                    error = reader.exception()
                    dead.set()
                    feeding.cancel()
                    for future in waiting.values():
                        if not future.done():
                            future.set_exception(NaiveClientDied(str(error)))
                    await asyncio.gather(*workers, return_exceptions=True)
                    raise NaiveClientDied(str(error)) from error
            finally:
                for job in (reader, feeding, *workers):
                    job.cancel()
                await asyncio.gather(reader, feeding, *workers, return_exceptions=True)
                await ws.close()
        session.done()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, waiting: dict[str, asyncio.Future[None]]) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                message = json.loads(msg.data)  # no sanitizing: junk kills the client
                if message["type"] == "executing":
                    data = message["data"]
                    if data["node"] is None and "prompt_id" in data:
                        # the frame may beat the POST reply; the example reads it later from
                        # the socket buffer, so remember it rather than miss it
                        future = waiting.setdefault(data["prompt_id"], asyncio.get_running_loop().create_future())
                        if not future.done():
                            future.set_result(None)
            elif msg.type is aiohttp.WSMsgType.ERROR:
                raise ConnectionError(f"websocket error: {ws.exception()}")
        raise ConnectionError(f"websocket closed (code {ws.close_code})")

    async def _one(
        self,
        http: aiohttp.ClientSession,
        client_id: str,
        task: Task,
        session: AdapterSession,
        waiting: dict[str, asyncio.Future[None]],
        dead: asyncio.Event,
    ) -> None:
        try:
            async with http.post("/prompt", json={"prompt": task.workflow, "client_id": client_id}) as resp:
                body = await resp.json(content_type=None)
            prompt_id = body["prompt_id"]
        except Exception as exc:  # the example would raise to its caller
            session.result(task.task_id, "error", detail=f"POST /prompt failed: {exc!r}")
            return
        session.submitted(task.task_id, prompt_id)
        if dead.is_set():
            return  # the client already died; nobody is left to report this task
        try:
            await waiting.setdefault(prompt_id, asyncio.get_running_loop().create_future())
        except NaiveClientDied:
            return
        try:
            async with http.get(f"/history/{prompt_id}") as resp:
                entry: dict[str, Any] = (await resp.json(content_type=None))[prompt_id]
        except Exception as exc:
            session.result(task.task_id, "error", detail=f"GET /history failed: {exc!r}", prompt_id=prompt_id)
            return
        session.result(task.task_id, *_outcome(entry), prompt_id=prompt_id)


def _outcome(entry: dict[str, Any]) -> tuple[str, dict[str, Any], str | None]:
    status = entry.get("status", {})
    outputs = entry.get("outputs", {})
    if status.get("status_str") == "success":
        return "success", outputs, None
    messages = status.get("messages") or []
    last = messages[-1][0] if messages else None
    if last == "execution_interrupted":
        return "interrupted", outputs, None
    return "error", outputs, json.dumps(messages[-1][1])[:500] if messages else None
