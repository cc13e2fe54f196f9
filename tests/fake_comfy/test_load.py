"""Scale: 200 WebSocket clients at once and 1000 queued prompts, zero node durations.

Prints the RSS figures (no timing or tight memory assertions: the machine is shared). The waits
are bounded by progress, not by a budget: the test fails when the server stops making progress
for STALL_S seconds, so a busy machine makes it slower, never red.
"""
from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig

CLIENTS = 200
PROMPTS = 1000
ROUNDS = 2
STALL_S = 60.0


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def workflow(i: int) -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "load/p"}},
    }


async def client(session: aiohttp.ClientSession, url: str, sid: str, ready: asyncio.Event, count: int,
                 finals: list[int]) -> set[str]:
    """Read until `count` prompts of this client have their final `executing null` (counted in `finals`)."""
    done: set[str] = set()
    async with session.ws_connect(f"{url}/ws?clientId={sid}", max_msg_size=0) as ws:
        ready.set()
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data["type"] == "executing" and data["data"].get("node") is None:
                done.add(data["data"]["prompt_id"])
                finals[0] += 1
                if len(done) == count:
                    return done
    return done


async def while_progressing(awaitables: list[Awaitable[Any]], progress: Callable[[], int], what: str) -> list[Any]:
    """Gather `awaitables`; fail if neither one finishes nor `progress()` moves for STALL_S seconds."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    seen = progress()
    try:
        while not all(t.done() for t in tasks):
            finished, _ = await asyncio.wait([t for t in tasks if not t.done()], timeout=STALL_S,
                                             return_when=asyncio.FIRST_COMPLETED)
            now = progress()
            assert finished or now != seen, f"{what}: no progress for {STALL_S} s (at {now})"
            seen = now
        return [t.result() for t in tasks]
    finally:
        for task in tasks:
            task.cancel()


@pytest.mark.load
@pytest.mark.timeout(1800)  # the outer bound; the stall checks fail much earlier when stuck
async def test_200_clients_and_1000_prompts() -> None:
    server = FakeComfy(FakeConfig(time_scale=0.0, seed=5))
    await server.start()
    figures = [("start", rss_mib())]
    try:
        connector = aiohttp.TCPConnector(limit=0)
        finals = [0]  # final frames read by all clients: the clients' progress
        async with aiohttp.ClientSession(connector=connector) as session:
            for round_index in range(ROUNDS):
                expected: dict[str, set[str]] = {f"load{c}": set() for c in range(CLIENTS)}
                readies = {sid: asyncio.Event() for sid in expected}
                readers = {
                    sid: asyncio.create_task(client(session, server.base_url, sid, readies[sid], PROMPTS // CLIENTS, finals))
                    for sid in expected
                }
                await while_progressing([e.wait() for e in readies.values()],
                                        lambda: sum(e.is_set() for e in readies.values()), "connecting")
                assert len(server.core.sockets) == CLIENTS
                server.set_manual_time(True)  # hold the executor so all prompts are queued at once
                for i in range(PROMPTS):  # each request bounded by aiohttp's default timeout
                    sid = f"load{i % CLIENTS}"
                    body = {"prompt": workflow(round_index * PROMPTS + i), "client_id": sid}
                    async with session.post(f"{server.base_url}/prompt", json=body) as resp:
                        assert resp.status == 200
                        expected[sid].add((await resp.json())["prompt_id"])
                async with session.get(f"{server.base_url}/prompt") as resp:
                    assert (await resp.json())["exec_info"]["queue_remaining"] == PROMPTS
                server.set_manual_time(False)
                results = await while_progressing(
                    list(readers.values()),
                    lambda: finals[0] + sum(r.outcome is not None for r in server.ledger.prompts.values()), "running")
                for sid, done in zip(readers, results, strict=True):
                    assert done == expected[sid], sid
                figures.append((f"after round {round_index + 1}", rss_mib()))
    finally:
        await server.stop()
    completed = [r for r in server.ledger.prompts.values() if r.outcome == "success"]
    assert len(completed) == ROUNDS * PROMPTS
    print("\nRSS MiB: " + ", ".join(f"{name} {value:.1f}" for name, value in figures))
    growth = figures[-1][1] - figures[-2][1]
    assert growth < 200, f"RSS grew {growth:.1f} MiB in the second round"
