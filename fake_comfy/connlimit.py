"""Connection limit and header timeout for the fake server's listener.

aiohttp (and ComfyUI, which uses its defaults) accepts connections until the process runs
out of file descriptors, and keeps one that never finishes its request headers until the
keep-alive timeout. 1,100 such half-open requests lock every client out. `GuardedSite`
wraps aiohttp's protocol factory:

- a connection that has not sent one complete request within `header_timeout` is closed;
- at `limit` open connections, a new one evicts the oldest idle connection (half-open, or
  keep-alive between requests); WebSockets and requests being served are never evicted.
  With nothing to evict, the new connection gets a bare 503 and is closed.

Refusals and evictions are counted and logged at most once per second, never per
connection.
"""
from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = structlog.get_logger(__name__)

HEADER_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 4096
_REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


BACKLOG = 128  # aiohttp's default; asyncio accepts up to this many sockets per wake-up
RESERVED_FDS = 64  # files, the log, the proxy's own sockets


def default_limit() -> int:
    """4096, or what the file-descriptor limit leaves: asyncio accepts up to BACKLOG sockets
    at a time before the factory sees them, and evicted ones take a loop iteration or two to
    close (three batches of headroom; on a loaded machine a flood can still hit the limit
    for a moment, which asyncio logs once and answers by pausing accept for a second)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft - 3 * BACKLOG - RESERVED_FDS))


def _idle(handler: RequestHandler) -> bool:
    """Waiting for a request's headers: a half-open request, or keep-alive between requests."""
    return handler._waiter is not None and handler.transport is not None  # noqa: SLF001


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_REFUSAL)
        transport.close()


class ConnectionGuard:
    """The protocol factory handed to `loop.create_server` in place of aiohttp's server."""

    def __init__(self, server: web.Server, limit: int, header_timeout: float) -> None:
        self.server = server
        self.limit = limit
        self.header_timeout = header_timeout
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0
        self._last_log = 0.0

    def __call__(self) -> asyncio.Protocol:
        loop = asyncio.get_running_loop()
        if len(self.server.connections) >= self.limit:
            victim = next((h for h in self.server.connections if _idle(h)), None)
            if victim is None:
                self.refused += 1
                self._report()
                return _Refused()
            victim.force_close()
            self.evicted += 1
            self._report()
        handler = self.server()
        if self.header_timeout > 0:
            loop.call_later(self.header_timeout, self._check_first_request, handler)
        return handler

    def _check_first_request(self, handler: RequestHandler) -> None:
        if handler._request_count == 0 and _idle(handler):  # noqa: SLF001
            handler.force_close()
            self.timed_out += 1
            self._report()

    def _report(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= 1.0:
            self._last_log = now
            log.warning(
                "fake_comfy.connections.limited",
                limit=self.limit,
                open=len(self.server.connections),
                refused=self.refused,
                evicted=self.evicted,
                header_timeouts=self.timed_out,
            )


class GuardedSite(web.TCPSite):
    """A TCPSite whose connections go through a `ConnectionGuard`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, limit: int, header_timeout: float, **kw: Any) -> None:
        super().__init__(runner, host, port, **kw)
        assert runner.server is not None
        self.guard = ConnectionGuard(runner.server, limit, header_timeout)

    async def start(self) -> None:
        self._runner._reg_site(self)  # noqa: SLF001 - what BaseSite.start does
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.guard, self._host, self._port, backlog=BACKLOG,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port
