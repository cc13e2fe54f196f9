"""The bundled Toxiproxy-compatible server: Toxiproxy 2.12's HTTP API on aiohttp.

Routing, status codes, error bodies and their Content-Type quirks, the browser
block and the 25 s handler timeout follow docs/toxiproxy-spec.md §3-§4. Deviations
(documented in docs/toxiproxy.md): values that crash real Toxiproxy get a 400, an
optional seed makes toxicity/jitter/slicer draws reproducible, the upstream dial does
not block the accept loop.
"""
from __future__ import annotations

import asyncio
import os
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from comfy_chaos.harness.toxiproxy import gojson
from comfy_chaos.harness.toxiproxy.model import (
    PROXY_EXISTS,
    PROXY_NOT_FOUND,
    TOXIC_NOT_FOUND,
    ApiError,
    ToxicDef,
    missing_field,
    parse_new_toxic,
    parse_populate,
    parse_proxy,
    parse_toxic_update,
)
from comfy_chaos.harness.toxiproxy.proxy import Proxy

log = structlog.get_logger(__name__)

VERSION = "2.12.0"
HANDLER_TIMEOUT = 25.0
_SEGMENT = r"([^/]+)"
_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"

Handler = Callable[..., Awaitable[web.StreamResponse]]


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=gojson.dumps(value), status=status, headers={"Content-Type": "application/json"})


def text_error(text: str, status: int) -> web.Response:
    """Go's ``http.Error``: text/plain, nosniff, trailing newline."""
    return web.Response(
        body=(text + "\n").encode(),
        status=status,
        headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
    )


def api_error(error: ApiError) -> web.Response:
    return text_error(gojson.dumps({"error": error.message, "status": error.status}).decode(), error.status)


def no_content() -> web.Response:
    return web.Response(status=204)


class ToxiproxyServer:
    """Proxies, their toxics, and the HTTP API that manages them."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self.url = ""
        self._xid_rng = random.Random()
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"/reset"), {"POST": self.reset}),
            (re.compile(r"/proxies"), {"GET": self.proxy_index, "POST": self.proxy_create}),
            (re.compile(r"/populate"), {"POST": self.populate}),
            (re.compile(rf"/proxies/{_SEGMENT}"), {
                "GET": self.proxy_show, "POST": self.proxy_update, "PATCH": self.proxy_update,
                "DELETE": self.proxy_delete,
            }),
            (re.compile(rf"/proxies/{_SEGMENT}/toxics"), {"GET": self.toxic_index, "POST": self.toxic_create}),
            (re.compile(rf"/proxies/{_SEGMENT}/toxics/{_SEGMENT}"), {
                "GET": self.toxic_show, "POST": self.toxic_update, "PATCH": self.toxic_update,
                "DELETE": self.toxic_delete,
            }),
            (re.compile(r"/version"), {"GET": self.version}),
        ]

    # -- lifecycle -----------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._dispatch)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the API on ``host:port`` (0 = ephemeral); returns the base URL."""
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        sockets = site._server.sockets if isinstance(site._server, asyncio.Server) else []  # noqa: SLF001 — bound port
        bound = sockets[0].getsockname()
        self.url = f"http://{host}:{bound[1]}"
        log.info("toxiproxy.server.started", url=self.url, seed=self.seed, pid=os.getpid())
        return self.url

    async def stop(self) -> None:
        """Stop every proxy (closing live connections) and the API."""
        for proxy in list(self.proxies.values()):
            await proxy.stop()
        self.proxies.clear()
        for task in list(self._pending):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- routing -------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        for pattern, methods in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                return web.Response(status=405)
            response = await self._run_matched(request, handler, match.groups())
            response.headers["X-Toxiproxy-Request-Id"] = "".join(
                self._xid_rng.choice(_XID_ALPHABET) for _ in range(20)
            )
            return response
        return text_error("404 page not found", 404)

    async def _run_matched(self, request: web.Request, handler: Handler, args: tuple[str, ...]) -> web.StreamResponse:
        if request.headers.get("User-Agent", "").startswith("Mozilla/"):
            return text_error("User agent not allowed", 403)
        body = await request.read()
        task = asyncio.get_running_loop().create_task(self._guarded(handler, request, body, args))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        done, _ = await asyncio.wait({task}, timeout=HANDLER_TIMEOUT)
        if not done:
            log.warning("toxiproxy.api.handler_timeout", method=request.method, path=request.path)
            return web.Response(status=503)
        return task.result()

    async def _guarded(self, handler: Handler, request: web.Request, body: bytes, args: tuple[str, ...]) -> web.StreamResponse:
        try:
            return await handler(request, body, *args)
        except ApiError as error:
            return api_error(error)

    def _proxy(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(*PROXY_NOT_FOUND)
        return proxy

    # -- handlers ------------------------------------------------------------------

    async def version(self, request: web.Request, body: bytes) -> web.Response:
        return web.Response(
            body=f'{{"version": "{VERSION}"}}\n'.encode(),
            headers={"Content-Type": "application/json;charset=utf-8"},
        )

    async def proxy_index(self, request: web.Request, body: bytes) -> web.Response:
        # Go marshals a map with its keys sorted
        return json_response({name: self.proxies[name].to_json() for name in sorted(self.proxies)})

    async def proxy_create(self, request: web.Request, body: bytes) -> web.Response:
        data = parse_proxy(body)
        if not data.name:
            raise missing_field("name")
        if not data.upstream:
            raise missing_field("upstream")
        async with self._lock:
            if data.name in self.proxies:
                raise ApiError(*PROXY_EXISTS)
            proxy = Proxy(data.name, data.listen or "", data.upstream, self.rng)
            if data.enabled is not False:
                await proxy.start()
            self.proxies[data.name] = proxy
        log.info("toxiproxy.proxy.created", proxy=proxy.name, listen=proxy.listen, upstream=proxy.upstream)
        return json_response(proxy.to_json(), 201)

    async def populate(self, request: web.Request, body: bytes) -> web.Response:
        try:
            entries = parse_populate(body)
        except ApiError as error:
            return json_response({"error": error.message, "status": error.status, "proxies": None}, error.status)
        done: list[Proxy] = []
        async with self._lock:
            try:
                for entry in entries:
                    done.append(await self._populate_one(entry.name or "", entry.listen or "",
                                                         entry.upstream or "", entry.enabled is not False))
            except ApiError as error:
                body_json = {"error": error.message, "status": error.status,
                             "proxies": [p.to_json() for p in done] or None}
                return json_response(body_json, error.status)
        return json_response({"proxies": [p.to_json() for p in done] or None}, 201)

    async def _populate_one(self, name: str, listen: str, upstream: str, enabled: bool) -> Proxy:
        existing = self.proxies.get(name)
        if existing is None:
            return await self._register_new(name, listen, upstream, enabled)
        async with existing.lock:  # held until replaced: a concurrent reset cannot restart it
            if not await existing.differs(listen, upstream):
                return existing
            await existing.stop()
            proxy = await self._register_new(name, listen, upstream, enabled)  # fails: old stays, disabled
            existing.retired = True
            return proxy

    async def _register_new(self, name: str, listen: str, upstream: str, enabled: bool) -> Proxy:
        proxy = Proxy(name, listen, upstream, self.rng)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def proxy_show(self, request: web.Request, body: bytes, name: str) -> web.Response:
        return json_response(self._proxy(name).to_json())

    async def proxy_update(self, request: web.Request, body: bytes, name: str) -> web.Response:
        proxy = self._proxy(name)
        data = parse_proxy(body)
        async with proxy.lock:
            listen = proxy.listen if data.listen is None else data.listen
            upstream = proxy.upstream if data.upstream is None else data.upstream
            enabled = proxy.enabled if data.enabled is None else data.enabled
            if await proxy.differs(listen, upstream):
                await proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
            if enabled and not proxy.enabled:
                await proxy.start()
            elif not enabled and proxy.enabled:
                await proxy.stop()
        return json_response(proxy.to_json())

    async def proxy_delete(self, request: web.Request, body: bytes, name: str) -> web.Response:
        async with self._lock:
            proxy = self._proxy(name)
            del self.proxies[name]
            proxy.retired = True
        async with proxy.lock:
            await proxy.stop()
        log.info("toxiproxy.proxy.deleted", proxy=name)
        return no_content()

    async def toxic_index(self, request: web.Request, body: bytes, name: str) -> web.Response:
        return json_response([t.to_json() for t in self._proxy(name).toxics()])

    async def toxic_create(self, request: web.Request, body: bytes, name: str) -> web.Response:
        proxy = self._proxy(name)
        async with proxy.lock:
            toxic = parse_new_toxic(body, lambda toxic_name: proxy.find_toxic(toxic_name) is not None)
            await proxy.add_toxic(toxic)
        log.info("toxiproxy.toxic.added", proxy=name, toxic=toxic.name, type=toxic.type, stream=toxic.stream,
                 toxicity=float(toxic.toxicity), attributes=toxic.attributes)
        return json_response(toxic.to_json())

    def _toxic(self, proxy: Proxy, toxic_name: str) -> ToxicDef:
        toxic = proxy.find_toxic(toxic_name)
        if toxic is None:
            raise ApiError(*TOXIC_NOT_FOUND)
        return toxic

    async def toxic_show(self, request: web.Request, body: bytes, name: str, toxic_name: str) -> web.Response:
        return json_response(self._toxic(self._proxy(name), toxic_name).to_json())

    async def toxic_update(self, request: web.Request, body: bytes, name: str, toxic_name: str) -> web.Response:
        proxy = self._proxy(name)
        async with proxy.lock:
            toxic = self._toxic(proxy, toxic_name)
            attributes, toxicity = parse_toxic_update(body, toxic)
            await proxy.update_toxic(toxic, attributes, toxicity)
        log.info("toxiproxy.toxic.updated", proxy=name, toxic=toxic_name, attributes=attributes,
                 toxicity=float(toxicity))
        return json_response(toxic.to_json())

    async def toxic_delete(self, request: web.Request, body: bytes, name: str, toxic_name: str) -> web.Response:
        proxy = self._proxy(name)
        async with proxy.lock:
            await proxy.remove_toxic(self._toxic(proxy, toxic_name))
        log.info("toxiproxy.toxic.removed", proxy=name, toxic=toxic_name)
        return no_content()

    async def reset(self, request: web.Request, body: bytes) -> web.Response:
        for proxy in list(self.proxies.values()):
            async with proxy.lock:
                await proxy.start()
                await proxy.remove_all_toxics()
        log.info("toxiproxy.reset")
        return no_content()


__all__ = ["VERSION", "ToxiproxyServer"]
