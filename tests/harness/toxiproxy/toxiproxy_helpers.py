"""Upstream servers and raw TCP helpers for the Toxiproxy conformance suite."""
from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from comfy_chaos.harness.toxiproxy.network import ProxyNetwork

WAIT = 10.0  # bound on every wait for something that must happen
NET = ProxyNetwork()  # replaced by the conftest once the backend is known


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class UpstreamConn:
    """Server side of one connection through the proxy."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    received: bytearray = field(default_factory=bytearray)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""  # "eof" | "reset"
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_received(self, expected: bytes) -> None:
        """Wait (bounded) until exactly ``expected`` has been received."""
        async with asyncio.timeout(WAIT):
            while bytes(self.received) != expected:
                assert expected.startswith(bytes(self.received)), bytes(self.received)
                self.arrived.clear()
                await self.arrived.wait()


class Upstream:
    """A TCP server on 127.0.0.1:0 that records connections; ``mode`` says what it does.

    ``echo``: echoes everything; ``sink``: only reads; ``send:N``: writes N bytes then
    closes; ``send_wait:N``: writes N bytes and keeps reading.
    """

    def __init__(self, mode: str = "echo", net: ProxyNetwork | None = None) -> None:
        self.mode = mode
        self.net = net
        self.conns: list[UpstreamConn] = []
        self.connected = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return (self.net or NET).upstream(self.port)

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._handle, (self.net or NET).bind_host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self.conns:
            conn.writer.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = UpstreamConn(reader, writer)
        self.conns.append(conn)
        self.connected.set()
        if self.mode.startswith("send"):
            size = int(self.mode.split(":")[1])
            writer.write(pattern(size))
            if self.mode.startswith("send:"):
                await writer.drain()
                writer.close()
        try:
            while data := await reader.read(65536):
                conn.received += data
                conn.arrived.set()
                if self.mode == "echo":
                    writer.write(data)
                    await writer.drain()
            conn.end_reason = "eof"
        except ConnectionResetError:
            conn.end_reason = "reset"
        except OSError:
            conn.end_reason = "error"
        conn.ended.set()

    async def wait_conn(self, index: int = 0) -> UpstreamConn:
        async with asyncio.timeout(WAIT):
            while len(self.conns) <= index:
                self.connected.clear()
                await self.connected.wait()
        return self.conns[index]


def pattern(size: int) -> bytes:
    """Deterministic, non-repeating-looking test bytes."""
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


async def connect(port: int, host: str | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(WAIT):
        return await asyncio.open_connection(host or NET.connect_host, port)


async def read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    async with asyncio.timeout(WAIT):
        return await reader.readexactly(size)


async def read_until_end(reader: asyncio.StreamReader, timeout: float = WAIT) -> tuple[bytes, str]:
    """Everything until the stream ends; the end is "eof" or "reset"."""
    data = bytearray()
    async with asyncio.timeout(timeout):
        try:
            while chunk := await reader.read(65536):
                data += chunk
        except ConnectionResetError:
            return bytes(data), "reset"
    return bytes(data), "eof"


async def nothing_arrives(reader: asyncio.StreamReader, window: float) -> bool:
    """True if no byte and no end of stream arrives within ``window`` seconds."""
    try:
        async with asyncio.timeout(window):
            await reader.read(1)
    except TimeoutError:
        return True
    return False


async def round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> float:
    start = time.monotonic()
    writer.write(payload)
    await writer.drain()
    assert await read_exactly(reader, len(payload)) == payload
    return time.monotonic() - start


def set_linger_zero(writer: asyncio.StreamWriter) -> None:
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Api:
    """Raw HTTP access for checking status codes, headers and exact bodies."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session
        self.created: list[str] = []

    async def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                   headers: dict[str, str] | None = None) -> Answer:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        async with self.session.request(method, self.url + path, data=data, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=30)) as response:
            return Answer(response.status, response.headers, await response.read())

    async def create(self, upstream: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
        name = name or unique("p")
        answer = await self.call("POST", "/proxies", {"name": name, "listen": NET.listen(0), "upstream": upstream, **fields})
        assert answer.status == 201, answer.body
        self.created.append(name)
        return answer.json()

    async def toxic(self, proxy: str, **body: Any) -> dict[str, Any]:
        answer = await self.call("POST", f"/proxies/{proxy}/toxics", body)
        assert answer.status == 200, answer.body
        return answer.json()
