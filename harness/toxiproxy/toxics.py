"""What each toxic does to the chunks of one link (docs/toxiproxy-spec.md §6).

Each function runs one toxic on one stub until end of stream, a close, or an
interrupt (:class:`Interrupted` propagates to the stage, which restarts or drops the
toxic). Data held when interrupted is passed on, never lost (§5.4). Units follow
Toxiproxy: milliseconds, except slicer ``delay`` (microseconds) and bandwidth ``rate``
(KB/s, KB = 1000 bytes).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from comfy_chaos.harness.toxiproxy.stub import TIMED_OUT, Chunk, Interrupted, Stub

Pipe = Callable[[Stub, dict[str, int]], Awaitable[None]]


async def noop(stub: Stub, attrs: dict[str, int]) -> None:
    while True:
        chunk = await stub.recv()
        if chunk is None:
            stub.close()
            return
        stub.send(chunk)


async def latency(stub: Stub, attrs: dict[str, int]) -> None:
    base, jitter = attrs["latency"], attrs["jitter"]
    while True:
        chunk = await stub.recv()
        if chunk is None:
            stub.close()
            return
        delay_ms = base + (stub.rng.randrange(2 * jitter) - jitter if jitter > 0 else 0)
        wait = delay_ms / 1000 - (stub.now() - chunk.t)
        if wait > 0:
            try:
                await stub.sleep(wait)
            except Interrupted:
                stub.send(chunk)
                raise
            chunk.t += wait
        stub.send(chunk)


async def bandwidth(stub: Stub, attrs: dict[str, int]) -> None:
    rate = attrs["rate"]
    debt = 0.0
    while True:
        chunk = await stub.recv()
        if chunk is None:
            stub.close()
            return
        if rate == 0:
            try:
                await stub.sleep_forever()
            except Interrupted:
                stub.send(chunk)
                raise
        debt += len(chunk.data) / (rate * 1000)
        piece, data = rate * 100, chunk.data
        while len(data) > piece:
            try:
                await stub.sleep(0.1)
            except Interrupted:
                stub.send(Chunk(data, chunk.t))
                raise
            stub.send(Chunk(data[:piece], chunk.t))
            data = data[piece:]
            debt -= 0.1
        start = stub.now()
        try:
            await stub.sleep(debt)
        except Interrupted:
            stub.send(Chunk(data, chunk.t))
            raise
        debt -= stub.now() - start
        stub.send(Chunk(data, chunk.t))


async def slow_close(stub: Stub, attrs: dict[str, int]) -> None:
    while True:
        chunk = await stub.recv()
        if chunk is not None:
            stub.send(chunk)
            continue
        try:
            await stub.sleep(attrs["delay"] / 1000)
        except Interrupted:
            stub.unrecv(None)
            raise
        stub.close()
        return


async def timeout(stub: Stub, attrs: dict[str, int]) -> None:
    idle = attrs["timeout"] / 1000 if attrs["timeout"] > 0 else None
    while True:
        chunk = await stub.recv(timeout=idle)
        if chunk is None or chunk is TIMED_OUT:
            stub.close()
            return
        stub.drop(chunk)


async def reset_peer(stub: Stub, attrs: dict[str, int]) -> None:
    chunk = await stub.recv()
    if chunk is not None:
        stub.drop(chunk)
    await stub.sleep_uninterruptible(attrs["timeout"] / 1000)
    stub.close()


def slice_points(size: int, average: int, variation: int, randrange: Callable[[int], int]) -> list[tuple[int, int]]:
    """Cut ``[0, size)`` by recursive halving until pieces are ≤ ``average + variation``.

    Each cut moves by a random offset in ``[-variation, variation)``; cuts are kept
    strictly inside their piece (real Toxiproxy can panic there, #541).
    """
    pieces: list[tuple[int, int]] = []
    stack = [(0, size)]
    while stack:
        start, end = stack.pop()
        if end - start - average <= variation:
            pieces.append((start, end))
            continue
        mid = start + (end - start) // 2
        if variation > 0:
            mid += randrange(2 * variation) - variation
        mid = min(max(mid, start + 1), end - 1)
        stack.append((mid, end))
        stack.append((start, mid))
    return pieces


async def slicer(stub: Stub, attrs: dict[str, int]) -> None:
    average, variation, delay = attrs["average_size"], attrs["size_variation"], attrs["delay"] / 1e6
    while True:
        chunk = await stub.recv()
        if chunk is None:
            stub.close()
            return
        data = chunk.data
        for start, end in slice_points(len(data), average, variation, stub.rng.randrange):
            stub.send(Chunk(data[start:end], chunk.t))
            if end == len(data) or delay <= 0:
                continue
            try:
                await stub.sleep(delay)
            except Interrupted:
                stub.send(Chunk(data[end:], chunk.t))
                raise


async def limit_data(stub: Stub, attrs: dict[str, int]) -> None:
    state = stub.state
    while True:
        chunk = await stub.recv()
        if chunk is None:
            stub.close()
            return
        remaining = max(attrs["bytes"] - state.get("sent", 0), 0)
        if remaining < len(chunk.data):
            stub.drop(chunk.data[remaining:])
            chunk.data = chunk.data[:remaining]
        if chunk.data:
            stub.send(chunk)
            state["sent"] = state.get("sent", 0) + len(chunk.data)
        if attrs["bytes"] - state.get("sent", 0) <= 0:
            stub.close()
            return


PIPES: dict[str, Pipe] = {
    "noop": noop,
    "latency": latency,
    "bandwidth": bandwidth,
    "slow_close": slow_close,
    "timeout": timeout,
    "reset_peer": reset_peer,
    "slicer": slicer,
    "limit_data": limit_data,
}
