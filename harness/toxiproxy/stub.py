"""The plumbing one toxic runs on inside one link: channels and the interruptible stub.

A link (one direction of one connection) is ``reader → stage → stage → … → writer``.
Stages are joined by :class:`Channel` s, unbounded FIFOs whose ``push`` never blocks:
back-pressure is applied once, at the link's reader, from the bytes held in the link.
That keeps every wait of a toxic interruptible, which is what live add/update/remove
of toxics needs (docs/toxiproxy-spec.md §5.4).
"""
from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Chunk:
    """Bytes from one read of the source socket and the loop time they were read."""

    data: bytes
    t: float


class Interrupted(Exception):
    """Raised inside a toxic when the link wants it to stop (chain change)."""


TIMED_OUT = object()


class Channel:
    """Unbounded single-consumer FIFO of ``Chunk`` s and ``None`` (end of stream)."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: deque[Chunk | None] = deque()
        self.waiter: asyncio.Future[None] | None = None

    def push(self, item: Chunk | None) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Stub:
    """What a running toxic sees: its input and output, state, randomness and clock."""

    def __init__(
        self,
        input: Channel,
        output: Channel,
        *,
        rng: random.Random,
        on_drop: Callable[[int], None],
    ) -> None:
        self.input = input
        self.output = output
        self.rng = rng
        self.state: dict[str, Any] = {}
        self.closed = False
        self.interrupted = False
        self._on_drop = on_drop
        self._wake: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()

    def now(self) -> float:
        return self._loop.time()

    def wake(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _park(self, channel: Channel | None, deadline: float | None) -> None:
        fut = self._loop.create_future()
        self._wake = fut
        if channel is not None:
            channel.waiter = fut
        handle = self._loop.call_at(deadline, _resolve, fut) if deadline is not None else None
        try:
            await fut
        finally:
            self._wake = None
            if channel is not None and channel.waiter is fut:
                channel.waiter = None
            if handle is not None:
                handle.cancel()

    async def recv(self, timeout: float | None = None) -> Any:
        """Next chunk, ``None`` at end of stream, or ``TIMED_OUT`` after ``timeout`` s idle."""
        deadline = None if timeout is None else self._loop.time() + timeout
        while True:
            if self.interrupted:
                raise Interrupted
            if self.input.items:
                return self.input.items.popleft()
            if deadline is not None and self._loop.time() >= deadline:
                return TIMED_OUT
            await self._park(self.input, deadline)

    def unrecv(self, item: Chunk | None) -> None:
        """Give an item back to the front of the input (re-handled after a restart)."""
        self.input.items.appendleft(item)

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds; raises :class:`Interrupted` if interrupted meanwhile."""
        if self.interrupted:
            raise Interrupted
        if delay > 0:
            await self._park(None, self._loop.time() + delay)
        if self.interrupted:
            raise Interrupted

    async def sleep_forever(self) -> None:
        await self._park(None, None)
        raise Interrupted

    async def sleep_uninterruptible(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)

    def send(self, item: Chunk | None) -> None:
        self.output.push(item)

    def drop(self, chunk: Chunk | bytes) -> None:
        """Discard data (it leaves the link's buffer accounting)."""
        size = len(chunk.data) if isinstance(chunk, Chunk) else len(chunk)
        if size:
            self._on_drop(size)

    def close(self) -> None:
        """End the stream here: downstream stages and the writer see end of stream."""
        if not self.closed:
            self.closed = True
            self.output.push(None)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
