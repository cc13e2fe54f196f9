"""The fault engine: decides, per outgoing frame / connection / request / server event,
which scheduled fault applies, performs it on the connection and records it.

Decisions are deterministic per seed: every spec draws from its own
`random.Random(f"{seed}:{index}")`, and event triggers count protocol moments (frames,
node starts, completions, connects), not time. Only `at:` triggers, durations,
`delay`, `max_hold` and periodic injection depend on the clock.
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import structlog

from comfy_chaos.fake_comfy.events import ServerEvent
from comfy_chaos.fake_comfy.faults import http as http_faults
from comfy_chaos.fake_comfy.faults.kinds import (
    KINDS,
    Binary,
    Send,
    Text,
    heartbeat_frame,
    noise_binary_frame,
    noise_frame,
)
from comfy_chaos.fake_comfy.faults.spec import FaultSchedule, FaultSpec
from comfy_chaos.fake_comfy.faults.triggers import (
    EVENT_TRIGGERS,
    Filter,
    connect_matches_trigger,
    event_matches_trigger,
    frame_matches_trigger,
    resolve_filter,
)
from comfy_chaos.fake_comfy.wire import OutFrame, WsConn

if TYPE_CHECKING:
    from aiohttp import web

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
External = Callable[[FaultSpec], Awaitable[None]]

SENT_LIMIT = 2048
EXTERNAL_TIMEOUT = 5.0
INJECT_KINDS = frozenset({"heartbeat", "noise", "noise_binary"})
# Background tasks that heal_all cancels (restarts and toxic hand-offs run to completion).
TIMER_TASKS = ("fault-at-", "fault-end-", "fault-inject-", "fault-hold-", "fault-close-", "fault-abort-")
# Kinds that also apply to binary frames; the others need a JSON text frame.
BINARY_OK = frozenset({"drop", "duplicate", "reorder", "delay", "heartbeat", "noise", "noise_binary"})


@dataclass(frozen=True, slots=True)
class AppliedFault:
    """One applied fault, as written to the ledger and the run record's fault log."""

    t: float
    kind: str
    spec_index: int
    target: dict[str, Any]
    detail: dict[str, Any]
    sent: bytes | str | None
    t_end: float | None = None

    def to_dict(self) -> dict[str, Any]:
        sent: Any = self.sent
        if isinstance(sent, bytes):
            sent = sent.decode("latin-1")
        return {
            "t": self.t,
            "t_end": self.t_end,
            "kind": self.kind,
            "spec_index": self.spec_index,
            "target": self.target,
            "detail": self.detail,
            "sent": sent,
            "source": "server",
        }


@dataclass(frozen=True, slots=True)
class FrameFate:
    """What happened to one frame: `delivered` False when the client never gets its bytes."""

    delivered: bool
    fault: str | None = None


DELIVERED = FrameFate(True)


@dataclass(slots=True)
class _State:
    """Runtime state of one schedule entry."""

    index: int
    spec: FaultSpec
    rng: random.Random
    matched: int = 0
    status: str = "pending"  # pending | active | done | skipped
    remaining: int | None = None
    until: float | None = None
    filter: Filter = field(default_factory=Filter)
    fired_at: float | None = None
    silenced: set[int] = field(default_factory=set)

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def category(self) -> str:
        return self.spec.category

    @property
    def interval(self) -> float | None:
        """Periodic injection interval (heartbeat/noise kinds), unscaled."""
        return getattr(self.spec.parsed_params, "interval", None)

    @property
    def separator(self) -> str:
        return getattr(self.spec.parsed_params, "separator", "")

    def active(self, now: float) -> bool:
        return self.status == "active" and (self.until is None or now < self.until)

    def consume(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.status = "done"


@dataclass(slots=True)
class _Held:
    """A frame held back by `reorder` or `concat`."""

    state: _State
    frame: OutFrame
    sends: tuple[Send, ...]
    after: int
    deadline: float | None
    message_index: int | None = None
    released_after: list[str] = field(default_factory=list)


COMPLETION_MESSAGES = frozenset({"execution_success", "execution_error", "execution_interrupted"})


@dataclass(slots=True)
class _Anchor:
    """An event trigger that fired in the executor, waiting for its moment in the frame stream."""

    state: _State
    event: ServerEvent
    armed: bool = False  # task_complete: the completion message went out; fire at the next frame

    def is_moment(self, message: ServerEvent) -> bool:
        if message.prompt_id != self.event.prompt_id:
            return False
        if self.event.kind == "node_started":
            return message.message_type == "executing" and message.node == self.event.node
        if self.event.kind == "prompt_started":
            return message.message_type == "execution_start"
        # prompt_completed: normally armed by the completion message; the final executing
        # (node null) is the backstop in case that message went out before the event.
        return message.message_type == "executing" and message.node is None

    def is_after(self, message: ServerEvent) -> bool:
        return (
            self.event.kind == "prompt_completed"
            and message.prompt_id == self.event.prompt_id
            and message.message_type in COMPLETION_MESSAGES
        )


def _clip(sent: bytes | str | None) -> bytes | str | None:
    if sent is None:
        return None
    return sent[:SENT_LIMIT]


def _sends_payload(sends: tuple[Send, ...]) -> bytes | str | None:
    """The bytes the client receives for these sends (text frames as str when all text)."""
    if not sends:
        return None
    if all(isinstance(s, Text) for s in sends):
        return "".join(s.text for s in sends)  # type: ignore[union-attr]
    out = bytearray()
    for s in sends:
        if isinstance(s, Text):
            out += s.text.encode("utf-8")
        elif isinstance(s, Binary):
            out += s.data
        else:
            out += s.payload
    return bytes(out)


def _original(frame: OutFrame) -> tuple[Send, ...]:
    return (Text(frame.text),) if frame.text is not None else (Binary(frame.data or b""),)


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
        time_scale: float = 1.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.schedule = schedule
        self.seed = seed
        self.clock = clock
        self.time_scale = time_scale
        self.external: External | None = None
        self.external_heal: External | None = None
        self.external_timeout = EXTERNAL_TIMEOUT
        self._states = [
            _State(i, spec, random.Random(f"{seed}:{i}")) for i, spec in enumerate(schedule.faults)
        ]
        self._applied: list[AppliedFault] = []
        self._server: Any = None
        self._conns: dict[int, WsConn] = {}
        self._held: dict[int, list[_Held]] = {}
        self._doomed: dict[int, tuple[_State, str]] = {}
        self._lagged: dict[str, tuple[_State, float]] = {}
        self._gate: asyncio.Event | None = None
        self._restarting: _State | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._last_message: tuple[str | None, int | None] = (None, None)
        self._current_index: int | None = None
        self._anchors: list[_Anchor] = []
        self._dead: dict[int, str] = {}  # conn_id → the fault that closed/aborted it
        # task_complete: the executor may report completion before or after the transport sent
        # the completion message; remember which went out so both orders fire at the same frame.
        self._watch_completions = any(s.spec.when.on == "task_complete" for s in self._states)
        self._completion_sent: set[str | None] = set()
        self._frame_watch = [s for s in self._states if s.spec.when.on in ("message", "frame")]
        self._event_watch = [s for s in self._states if s.spec.when.on in EVENT_TRIGGERS.values()]
        self._connect_watch = [s for s in self._states if s.spec.when.on in ("connect", "reconnect")]

    # ---- wiring -------------------------------------------------------------------------

    def bind(self, server: Any) -> None:
        """Attach to a FakeComfy: its ledger (fault records) and restart()."""
        self._server = server

    async def start(self) -> None:
        """Arm the time triggers (`at`, scaled)."""
        if self._started:
            return
        self._started = True
        for state in self._states:
            if state.spec.when.at is not None:
                self._spawn(self._fire_at(state), f"fault-at-{state.index}")

    async def stop(self) -> None:
        """Cancel timers and periodic tasks; held frames are discarded."""
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
        self._held.clear()
        if self._gate is not None:
            self._gate.set()

    async def heal_all(self) -> None:
        """Lift every fault: nothing pending fires any more, held frames go out, windows end,
        silence is lifted. Toxics are the harness's to remove; a restart in progress finishes."""
        now = self.clock()
        for state in self._states:
            if state.status == "active":
                await self._end(state, now, heal_external=False)
            if state.status == "pending":
                state.status = "done"
        for conn_id in list(self._held):
            conn = self._conns.get(conn_id)
            for held in self._held.pop(conn_id, []):
                if conn is None:
                    continue
                try:
                    await self._release(conn, held, now, reason="heal")
                except (ConnectionError, RuntimeError) as exc:
                    log.info("fault.heal.release_failed", conn_id=conn_id, error=str(exc))
        self._doomed.clear()
        self._lagged.clear()
        self._anchors.clear()
        if self._gate is not None:
            self._gate.set()
        for task in list(self._tasks):
            if task.get_name().startswith(TIMER_TASKS) and task is not asyncio.current_task():
                task.cancel()

    # ---- introspection -----------------------------------------------------------------

    def applied(self) -> list[AppliedFault]:
        """Every fault application so far, in order."""
        return list(self._applied)

    def fired_specs(self) -> list[int]:
        """Indices of schedule entries whose trigger fired and whose probability draw passed."""
        return [s.index for s in self._states if s.fired_at is not None]

    def skipped_specs(self) -> list[int]:
        """Indices whose trigger fired but whose probability draw failed."""
        return [s.index for s in self._states if s.status == "skipped"]

    def fault_log(self) -> list[dict[str, Any]]:
        return [a.to_dict() for a in self._applied]

    # ---- hook: frames ------------------------------------------------------------------

    async def on_ws_frame(self, conn: WsConn, frame: OutFrame) -> FrameFate:
        """Decide and perform the send(s) for one outgoing frame.

        Returns its fate; the fault's name is also written to the frame's ledger message
        record (found via the transport's preceding `message` event).
        """
        if not self._states:  # an empty schedule costs one check
            if frame.text is not None:
                await conn.send_text(frame.text)
            else:
                await conn.send_bytes(frame.data or b"")
            return DELIVERED
        prompt_id, index = self._last_message
        self._last_message = (None, None)
        if prompt_id != frame.prompt_id:
            index = None
        self._current_index = index
        fate = await self._on_ws_frame(conn, frame)
        if fate.fault is not None and index is not None:
            self._mark_message(frame.prompt_id, index, fault=fate.fault)
        return fate

    def _mark_message(self, prompt_id: str | None, index: int, **changes: Any) -> None:
        mark = getattr(getattr(self._server, "ledger", None), "mark_message", None)
        if mark is not None and prompt_id is not None:
            mark(prompt_id, index, **changes)

    async def _on_ws_frame(self, conn: WsConn, frame: OutFrame) -> FrameFate:
        if self._gate is not None and not self._gate.is_set():
            await self._wait_gate()
        now = self.clock()
        sid = conn.sid
        if conn.conn_id not in self._conns:
            self._conns[conn.conn_id] = conn
        for state in self._frame_watch:
            if state.status == "pending" and frame_matches_trigger(state.spec.when, frame, sid):
                state.matched += 1
                if state.matched == state.spec.when.nth:
                    await self._fire(state, now, client=sid, task=frame.task_id, conn=conn, frame=frame)
        now = self.clock()

        if conn.conn_id in self._dead:
            return FrameFate(False, self._dead[conn.conn_id])
        doomed = self._doomed.pop(conn.conn_id, None)
        if doomed is not None:
            state, _ = doomed
            return await self._conn_action(state, conn, frame, now)
        if self._restarting is not None:
            self._record(now, "restart", self._restarting.index, conn, frame, {"lost": True}, None)
            return FrameFate(False, "restart")
        for state in self._states:
            if state.kind == "silent" and state.active(now) and state.filter.matches_client(sid):
                self._record(now, "silent", state.index, conn, frame, {"dropped": True}, None)
                return FrameFate(False, "silent")

        fate = await self._apply_frame_faults(conn, frame, now)
        await self._tick_held(conn, frame, now)
        return fate

    async def _apply_frame_faults(self, conn: WsConn, frame: OutFrame, now: float) -> FrameFate:
        held_list = self._held.get(conn.conn_id)
        if held_list:
            for held in held_list:
                if held.state.kind == "concat" and frame.text is not None:
                    held_list.remove(held)
                    sep = held.state.separator
                    merged = (Text(held.frame.text + sep + frame.text),)  # type: ignore[operator]
                    await _send(conn, merged)
                    self._record(
                        now, "concat", held.state.index, conn, held.frame,
                        {"with": frame.message_type}, _sends_payload(merged),
                    )
                    return FrameFate(True, "concat")
        for state in self._states:
            if state.category not in ("frame", "message") or (state.kind in INJECT_KINDS and state.interval):
                continue
            if not state.active(now) or not state.filter.matches(frame, conn.sid):
                continue
            if frame.text is None and state.kind not in BINARY_OK:
                continue
            kind = KINDS[state.kind]
            state.consume()
            params = state.spec.parsed_params
            if state.kind in ("reorder", "concat"):
                deadline = None
                if params.max_hold is not None:
                    deadline = now + params.max_hold * self.time_scale
                    self._spawn(self._release_later(conn, deadline), f"fault-hold-{state.index}")
                after = params.after if state.kind == "reorder" else 1
                self._held.setdefault(conn.conn_id, []).append(
                    _Held(state, frame, _original(frame), after, deadline, self._current_index)
                )
                return FrameFate(False, state.kind)  # marked delivered when released
            if state.kind == "delay":
                seconds = params.seconds * self.time_scale
                await asyncio.sleep(seconds)
                sends = _original(frame)
                await _send(conn, sends)
                self._record(self.clock(), "delay", state.index, conn, frame,
                             {"seconds": seconds}, _sends_payload(sends))
                return FrameFate(True, "delay")
            assert kind.transform is not None
            result = kind.transform(frame, params, state.rng)
            await _send(conn, result.sends)
            self._record(now, state.kind, state.index, conn, frame, result.detail,
                         _sends_payload(result.sends))
            return FrameFate(state.kind != "drop", state.kind)
        await _send(conn, _original(frame))
        return DELIVERED

    async def _tick_held(self, conn: WsConn, frame: OutFrame, now: float) -> None:
        held_list = self._held.get(conn.conn_id)
        if not held_list:
            return
        for held in list(held_list):
            if held.frame is frame or held.state.kind != "reorder":
                continue
            held.after -= 1
            held.released_after.append(frame.message_type)
            if held.after <= 0:
                held_list.remove(held)
                await self._release(conn, held, now, reason="after")

    async def _release(self, conn: WsConn, held: _Held, now: float, reason: str) -> None:
        await _send(conn, held.sends)
        if held.message_index is not None:
            self._mark_message(held.frame.prompt_id, held.message_index, delivered=True)
        if held.state.kind == "concat":
            detail: dict[str, Any] = {"with": None, "released": reason}
        else:
            detail = {"after": held.released_after, "released": reason}
        self._record(now, held.state.kind, held.state.index, conn, held.frame, detail,
                     _sends_payload(held.sends))

    async def _release_later(self, conn: WsConn, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - self.clock()))
        held_list = self._held.get(conn.conn_id, [])
        now = self.clock()
        for held in list(held_list):
            if held.deadline is not None and held.deadline <= now:
                held_list.remove(held)
                await self._release(conn, held, now, reason="max_hold")

    async def _conn_action(
        self, state: _State, conn: WsConn, frame: OutFrame | None, now: float
    ) -> FrameFate:
        params = state.spec.parsed_params
        send_first = frame is not None and getattr(params, "send_frame", False)
        if send_first:
            await _send(conn, _original(frame))  # type: ignore[arg-type]
        detail: dict[str, Any] = {"frame_lost": frame is not None and not send_first}
        self._conns.pop(conn.conn_id, None)
        self._held.pop(conn.conn_id, None)
        self._dead[conn.conn_id] = state.kind
        if state.kind == "close":
            detail["code"] = params.code
            self._record(now, "close", state.index, conn, frame, detail, None)
            # aiohttp's close() waits (up to 10 s) for the client's close reply: do it aside
            # so the server's single ordered send loop is not held up by a silent client.
            self._spawn(conn.close(params.code), f"fault-sendclose-{conn.conn_id}")
        else:
            self._record(now, "abort", state.index, conn, frame, detail, None)
            conn.abort()
        return FrameFate(send_first, state.kind)

    # ---- hook: connections --------------------------------------------------------------

    def on_ws_connect(self, conn: WsConn) -> bool:
        """False refuses the upgrade (the transport answers 503)."""
        now = self.clock()
        for state in self._states:
            if state.kind == "refuse" and state.active(now) and state.filter.matches_client(conn.sid):
                state.consume()
                self._record(now, "refuse", state.index, conn, None, {}, None)
                return False
        self._conns[conn.conn_id] = conn
        for state in self._connect_watch:
            if state.status == "pending" and connect_matches_trigger(
                state.spec.when, conn.sid, conn.reconnect_index
            ):
                state.matched += 1
                if state.matched == state.spec.when.nth:
                    self._fire_sync(state, now, client=conn.sid, task=None, conn=conn)
        for state in self._states:
            if state.kind == "silent" and state.active(now) and state.filter.matches_client(conn.sid):
                self._silence(state, conn)
        return True

    # ---- hook: server events -------------------------------------------------------------

    def on_event(self, event: ServerEvent) -> None:
        """Event triggers; also tracks disconnects and completions (history_lag)."""
        if not self._states:
            return
        if event.kind == "message":
            # Emitted by the transport right before on_ws_frame for the same frame.
            self._last_message = (event.prompt_id, event.detail.get("message_index"))
            if self._watch_completions and event.message_type in COMPLETION_MESSAGES:
                self._completion_sent.add(event.prompt_id)
            if self._anchors:
                self._resolve_anchors(event)
            return
        if event.kind == "ws_disconnected":
            conn_id = event.detail.get("conn_id")
            if conn_id is not None:
                self._conns.pop(conn_id, None)
                self._held.pop(conn_id, None)
                self._doomed.pop(conn_id, None)
            return
        now = self.clock()
        if event.kind == "prompt_completed" and event.prompt_id is not None:
            for state in self._states:
                if state.kind == "history_lag" and state.active(now) and (
                    state.filter.task is None or state.filter.task == event.task_id
                ):
                    state.consume()
                    delay = state.spec.parsed_params.delay * self.time_scale
                    self._lagged[event.prompt_id] = (state, event.t + delay)
                    self._record(now, "history_lag", state.index, None, None,
                                 {"prompt_id": event.prompt_id, "task": event.task_id,
                                  "until": event.t + delay, "delay": delay}, None)
                    break
        for state in self._event_watch:
            if state.status == "pending" and event_matches_trigger(state.spec.when, event):
                state.matched += 1
                if state.matched == state.spec.when.nth:
                    self._anchor(state, event, now)

    def _anchor(self, state: _State, event: ServerEvent, now: float) -> None:
        """Tie an event-triggered fault to the frame stream, so it takes effect at the same
        protocol moment however far the transport lags behind the executor: before the
        node's `executing` (node_start), before `execution_start` (task_start), right after
        the completion message went out (task_complete). With no socket for the client, fire now."""
        if event.client_id is None or not any(c.sid == event.client_id for c in self._conns.values()):
            self._fire_sync(state, now, client=event.client_id, task=event.task_id, conn=None)
            return
        armed = event.kind == "prompt_completed" and event.prompt_id in self._completion_sent
        self._anchors.append(_Anchor(state, event, armed=armed))

    def _resolve_anchors(self, event: ServerEvent) -> None:
        """On each `message` event (a frame about to go out): fire anchored faults due now."""
        now = self.clock()
        for anchor in list(self._anchors):
            if anchor.state.status != "pending":
                self._anchors.remove(anchor)
            elif anchor.armed or anchor.is_moment(event):
                self._anchors.remove(anchor)
                origin = anchor.event
                self._fire_sync(anchor.state, now, client=origin.client_id, task=origin.task_id, conn=None)
            elif anchor.is_after(event):
                anchor.armed = True

    # ---- hook: HTTP ----------------------------------------------------------------------

    async def on_http(self, request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        """aiohttp-middleware shaped: applies active HTTP faults to matching requests."""
        now = self.clock()
        path = http_faults.normalize_path(request.path)
        for state in self._states:
            if state.category != "http" or state.kind == "history_lag" or not state.active(now):
                continue
            if not http_faults.route_matches(state.kind, state.spec.parsed_params, request.method, path):
                continue
            state.consume()
            request["chaos_fault"] = state.kind
            return await http_faults.apply(self, state, request, handler)
        if self._lagged and request.method == "GET" and (
            path == "/history" or path.startswith("/history/")
        ):
            return await http_faults.hide_lagged(self, request, handler, path)
        return await handler(request)

    def lagging_prompts(self, now: float) -> dict[str, int]:
        """prompt_id → spec index for prompts still hidden from /history."""
        for prompt_id, (_, until) in list(self._lagged.items()):
            if until <= now:
                del self._lagged[prompt_id]
        return {pid: st.index for pid, (st, _) in self._lagged.items()}

    # ---- firing --------------------------------------------------------------------------

    async def _fire_at(self, state: _State) -> None:
        assert state.spec.when.at is not None
        await asyncio.sleep(state.spec.when.at * self.time_scale)
        if state.status == "pending":
            await self._fire(state, self.clock(), client=None, task=None, conn=None)

    def _activate(self, state: _State, now: float, client: str | None, task: str | None) -> bool:
        """Probability draw, then state → active. False when the draw failed."""
        spec = state.spec
        if spec.probability < 1.0 and state.rng.random() >= spec.probability:
            state.status = "skipped"
            log.info("fault.skipped", index=state.index, kind=spec.kind, probability=spec.probability)
            return False
        state.status = "active"
        state.fired_at = now
        state.remaining = spec.effective_count
        state.filter = resolve_filter(spec.target, spec.when, client, task)
        if spec.duration is not None:
            state.until = now + spec.duration * self.time_scale
            self._spawn(self._end_later(state), f"fault-end-{state.index}")
        log.info("fault.fired", index=state.index, kind=spec.kind, client=client, task=task)
        return True

    def _fire_sync(
        self, state: _State, now: float, client: str | None, task: str | None, conn: WsConn | None
    ) -> None:
        """Fire from a sync hook: anything needing I/O becomes a task or waits for the next frame."""
        if not self._activate(state, now, client, task):
            return
        kind = state.kind
        if kind in ("close", "abort"):
            if conn is not None:
                # A connect trigger: the socket is not upgraded yet; act at its first frame.
                self._doomed[conn.conn_id] = (state, kind)
            else:
                for target in self._matching_conns(state):
                    self._doomed[target.conn_id] = (state, kind)
                    self._spawn(self._doom_later(target), f"fault-{kind}-{state.index}")
            state.status = "done"
        elif kind == "restart":
            self._restarting = state
            self._spawn(self._restart(state), f"fault-restart-{state.index}")
        elif kind == "toxic":
            self._gate = asyncio.Event()
            self._spawn(self._external(state, self._gate), f"fault-toxic-{state.index}")
        else:
            self._after_activate(state, now)

    async def _fire(
        self,
        state: _State,
        now: float,
        client: str | None,
        task: str | None,
        conn: WsConn | None,
        frame: OutFrame | None = None,
    ) -> None:
        """Fire from an async hook (a frame or a timer): connection actions happen right here."""
        if not self._activate(state, now, client, task):
            return
        kind = state.kind
        if kind in ("close", "abort"):
            if conn is not None and frame is not None:
                self._doomed[conn.conn_id] = (state, kind)
            else:
                for target in self._matching_conns(state):
                    await self._conn_action(state, target, None, now)
            state.status = "done"
        elif kind == "restart":
            self._restarting = state
            self._spawn(self._restart(state), f"fault-restart-{state.index}")
        elif kind == "toxic":
            gate = asyncio.Event()
            self._gate = gate
            await self._external(state, gate)
        else:
            self._after_activate(state, now)

    def _after_activate(self, state: _State, now: float) -> None:
        if state.kind == "silent":
            for conn in self._matching_conns(state):
                self._silence(state, conn)
            self._record(now, "silent", state.index, None, None,
                         {"window": state.until is not None, "client": state.filter.client}, None)
        elif state.kind in INJECT_KINDS and state.interval:
            self._spawn(self._inject_periodically(state), f"fault-inject-{state.index}")
        elif state.kind == "refuse":
            self._record(now, "refuse", state.index, None, None, {"window_start": True}, None)

    def _matching_conns(self, state: _State) -> list[WsConn]:
        return [c for c in self._conns.values() if state.filter.matches_client(c.sid)]

    def _silence(self, state: _State, conn: WsConn) -> None:
        state.silenced.add(conn.conn_id)
        set_silent = getattr(conn, "set_silent", None)
        if set_silent is not None:
            set_silent(True)

    async def _doom_later(self, conn: WsConn) -> None:
        """Perform a pending connection action if no frame got there first."""
        await asyncio.sleep(0)
        if conn.conn_id in self._dead:
            return FrameFate(False, self._dead[conn.conn_id])
        doomed = self._doomed.pop(conn.conn_id, None)
        if doomed is not None:
            await self._conn_action(doomed[0], conn, None, self.clock())

    async def _restart(self, state: _State) -> None:
        keep = state.spec.parsed_params.keep_history
        self._record(self.clock(), "restart", state.index, None, None, {"keep_history": keep}, None)
        try:
            if self._server is None:
                log.warning("fault.restart.unbound", index=state.index)
                return
            self._conns.clear()
            self._held.clear()
            await self._server.restart(keep_history=keep)
        finally:
            self._restarting = None
            state.status = "done"

    async def _external(self, state: _State, gate: asyncio.Event) -> None:
        """Hand a toxic to the harness; frames wait (bounded) until it is in place."""
        now = self.clock()
        try:
            if self.external is None:
                log.warning("fault.toxic.no_external", index=state.index)
                return
            async with asyncio.timeout(self.external_timeout):
                await self.external(state.spec)
        except TimeoutError:
            log.warning("fault.toxic.timeout", index=state.index, timeout=self.external_timeout)
        except Exception:  # noqa: BLE001 - a harness failure must not kill the server
            log.exception("fault.toxic.failed", index=state.index)
        finally:
            gate.set()
            toxic = state.spec.toxic
            # Not written to the ledger: the harness logs applied toxics itself (source toxiproxy).
            self._append(
                AppliedFault(now, "toxic", state.index, {}, toxic.model_dump() if toxic else {}, None),
                ledger=False,
            )
            if state.spec.duration is None:
                state.status = "done"

    async def _wait_gate(self) -> None:
        assert self._gate is not None
        try:
            async with asyncio.timeout(self.external_timeout + 1):
                await self._gate.wait()
        except TimeoutError:
            log.warning("fault.toxic.gate_timeout")

    async def _end_later(self, state: _State) -> None:
        assert state.until is not None
        await asyncio.sleep(max(0.0, state.until - self.clock()))
        if state.status == "active":
            await self._end(state, self.clock())

    async def _end(self, state: _State, now: float, heal_external: bool = True) -> None:
        """End an active window: unsilence, heal a toxic (duration end only; on heal_all the
        harness lifts its toxics itself), close the ledger entry's window."""
        state.status = "done"
        if state.kind == "silent":
            for conn_id in state.silenced:
                conn = self._conns.get(conn_id)
                set_silent = getattr(conn, "set_silent", None)
                if set_silent is not None:
                    set_silent(False)
            state.silenced.clear()
        if state.kind == "toxic" and heal_external and self.external_heal is not None:
            try:
                async with asyncio.timeout(self.external_timeout):
                    await self.external_heal(state.spec)
            except Exception:  # noqa: BLE001 - healing is best effort; logged
                log.exception("fault.toxic.heal_failed", index=state.index)
        for i, applied in enumerate(self._applied):
            if applied.spec_index == state.index and applied.t_end is None and state.kind in (
                "silent", "refuse", "toxic"
            ):
                self._applied[i] = AppliedFault(applied.t, applied.kind, applied.spec_index,
                                                applied.target, applied.detail, applied.sent, now)
                break

    async def _inject_periodically(self, state: _State) -> None:
        params = state.spec.parsed_params
        maker = {"heartbeat": heartbeat_frame, "noise": noise_frame, "noise_binary": noise_binary_frame}[
            state.kind
        ]
        interval = params.interval * self.time_scale
        while state.active(self.clock()):
            extra = maker(params, state.rng)
            for conn in self._matching_conns(state):
                try:
                    await _send(conn, (extra,))
                except Exception:  # noqa: BLE001 - a closing socket is expected here
                    continue
                self._record(self.clock(), state.kind, state.index, conn, None,
                             {"periodic": True}, _sends_payload((extra,)))
            state.consume()
            await asyncio.sleep(interval)

    # ---- plumbing ------------------------------------------------------------------------

    def state(self, index: int) -> _State:
        return self._states[index]

    def record_http(
        self, t: float, state: _State, target: dict[str, Any], detail: dict[str, Any],
        sent: bytes | None,
    ) -> None:
        """Record an HTTP fault (target: method and path)."""
        applied = AppliedFault(t, state.kind, state.index, target, detail, _clip(sent))
        self._append(applied)

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("fault.task.failed", task=task.get_name(), error=repr(task.exception()))

    def _record(
        self,
        t: float,
        kind: str,
        index: int,
        conn: WsConn | None,
        frame: OutFrame | None,
        detail: dict[str, Any],
        sent: bytes | str | None,
    ) -> None:
        target: dict[str, Any] = {}
        if conn is not None:
            target["client"] = conn.sid
            target["conn_id"] = conn.conn_id
        if frame is not None:
            target["task"] = frame.task_id
            target["prompt_id"] = frame.prompt_id
            target["message"] = frame.message_type
        self._append(AppliedFault(t, kind, index, target, detail, _clip(sent)))

    def _append(self, applied: AppliedFault, ledger: bool = True) -> None:
        self._applied.append(applied)
        log.info("fault.applied", kind=applied.kind, index=applied.spec_index, **applied.target)
        if ledger and self._server is not None:
            record_fault(self._server.ledger, applied)


def record_fault(ledger: Any, applied: AppliedFault) -> None:
    """Append to `ledger.faults` (Contract 2 FaultRecord), via the ledger's own API when it has one."""
    add = getattr(ledger, "record_fault", None)
    if add is not None:
        add(t=applied.t, kind=applied.kind, target=applied.target,
            detail={**applied.detail, "spec_index": applied.spec_index}, sent=applied.sent)
        return
    ledger.faults.append(applied)



__all__ = ["AppliedFault", "FaultEngine", "FrameFate", "record_fault"]
