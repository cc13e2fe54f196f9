"""A test adapter for a polling client with a fixed timer: POST /prompt with a clientId,
never a WebSocket, then GET /history/<id> every POLL_S real seconds (not scaled), retrying
on 5xx. The shape of the client for which a one-shot /history 500 used to be lifted before
its next poll (issue 13 item 10)."""
from __future__ import annotations

import asyncio
import uuid

import aiohttp

from comfy_chaos.harness.adapters.base import AdapterSession, Task

POLL_S = 0.3


class PollingAdapter:
    name = "polling"
    scalable = True

    async def run(self, session: AdapterSession) -> None:
        client_id = uuid.uuid4().hex
        session.ready("polling", "1", caps=[])
        async with aiohttp.ClientSession(base_url=session.base_url) as http:
            workers = [asyncio.create_task(self._one(http, client_id, task, session))
                       async for task in session.tasks()]
            await asyncio.gather(*workers)
        session.done()

    async def _one(self, http: aiohttp.ClientSession, client_id: str, task: Task, session: AdapterSession) -> None:
        async with http.post("/prompt", json={"prompt": task.workflow, "client_id": client_id}) as resp:
            prompt_id = (await resp.json())["prompt_id"]
        session.submitted(task.task_id, prompt_id)
        while True:
            await asyncio.sleep(POLL_S)
            async with http.get(f"/history/{prompt_id}") as resp:
                if resp.status >= 500:
                    session.note(f"{task.task_id}: /history answered {resp.status}, retrying")
                    continue
                history = await resp.json()
            if prompt_id in history:
                entry = history[prompt_id]
                outcome = "success" if entry["status"]["status_str"] == "success" else "error"
                session.result(task.task_id, outcome, outputs=entry["outputs"], prompt_id=prompt_id)
                return
