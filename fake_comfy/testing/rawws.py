"""A minimal raw WebSocket + HTTP client over asyncio streams: shows the exact frame bytes
(no UTF-8 validation, no autoping, no compression), for fault-layer integration tests."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


@dataclass(frozen=True)
class Frame:
    opcode: int  # 1 text, 2 binary, 8 close; 0 = the TCP connection ended without a close frame
    payload: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack(">H", self.payload[:2])[0] if self.opcode == CLOSE and len(self.payload) >= 2 else None

    def json(self) -> Any:
        return json.loads(self.payload)


class RawWs:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str, timeout: float = 30.0) -> RawWs:
        """Upgrade; raises `Refused(status)` if the server answers anything but 101."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            writer.close()
            raise Refused(status, head)
        return cls(reader, writer)

    async def recv(self, timeout: float = 30.0) -> Frame:
        async with asyncio.timeout(timeout):
            try:
                b0, b1 = await self.reader.readexactly(2)
            except asyncio.IncompleteReadError:
                return Frame(0, b"")
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", await self.reader.readexactly(8))
            try:
                payload = await self.reader.readexactly(length)
            except asyncio.IncompleteReadError:
                return Frame(0, b"")
            return Frame(b0 & 0x0F, payload)

    async def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        header += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(2):
                await self.writer.wait_closed()
        except (TimeoutError, ConnectionError):
            pass


class Refused(Exception):
    def __init__(self, status: int, head: bytes) -> None:
        super().__init__(f"upgrade refused with {status}")
        self.status, self.head = status, head


async def raw_http_get(host: str, port: int, path: str, timeout: float = 30.0) -> tuple[bytes, bytes]:
    """GET with `Connection: close`; returns (head, every body byte until the server closed)."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body
