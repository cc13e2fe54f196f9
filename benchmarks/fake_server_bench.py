"""Speed of the fake ComfyUI server, each figure next to its practical ceiling, one run.

* WebSocket messages/s to 1 and to N clients (default 200): the fake running prompts
  with zero-duration nodes (`time_scale=0`) vs a bare aiohttp WebSocket server sending
  the same frames (same texts, same count per client) from one task — the ceiling for
  aiohttp on this machine. Ratio = fake / bare (1.0 = as fast as bare aiohttp).
* The same workload through an empty FaultEngine (ratio to the direct path).
* Prompts/s: the sans-IO core alone (`submit` + `advance`), and through the server's
  HTTP API with no WebSocket listening (ratio = server / core).
* Memory per connected client: RSS of a `comfy-chaos serve` subprocess before and after
  N WebSockets are connected (and have received their first status frame).

A script, not a test (the machine is noisy): it prints a table and ratios, asserts
nothing. Usage:

    python benchmarks/fake_server_bench.py [--clients 200] [--prompts 400] [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
from comfy_chaos.fake_comfy.events import ServerEvent

WAIT_S = 600.0
POST_CONCURRENCY = 16


def workflow(i: int) -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench/p"}},
    }


# ---------------------------------------------------------------------------- fake server


async def _read_until(
    session: aiohttp.ClientSession, url: str, sid: str, ready: asyncio.Event, prompts: int, texts: list[str] | None
) -> int:
    """Count frames on one socket until `prompts` prompts have finished (executing null)."""
    frames = finished = 0
    async with session.ws_connect(f"{url}/ws?clientId={sid}", max_msg_size=0) as ws:
        ready.set()
        if prompts == 0:
            return 0
        async for msg in ws:
            frames += 1
            if msg.type == aiohttp.WSMsgType.TEXT:
                if texts is not None:
                    texts.append(msg.data)
                if '"executing"' in msg.data:
                    data = json.loads(msg.data)
                    if data["type"] == "executing" and data["data"].get("node") is None:
                        finished += 1
                        if finished == prompts:
                            return frames
            elif texts is not None:
                texts.append(msg.data)
    return frames


async def _post_all(session: aiohttp.ClientSession, url: str, bodies: list[dict]) -> None:
    queue = list(reversed(bodies))

    async def poster() -> None:
        while queue:
            body = queue.pop()
            async with session.post(f"{url}/prompt", json=body) as resp:
                resp.raise_for_status()
                await resp.read()

    await asyncio.gather(*(poster() for _ in range(POST_CONCURRENCY)))


async def fake_ws_run(
    clients: int, prompts: int, *, engine: bool = False, capture: list[str] | None = None
) -> tuple[float, int, list[int]]:
    """Fake server, `clients` sockets, `prompts` prompts spread over them. Returns
    (seconds from first POST to last frame, total frames, frames per client)."""
    faults = None
    if engine:
        from comfy_chaos.fake_comfy.faults import FaultEngine, FaultSchedule

        faults = FaultEngine(FaultSchedule.of([]), seed=0, clock=time.monotonic, time_scale=1.0)
    server = FakeComfy(FakeConfig(time_scale=0.0), faults=faults)
    await server.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            readies = [asyncio.Event() for _ in range(clients)]
            per_client = [prompts // clients + (1 if c < prompts % clients else 0) for c in range(clients)]
            readers = [
                asyncio.create_task(
                    _read_until(session, server.base_url, f"b{c}", readies[c], per_client[c], capture if c == 0 else None)
                )
                for c in range(clients)
            ]
            try:
                async with asyncio.timeout(WAIT_S):
                    await asyncio.gather(*(r.wait() for r in readies))
                    bodies = [{"prompt": workflow(i), "client_id": f"b{i % clients}"} for i in range(prompts)]
                    start = time.perf_counter()
                    await _post_all(session, server.base_url, bodies)
                    counts = await asyncio.gather(*readers)
                    return time.perf_counter() - start, sum(counts), list(counts)
            finally:
                for reader in readers:
                    reader.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
    finally:
        await server.stop()


async def fake_publisher_run(clients: int, prompts: int, *, subscribed: bool = False) -> tuple[float, int, list[int]]:
    """The fake's frame path alone (ledger record + event + send + mark), no HTTP and no
    executor in the timing: the core runs `prompts` prompts up front, their frames go into
    the server's outbox at once, the clock runs until every client has its frames."""
    server = FakeComfy(FakeConfig(time_scale=0.0))
    if subscribed:
        server.events.subscribe(lambda event: None)  # the harness always listens
    await server.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            sockets = []
            for c in range(clients):
                ws = await session.ws_connect(f"{server.base_url}/ws?clientId=b{c}", max_msg_size=0)
                await ws.receive()  # initial status
                sockets.append(ws)
            frames = []
            for i in range(prompts):
                result = server.core.submit({"prompt": workflow(i), "client_id": f"b{i % clients}"})
                frames.extend(result.frames)
            while not server.core.idle:
                frames.extend(server.core.advance().frames)
            per_client = [sum(1 for f in frames if f.sid == f"b{c}") for c in range(clients)]

            async def drain(ws: aiohttp.ClientWebSocketResponse, expected: int) -> None:
                for _ in range(expected):
                    await ws.receive()

            async with asyncio.timeout(WAIT_S):
                start = time.perf_counter()
                server._enqueue(frames)  # noqa: SLF001 - the publisher's own entry point
                await asyncio.gather(*(drain(ws, n) for ws, n in zip(sockets, per_client, strict=True)))
                elapsed = time.perf_counter() - start
            await asyncio.gather(*(ws.close() for ws in sockets))
            return elapsed, len(frames), per_client
    finally:
        await server.stop()


# ---------------------------------------------------------------------------- bare aiohttp ceiling


async def bare_ws_run(clients: int, frames: list[str | bytes], per_client: list[int]) -> float:
    """A bare aiohttp WebSocket server sends `per_client[c]` frames (cycling through
    `frames`) to client c from one sender task, round-robin like the fake's publisher."""
    sockets: dict[int, web.WebSocketResponse] = {}
    all_in = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets[int(request.query["c"])] = ws
        if len(sockets) == clients:
            all_in.set()
        async for _ in ws:  # like the fake: read the socket, so a client's close is answered
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp exposes no public accessor

    async def reader(session: aiohttp.ClientSession, c: int, expected: int) -> int:
        got = 0
        async with session.ws_connect(f"http://127.0.0.1:{port}/ws?c={c}", max_msg_size=0) as ws:
            while got < expected:
                msg = await ws.receive()
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    got += 1
                else:
                    break
        return got

    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            readers = [asyncio.create_task(reader(session, c, per_client[c])) for c in range(clients)]
            try:
                async with asyncio.timeout(WAIT_S):
                    await all_in.wait()
                    start = time.perf_counter()
                    left = list(per_client)
                    i = 0
                    while any(left):
                        for c in range(clients):
                            ws = sockets[c]
                            if left[c]:
                                frame = frames[i % len(frames)]
                                if isinstance(frame, str):
                                    await ws.send_str(frame)
                                else:
                                    await ws.send_bytes(frame)
                                left[c] -= 1
                                i += 1
                    await asyncio.gather(*readers)
                    return time.perf_counter() - start
            finally:
                for r in readers:
                    r.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------------- prompts/s


def core_prompts_per_s(prompts: int) -> float:
    """The sans-IO core alone: submit every prompt, then advance until idle."""
    from comfy_chaos.fake_comfy.core import ComfyCore
    from comfy_chaos.fake_comfy.events import EventBus
    from comfy_chaos.fake_comfy.ledger import Ledger

    core = ComfyCore(clock=time.monotonic, wall_ms=lambda: int(time.time() * 1000), ledger=Ledger(), events=EventBus())
    start = time.perf_counter()
    for i in range(prompts):
        core.submit({"prompt": workflow(i), "client_id": "b0"})
    while not core.idle:
        core.advance()
    return prompts / (time.perf_counter() - start)


async def server_prompts_per_s(prompts: int) -> float:
    """Through HTTP, no WebSocket: POST every prompt, wait until the ledger has them all done."""
    server = FakeComfy(FakeConfig(time_scale=0.0))
    done = asyncio.Event()
    completed = 0

    def on_event(event: ServerEvent) -> None:
        nonlocal completed
        if event.kind == "prompt_completed":
            completed += 1
            if completed == prompts:
                done.set()

    server.events.subscribe(on_event)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(WAIT_S):
            bodies = [{"prompt": workflow(i), "client_id": "nobody"} for i in range(prompts)]
            start = time.perf_counter()
            await _post_all(session, server.base_url, bodies)
            await done.wait()
            return prompts / (time.perf_counter() - start)
    finally:
        await server.stop()


async def bare_post_per_s(requests: int) -> float:
    """Ceiling for the HTTP figure: a bare aiohttp handler that parses the JSON body and answers JSON."""

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"prompt_id": str(len(body)), "number": 0, "node_errors": {}})

    app = web.Application()
    app.router.add_post("/prompt", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(WAIT_S):
            bodies = [{"prompt": workflow(i), "client_id": "nobody"} for i in range(requests)]
            start = time.perf_counter()
            await _post_all(session, url, bodies)
            return requests / (time.perf_counter() - start)
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------------- memory per client


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def memory_per_client(clients: int) -> tuple[int, int, float]:
    """(RSS KiB idle, RSS KiB with `clients` sockets, KiB per client) of a serve subprocess."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "comfy_chaos.fake_comfy.cli", "--port", "0", "--time-scale", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)  # type: ignore[union-attr]
        match = re.search(r"http://[\d.]+:\d+", line)
        if match is None:
            raise RuntimeError(f"serve printed no URL: {line!r}")
        url = match.group(0)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async with session.get(f"{url}/system_stats") as resp:  # warm: first request paths loaded
                await resp.read()
            idle = _rss_kib(proc.pid)
            sockets = []
            try:
                async with asyncio.timeout(WAIT_S):
                    for c in range(clients):
                        ws = await session.ws_connect(f"{url}/ws?clientId=m{c}")
                        await ws.receive()  # the initial status frame: the server side is fully set up
                        sockets.append(ws)
                    busy = _rss_kib(proc.pid)
            finally:
                await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        return idle, busy, (busy - idle) / clients
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# ---------------------------------------------------------------------------- main


def _best(runs: int, fn: Callable[[], Awaitable[float]]) -> Callable[[], Awaitable[float]]:
    async def best() -> float:
        return min([await fn() for _ in range(runs)])

    return best


async def main_async(clients: int, prompts: int, runs: int) -> None:
    rows: list[tuple[str, str, str, str]] = []

    capture: list[str] = []
    await fake_ws_run(1, 5, capture=capture)  # warm-up; captures a realistic frame mix
    frames: list[str | bytes] = list(capture)
    for label, n_clients, n_prompts in (("1 client", 1, prompts), (f"{clients} clients", clients, prompts)):
        fake = [await fake_ws_run(n_clients, n_prompts) for _ in range(runs)]
        elapsed, total, per_client = min(fake)
        bare = min([await bare_ws_run(n_clients, frames, per_client) for _ in range(runs)])
        engine = min([(await fake_ws_run(n_clients, n_prompts, engine=True))[0] for _ in range(runs)])
        rows.append((f"ws msgs/s, {label}, end to end (HTTP+executor)", f"{total / elapsed:,.0f}",
                     f"bare aiohttp {total / bare:,.0f}", f"{bare / elapsed:.2f}"))
        pub = min([await fake_publisher_run(n_clients, n_prompts, subscribed=True) for _ in range(runs)])
        pub_bare = min([await bare_ws_run(n_clients, frames, pub[2]) for _ in range(runs)])
        rows.append((f"ws msgs/s, {label}, frame path only", f"{pub[1] / pub[0]:,.0f}",
                     f"bare aiohttp {pub[1] / pub_bare:,.0f}", f"{pub_bare / pub[0]:.2f}"))
        rows.append((f"ws msgs/s, {label}, empty FaultEngine", f"{total / engine:,.0f}", "direct path",
                     f"{elapsed / engine:.2f}"))

    core_rate = max(core_prompts_per_s(prompts) for _ in range(runs))
    server_rate = max([await server_prompts_per_s(prompts) for _ in range(runs)])
    bare_post = max([await bare_post_per_s(prompts) for _ in range(runs)])
    rows.append(("prompts/s, sans-IO core alone", f"{core_rate:,.0f}", "-", "-"))
    rows.append(("prompts/s, HTTP POST + executor, no WebSocket", f"{server_rate:,.0f}",
                 f"bare aiohttp POST {bare_post:,.0f}/s", f"{server_rate / bare_post:.2f}"))

    idle, busy, per = await memory_per_client(clients)
    rows.append((f"RSS with {clients} clients (KiB)", f"{busy:,}", f"idle {idle:,}", f"{busy / idle:.2f}"))
    rows.append(("RSS per connected client (KiB)", f"{per:.1f}", "-", "-"))

    print(f"fake server benchmark: {prompts} prompts (2 zero-duration nodes), best of {runs}, "
          f"frame mix captured from {len(frames)} real frames; ratio = fake / ceiling")
    widths = [max(len(r[i]) for r in rows + [("figure", "value", "compared with", "ratio")]) for i in range(4)]
    for row in [("figure", "value", "compared with", "ratio"), *rows]:
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3, help="best of N per figure")
    parser.add_argument("--quick", action="store_true", help="--prompts 100 --runs 1")
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.runs = 100, 1
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main_async(args.clients, args.prompts, args.runs))


if __name__ == "__main__":
    main()
