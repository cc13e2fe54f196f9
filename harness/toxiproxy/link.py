"""The data path: one accepted connection = two one-way links (docs/toxiproxy-spec.md §5).

Sockets are asyncio protocols (:class:`SocketEnd`). A link with no toxics writes each
received buffer straight to the other socket from ``data_received`` (one check per
chunk, no task switch). With toxics, received data is cut into ≤ 32 KiB chunks stamped
with their read time and pushed into a chain of stages, each running one toxic as its
own task; a writer task drains the end of the chain. Toxics added, updated or removed
on live links follow Toxiproxy: only the affected stage and the one before it are
restarted (each restart draws toxicity again, §5.3), held data is passed on, and
removing a ``timeout`` toxic closes the link.
"""
from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Callable, Iterable

import structlog

from comfy_chaos.harness.toxiproxy.model import ToxicDef
from comfy_chaos.harness.toxiproxy.stub import Channel, Chunk, Interrupted, Stub
from comfy_chaos.harness.toxiproxy.toxics import PIPES, noop

log = structlog.get_logger(__name__)

CHUNK_SIZE = 32 * 1024
BUFFER_LIMIT = 16 * 1024 * 1024
_PAUSED_BY_DEST, _PAUSED_BY_BUFFER = 1, 2


class SocketEnd(asyncio.Protocol):
    """One TCP socket of a proxied connection.

    What it reads feeds ``reading`` (the link whose source it is); flow-control events
    go to ``writing`` (the link whose destination it is). It starts paused: reading
    resumes once both links are attached.
    """

    def __init__(self, on_made: Callable[[SocketEnd], None] | None = None) -> None:
        self._on_made = on_made
        self.transport: asyncio.Transport | None = None
        self.reading: Link | None = None
        self.writing: Link | None = None
        self.eof = False
        self.lost = False
        self.write_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.pause_reading()
        if self._on_made is not None:
            self._on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.reading is not None:
            self.reading.on_data(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.reading is not None:
            self.reading.push_eof()
        return True  # no half-close: the links decide when this socket closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        if self.reading is not None:
            self.reading.push_eof()
        if self.writing is not None:
            self.writing.wake_writer()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.writing is not None:
            self.writing.pause(_PAUSED_BY_DEST)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.writing is not None:
            self.writing.resume(_PAUSED_BY_DEST)
            self.writing.wake_writer()

    def set_linger_zero(self) -> None:
        """Make any later close of this socket an RST (what reset_peer does at connect)."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Stage:
    """One toxic in one link: its stub and the task running it."""

    def __init__(self, toxic: ToxicDef, input: Channel, output: Channel, rng: random.Random,
                 on_drop: Callable[[int], None]) -> None:
        self.toxic = toxic
        self.stub = Stub(input, output, rng=rng, on_drop=on_drop)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        toxic = self.toxic
        pipe = PIPES[toxic.type] if self.stub.rng.random() < toxic.toxicity else noop
        try:
            await pipe(self.stub, dict(toxic.attributes))
        except Interrupted:
            return
        except Exception:
            log.exception("toxiproxy.toxic.crashed", toxic=toxic.name, type=toxic.type)
            self.stub.close()

    async def interrupt(self) -> bool:
        """Stop the running toxic (it passes on held data); False if the stub is closed."""
        task = self.task
        if self.stub.closed or task is None:
            return False
        self.stub.interrupted = True
        self.stub.wake()
        try:
            await asyncio.wait({task})
        finally:
            self.stub.interrupted = False
        return not self.stub.closed

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


class Link:
    """One direction of one connection: source socket → toxic chain → destination socket."""

    def __init__(self, conn: Connection, direction: str, source: SocketEnd, dest: SocketEnd,
                 toxics: Iterable[ToxicDef], rng: random.Random) -> None:
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.rng = rng
        self.out = Channel()
        self.head = self.out
        self.stages: list[Stage] = []
        self.buffered = 0
        self.paused = 0
        self.done = False
        self.eof_pushed = False
        self.writer_task: asyncio.Task[None] | None = None
        self._writer_wake: asyncio.Future[None] | None = None
        for toxic in toxics:
            stage = Stage(toxic, Channel(), self.out, rng, self._release)
            if self.stages:
                self.stages[-1].stub.output = stage.stub.input
            else:
                self.head = stage.stub.input
            self.stages.append(stage)
        source.reading = self
        dest.writing = self

    def start(self) -> None:
        for stage in self.stages:
            stage.start()
        self.writer_task = asyncio.get_running_loop().create_task(self._write_loop())
        if self.dest.write_paused:
            self.pause(_PAUSED_BY_DEST)
        if self.source.eof:
            self.push_eof()

    # -- reading side (called from the source protocol) -----------------------------

    def on_data(self, data: bytes) -> None:
        if self.done or self.eof_pushed or self.dest.lost:
            return
        if not self.stages and not self.out.items:
            self.dest.transport.write(data)  # type: ignore[union-attr]
            return
        now = asyncio.get_running_loop().time()
        for start in range(0, len(data), CHUNK_SIZE):
            self.head.push(Chunk(data[start:start + CHUNK_SIZE], now))
        self.buffered += len(data)
        if self.buffered >= BUFFER_LIMIT:
            self.pause(_PAUSED_BY_BUFFER)

    def push_eof(self) -> None:
        if not self.eof_pushed:
            self.eof_pushed = True
            self.head.push(None)

    def pause(self, reason: int) -> None:
        if not self.paused and self.source.transport is not None:
            self.source.transport.pause_reading()
        self.paused |= reason

    def resume(self, reason: int) -> None:
        if not self.paused & reason:
            return
        self.paused &= ~reason
        if not self.paused and self.source.transport is not None:
            self.source.transport.resume_reading()

    def _release(self, size: int) -> None:
        self.buffered -= size
        if self.buffered < BUFFER_LIMIT:
            self.resume(_PAUSED_BY_BUFFER)

    # -- writing side ------------------------------------------------------------------

    def wake_writer(self) -> None:
        waiter = self._writer_wake
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _park_writer(self, channel: Channel | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._writer_wake = waiter
        if channel is not None:
            channel.waiter = waiter
        try:
            await waiter
        finally:
            self._writer_wake = None
            if channel is not None and channel.waiter is waiter:
                channel.waiter = None

    async def _write_loop(self) -> None:
        out, dest = self.out, self.dest
        transport = dest.transport
        assert transport is not None
        while True:
            if dest.lost or transport.is_closing():
                break
            if dest.write_paused:
                await self._park_writer(None)
                continue
            if not out.items:
                await self._park_writer(out)
                continue
            item = out.items.popleft()
            if item is None:
                break
            transport.write(item.data)
            self._release(len(item.data))
        self.finish()

    def finish(self) -> None:
        """The destination is closed completely (no half-close); the other link follows."""
        if self.done:
            return
        self.done = True
        if self.dest.transport is not None:
            self.dest.transport.close()
        self.conn.link_finished(self)

    # -- live toxic changes -------------------------------------------------------------

    def _index(self, toxic: ToxicDef) -> int | None:
        for index, stage in enumerate(self.stages):
            if stage.toxic is toxic:
                return index
        return None

    async def add_toxic(self, toxic: ToxicDef) -> None:
        if self.done:
            return
        stage = Stage(toxic, Channel(), self.out, self.rng, self._release)
        if self.stages:
            last = self.stages[-1]
            if not await last.interrupt() or self.done:
                return
            last.stub.output = stage.stub.input
            self.stages.append(stage)
            last.start()
        else:
            self.head = stage.stub.input
            self.stages.append(stage)
        stage.start()

    async def update_toxic(self, toxic: ToxicDef) -> None:
        index = self._index(toxic)
        if index is None or self.done:
            return
        stage = self.stages[index]
        if await stage.interrupt() and not self.done:
            stage.start()

    async def remove_toxic(self, toxic: ToxicDef) -> None:
        index = self._index(toxic)
        if index is None:
            return
        stage = self.stages[index]
        if not await stage.interrupt() or self.done:
            return
        if toxic.type == "timeout":
            stage.stub.close()
            return
        prev = self.stages[index - 1] if index else None
        prev_running = await prev.interrupt() if prev is not None else False
        while stage.stub.input.items:
            stage.stub.output.push(stage.stub.input.items.popleft())
        if prev is not None:
            prev.stub.output = stage.stub.output
        else:
            self.head = stage.stub.output
        self.stages.remove(stage)
        if prev is not None and prev_running and not self.done:
            prev.start()

    def cancel(self) -> None:
        if self.writer_task is not None:
            self.writer_task.cancel()
        for stage in self.stages:
            stage.cancel()


class Connection:
    """A client socket and its upstream socket, joined by two links."""

    def __init__(self, on_closed: Callable[[Connection], None], client: SocketEnd, upstream: SocketEnd,
                 chains: dict[str, list[ToxicDef]], rng: random.Random) -> None:
        self._on_closed = on_closed
        self.client = client
        self.upstream = upstream
        if any(t.type == "reset_peer" for chain in chains.values() for t in chain):
            client.set_linger_zero()
            upstream.set_linger_zero()
        self.links = {
            "upstream": Link(self, "upstream", client, upstream, chains["upstream"], rng),
            "downstream": Link(self, "downstream", upstream, client, chains["downstream"], rng),
        }
        self.closed = False

    def start(self) -> None:
        for link in self.links.values():
            link.start()
        for end in (self.client, self.upstream):
            if end.transport is not None and not end.transport.is_closing():
                end.transport.resume_reading()

    def link_finished(self, link: Link) -> None:
        other = self.links["downstream" if link.direction == "upstream" else "upstream"]
        if not other.done:
            other.push_eof()  # its source is the socket just closed
            return
        self._closed()

    def _closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        for link in self.links.values():
            link.cancel()
        self._on_closed(self)

    def abort(self) -> None:
        """Close both sockets now (proxy disabled, deleted or replaced)."""
        for link in self.links.values():
            link.done = True
        for end in (self.client, self.upstream):
            if end.transport is not None:
                end.transport.abort()
        self._closed()
