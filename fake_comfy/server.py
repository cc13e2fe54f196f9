"""aiohttp transport for the fake ComfyUI: HTTP routes, WebSocket sessions, executor driver.

Thin layer over `ComfyCore`: it parses requests, feeds the core, sends the frames the core
returns (through the fault layer when one is attached), writes output files, and advances
the executor on scaled asyncio timers.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError

from comfy_chaos.fake_comfy import jobs
from comfy_chaos.fake_comfy.config import FakeConfig
from comfy_chaos.fake_comfy.connlimit import HEADER_TIMEOUT_S, GuardedSite, default_limit
from comfy_chaos.fake_comfy.core import ComfyCore
from comfy_chaos.fake_comfy.events import EventBus, ServerEvent
from comfy_chaos.fake_comfy.faults.http import FAULT_KEY as HTTP_FAULT_KEY  # the HTTP fault a reply carries
from comfy_chaos.fake_comfy.frontend import FrontendRoutes
from comfy_chaos.fake_comfy.ledger import Ledger
from comfy_chaos.fake_comfy.nodes import NODE_CLASSES, OutputFile, current_info
from comfy_chaos.fake_comfy.wire import OutFrame

if TYPE_CHECKING:
    from comfy_chaos.fake_comfy.faults import FaultEngine

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FOLDERS = ("output", "input", "temp")
MODEL_FOLDERS = [
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
    "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models",
    "custom_nodes", "hypernetworks", "photomaker", "classifiers", "model_patches", "audio_encoders",
]  # fmt: skip
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")

#: Bytes a WebSocket client may leave unread before the server drops it (see `Conn`).
WS_SEND_BUFFER_LIMIT = 8 * 1024 * 1024
#: Above this many unread bytes on a socket, a send yields to the event loop once (aiohttp's
#: own pause point), so that readers on the same loop get to read; it never waits for them.
WS_YIELD_ABOVE = 64 * 1024


class SlowReader(ConnectionError):
    """The client left more than its send buffer unread; its socket was aborted."""


class Conn:
    """One accepted WebSocket (implements `fake_comfy.wire.WsConn`).

    A client that does not read costs only itself: a send never waits for the socket to
    drain (its transport buffers up to `buffer_limit` bytes), and a send that would go
    beyond that aborts the connection instead (`SlowReader`), so the publisher that
    serves every other client is never blocked and the server's memory stays bounded.
    """

    def __init__(
        self, conn_id: int, sid: str, reconnect_index: int, ws: web.WebSocketResponse,
        buffer_limit: int = WS_SEND_BUFFER_LIMIT,
    ) -> None:
        self.conn_id = conn_id
        self.sid = sid
        self.reconnect_index = reconnect_index
        self.ws = ws
        self.frames_sent = 0
        self.frames_received = 0
        self.first_message = True
        self.buffer_limit = buffer_limit
        self.dropped_slow = False

    def _transport(self) -> asyncio.Transport | None:
        request = self.ws._req  # noqa: SLF001 - aiohttp exposes no transport after prepare()
        return request.transport if request is not None else None

    def raise_buffer_limit(self) -> None:
        """After prepare(): let the transport buffer up to `buffer_limit` without pausing
        the writer (aiohttp would otherwise make every send wait for this client to read)."""
        transport = self._transport()
        if transport is not None:
            transport.set_write_buffer_limits(high=self.buffer_limit)

    async def _yield_if_backed_up(self) -> None:
        transport = self._transport()
        if transport is not None and transport.get_write_buffer_size() > WS_YIELD_ABOVE:
            await asyncio.sleep(0)

    def _room_for(self, size: int) -> None:
        transport = self._transport()
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() + size > self.buffer_limit:
            self.dropped_slow = True
            transport.abort()
            raise SlowReader(f"client left more than {self.buffer_limit} bytes unread; connection dropped")

    def set_silent(self, silent: bool) -> None:
        """The `silent` fault: stop answering client PINGs (the fault layer drops the frames)."""
        self.ws._autoping = not silent  # noqa: SLF001 - aiohttp has no public switch after prepare()

    async def send_text(self, text: str) -> None:
        self._room_for(len(text))
        await self.ws.send_str(text)
        self.frames_sent += 1
        await self._yield_if_backed_up()

    async def send_bytes(self, data: bytes) -> None:
        self._room_for(len(data))
        await self.ws.send_bytes(data)
        self.frames_sent += 1
        await self._yield_if_backed_up()

    async def send_raw_text_frame(self, payload: bytes) -> None:
        self._room_for(len(payload))
        await self.ws.send_frame(payload, WSMsgType.TEXT)
        self.frames_sent += 1
        await self._yield_if_backed_up()

    async def close(self, code: int = 1000) -> None:
        await self.ws.close(code=code)

    def abort(self) -> None:
        transport = self._transport()
        if transport is not None:
            transport.abort()


#: Environment variable naming the folder for scratch trees (default: /dev/shm, else the temp dir).
SCRATCH_ENV = "COMFY_CHAOS_SCRATCH_DIR"
#: Scratch trees of servers in this process not yet removed (swept by `remove_scratch_roots`).
_SCRATCH_ROOTS: set[str] = set()


def _scratch_dir() -> str | None:
    """Where output/input/temp files live: $COMFY_CHAOS_SCRATCH_DIR, else RAM (/dev/shm) when
    there is one. Every task writes its images synchronously on the event loop; on a
    disk-backed /tmp one file costs ~1.5 ms, on tmpfs ~0.1 ms (benchmarks/scale_bench.py).
    None = the default temp dir."""
    chosen = os.environ.get(SCRATCH_ENV)
    if chosen:
        return chosen
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def remove_scratch_roots() -> tuple[list[str], list[str]]:
    """Remove the scratch tree of every server of this process that was not stopped (a
    fatal error, a teardown cut short); returns (removed, could not remove). Also run at
    interpreter exit."""
    removed: list[str] = []
    kept: list[str] = []
    for root in sorted(_SCRATCH_ROOTS):
        shutil.rmtree(root, ignore_errors=True)
        (kept if os.path.exists(root) else removed).append(root)
        if not os.path.exists(root):
            _SCRATCH_ROOTS.discard(root)
    return removed, kept


atexit.register(remove_scratch_roots)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _bad_json(where: str, error: Exception) -> web.Response:
    """Deliberate difference: ComfyUI answers 500 text here (docs/fake_comfy.md)."""
    body = {
        "error": {"type": "invalid_json", "message": f"Request body of {where} is not valid JSON", "details": str(error), "extra_info": {}},
        "node_errors": {},
    }
    return _json(body, 400)


#: clientIds whose reconnect count is remembered (least recently connected forgotten first).
CLIENT_IDS_KEPT = 10_000
#: Longest upload file name in bytes (Linux NAME_MAX).
NAME_MAX = 255


def _bad_upload(message: str, status: int = 400) -> web.Response:
    return _json({"error": {"type": "invalid_upload", "message": message, "details": "", "extra_info": {}}}, status)


#: Deepest JSON body accepted (arrays and objects); API workflows nest about 6 deep.
MAX_JSON_DEPTH = 128


def json_depth(value: Any, stop: int) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), counted up to `stop` + 1."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop:
                return deepest
            todo.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _too_deep(request: web.Request) -> web.HTTPBadRequest:
    body = {
        "error": {
            "type": "invalid_json",
            "message": f"Request body of {request.method} {request.path} is nested too deeply",
            "details": f"more than {MAX_JSON_DEPTH} levels of arrays and objects",
            "extra_info": {},
        },
        "node_errors": {},
    }
    return web.HTTPBadRequest(text=json.dumps(body), content_type="application/json")


class FakeComfy:
    """A fake ComfyUI server (docs/architecture.md Contract 2)."""

    def __init__(self, config: FakeConfig | None = None, faults: FaultEngine | None = None) -> None:
        self.config = config or FakeConfig()
        self.faults = faults
        self.ledger = Ledger(self.config.ledger_limit)
        self.events = EventBus()
        self.root = tempfile.mkdtemp(prefix="fake_comfy_", dir=_scratch_dir())
        _SCRATCH_ROOTS.add(self.root)
        for folder in FOLDERS:
            os.makedirs(os.path.join(self.root, folder), exist_ok=True)
        self.core = ComfyCore(
            clock=time.monotonic,
            wall_ms=lambda: int(time.time() * 1000),
            ledger=self.ledger,
            events=self.events,
            seed=self.config.seed,
            output_dir=os.path.join(self.root, "output"),
            max_upload_size=self.config.max_upload_size,
            history_size=self.config.history_size,
            profile=self.config.profile,
        )
        self.conns: dict[int, Conn] = {}
        self._next_conn_id = 0
        self._connects_per_sid: OrderedDict[str, int] = OrderedDict()  # bounded: CLIENT_IDS_KEPT
        self._upload_sizes: dict[str, int] = {}  # path → bytes, for the upload quota
        self._outbox: asyncio.Queue[OutFrame] | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._site: GuardedSite | None = None
        self.max_connections = default_limit()  # fake_comfy/connlimit.py; set before start()
        self.header_timeout = HEADER_TIMEOUT_S
        self.host = "127.0.0.1"
        self.port = 0
        self.manual_time = False
        self.timer_waiting = False
        self._release: asyncio.Event | None = None
        self._sending = False
        self.activity: asyncio.Event | None = None
        self.ws_send_buffer_limit = WS_SEND_BUFFER_LIMIT
        self.app = self._make_app()
        if faults is not None:
            faults.bind(self)
            self.events.subscribe(faults.on_event)

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen and start the executor; on failure everything started is stopped again."""
        try:
            self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
            await self._runner.setup()
            self._site = GuardedSite(
                self._runner, host, port, limit=self.max_connections, header_timeout=self.header_timeout
            )
            await self._site.start()
            server = self._site._server  # noqa: SLF001 - the bound port when port=0
            assert isinstance(server, asyncio.Server) and server.sockets
            self.host, self.port = host, server.sockets[0].getsockname()[1]
            self._start_tasks()
            if self.faults is not None:
                await self.faults.start()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "fake_comfy.started",
            url=self.base_url,
            time_scale=self.config.time_scale,
            seed=self.config.seed,
            comfyui_version=self.config.profile.comfyui_version,
        )

    def _start_tasks(self) -> None:
        self._outbox = asyncio.Queue()
        self._wake = asyncio.Event()
        self._release = asyncio.Event()
        if self.activity is None:
            self.activity = asyncio.Event()
        self.timer_waiting = False
        self._tasks = [
            asyncio.create_task(self._executor(), name="fake_comfy.executor"),
            asyncio.create_task(self._publisher(), name="fake_comfy.publisher"),
        ]

    async def _stop_tasks(self) -> None:
        if asyncio.current_task() in self._tasks:
            raise RuntimeError("FakeComfy.restart/stop must not be awaited from the server's own tasks; spawn a task")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []

    async def stop(self) -> None:
        """Stop serving: abort every socket, cancel the executor, remove the file tree.

        The file tree is removed and the sockets aborted even when a step fails or the
        stop itself is cancelled (Ctrl-C, SIGTERM, a caller's timeout)."""
        try:
            if self.faults is not None:
                await self.faults.stop()
            await self._stop_tasks()
        finally:
            self._abort_all()
            try:
                if self._runner is not None:
                    runner, self._runner = self._runner, None
                    await runner.cleanup()
            finally:
                shutil.rmtree(self.root, ignore_errors=True)
                if not os.path.exists(self.root):
                    _SCRATCH_ROOTS.discard(self.root)
        log.info("fake_comfy.stopped", url=self.base_url)

    async def attach_faults(self, faults: FaultEngine) -> None:
        """Attach a fault engine to the running server (after a browser client's warm-up):
        sockets already open are handed to it as connections made now, its `at:` clock
        starts now, and every later frame, connection and request goes through it."""
        self.faults = faults
        faults.bind(self)
        self.events.subscribe(faults.on_event)
        for conn in list(self.conns.values()):
            faults.on_ws_connect(conn)
        await faults.start()

    async def restart(self, keep_history: bool = False) -> None:
        """Simulated process restart: sockets dropped, queue and running prompt lost, counter reset.

        Every TCP connection is aborted, WebSockets and keep-alive HTTP alike, as a dying
        process would; the listening socket stays (the new "process" is up at once).
        """
        await self._stop_tasks()
        self._abort_all()
        if self._runner is not None and self._runner.server is not None:
            for handler in self._runner.server.connections:
                if handler.transport is not None:
                    handler.transport.abort()
        self.core.reset(keep_history=keep_history)
        shutil.rmtree(os.path.join(self.root, "temp"), ignore_errors=True)
        temp = os.path.join(self.root, "temp") + os.sep
        self._upload_sizes = {path: size for path, size in self._upload_sizes.items() if not path.startswith(temp)}
        os.makedirs(os.path.join(self.root, "temp"), exist_ok=True)
        self._start_tasks()
        log.info("fake_comfy.restarted", keep_history=keep_history)

    def _abort_all(self) -> None:
        now = time.monotonic()
        for conn in list(self.conns.values()):
            conn.abort()
            self.ledger.record_connection(now, conn.sid, "abort", conn.conn_id)
        self.conns.clear()

    # ------------------------------------------------------------------ frames
    def _enqueue(self, frames: list[OutFrame]) -> None:
        assert self._outbox is not None
        for frame in frames:
            self._outbox.put_nowait(frame)

    async def _publisher(self) -> None:
        assert self._outbox is not None
        while True:
            frame = await self._outbox.get()
            self._sending = True
            try:
                await self.send_frame(frame)
            except Exception:  # a failing fault hook must not stop delivery to everyone else
                log.exception("fake_comfy.publish.failed", sid=frame.sid, message_type=frame.message_type)
            finally:
                self._sending = False
                self._signal()

    # ------------------------------------------------------------------ deterministic controls (tests)
    def set_manual_time(self, manual: bool = True) -> None:
        """In manual time the executor never sleeps: each positive delay waits for `release_timer()`."""
        self.manual_time = manual
        if not manual:
            self.release_timer()

    def release_timer(self) -> None:
        """Let the executor past the delay it is waiting on (manual time)."""
        if self._release is not None:
            self._release.set()

    def is_quiescent(self) -> bool:
        """Nothing will happen without outside input: executor blocked (idle or on a timer), outbox empty."""
        executor_blocked = self.timer_waiting or (self.core.idle and self._wake is not None and not self._wake.is_set())
        return executor_blocked and self._outbox is not None and self._outbox.empty() and not self._sending

    def _signal(self) -> None:
        if self.activity is not None:
            self.activity.set()

    async def send_frame(self, frame: OutFrame) -> None:
        """Send one frame to the socket currently registered for `frame.sid` (if any)."""
        conn_id = self.core.sockets.get(frame.sid) if frame.sid is not None else None
        conn = self.conns.get(conn_id) if conn_id is not None else None
        await self._send_to(conn, frame)

    async def _send_to(self, conn: Conn | None, frame: OutFrame) -> None:
        now = time.monotonic()
        index = None
        if frame.prompt_id is not None:
            index = self.ledger.record_message(frame.prompt_id, now, frame.sid, frame.message_type, False)
        if self.events.active:
            self.events.emit(
                ServerEvent(
                    "message",
                    now,
                    prompt_id=frame.prompt_id,
                    task_id=frame.task_id,
                    client_id=frame.sid,
                    node=frame.node,
                    message_type=frame.message_type,
                    detail={"conn_id": conn.conn_id if conn else None, "message_index": index},
                )
            )
        if conn is None:
            return
        before = conn.frames_sent
        fate = None
        try:
            if self.faults is not None:
                fate = await self.faults.on_ws_frame(conn, frame)
            elif frame.text is not None:
                await conn.send_text(frame.text)
            else:
                assert frame.data is not None
                await conn.send_bytes(frame.data)
        except SlowReader as exc:
            log.warning("fake_comfy.ws.slow_reader_dropped", sid=conn.sid, conn_id=conn.conn_id, error=str(exc))
            self.ledger.record_connection(now, conn.sid, "dropped_slow_reader", conn.conn_id)
        except (ConnectionError, RuntimeError) as exc:
            log.info("fake_comfy.ws.send_failed", sid=conn.sid, conn_id=conn.conn_id, error=str(exc))
        if index is not None:
            delivered = getattr(fate, "delivered", None)
            if delivered is None:
                delivered = conn.frames_sent > before
            self.ledger.mark_message(frame.prompt_id, index, delivered=delivered)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ executor driver
    async def _executor(self) -> None:
        assert self._wake is not None
        scale = self.config.scale
        while True:
            step = self.core.advance()
            for file in step.files:
                self._write(file)
            self._enqueue(step.frames)
            if step.delay is None:
                self._wake.clear()
                self._signal()
                await self._wake.wait()
            elif self.manual_time and step.delay > 0:
                assert self._release is not None
                self._release.clear()
                self.timer_waiting = True
                self._signal()
                try:
                    await self._release.wait()
                finally:
                    self.timer_waiting = False
            else:
                await asyncio.sleep(scale.real(step.delay))

    def _write(self, file: OutputFile) -> None:
        """Write one output file; never outside this server's file tree (the nodes refuse
        such a prefix as ComfyUI does; this is the last line of defence)."""
        base = os.path.realpath(os.path.join(self.root, file.folder))
        path = os.path.realpath(os.path.join(base, file.subfolder, file.filename))
        if os.path.commonpath((base, path)) != base or "\0" in path:
            log.error("fake_comfy.write.refused", folder=file.folder, subfolder=file.subfolder, filename=file.filename)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(file.data)

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ app
    def _make_app(self) -> web.Application:
        self.frontend = FrontendRoutes()  # the web frontend and its start-up routes (fake_comfy/frontend.py)
        app = web.Application(
            client_max_size=self.config.max_upload_size,
            middlewares=[self.frontend.middleware, self._record_middleware, self._fault_middleware, self._origin_middleware],
        )
        self.frontend.register(app)
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/ws", self._ws),
            ("GET", "/prompt", self._get_prompt),
            ("POST", "/prompt", self._post_prompt),
            ("GET", "/queue", self._get_queue),
            ("POST", "/queue", self._post_queue),
            ("POST", "/interrupt", self._post_interrupt),
            ("GET", "/history", self._get_history),
            ("GET", "/history/{prompt_id}", self._get_history_item),
            ("POST", "/history", self._post_history),
            ("GET", "/view", self._view),
            ("POST", "/upload/image", self._upload_image),
            ("GET", "/system_stats", self._system_stats),
            ("GET", "/object_info", self._object_info),
            ("GET", "/object_info/{node_class}", self._object_info_one),
            ("GET", "/embeddings", self._embeddings),
            ("GET", "/models", self._models),
            ("GET", "/models/{folder}", self._models_folder),
            ("GET", "/features", self._features),
            ("GET", "/extensions", self._extensions),
            ("POST", "/free", self._free),
        ]
        if self.config.profile.jobs_api:
            # Declared with the literal /api prefix in ComfyUI, so the prefix loop makes
            # /api/api/jobs… too and there is no bare /jobs (recorded in 11-jobs).
            routes += [
                ("GET", "/api/jobs", self._list_jobs),
                ("POST", "/api/jobs/cancel", self._cancel_jobs),
                ("GET", "/api/jobs/{job_id}", self._get_job),
                ("POST", "/api/jobs/{job_id}/cancel", self._cancel_job),
            ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, "/api" + path, handler)
        app.router.add_route("GET", "/internal/logs", self._logs)
        app.router.add_route("GET", "/internal/logs/raw", self._logs_raw)
        app.router.add_route("PATCH", "/internal/logs/subscribe", self._logs_subscribe)
        app.router.add_route("GET", "/", self._index)
        app.router.add_route("*", "/api/{tail:.*}", self._api_not_found)
        if self.config.profile.jobs_api:
            # no bare /jobs: ComfyUI's static web root answers it like an unknown /api path (11-jobs)
            app.router.add_route("*", "/jobs{tail:.*}", self._api_not_found)
        return app

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            now = time.monotonic()
            fault = request.get(HTTP_FAULT_KEY)
            self.ledger.record_http(now, request.method, request.path_qs, status, fault)
            self.events.emit(
                ServerEvent("http_request", now, detail={"method": request.method, "path": request.path_qs, "status": status})
            )

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.faults is None:
            return await handler(request)
        return await self.faults.on_http(request, handler)

    @web.middleware
    async def _origin_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """ComfyUI's loopback Origin check; OPTIONS answered 200 empty without reaching a handler.

        ComfyUI >= 0.19 first refuses `Sec-Fetch-Site: cross-site` (exact match) with an empty 403,
        WebSocket upgrades and preflights included."""
        if self.config.profile.sec_fetch_site_check and request.headers.get("Sec-Fetch-Site") == "cross-site":
            return web.Response(status=403)
        if request.method == "OPTIONS":
            return web.Response()
        if self.config.origin_check and "Host" in request.headers and "Origin" in request.headers:
            host = request.headers["Host"]
            origin = request.headers["Origin"]
            host_name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            origin_host = origin.split("://", 1)[-1].rstrip("/")
            if host_name in LOOPBACK and origin_host != host:
                return web.Response(status=403)
        return await handler(request)

    async def _read_json(self, request: web.Request) -> Any:
        """The JSON body; ValueError if it is not JSON. A body nested deeper than
        MAX_JSON_DEPTH is refused with a 400 here, for every route: Python's parser fails
        on it with RecursionError (a 500), and a slightly shallower one that parses
        would break every later GET /history once stored."""
        text = await request.text()
        try:
            body = json.loads(text)
        except RecursionError:
            raise _too_deep(request) from None
        if json_depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise _too_deep(request)
        return body

    # ------------------------------------------------------------------ websocket
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        if not ws.can_prepare(request).ok:
            await ws.prepare(request)  # raises aiohttp's 400 "No WebSocket UPGRADE hdr", as ComfyUI answers
        sid = request.query.get("clientId", "") or self.core.new_sid()
        self._next_conn_id += 1
        conn_id = self._next_conn_id
        reconnect_index = self._connects_per_sid.get(sid, 0)
        conn = Conn(conn_id, sid, reconnect_index, ws, self.ws_send_buffer_limit)
        now = time.monotonic()
        if self.faults is not None and not self.faults.on_ws_connect(conn):
            self.ledger.record_connection(now, sid, "refused", conn_id)
            return web.Response(status=503, text="503: Service Unavailable")
        try:
            await ws.prepare(request)
        except ConnectionResetError:  # the client left during the handshake: nothing to serve
            log.info("fake_comfy.ws.gone_before_handshake", sid=sid, conn_id=conn_id)
            return ws
        conn.raise_buffer_limit()
        self._connects_per_sid[sid] = reconnect_index + 1
        self._connects_per_sid.move_to_end(sid)
        while len(self._connects_per_sid) > CLIENT_IDS_KEPT:
            self._connects_per_sid.popitem(last=False)
        previous = self.core.sockets.get(sid)
        if previous is not None:
            self.ledger.record_connection(now, sid, "replaced", previous)
        self.conns[conn_id] = conn
        self.ledger.record_connection(now, sid, "open", conn_id)
        self.events.emit(ServerEvent("ws_connected", now, client_id=sid, detail={"conn_id": conn_id, "reconnect_index": reconnect_index}))
        try:
            for frame in self.core.connect(conn_id, sid):
                await self._send_to(conn, frame)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    frames, conn.first_message = self.core.client_text(sid, msg.data, conn.first_message)
                    for frame in frames:
                        await self._send_to(conn, frame)
                conn.frames_received += 1
                self._signal()
        finally:
            now = time.monotonic()
            forgotten = self.core.disconnect(sid)
            self.conns.pop(conn_id, None)
            self.ledger.record_connection(now, sid, "close", conn_id)
            if forgotten is not None and forgotten != conn_id and forgotten in self.conns:
                self.ledger.record_connection(now, sid, "orphaned", forgotten)
            self.events.emit(ServerEvent("ws_disconnected", now, client_id=sid, detail={"conn_id": conn_id}))
            self._signal()
        return ws

    # ------------------------------------------------------------------ jobs API (0.33 profile)
    async def _list_jobs(self, request: web.Request) -> web.Response:
        status, body = jobs.list_jobs(self.core, request.query)
        return _json(body, status)

    async def _get_job(self, request: web.Request) -> web.Response:
        status, body = jobs.get_job(self.core, request.match_info["job_id"])
        return _json(body, status)

    async def _cancel_job(self, request: web.Request) -> web.Response:
        cancelled, frames = self.core.cancel_job(request.match_info["job_id"])
        self._enqueue(frames)
        return _json({"cancelled": cancelled})

    async def _cancel_jobs(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_json(request)
        except ValueError:
            return _json({"error": "Request body must be valid JSON"}, 400)
        ids = jobs.batch_ids(body)
        if isinstance(ids, tuple):
            return _json(ids[1], ids[0])
        cancelled = False
        for job_id in ids:
            done, frames = self.core.cancel_job(job_id)
            self._enqueue(frames)
            cancelled = cancelled or done
        return _json({"cancelled": cancelled})

    # ------------------------------------------------------------------ /internal/logs
    async def _logs(self, request: web.Request) -> web.Response:
        return _json("".join(f"{entry['t']} - {entry['m']}" for entry in self.core.logs))

    async def _logs_raw(self, request: web.Request) -> web.Response:
        return _json({"entries": list(self.core.logs), "size": {"cols": 80, "rows": 24}})

    async def _logs_subscribe(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_json(request)
        except ValueError as exc:
            return _bad_json("PATCH /internal/logs/subscribe", exc)
        if not isinstance(body, dict) or not isinstance(body.get("clientId"), str):
            return _json({"error": {"type": "invalid_request", "message": "expected {clientId, enabled}", "details": "clientId", "extra_info": {}}}, 400)
        self.core.subscribe_logs(body["clientId"], bool(body.get("enabled")))
        return web.Response(status=200)

    # ------------------------------------------------------------------ prompt / queue
    async def _get_prompt(self, request: web.Request) -> web.Response:
        return _json(self.core.queue_info())

    async def _post_prompt(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_json(request)
        except ValueError as exc:
            return _bad_json("POST /prompt", exc)
        result = self.core.submit(body)
        self._enqueue(result.frames)
        if result.status == 200:
            self._kick()
        return _json(result.body, result.status)

    async def _get_queue(self, request: web.Request) -> web.Response:
        return web.Response(text=self.core.queue_view_json(), content_type="application/json")

    async def _post_queue(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_json(request)
        except ValueError as exc:
            return _bad_json("POST /queue", exc)
        if isinstance(body, dict):
            if body.get("clear"):
                self._enqueue(self.core.clear_pending())
            delete = body.get("delete")
            if isinstance(delete, list):
                for prompt_id in delete:
                    self._enqueue(self.core.delete_pending(str(prompt_id)))
        return web.Response(status=200)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        prompt_id = None
        try:
            body = await self._read_json(request)
            if isinstance(body, dict) and body.get("prompt_id") is not None:
                prompt_id = str(body["prompt_id"])
        except ValueError:
            pass
        self.core.interrupt(prompt_id)
        return web.Response(status=200)

    async def _free(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_json(request)
        except ValueError as exc:
            return _bad_json("POST /free", exc)
        if isinstance(body, dict):
            self.core.request_free(bool(body.get("free_memory")), bool(body.get("unload_models")))
        return web.Response(status=200)

    # ------------------------------------------------------------------ history
    async def _get_history(self, request: web.Request) -> web.Response:
        try:
            max_items = int(request.query["max_items"]) if "max_items" in request.query else None
            offset = int(request.query["offset"]) if "offset" in request.query else -1
        except ValueError as exc:
            body = {"error": {"type": "invalid_query", "message": "max_items and offset must be integers", "details": str(exc), "extra_info": {}}}
            return _json(body, 400)
        return _json(self.core.get_history(max_items=max_items, offset=offset))

    async def _get_history_item(self, request: web.Request) -> web.Response:
        return _json(self.core.get_history(request.match_info["prompt_id"]))

    async def _post_history(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_json(request)
        except ValueError as exc:
            return _bad_json("POST /history", exc)
        if isinstance(body, dict):
            if body.get("clear"):
                self.core.clear_history()
            delete = body.get("delete")
            if isinstance(delete, list):
                for prompt_id in delete:
                    self.core.delete_history(str(prompt_id))
        return web.Response(status=200)

    # ------------------------------------------------------------------ files
    async def _view(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        if "filename" not in query:
            return web.Response(status=404)
        filename = query["filename"]
        if not filename:
            return web.Response(status=400)
        if filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        kind = query.get("type", "output")
        if kind not in FOLDERS:
            return web.Response(status=400)
        base = os.path.join(self.root, kind)
        folder = base
        if "subfolder" in query:
            folder = os.path.join(base, query["subfolder"])
            if os.path.commonpath((os.path.abspath(folder), base)) != base:
                return web.Response(status=403)
        filename = os.path.basename(filename)
        path = os.path.join(folder, filename)
        if not os.path.isfile(path):
            return web.Response(status=404)
        return web.FileResponse(path, headers={"Content-Disposition": f'filename="{filename}"'})

    async def _upload_image(self, request: web.Request) -> web.Response:
        try:
            post = await request.post()
        except (ValueError, HttpProcessingError) as exc:  # also a NUL in a part's header
            return _json({"error": {"type": "invalid_form", "message": "expected multipart/form-data", "details": str(exc), "extra_info": {}}}, 400)
        image = post.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        kind = str(post.get("type", "input")) or "input"
        if kind not in FOLDERS:
            kind = "input"
        subfolder = str(post.get("subfolder", ""))
        base = os.path.join(self.root, kind)
        folder = os.path.join(base, subfolder)
        if "\0" in subfolder or os.path.commonpath((os.path.abspath(folder), base)) != base:
            return web.Response(status=400)
        filename = os.path.basename(image.filename)
        if filename in ("", ".", "..") or "\0" in filename or len(filename.encode("utf-8", "surrogatepass")) > NAME_MAX:
            return _bad_upload(f"invalid file name {filename[:80]!r}")
        stem, ext = os.path.splitext(filename)
        overwrite = str(post.get("overwrite", "")).lower() in ("true", "1")
        data = image.file.read()
        try:
            os.makedirs(folder, exist_ok=True)
            i = 1
            while not overwrite and os.path.exists(os.path.join(folder, filename)):
                with open(os.path.join(folder, filename), "rb") as fh:
                    if fh.read() == data:
                        break
                filename = f"{stem} ({i}){ext}"
                i += 1
            path = os.path.join(folder, filename)
            stored = sum(self._upload_sizes.values()) - self._upload_sizes.get(path, 0)
            if stored + len(data) > self.config.upload_quota_mb * 1024 * 1024:
                return _bad_upload(f"upload quota of {self.config.upload_quota_mb} MiB exceeded", 413)
            with open(path, "wb") as fh:
                fh.write(data)
        except (OSError, ValueError) as exc:  # a too-long path, a subfolder that is a file, ...
            return _bad_upload(f"cannot store {filename[:80]!r}: {exc.strerror if isinstance(exc, OSError) else exc}")
        self._upload_sizes[path] = len(data)
        return _json({"name": filename, "subfolder": subfolder, "type": kind})

    # ------------------------------------------------------------------ static info
    async def _system_stats(self, request: web.Request) -> web.Response:
        ram = 8 * 1024**3
        profile = self.config.profile
        system: dict[str, Any] = {
            "os": profile.os_name,
            "ram_total": ram,
            "ram_free": ram // 2,
            "comfyui_version": profile.comfyui_version,
            "required_frontend_version": profile.frontend_version,
            "installed_templates_version": profile.templates_version,
            "required_templates_version": profile.templates_version,
        }
        if profile.package_versions:
            system["comfy_package_versions"] = [
                {"name": name, "installed": version, "required": version} for name, version in profile.package_versions
            ]
        system |= {"python_version": "3.11.7 (fake_comfy)", "pytorch_version": "2.14.1+cpu", "embedded_python": False}
        if profile.deploy_environment is not None:
            system["deploy_environment"] = profile.deploy_environment
        system["argv"] = ["main.py", "--cpu", "--listen", self.host, "--port", str(self.port)]
        body = {
            "system": system,
            "devices": [
                {
                    "name": "cpu",
                    "type": "cpu",
                    "index": None,
                    "vram_total": ram,
                    "vram_free": ram // 2,
                    "torch_vram_total": ram,
                    "torch_vram_free": ram // 2,
                }
            ],
        }
        return _json(body)

    def _class_info(self, info: dict[str, Any]) -> dict[str, Any]:
        return current_info(info) if self.config.profile.object_info_v3_keys else info

    async def _object_info(self, request: web.Request) -> web.Response:
        return _json({name: self._class_info(cls.info) for name, cls in NODE_CLASSES.items()})

    async def _object_info_one(self, request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        cls = NODE_CLASSES.get(name)
        return _json({name: self._class_info(cls.info)} if cls is not None else {})

    async def _embeddings(self, request: web.Request) -> web.Response:
        return _json([])

    async def _models(self, request: web.Request) -> web.Response:
        return _json(MODEL_FOLDERS)

    async def _models_folder(self, request: web.Request) -> web.Response:
        if request.match_info["folder"] not in MODEL_FOLDERS:
            return web.Response(status=404)
        return _json([])

    async def _features(self, request: web.Request) -> web.Response:
        return _json(self.core.server_features())

    async def _extensions(self, request: web.Request) -> web.Response:
        return _json([])

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>ComfyUI</title><p>fake_comfy</p>",
            content_type="text/html",
            headers={"Cache-Control": self.config.profile.index_cache_control, "Pragma": "no-cache", "Expires": "0"},
        )

    async def _api_not_found(self, request: web.Request) -> web.StreamResponse:
        """ComfyUI's unknown /api/... reply: 404, empty chunked body, application/octet-stream."""
        response = web.StreamResponse(status=404, headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write_eof()
        return response


__all__ = ["HTTP_FAULT_KEY", "Conn", "FakeComfy", "FakeConfig"]
