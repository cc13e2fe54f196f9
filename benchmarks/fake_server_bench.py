"""Throughput of the fake ComfyUI server: prompts/s and frames/s with many WebSocket clients.

Runs the same workload on the direct path (faults=None) and through an empty FaultEngine
and prints the figures and their ratio. Usage:

    python benchmarks/fake_server_bench.py [--clients 50] [--prompts 300]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

from fake_comfy import FakeComfy, FakeConfig


def workflow(i: int) -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench/p"}},
    }


async def reader(session: aiohttp.ClientSession, url: str, sid: str, ready: asyncio.Event, count: int) -> int:
    frames = finished = 0
    async with session.ws_connect(f"{url}/ws?clientId={sid}") as ws:
        ready.set()
        async for msg in ws:
            frames += 1
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data["type"] == "executing" and data["data"].get("node") is None:
                    finished += 1
                    if finished == count:
                        return frames
    return frames


async def run(clients: int, prompts: int, with_engine: bool) -> tuple[float, int]:
    faults = None
    if with_engine:
        from fake_comfy.faults import FaultEngine, FaultSchedule

        faults = FaultEngine(FaultSchedule.of([]), seed=0, clock=time.monotonic, time_scale=1.0)
    server = FakeComfy(FakeConfig(time_scale=0.0), faults=faults)
    await server.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            readies = [asyncio.Event() for _ in range(clients)]
            per_client = prompts // clients
            tasks = [
                asyncio.create_task(reader(session, server.base_url, f"b{c}", readies[c], per_client))
                for c in range(clients)
            ]
            async with asyncio.timeout(600):
                await asyncio.gather(*(r.wait() for r in readies))
                start = time.perf_counter()
                for i in range(per_client * clients):
                    body = {"prompt": workflow(i), "client_id": f"b{i % clients}"}
                    async with session.post(f"{server.base_url}/prompt", json=body) as resp:
                        resp.raise_for_status()
                frames = sum(await asyncio.gather(*tasks))
                return time.perf_counter() - start, frames
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--prompts", type=int, default=300)
    args = parser.parse_args()
    results = {}
    for label, engine in (("direct", False), ("empty FaultEngine", True)):
        elapsed, frames = asyncio.run(run(args.clients, args.prompts, engine))
        results[label] = elapsed
        print(f"{label:>18}: {args.prompts} prompts, {args.clients} clients, {frames} frames received "
              f"in {elapsed:.2f} s = {args.prompts / elapsed:.0f} prompts/s, {frames / elapsed:.0f} frames/s")
    print(f"ratio engine/direct wall time: {results['empty FaultEngine'] / results['direct']:.2f}")


if __name__ == "__main__":
    main()
