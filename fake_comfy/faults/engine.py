"""The fault driver: feeds the transport's hook points to the sans-IO `FaultPlanner` and
performs its decisions on sockets and HTTP requests; owns the timers and the tasks.

All deciding happens in `faults.planner` (and the kinds' behaviours); this module only
does I/O: sends, sleeps, closes, aborts, restarts, toxic hand-offs, ledger writes.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, Protocol

import structlog
from aiohttp import web

from comfy_chaos.fake_comfy.events import ServerEvent
from comfy_chaos.fake_comfy.faults import http as http_driver
from comfy_chaos.fake_comfy.faults.behaviours import normalize_path
from comfy_chaos.fake_comfy.faults.decisions import (
    Abort,
    AppliedFault,
    Binary,
    Close,
    ConnInfo,
    Decision,
    FrameFate,
    HttpPlan,
    Mark,
    RequestInfo,
    Restart,
    Send,
    SendFrames,
    Silence,
    Sleep,
    Text,
    ToxicOff,
    ToxicOn,
    Wake,
    WindowEnd,
)
from comfy_chaos.fake_comfy.faults.planner import FaultPlanner
from comfy_chaos.fake_comfy.faults.spec import FaultSchedule, FaultSpec
from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.fake_comfy.wire import OutFrame, WsConn

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
External = Callable[[FaultSpec], Awaitable[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

EXTERNAL_TIMEOUT = 5.0
TIMER_TASK = "fault-timer"
#: Bodies read to learn a POST /prompt's client_id (larger ones are not read here).
BODY_PEEK_LIMIT = 1 << 20


class FaultLedger(Protocol):
    """Where the engine writes applied faults and marks messages (`fake_comfy.ledger.Ledger`)."""

    def record_fault(
        self, t: float, kind: str, target: dict[str, Any], detail: dict[str, Any] | None = None,
        sent: bytes | str | None = None,
    ) -> Any: ...

    def mark_message(
        self, prompt_id: str, index: int, *, delivered: bool | None = None, fault: str | None = None
    ) -> None: ...


class FaultHost(Protocol):
    """What the engine needs from the server it is bound to (`FakeComfy`)."""

    @property
    def ledger(self) -> FaultLedger: ...

    async def restart(self, keep_history: bool = False) -> None: ...


def record_fault(ledger: FaultLedger, applied: AppliedFault) -> None:
    """Append to the ledger's faults (Contract 2 FaultRecord); whom it reached goes in `detail`."""
    detail = {**applied.detail, "spec_index": applied.spec_index,
              "target_client_id": applied.target_client_id, "target_kind": applied.target_kind}
    if not applied.reached:
        detail["reached"] = False
    ledger.record_fault(t=applied.t, kind=applied.kind, target=applied.target, detail=detail, sent=applied.sent)


async def _send(conn: WsConn, sends: tuple[Send, ...]) -> None:
    for s in sends:
        if isinstance(s, Text):
            await conn.send_text(s.text)
        elif isinstance(s, Binary):
            await conn.send_bytes(s.data)
        else:
            await conn.send_raw_text_frame(s.payload)


class FaultEngine:
    """Applies a `FaultSchedule` at the transport's hook points (Contract 3)."""

    def __init__(
        self,
        schedule: FaultSchedule,
        seed: int,
        clock: Clock = time.monotonic,
        time_scale: TimeScale | float = 1.0,
        task_clients: Mapping[str, str] | None = None,
    ) -> None:
        """`time_scale`: the run's `TimeScale` (a number is taken as one); the planner
        converts every scenario-second duration of the schedule through it."""
        self.planner = FaultPlanner(schedule, seed, time_scale, task_clients)
        self.schedule = schedule
        self.seed = seed
        self.clock = clock
        self.scale = self.planner.scale
        self.external: External | None = None
        self.external_heal: External | None = None
        self.external_timeout = EXTERNAL_TIMEOUT
        self._host: FaultHost | None = None
        self._conns: dict[int, WsConn] = {}
        self._gate: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._peek_bodies = any(s.behaviour.target_kind == "http" for s in self.planner.states)

    # ---- wiring ----------------------------------------------------------------------------

    def bind(self, host: FaultHost) -> None:
        """Attach to a server: its ledger (fault records, message marks) and restart()."""
        self._host = host

    async def start(self) -> None:
        """Arm the time triggers."""
        if self._started:
            return
        self._started = True
        await self._perform(self.planner.start(self.clock()), tolerant=True)

    async def stop(self) -> None:
        """Log the clients faults never met, cancel timers and tasks; held frames are discarded."""
        self.planner.finish(self.clock())
        self._flush()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                async with asyncio.timeout(5):
                    await task
            except (asyncio.CancelledError, TimeoutError):
                pass
            except Exception:  # noqa: BLE001 - a failing fault task must not break teardown
                log.exception("fault.task.failed")
        if self._gate is not None:
            self._gate.set()

    async def heal_all(self) -> None:
        """Lift every fault: nothing pending fires any more, held frames go out, windows end,
        silence is lifted. Toxics are the harness's to remove; a restart in progress finishes."""
        decisions = self.planner.heal(self.clock())
        for task in list(self._tasks):
            if task.get_name() == TIMER_TASK and task is not asyncio.current_task():
                task.cancel()
        await self._perform(decisions, tolerant=True)
        if self._gate is not None:
            self._gate.set()

    # ---- introspection -----------------------------------------------------------------------

    def applied(self) -> list[AppliedFault]:
        """Every fault application so far, in order."""
        return list(self.planner.applied)

    def fired_specs(self) -> list[int]:
        """Indices of schedule entries whose trigger fired and whose probability draw passed."""
        return self.planner.fired_specs()

    def skipped_specs(self) -> list[int]:
        """Indices whose trigger fired but whose probability draw failed."""
        return self.planner.skipped_specs()

    def fault_log(self) -> list[dict[str, Any]]:
        return [a.to_dict() for a in self.planner.applied]

    def open_until(self) -> float | None:
        """Monotonic time until which a fired fault stays open (math.inf while an HTTP fault
        waits for a client to meet it); None when none is open. The runner heals after it."""
        return self.planner.open_until(self.clock())

    # ---- hooks ---------------------------------------------------------------------------------

    async def on_ws_frame(self, conn: WsConn, frame: OutFrame) -> FrameFate:
        """Decide and perform the send(s) for one outgoing frame; returns its fate."""
        if self._gate is not None and not self._gate.is_set():
            await self._wait_gate()
        self._conns.setdefault(conn.conn_id, conn)
        plan = self.planner.frame(_info(conn), frame, self.clock())
        await self._perform(plan.actions)
        return plan.fate

    def on_ws_connect(self, conn: WsConn) -> bool:
        """False refuses the upgrade (the transport answers 503)."""
        accepted, decisions = self.planner.connect(_info(conn), self.clock())
        if accepted:
            self._conns[conn.conn_id] = conn
        self._perform_soon(decisions)
        return accepted

    def on_event(self, event: ServerEvent) -> None:
        """Event triggers, disconnects, prompts and completions."""
        if event.kind == "ws_disconnected":
            self._conns.pop(event.detail.get("conn_id", -1), None)
        self._perform_soon(self.planner.event(event, self.clock()))

    async def on_http(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """aiohttp-middleware shaped: applies the planned HTTP fault to a matching request."""
        if not self.planner.states:
            return await handler(request)
        req = RequestInfo(
            method=request.method,
            path=normalize_path(request.path),
            raw_path=request.path,
            client_id=await self._client_of(request),
            peer=id(request.protocol),
        )
        plan = self.planner.request(req, self.clock())
        self._flush()
        if plan is None:
            return await handler(request)
        return await http_driver.perform(plan, request, handler, self._reporter(plan, req))

    # ---- performing ------------------------------------------------------------------------------

    def _reporter(self, plan: HttpPlan, req: RequestInfo) -> http_driver.Report:
        def report(detail: dict[str, Any], sent: bytes | None) -> None:
            self.planner.http_applied(plan, req, self.clock(), detail, sent)
            self._flush()

        return report

    async def _client_of(self, request: web.Request) -> str | None:
        """The client a request names: `?clientId=`, or a POST /prompt body's `client_id`."""
        client = request.query.get("clientId")
        if client or not self._peek_bodies:
            return client or None
        if request.method != "POST" or normalize_path(request.path) != "/prompt":
            return None
        length = request.content_length
        if not request.can_read_body or length is None or length > BODY_PEEK_LIMIT:
            return None
        try:
            body = json.loads(await request.read())  # cached: the handler reads it again
        except (ValueError, UnicodeDecodeError):
            return None
        client = body.get("client_id") if isinstance(body, dict) else None
        return client if isinstance(client, str) and client else None

    async def _perform(self, decisions: Iterable[Decision], tolerant: bool = False) -> None:
        """Perform in order, awaiting sends, sleeps and toxic hand-offs."""
        try:
            for decision in decisions:
                pending = self._start(decision)
                if pending is None:
                    continue
                try:
                    await pending
                except (ConnectionError, RuntimeError) as exc:
                    if not tolerant:
                        raise
                    log.info("fault.send_failed", decision=type(decision).__name__, error=str(exc))
        finally:
            self._flush()

    def _perform_soon(self, decisions: Iterable[Decision]) -> None:
        """From a sync hook: what can be done now is done, the rest runs as tasks."""
        for decision in decisions:
            pending = self._start(decision)
            if pending is not None:
                self._spawn(pending, f"fault-{type(decision).__name__.lower()}")
        self._flush()

    def _start(self, decision: Decision) -> Coroutine[Any, Any, Any] | None:
        """Perform `decision` as far as possible without waiting; return what must be awaited."""
        if isinstance(decision, SendFrames):
            conn = self._conns.get(decision.conn_id)
            return None if conn is None else _send(conn, decision.sends)
        if isinstance(decision, Sleep):
            return asyncio.sleep(decision.seconds)
        if isinstance(decision, Mark):
            if self._host is not None:
                ledger = self._host.ledger
                if decision.fault is not None:
                    ledger.mark_message(decision.prompt_id, decision.index, fault=decision.fault)
                if decision.delivered is not None:
                    ledger.mark_message(decision.prompt_id, decision.index, delivered=decision.delivered)
            return None
        if isinstance(decision, Close):
            conn = self._conns.pop(decision.conn_id, None)
            if conn is not None:
                # aiohttp's close() waits (up to 10 s) for the client's close reply: do it aside
                # so the server's single ordered send loop is not held up by a silent client.
                self._spawn(conn.close(decision.code), f"fault-sendclose-{decision.conn_id}")
            return None
        if isinstance(decision, Abort):
            conn = self._conns.pop(decision.conn_id, None)
            if conn is not None:
                conn.abort()
            return None
        if isinstance(decision, Silence):
            set_silent = getattr(self._conns.get(decision.conn_id), "set_silent", None)
            if set_silent is not None:
                set_silent(decision.silent)
            return None
        if isinstance(decision, Wake):
            self._spawn(self._timer(decision.at), TIMER_TASK)
            return None
        if isinstance(decision, Restart):
            self._conns.clear()
            self._spawn(self._restart(decision), f"fault-restart-{decision.index}")
            return None
        if isinstance(decision, ToxicOn):
            gate = asyncio.Event()
            self._gate = gate
            return self._toxic_on(decision, gate)
        if isinstance(decision, ToxicOff):
            self._spawn(self._toxic_off(decision), f"fault-toxicoff-{decision.index}")
            return None
        if isinstance(decision, WindowEnd):
            log.info("fault.window_end", index=decision.index)
            return None
        raise AssertionError(f"unknown decision {decision!r}")

    async def _timer(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self.clock()))
        await self._perform(self.planner.tick(self.clock()), tolerant=True)

    async def _restart(self, decision: Restart) -> None:
        try:
            if self._host is None:
                log.warning("fault.restart.unbound", index=decision.index)
                return
            await self._host.restart(keep_history=decision.keep_history)
        finally:
            self.planner.restarted(decision.index)

    async def _toxic_on(self, decision: ToxicOn, gate: asyncio.Event) -> None:
        """Hand a toxic to the harness; frames wait (bounded) until it is in place."""
        try:
            if self.external is None:
                log.warning("fault.toxic.no_external", index=decision.index)
                return
            async with asyncio.timeout(self.external_timeout):
                await self.external(decision.spec)
        except TimeoutError:
            log.warning("fault.toxic.timeout", index=decision.index, timeout=self.external_timeout)
        except Exception:  # noqa: BLE001 - a harness failure must not kill the server
            log.exception("fault.toxic.failed", index=decision.index)
        finally:
            gate.set()

    async def _toxic_off(self, decision: ToxicOff) -> None:
        if self.external_heal is None:
            return
        try:
            async with asyncio.timeout(self.external_timeout):
                await self.external_heal(decision.spec)
        except Exception:  # noqa: BLE001 - healing is best effort; logged
            log.exception("fault.toxic.heal_failed", index=decision.index)

    async def _wait_gate(self) -> None:
        assert self._gate is not None
        try:
            async with asyncio.timeout(self.external_timeout + 1):
                await self._gate.wait()
        except TimeoutError:
            log.warning("fault.toxic.gate_timeout")

    def _flush(self) -> None:
        """Copy new log entries to the ledger (toxics are logged by the harness, not here)."""
        for applied in self.planner.drain():
            log.info("fault.applied", kind=applied.kind, index=applied.spec_index, reached=applied.reached,
                     client=applied.target_client_id, **{k: v for k, v in applied.target.items() if k != "client"})
            if self._host is not None and applied.target_kind != "toxic":
                record_fault(self._host.ledger, applied)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("fault.task.failed", task=task.get_name(), error=repr(task.exception()))


def _info(conn: WsConn) -> ConnInfo:
    return ConnInfo(conn.conn_id, conn.sid, conn.reconnect_index)


__all__ = ["AppliedFault", "FaultEngine", "FaultHost", "FaultLedger", "FrameFate", "record_fault"]
