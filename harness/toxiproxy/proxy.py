"""One proxy of the bundled server: its listener, toxic chains and live connections."""
from __future__ import annotations

import asyncio
import random
import socket
from typing import Any

import structlog

from comfy_chaos.harness.toxiproxy.gojson import Float32
from comfy_chaos.harness.toxiproxy.link import Connection, SocketEnd
from comfy_chaos.harness.toxiproxy.model import (
    DOWNSTREAM,
    UPSTREAM,
    ApiError,
    ToxicDef,
    join_host_port,
    split_host_port,
)

log = structlog.get_logger(__name__)


async def resolve_address(address: str) -> tuple[str, int]:
    """Resolve ``host:port`` to (ip, port) like Go's ``net.ResolveTCPAddr``; ApiError 500 if not.
    An empty address is Go's `net.Listen("tcp", "")`: all interfaces, a port the OS picks."""
    if address == "":
        return "", 0
    try:
        host, port = split_host_port(address)
    except ValueError as exc:
        raise ApiError(str(exc), 500) from None
    if host == "":
        return "", port
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ApiError(f"lookup {host}: no such host", 500) from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0]), port


def resolved_text(ip: str, port: int) -> str:
    return f":{port}" if ip == "" else join_host_port(ip, port)


def _bind(ip: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ip == "" or ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::" if ip == "" else ip, port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise ApiError(f"listen tcp {join_host_port(ip, port)}: bind: {reason}", 500) from None
    return sock


class Proxy:
    """Listener + toxics + connections. Callers serialise changes with ``lock``."""

    def __init__(self, name: str, listen: str, upstream: str, rng: random.Random) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.rng = rng
        self.chains: dict[str, list[ToxicDef]] = {UPSTREAM: [], DOWNSTREAM: []}
        self.connections: set[Connection] = set()
        self.lock = asyncio.Lock()
        self._server: asyncio.Server | None = None
        self._dialing: set[asyncio.Task[Any]] = set()
        # Set once the API has forgotten this proxy (deleted, or replaced by populate): a
        # request that found it earlier (a concurrent reset or update) must not start a
        # listener nobody can see or stop any more.
        self.retired = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "Logger": {},
            "toxics": [t.to_json() for t in self.toxics()],
        }

    def toxics(self) -> list[ToxicDef]:
        return self.chains[UPSTREAM] + self.chains[DOWNSTREAM]

    def find_toxic(self, name: str) -> ToxicDef | None:
        return next((t for t in self.toxics() if t.name == name), None)

    async def differs(self, listen: str, upstream: str) -> bool:
        ip, port = await resolve_address(listen)
        return resolved_text(ip, port) != self.listen or upstream != self.upstream

    async def start(self) -> None:
        if self.enabled or self.retired:
            return
        ip, port = await resolve_address(self.listen)
        sock = _bind(ip, port)
        self._server = await asyncio.get_running_loop().create_server(lambda: SocketEnd(self._accepted), sock=sock)
        bound = sock.getsockname()
        self.listen = join_host_port("::" if ip == "" else bound[0], bound[1])
        self.enabled = True
        log.debug("toxiproxy.proxy.started", proxy=self.name, listen=self.listen, upstream=self.upstream)

    async def stop(self) -> None:
        """Close the listener and every live connection (clients see EOF, or RST after reset_peer)."""
        server, self._server = self._server, None
        self.enabled = False
        if server is not None:
            server.close()
        for task in list(self._dialing):
            task.cancel()
        for conn in list(self.connections):
            conn.abort()
        if server is not None:
            await server.wait_closed()

    def _accepted(self, client: SocketEnd) -> None:
        task = asyncio.get_running_loop().create_task(self._dial(client))
        self._dialing.add(task)
        task.add_done_callback(self._dialing.discard)

    async def _dial(self, client: SocketEnd) -> None:
        """Accept first, then dial (spec §5.1): a dead upstream means connect, then EOF."""
        assert client.transport is not None
        try:
            host, port = split_host_port(self.upstream)
            _, upstream = await asyncio.get_running_loop().create_connection(SocketEnd, host, port)
        except (OSError, ValueError) as exc:
            log.debug("toxiproxy.upstream.unreachable", proxy=self.name, upstream=self.upstream, error=str(exc))
            client.transport.close()
            return
        except asyncio.CancelledError:
            client.transport.abort()
            raise
        assert upstream.transport is not None
        if not self.enabled or client.lost:
            client.transport.abort()
            upstream.transport.abort()
            return
        conn = Connection(self.connections.discard, client, upstream,
                          {d: list(c) for d, c in self.chains.items()}, self.rng)
        self.connections.add(conn)
        conn.start()

    def _links(self, direction: str) -> list[Any]:
        return [conn.links[direction] for conn in list(self.connections)]

    async def add_toxic(self, toxic: ToxicDef) -> None:
        self.chains[toxic.direction].append(toxic)
        await asyncio.gather(*(link.add_toxic(toxic) for link in self._links(toxic.direction)))

    async def update_toxic(self, toxic: ToxicDef, attributes: dict[str, int], toxicity: Float32) -> None:
        toxic.attributes = attributes
        toxic.toxicity = toxicity
        await asyncio.gather(*(link.update_toxic(toxic) for link in self._links(toxic.direction)))

    async def remove_toxic(self, toxic: ToxicDef) -> None:
        self.chains[toxic.direction].remove(toxic)
        await asyncio.gather(*(link.remove_toxic(toxic) for link in self._links(toxic.direction)))

    async def remove_all_toxics(self) -> None:
        for direction in (UPSTREAM, DOWNSTREAM):
            while self.chains[direction]:
                await self.remove_toxic(self.chains[direction][0])
