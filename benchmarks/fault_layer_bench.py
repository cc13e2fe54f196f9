"""Cost of the fault layer when no fault is configured.

Prints frames/s and ratios for three ways of sending the same recorded ComfyUI frames:

* direct        — `conn.send_text(frame.text)`, nothing else;
* faults=None   — FakeComfy's transport path (`_send_to`: ledger + `message` event + send);
* empty engine  — the same path with a `FaultEngine` holding an empty schedule.

Each is measured in-process against a null connection (isolates the Python cost) and
end to end over a loopback WebSocket to an aiohttp client (what a run pays). Best of
`--repeat` rounds; the machine is shared, so read the ratios, not the absolute numbers.

    python benchmarks/fault_layer_bench.py [--frames 20000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig, testing
from comfy_chaos.fake_comfy.faults import FaultEngine, FaultSchedule
from comfy_chaos.fake_comfy.wire import OutFrame

TRACE = Path(__file__).resolve().parents[1] / "tests" / "data" / "comfyui-traces" / "02-success.jsonl"


def recorded_frames(sid: str) -> list[OutFrame]:
    """The recorded stream of one real prompt, every frame addressed to `sid`."""
    return [dataclasses.replace(frame, sid=sid) for frame in testing.recorded_frames(TRACE)]


class NullConn:
    conn_id = 1
    sid = "bench"
    reconnect_index = 0

    def __init__(self) -> None:
        self.frames_sent = 0

    async def send_text(self, text: str) -> None:
        self.frames_sent += 1

    async def send_bytes(self, data: bytes) -> None:
        self.frames_sent += 1

    async def send_raw_text_frame(self, payload: bytes) -> None:
        self.frames_sent += 1

    async def close(self, code: int = 1000) -> None:
        return None

    def abort(self) -> None:
        return None


def empty_engine() -> FaultEngine:
    return FaultEngine(FaultSchedule.of([]), seed=0, time_scale=1.0)


async def best_rates(runs: dict[str, Callable[[], Awaitable[int]]], repeat: int) -> dict[str, float]:
    """Best frames/s of each variant; variants alternate within each round so drift hits all alike."""
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeat):
        for label, run in runs.items():
            start = time.perf_counter()
            n = await run()
            best[label] = max(best[label], n / (time.perf_counter() - start))
    return best


async def in_process(n: int, repeat: int) -> dict[str, float]:
    frames = recorded_frames("bench")
    stream = [frames[i % len(frames)] for i in range(n)]

    async def direct() -> int:
        conn = NullConn()
        for frame in stream:
            await conn.send_text(frame.text)  # type: ignore[arg-type]
        return len(stream)

    def via(server: FakeComfy) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            conn: Any = NullConn()
            for frame in stream:
                await server._send_to(conn, frame)  # noqa: SLF001 - the transport's send path
            return len(stream)

        return run

    return await best_rates(
        {
            "direct": direct,
            "faults=None": via(FakeComfy(FakeConfig(time_scale=0.0), faults=None)),
            "empty engine": via(FakeComfy(FakeConfig(time_scale=0.0), faults=empty_engine())),
        },
        repeat,
    )


async def over_socket(n: int, repeat: int) -> dict[str, float]:
    rates: dict[str, float] = {}
    for label, make in (("faults=None", lambda: None), ("empty engine", empty_engine)):
        server = FakeComfy(FakeConfig(time_scale=0.0), faults=make())
        await server.start(host="127.0.0.1", port=0)
        try:
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(f"{server.base_url}/ws?clientId=bench", max_msg_size=0)
                await ws.receive()  # the status frame on connect
                stream = recorded_frames("bench")
                stream = [stream[i % len(stream)] for i in range(n)]

                async def roundtrip() -> int:
                    async def send_all() -> None:
                        for frame in stream:
                            await server.send_frame(frame)

                    sender = asyncio.create_task(send_all())
                    async with asyncio.timeout(120):
                        for _ in stream:
                            await ws.receive()
                        await sender
                    return len(stream)

                rates.update(await best_rates({label: roundtrip}, repeat))
                await ws.close()
        finally:
            await server.stop()
    return rates


def report(title: str, rates: dict[str, float]) -> None:
    base = rates["faults=None"]
    print(title)
    for label, rate in rates.items():
        print(f"  {label:<13} {rate:>12,.0f} frames/s   ratio to faults=None: {rate / base:.3f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    report("in-process (null connection):", await in_process(args.frames, args.repeat))
    report("loopback WebSocket (aiohttp client):", await over_socket(args.frames // 4, args.repeat))


if __name__ == "__main__":
    asyncio.run(main())
