"""The WebSocket driver: connect, read, reconnect with backoff; thin around aiohttp.

Protocol facts it works around (protocol.md §3.3, §3.4):
* ComfyUI never pings, so liveness comes from our own pings (aiohttp `heartbeat=`).
* A same-id socket that closes *after* its replacement registered orphans the
  replacement; so the old socket's close must complete (or its transport be aborted)
  before a new one is opened, and the new one reuses the same clientId.
* Text frames are read undecoded (`decode_text=False`) so a frame with invalid UTF-8
  reaches the sanitizer instead of killing the connection.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

import aiohttp
import structlog

from comfy_chaos.client.backoff import BackoffPolicy, ReconnectSchedule
from comfy_chaos.client.config import ClientConfig
from comfy_chaos.client.stats import ClientStats

log = structlog.get_logger(__name__)

FrameCallback = Callable[[bytes | str, bool], None]  # (payload, is_binary)


class WsDriver:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        ws_url: str,
        config: ClientConfig,
        stats: ClientStats,
        *,
        on_connected: Callable[[], None],
        on_disconnected: Callable[[], None],
        on_frame: FrameCallback,
        has_pending: Callable[[], bool],
    ) -> None:
        self._session = session
        self._url = ws_url
        self._cfg = config
        self._stats = stats
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_frame = on_frame
        self._has_pending = has_pending
        self._schedule = ReconnectSchedule(BackoffPolicy.from_config(config), config.rng_seed)
        self._ws: aiohttp.ClientWebSocketResponse[Literal[False]] | None = None
        self._stop = asyncio.Event()
        self._forced: str | None = None
        self._kick = asyncio.Event()
        self.connected = asyncio.Event()
        self.gave_up = False

    async def run(self) -> None:
        """Connect and keep reconnecting until `stop()`; never raises for network trouble."""
        first = True
        while not self._stop.is_set():
            if not first:
                forced, self._forced = self._forced, None
                if forced is None:
                    delay = self._schedule.next_delay(self._has_pending())
                    if delay is None:
                        self.gave_up = True
                        log.warning("ws.reconnect.gave_up", attempts=self._schedule.attempt - 1)
                        await self._stop.wait()
                        return
                else:
                    delay = 0.0
                self._stats.reconnect_attempts += 1
                log.info("ws.reconnect.attempt", attempt=self._schedule.attempt, delay=round(delay, 3), forced=forced)
                if await self._wait_or_stop(delay):
                    return
            first = False
            ws = await self._connect()
            if ws is None:
                continue
            self._schedule.reset()
            self._ws = ws
            self._stats.ws_connects += 1
            self.connected.set()
            log.info("ws.connected", url=self._url)
            self._kick.clear()
            self._on_connected()
            try:
                await self._read_until_kicked(ws)
            finally:
                self._ws = None
                self.connected.clear()
                await self._close(ws)
                log.info("ws.disconnected", close_code=ws.close_code, forced=self._forced)
                self._on_disconnected()

    async def _wait_or_stop(self, delay: float) -> bool:
        """Wait `delay` seconds unless stopped or kicked (forced reconnect); True if stopped."""
        self._kick.clear()
        stop = asyncio.ensure_future(self._stop.wait())
        kick = asyncio.ensure_future(self._kick.wait())
        try:
            await asyncio.wait({stop, kick}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            kick.cancel()
        return self._stop.is_set()

    async def _connect(self) -> aiohttp.ClientWebSocketResponse[Literal[False]] | None:  # decode_text=False
        try:
            async with asyncio.timeout(self._cfg.ws_connect_timeout):
                return await self._session.ws_connect(
                    self._url,
                    heartbeat=self._cfg.heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_close=self._cfg.close_timeout),
                    max_msg_size=self._cfg.max_msg_size,
                    decode_text=False,
                    compress=0,
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("ws.connect.failed", error=f"{type(exc).__name__}: {exc}")
            return None

    async def _read_until_kicked(self, ws: aiohttp.ClientWebSocketResponse[Literal[False]]) -> None:
        """Read until the socket ends, a reconnect is forced or the driver stops.

        On a forced reconnect or stop the socket is closed *while the read is pending*:
        aiohttp then sends the close frame and waits for the server's reply, ending the
        read cleanly. (Cancelling the read instead would make aiohttp skip the close
        handshake and only drop the transport, which the server may notice late.)
        """
        read = asyncio.ensure_future(self._read(ws))
        kick = asyncio.ensure_future(self._kick.wait())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({read, kick, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                await self._close(ws)
                try:
                    async with asyncio.timeout(self._cfg.close_timeout + 0.5):
                        await asyncio.shield(read)
                except TimeoutError:
                    pass
        finally:
            for task in (read, kick, stop):
                task.cancel()
            await asyncio.gather(read, kick, stop, return_exceptions=True)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse[Literal[False]]) -> None:
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                self._on_frame(msg.data, False)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                self._on_frame(msg.data, True)
            elif msg.type is aiohttp.WSMsgType.ERROR:
                log.info("ws.error", error=f"{type(msg.data).__name__}: {msg.data}")
                return
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return

    async def _close(self, ws: aiohttp.ClientWebSocketResponse[Literal[False]]) -> None:
        """Close and wait for the handshake, bounded; on timeout aiohttp drops the transport."""
        try:
            async with asyncio.timeout(self._cfg.close_timeout + 0.5):
                await ws.close()
        except TimeoutError:
            log.warning("ws.close.aborted", detail="close handshake did not complete; transport dropped")
        except (aiohttp.ClientError, OSError) as exc:
            log.info("ws.close.error", error=f"{type(exc).__name__}: {exc}")

    def force_reconnect(self, reason: str) -> None:
        """Drop the current socket (if any) and reconnect at once."""
        log.warning("ws.reconnect.forced", reason=reason)
        self._forced = reason
        self._kick.set()

    def stop(self) -> None:
        """Make `run()` close the socket and return."""
        self._stop.set()
