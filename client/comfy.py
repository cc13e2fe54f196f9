"""`ComfyClient`: the asyncio driver around the sans-IO `Tracker` (Contract 6).

It owns the aiohttp session, the WebSocket driver and one timer loop; every HTTP answer,
frame and tick is fed to the tracker and the actions it returns are carried out here.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import structlog

from comfy_chaos.client.config import ClientConfig
from comfy_chaos.client.errors import ComfyUnavailable, PromptRejected
from comfy_chaos.client.http import ComfyHttp, HttpFailure
from comfy_chaos.client.sanitize import sanitize_binary, sanitize_text
from comfy_chaos.client.stats import ClientStats
from comfy_chaos.client.submit import LookupVerdict, PostVerdict, classify_post, lookup_verdict
from comfy_chaos.client.tracker import Action, FetchHistory, FetchQueue, ForceReconnect, Progress, Report, Tracker
from comfy_chaos.client.types import Outcome, ProgressEvent
from comfy_chaos.client.ws import WsDriver

log = structlog.get_logger(__name__)

ProgressCallback = Callable[[ProgressEvent], Any]
Clock = Callable[[], float]
_MAX_IDLE = 1.0  # upper bound on the timer loop's sleep, so a missed wake-up costs at most this


class TaskHandle:
    """One submitted prompt. `await handle.result()` returns its `Outcome` exactly once-computed."""

    def __init__(
        self, prompt_id: str, client: ComfyClient, on_progress: ProgressCallback | None, deadline: float | None
    ) -> None:
        self.prompt_id = prompt_id
        self.number: float | None = None
        self.node_errors: dict[str, Any] = {}
        self._client = client
        self._on_progress = on_progress
        self._future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._result_bound = client._result_bound(deadline)

    def done(self) -> bool:
        return self._future.done()

    async def result(self, timeout: float | None = None) -> Outcome:
        """The outcome; bounded by the task deadline plus the final check (or `timeout`)."""
        bound = self._result_bound if timeout is None else timeout
        try:
            async with asyncio.timeout(bound):
                return await asyncio.shield(self._future)
        except TimeoutError:
            if self._future.done():
                return self._future.result()
            return Outcome("unknown", self.prompt_id, {}, None, f"no outcome within {bound:.3g} s", "deadline")

    def _resolve(self, outcome: Outcome) -> None:
        if not self._future.done():
            self._future.set_result(outcome)


class ComfyClient:
    """Submit API-format workflows to ComfyUI and learn every outcome exactly once."""

    def __init__(
        self,
        base_url: str,
        config: ClientConfig | None = None,
        *,
        client_id: str | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"ComfyClient: base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.config = config or ClientConfig.reference()
        self.client_id = client_id or uuid.uuid4().hex
        self.stats = ClientStats()
        self._clock = clock
        self._tracker = Tracker(self.config, self.stats)
        self._handles: dict[str, TaskHandle] = {}
        self._session: aiohttp.ClientSession | None = None
        self._http: ComfyHttp | None = None
        self._ws: WsDriver | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._started = False
        self._closed = False

    # ---- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> ComfyClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the session and the WebSocket; waits (bounded) for the first connection."""
        if self._started:
            return
        self._started = True
        # the WebSocket holds a pooled connection too: leave room for it beside the HTTP slots
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.config.http_concurrency + 2),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        self._http = ComfyHttp(
            self._session,
            self.base_url,
            self.stats,
            self.config.request_timeout,
            self.config.http_concurrency,
            jobs_api=self.config.jobs_api,
        )
        ws_url = self.base_url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        self._ws = WsDriver(
            self._session,
            ws_url,
            self.config,
            self.stats,
            on_connected=lambda: self._apply(self._tracker.on_connected(self._clock())),
            on_disconnected=lambda: self._apply(self._tracker.on_disconnected(self._clock())),
            on_frame=self._on_frame,
            has_pending=self._tracker.has_pending,
        )
        self._spawn(self._ws.run(), "ws")
        self._spawn(self._timer_loop(), "timers")
        try:
            async with asyncio.timeout(self.config.ws_connect_timeout):
                await self._ws.connected.wait()
        except TimeoutError:
            log.warning("ws.initial_connect.timeout", detail="continuing; HTTP polling covers pending tasks")

    async def close(self) -> None:
        """Stop everything; tasks still pending resolve as `unknown` ("client closed")."""
        if self._closed:
            return
        self._closed = True
        if self._ws is not None:
            self._ws.stop()
        ws_task = next((t for t in self._tasks if t.get_name() == "ws"), None)
        if ws_task is not None:
            try:
                async with asyncio.timeout(self.config.close_timeout + 1.0):
                    await asyncio.shield(ws_task)
            except (TimeoutError, Exception):
                pass
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for pid, handle in self._handles.items():
            handle._resolve(Outcome("unknown", pid, {}, None, "client closed", "closed"))
        if self._session is not None:
            await self._session.close()

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._ws.connected.is_set()

    # ---- submission -----------------------------------------------------------------

    async def submit(
        self,
        workflow: Mapping[str, Any],
        on_progress: ProgressCallback | None = None,
        *,
        deadline: float | None = None,
        extra_data: dict[str, Any] | None = None,
    ) -> TaskHandle:
        """Queue an API-format workflow; returns once ComfyUI has it (or raises).

        Raises `PromptRejected` (HTTP 400, `.body` = the server's reply), `ComfyUnavailable`
        (not reachable within the bounded retries), `ValueError` for a malformed workflow.
        """
        if not self._started or self._closed:
            raise RuntimeError("ComfyClient.submit: use `async with ComfyClient(...)` (client not running)")
        if not isinstance(workflow, Mapping) or not workflow:
            raise ValueError(
                f"ComfyClient.submit: workflow must be a non-empty dict of nodes, got {type(workflow).__name__}"
            )
        try:
            json.dumps(workflow)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"ComfyClient.submit: workflow is not JSON-serialisable: {exc}") from exc
        cfg = self.config
        prompt_id = str(uuid.uuid4())
        body: dict[str, Any] = {"prompt": dict(workflow), "client_id": self.client_id}
        if cfg.client_prompt_id:
            body["prompt_id"] = prompt_id
        if extra_data:
            body["extra_data"] = dict(extra_data)
        self._tracker.add(prompt_id, self._clock(), deadline)
        handle = TaskHandle(prompt_id, self, on_progress, deadline)
        self._handles[prompt_id] = handle
        try:
            reply = await self._post_safely(body, prompt_id)
        except BaseException:
            self._tracker.discard(prompt_id)
            self._handles.pop(prompt_id, None)
            raise
        server_id = str(reply.get("prompt_id", prompt_id))
        if server_id != prompt_id:
            if server_id in self._handles or server_id in self._tracker.tasks:
                log.warning("submit.id_clash", prompt_id=prompt_id, server_prompt_id=server_id)
            else:
                self._tracker.rename(prompt_id, server_id)
                self._handles[server_id] = self._handles.pop(prompt_id)
                handle.prompt_id = server_id
                prompt_id = server_id
        number = reply.get("number")
        handle.number = number if isinstance(number, (int, float)) else None
        node_errors = reply.get("node_errors")
        handle.node_errors = node_errors if isinstance(node_errors, dict) else {}
        log.info("submit.accepted", prompt_id=prompt_id, number=handle.number)
        self._apply(self._tracker.accepted(prompt_id, self._clock()))
        return handle

    async def _post_safely(self, body: dict[str, Any], prompt_id: str) -> dict[str, Any]:
        assert self._http is not None
        cfg = self.config
        last_error = "no attempt made"
        for attempt in range(1, cfg.submit_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(cfg.submit_retry_delay * 2 ** (attempt - 2))
            res = await self._http.post_prompt(body)
            verdict = classify_post(res.status, res.body, res.sent)
            if verdict is PostVerdict.ACCEPTED:
                return res.body
            if verdict is PostVerdict.REJECTED:
                log.info("submit.rejected", prompt_id=prompt_id, status=res.status)
                raise PromptRejected(res.body, res.status or 400)
            last_error = res.error or f"HTTP {res.status}"
            if verdict is PostVerdict.NOT_SENT:
                log.info("submit.not_sent", prompt_id=prompt_id, attempt=attempt, error=last_error)
                continue
            self.stats.submit_ambiguous += 1
            log.warning("submit.ambiguous", prompt_id=prompt_id, attempt=attempt, error=last_error)
            if cfg.submit_mode == "once" or not cfg.client_prompt_id:
                break
            found = await self._lookup(prompt_id)
            if found is LookupVerdict.FOUND:
                log.info("submit.found", prompt_id=prompt_id)
                return {"prompt_id": prompt_id}
            if found is LookupVerdict.UNKNOWN:
                # cannot tell whether it was queued; never send twice blindly: track it and let
                # polling / the final check settle it
                log.warning("submit.unconfirmed", prompt_id=prompt_id)
                return {"prompt_id": prompt_id}
            self.stats.resubmits += 1
            log.info("submit.resend", prompt_id=prompt_id, attempt=attempt)
        raise ComfyUnavailable(
            f"POST {self.base_url}/prompt failed after {attempt} attempt(s): {last_error}"
        )

    async def _lookup(self, prompt_id: str) -> LookupVerdict:
        """Ask /queue and /history/{id} whether an ambiguous POST got through.

        Asked `submit_lookups` times at doubling intervals: a POST still held up on its way
        (slow proxy, busy server) may land after the first look.
        """
        assert self._http is not None
        verdict = LookupVerdict.UNKNOWN
        for i in range(self.config.submit_lookups):
            await asyncio.sleep(self.config.submit_lookup_delay * 2**i)
            queue = history = None
            try:
                history = await self._http.get_history(prompt_id)
                queue = await self._http.get_queue()
            except HttpFailure as exc:
                log.info("submit.lookup_failed", prompt_id=prompt_id, error=str(exc))
            verdict = lookup_verdict(queue, history, prompt_id, self._tracker.seen_on_ws(prompt_id))
            if verdict is LookupVerdict.FOUND:
                return verdict
        return verdict

    # ---- the tracker's inputs and actions -------------------------------------------

    def _on_frame(self, payload: bytes | str, binary: bool) -> None:
        self.stats.frames_received += 1
        if binary:
            assert isinstance(payload, bytes)  # aiohttp hands BINARY frames over as bytes
            result = sanitize_binary(payload)
        else:
            result = sanitize_text(payload, self.config.max_repair_chars)
        if result.dropped:
            self.stats.frames_dropped += result.dropped
            log.info("sanitize.dropped", count=result.dropped, reasons=list(result.reasons))
        if result.ignored:
            self.stats.frames_ignored += result.ignored
        if result.repairs:
            self.stats.frames_repaired += 1
            log.debug("sanitize.repaired", repairs=list(result.repairs))
        now = self._clock()
        for msg in result.messages:
            try:
                self._apply(self._tracker.on_message(msg, now))
            except Exception:  # a bug here must not take the WebSocket driver down with it
                log.exception("client.message_failed", message_type=getattr(msg, "type", "binary"))

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, FetchHistory):
                self._spawn(self._fetch_history(action.prompt_id), "history")
            elif isinstance(action, FetchQueue):
                self._spawn(self._fetch_queue(), "queue")
            elif isinstance(action, Report):
                self._report(action.prompt_id, action.outcome, action.elapsed)
            elif isinstance(action, ForceReconnect):
                self.stats.forced_reconnects += 1
                if self._ws is not None:
                    self._ws.force_reconnect(action.reason)
            elif isinstance(action, Progress):
                self._progress(action.prompt_id, action.event)
        self._wake.set()

    async def _fetch_history(self, prompt_id: str) -> None:
        assert self._http is not None
        try:
            reply, ok = await self._http.get_history(prompt_id), True
        except HttpFailure as exc:
            log.info("history.fetch_failed", prompt_id=prompt_id, error=str(exc))
            reply, ok = None, False
        self._apply(self._tracker.on_history(prompt_id, reply, ok, self._clock()))

    async def _fetch_queue(self) -> None:
        assert self._http is not None
        try:
            reply, ok = await self._http.get_queue(), True
        except HttpFailure as exc:
            log.info("queue.fetch_failed", error=str(exc))
            reply, ok = None, False
        self._apply(self._tracker.on_queue(reply, ok, self._clock()))

    def _report(self, prompt_id: str, outcome: Outcome, elapsed: float) -> None:
        handle = self._handles.pop(prompt_id, None)
        log.info("task.reported", prompt_id=prompt_id, status=outcome.status, source=outcome.source,
                 detail=outcome.detail, latency=round(elapsed, 3))
        if handle is not None:
            handle._resolve(outcome)

    def _progress(self, prompt_id: str, event: ProgressEvent) -> None:
        handle = self._handles.get(prompt_id)
        if handle is None or handle._on_progress is None:
            return
        try:
            result = handle._on_progress(event)
            if inspect.isawaitable(result):
                self._spawn(result, "progress")
        except Exception:
            log.exception("progress.callback_failed", prompt_id=prompt_id)

    async def _timer_loop(self) -> None:
        while True:
            now = self._clock()
            try:
                self._apply(self._tracker.tick(now))
            except Exception:  # keep the timers (deadlines, polls) alive whatever happens
                log.exception("client.tick_failed")
            self._wake.clear()
            wake = self._tracker.next_wakeup(now)
            timeout = _MAX_IDLE if wake is None else min(max(wake - now, 0.0), _MAX_IDLE)
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("client.task_failed", task=task.get_name(), error=repr(task.exception()))

    def _result_bound(self, deadline: float | None) -> float:
        cfg = self.config
        limit = cfg.task_deadline if deadline is None else deadline
        return limit + 2 * cfg.request_timeout + cfg.success_grace + 2 * _MAX_IDLE + 1.0
