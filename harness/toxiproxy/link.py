"""The data path: one accepted connection = two one-way links (docs/toxiproxy-spec.md §5).

A link with no toxics is a plain read→write loop (the only per-chunk cost is one
check). With toxics, the reader stamps chunks into a chain of stages, each running one
toxic as its own task, and a writer task drains the end of the chain. Toxics added,
updated or removed on live links follow Toxiproxy: only the affected stage and the
one before it are restarted (each restart draws toxicity again, §5.3), held data is
passed on, and removing a ``timeout`` toxic closes the link.
"""
from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Callable, Iterable

import structlog

from harness.toxiproxy.model import ToxicDef
from harness.toxiproxy.stub import Channel, Chunk, Interrupted, Stub
from harness.toxiproxy.toxics import PIPES, noop

log = structlog.get_logger(__name__)

TOXIC_READ_SIZE = 32 * 1024
DIRECT_READ_SIZE = 256 * 1024
STREAM_LIMIT = 256 * 1024
BUFFER_LIMIT = 16 * 1024 * 1024
_IO_ERRORS = (ConnectionError, OSError, RuntimeError)


def set_linger_zero(writer: asyncio.StreamWriter) -> None:
    """Make any later close of this socket an RST (what reset_peer does at connect)."""
    sock = writer.get_extra_info("socket")
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

    def __init__(self, conn: Connection, direction: str, source: asyncio.StreamReader,
                 dest: asyncio.StreamWriter, toxics: Iterable[ToxicDef], rng: random.Random) -> None:
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.rng = rng
        self.out = Channel()
        self.head = self.out
        self.stages: list[Stage] = []
        self.buffered = 0
        self.room = asyncio.Event()
        self.room.set()
        self.done = False
        self.eof_pushed = False
        self.reader_task: asyncio.Task[None] | None = None
        self.writer_task: asyncio.Task[None] | None = None
        for toxic in toxics:
            stage = Stage(toxic, Channel(), self.out, rng, self._release)
            if self.stages:
                self.stages[-1].stub.output = stage.stub.input
            else:
                self.head = stage.stub.input
            self.stages.append(stage)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for stage in self.stages:
            stage.start()
        self.reader_task = loop.create_task(self._read_loop())
        self.writer_task = loop.create_task(self._write_loop())

    def _release(self, size: int) -> None:
        self.buffered -= size
        if self.buffered < BUFFER_LIMIT and not self.room.is_set():
            self.room.set()

    async def _read_loop(self) -> None:
        source, dest, loop = self.source, self.dest, asyncio.get_running_loop()
        try:
            while True:
                data = await source.read(TOXIC_READ_SIZE if self.stages else DIRECT_READ_SIZE)
                if not data:
                    break
                if not self.stages and not self.out.items:
                    dest.write(data)
                    await dest.drain()
                    continue
                self.buffered += len(data)
                self.head.push(Chunk(data, loop.time()))
                if self.buffered >= BUFFER_LIMIT:
                    self.room.clear()
                    await self.room.wait()
        except _IO_ERRORS:
            pass
        self.push_eof()

    def push_eof(self) -> None:
        if not self.eof_pushed:
            self.eof_pushed = True
            self.head.push(None)

    async def _write_loop(self) -> None:
        out, dest, loop = self.out, self.dest, asyncio.get_running_loop()
        try:
            while True:
                if not out.items:
                    waiter = loop.create_future()
                    out.waiter = waiter
                    await waiter
                    continue
                item = out.items.popleft()
                if item is None:
                    break
                dest.write(item.data)
                self._release(len(item.data))
                await dest.drain()
        except _IO_ERRORS:
            pass
        finally:
            out.waiter = None
        self.finish()

    def finish(self) -> None:
        """The destination is closed completely (no half-close); the other link follows."""
        if self.done:
            return
        self.done = True
        self.dest.close()
        self.conn.link_finished(self)

    def source_gone(self) -> None:
        """The source socket was closed by the other link: end of stream, right now."""
        if self.reader_task is not None:
            self.reader_task.cancel()
        self.push_eof()

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
            if not await last.interrupt():
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
        if await stage.interrupt():
            stage.start()

    async def remove_toxic(self, toxic: ToxicDef) -> None:
        index = self._index(toxic)
        if index is None:
            return
        stage = self.stages[index]
        if not await stage.interrupt():
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
        if prev_running:
            prev.start()

    def cancel(self) -> None:
        for task in (self.reader_task, self.writer_task):
            if task is not None:
                task.cancel()
        for stage in self.stages:
            stage.cancel()


class Connection:
    """A client connection and its upstream connection, joined by two links."""

    def __init__(self, on_closed: Callable[[Connection], None], client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 chains: dict[str, list[ToxicDef]], rng: random.Random) -> None:
        self._on_closed = on_closed
        self.client_writer = client[1]
        self.upstream_writer = upstream[1]
        if any(t.type == "reset_peer" for chain in chains.values() for t in chain):
            set_linger_zero(self.client_writer)
            set_linger_zero(self.upstream_writer)
        self.links = {
            "upstream": Link(self, "upstream", client[0], upstream[1], chains["upstream"], rng),
            "downstream": Link(self, "downstream", upstream[0], client[1], chains["downstream"], rng),
        }
        self.closed = False

    def start(self) -> None:
        for link in self.links.values():
            link.start()

    def link_finished(self, link: Link) -> None:
        other = self.links["downstream" if link.direction == "upstream" else "upstream"]
        if not other.done:
            other.source_gone()
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
        self.client_writer.transport.abort()
        self.upstream_writer.transport.abort()
        self._closed()
