"""The fault planner: sans-IO. Fed connections, frames, requests, server events and the
time; returns decisions (`faults.decisions`) for the driver to perform.

It holds every schedule entry's state, its seeded RNG (`random.Random(f"{seed}:{index}")`)
and its trigger count; what a kind *does* lives in its registry entry
(`faults.kinds.KINDS[name].behaviour`), which the planner calls at its hook points. Event
triggers count protocol moments (frames, node starts, completions, connects), not time, so
the same seed gives the same applied faults; only `at:` triggers, durations, `delay`,
`max_hold` and periodic injection depend on the clock, which is passed in as `now`
(monotonic seconds). Every duration is scaled once, here (`seconds()`, through the run's
`TimeScale`).
"""
from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from comfy_chaos.fake_comfy.events import ServerEvent
from comfy_chaos.fake_comfy.faults.decisions import (
    DELIVERED,
    AppliedFault,
    ConnInfo,
    Decision,
    FrameFate,
    FramePlan,
    HttpPlan,
    Mark,
    RequestInfo,
    SendFrames,
    TargetKind,
    Wake,
    WindowEnd,
    clip,
    original,
    sends_payload,
)
from comfy_chaos.fake_comfy.faults.kinds import KINDS
from comfy_chaos.fake_comfy.faults.spec import FaultSchedule, FaultSpec
from comfy_chaos.fake_comfy.faults.triggers import (
    EVENT_TRIGGERS,
    Filter,
    connect_matches_trigger,
    event_matches_trigger,
    frame_matches_trigger,
    resolve_filter,
)
from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.fake_comfy.wire import OutFrame

if TYPE_CHECKING:
    from comfy_chaos.fake_comfy.faults.behaviours import Behaviour

log = structlog.get_logger(__name__)

COMPLETION_MESSAGES = frozenset({"execution_success", "execution_error", "execution_interrupted"})


@dataclass(slots=True)
class FaultState:
    """Runtime state of one schedule entry.

    status: pending → active → done; `overtime` = the window is over but some client has
    not met the fault yet (`until_met`); `skipped` = the probability draw failed."""

    index: int
    spec: FaultSpec
    rng: random.Random
    behaviour: Behaviour
    matched: int = 0
    status: str = "pending"
    remaining: int | None = None
    until: float | None = None
    filter: Filter = field(default_factory=Filter)
    fired_at: float | None = None
    met: set[str] = field(default_factory=set)  # clients it reached
    window_entry: int | None = None  # index in the log of the entry `t_end` closes
    data: dict[str, Any] = field(default_factory=dict)  # the kind's own scratch state

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def params(self) -> Any:
        return self.spec.parsed_params

    def active(self, now: float) -> bool:
        return self.status == "active" and (self.until is None or now < self.until)


@dataclass(frozen=True, slots=True)
class Origin:
    """What fired a fault: the client and task of the trigger, and the socket and frame
    when a frame or a connect fired it."""

    client: str | None = None
    task: str | None = None
    conn: ConnInfo | None = None
    frame: OutFrame | None = None


@dataclass(slots=True)
class Held:
    """A frame held back (`reorder`, `concat`)."""

    state: FaultState
    conn: ConnInfo
    frame: OutFrame
    after: int
    deadline: float | None
    message_index: int | None
    released_after: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Anchor:
    """An event trigger that fired in the executor, waiting for its moment in the frame stream."""

    state: FaultState
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


class FaultPlanner:
    """Decides which scheduled fault applies to what; performs nothing."""

    def __init__(
        self, schedule: FaultSchedule, seed: int, time_scale: TimeScale | float = 1.0,
        task_clients: Mapping[str, str] | None = None,
    ) -> None:
        """`task_clients`: task id → the client under test that runs it (the harness's plan).
        A client that uses several clientIds (one per task, say) is then one client for
        `until_met` and the `reached: false` entries; without it each clientId is one."""
        scale = TimeScale.of(time_scale)
        if scale.factor <= 0:
            raise ValueError(f"time_scale must be > 0, got {scale.factor:g}")
        self.schedule = schedule
        self.seed = seed
        self.scale = scale
        self.states = [
            FaultState(i, spec, random.Random(f"{seed}:{i}"), KINDS[spec.kind].behaviour)
            for i, spec in enumerate(schedule.faults)
        ]
        self.applied: list[AppliedFault] = []
        self.conns: dict[int, ConnInfo] = {}
        self.held: dict[int, list[Held]] = {}
        self.doomed: dict[int, tuple[FaultState, bool]] = {}  # conn_id → (state, only at a frame)
        self.dead: dict[int, str] = {}  # conn_id → the fault that closed/aborted it
        self.restarting: FaultState | None = None
        self.clients: dict[str, None] = {}  # every clientId seen (insertion-ordered set)
        self.task_clients = dict(task_clients or {})
        self.client_under_test: dict[str, str] = {}  # clientId → task_clients value
        self.prompt_clients: dict[str, str] = {}
        self.peers: dict[int, str] = {}  # TCP connection key → client learnt on it
        self._out: list[Decision] = []
        self._new: list[AppliedFault] = []
        self._timers: list[tuple[float, int]] = []
        self._anchors: list[Anchor] = []
        self._last_message: tuple[str | None, int | None] = (None, None)
        self._current_index: int | None = None
        self._completion_sent: set[str | None] = set()
        self._watch_completions = any(s.spec.when.on == "task_complete" for s in self.states)
        self._frame_watch = [s for s in self.states if s.spec.when.on in ("message", "frame")]
        self._event_watch = [s for s in self.states if s.spec.when.on in EVENT_TRIGGERS.values()]
        self._connect_watch = [s for s in self.states if s.spec.when.on in ("connect", "reconnect")]
        self._finished = False
        self.healed = False

    # ---- the inputs ----------------------------------------------------------------------

    def start(self, now: float) -> list[Decision]:
        """Arm the time triggers (`at`, scaled)."""
        for state in self.states:
            if state.spec.when.at is not None:
                self.timer(now + self.seconds(state.spec.when.at), state)
        return self._take()

    def frame(self, conn: ConnInfo, frame: OutFrame, now: float) -> FramePlan:
        """One outgoing frame: what to send instead (or nothing), and its fate."""
        if not self.states:
            return FramePlan((SendFrames(conn.conn_id, original(frame)),), DELIVERED)
        prompt_id, index = self._last_message
        self._last_message = (None, None)
        self._current_index = index if prompt_id == frame.prompt_id else None
        self._expire(now)
        self.conns.setdefault(conn.conn_id, conn)
        self._note_client(conn.sid)
        for state in self._frame_watch:
            if state.status == "pending" and frame_matches_trigger(state.spec.when, frame, conn.sid):
                state.matched += 1
                if state.matched == state.spec.when.nth:
                    self.fire(state, now, Origin(conn.sid, frame.task_id, conn, frame))
        fate = self._frame_fate(conn, frame, now)
        if fate.fault is not None and self._current_index is not None and frame.prompt_id is not None:
            self.emit(Mark(frame.prompt_id, self._current_index, fault=fate.fault))
        return FramePlan(tuple(self._take()), fate)

    def connect(self, conn: ConnInfo, now: float) -> tuple[bool, list[Decision]]:
        """A WebSocket upgrade: False refuses it (the transport answers 503)."""
        self._expire(now)
        self._note_client(conn.sid)
        for state in self.states:
            if state.fired_at is not None and not state.behaviour.on_connect(self, state, conn, now):
                return False, self._take()
        self.conns[conn.conn_id] = conn
        for state in self._connect_watch:
            if state.status == "pending" and connect_matches_trigger(state.spec.when, conn.sid, conn.reconnect_index):
                state.matched += 1
                if state.matched == state.spec.when.nth:
                    self.fire(state, now, Origin(conn.sid, None, conn, None))
        for state in self.states:
            if state.status == "active":
                state.behaviour.on_accepted(self, state, conn, now)
        return True, self._take()

    def event(self, event: ServerEvent, now: float) -> list[Decision]:
        """A server event: event triggers, bookkeeping (disconnects, prompts, completions)."""
        if not self.states:
            return []
        if event.kind == "message":
            # Emitted by the transport right before the frame hook for the same frame.
            self._last_message = (event.prompt_id, event.detail.get("message_index"))
            if self._watch_completions and event.message_type in COMPLETION_MESSAGES:
                self._completion_sent.add(event.prompt_id)
            if self._anchors:
                self._resolve_anchors(event, now)
            return self._take()
        if event.kind == "ws_disconnected":
            conn_id = event.detail.get("conn_id")
            if conn_id is not None:
                self.conns.pop(conn_id, None)
                self.held.pop(conn_id, None)
                self.doomed.pop(conn_id, None)
            return []
        if event.kind == "prompt_accepted" and event.prompt_id is not None and event.client_id:
            self.prompt_clients[event.prompt_id] = event.client_id
            self._note_client(event.client_id)
            if event.task_id in self.task_clients:
                self.client_under_test[event.client_id] = self.task_clients[event.task_id]
        self._expire(now)
        for state in self.states:
            if state.fired_at is not None:
                state.behaviour.on_event(self, state, event, now)
        for state in self._event_watch:
            if state.status == "pending" and event_matches_trigger(state.spec.when, event):
                state.matched += 1
                if state.matched == state.spec.when.nth:
                    self._anchor(state, event, now)
        return self._take()

    def request(self, req: RequestInfo, now: float) -> HttpPlan | None:
        """An HTTP request: the plan of the first HTTP fault that takes it, if any."""
        if not self.states:
            return None
        self._expire(now)
        client = self.request_client(req)
        for state in self.states:
            if state.fired_at is None or state.status == "skipped":
                continue
            plan = state.behaviour.on_request(self, state, req, client, now)
            if plan is not None:
                return plan
        return None

    def tick(self, now: float) -> list[Decision]:
        """Timers due: `at` triggers, window ends, periodic injection, `max_hold` releases."""
        due = [self.states[index] for index in dict.fromkeys(index for at, index in self._timers if at <= now)]
        self._timers = [(at, index) for at, index in self._timers if at > now]
        self._expire(now)
        for state in due:
            if state.status == "pending" and state.spec.when.at is not None:
                self.fire(state, now, Origin())
            else:
                state.behaviour.on_tick(self, state, now)
        self._act_on_doomed(now)
        return self._take()

    def heal(self, now: float) -> list[Decision]:
        """Lift every fault: nothing pending fires any more, held frames go out, windows end.
        Toxics are the harness's to remove; a restart in progress finishes."""
        self.healed = True
        for state in self.states:
            if state.status in ("active", "overtime"):
                self.close(state, now, healed=True)
            elif state.status == "pending":
                state.status = "done"
            state.behaviour.on_heal(self, state, now)
        for conn_id in list(self.held):
            conn = self.conns.get(conn_id)
            for held in self.held.pop(conn_id, []):
                if conn is not None:
                    self.release(held, now, reason="heal")
        self.doomed.clear()
        self._anchors.clear()
        self._timers.clear()
        self.finish(now)
        return self._take()

    def finish(self, now: float) -> None:
        """Write the `reached: false` entries: each client a fired fault was meant for but
        never met (once; at the heal, or when the server stops)."""
        if self._finished:
            return
        self._finished = True
        for state in self.states:
            if state.fired_at is None or not state.behaviour.reports_unmet(state):
                continue
            for client in self.unmet(state):
                self.record(
                    now, state, client=client, reached=False,
                    detail={"reason": state.behaviour.unmet_reason},
                    target_kind=state.behaviour.target_kind,
                )

    # ---- feedback from the driver ---------------------------------------------------------

    def restarted(self, index: int) -> None:
        self.restarting = None
        self.states[index].status = "done"

    def http_applied(
        self, plan: HttpPlan, req: RequestInfo, now: float, detail: dict[str, Any], sent: bytes | None
    ) -> None:
        """The driver performed `plan` on `req`: log what the client got. A request that did
        not say whose it was is known by the prompt it queued, when it queued one."""
        state = self.states[plan.index]
        client = plan.client_id or self.prompt_clients.get(str(detail.get("prompt_id")))
        if client is not None:
            state.met.add(client)
        self.record(
            now, state, client=client, target={"method": req.method, "path": req.raw_path},
            detail={**plan.detail, **detail}, sent=sent, target_kind="http",
        )

    # ---- outputs ----------------------------------------------------------------------------

    def drain(self) -> list[AppliedFault]:
        """Log entries written since the last call (the driver copies them to the ledger)."""
        new, self._new = self._new, []
        return new

    def fired_specs(self) -> list[int]:
        return [s.index for s in self.states if s.fired_at is not None]

    def skipped_specs(self) -> list[int]:
        return [s.index for s in self.states if s.status == "skipped"]

    def open_until(self, now: float) -> float | None:
        """Monotonic time until which a fired fault is still open (math.inf: a known client
        has yet to meet an `until_met` fault); None when nothing is open."""
        ends = []
        for state in self.states:
            if state.status not in ("active", "overtime"):
                continue
            if self.until_met(state) and not self.healed and self.unmet(state):
                ends.append(math.inf)
            elif state.until is not None:
                ends.append(state.until)
        return max(ends) if ends else None

    def next_wake(self) -> float | None:
        return min((at for at, _ in self._timers), default=None)

    # ---- operations for the kinds' behaviours ---------------------------------------------

    def emit(self, decision: Decision) -> None:
        self._out.append(decision)

    def seconds(self, scenario_seconds: float) -> float:
        """Scenario seconds → real seconds (the one place the planner scales time)."""
        return self.scale.real(scenario_seconds)

    def timer(self, at: float, state: FaultState) -> None:
        self._timers.append((at, state.index))
        self.emit(Wake(at))

    def conns_for(self, state: FaultState) -> list[ConnInfo]:
        return [c for c in self.conns.values() if state.filter.matches_client(c.sid)]

    def consume(self, state: FaultState, now: float, client: str | None = None) -> None:
        """One application: count it, note whom it reached, end the window when it is used up."""
        if client is not None:
            state.met.add(client)
        if state.status == "overtime":
            if not self.unmet(state):
                self.close(state, now)
            return
        if state.remaining is not None:
            state.remaining -= 1
            if state.remaining <= 0:
                self.window_over(state, now)

    def under_test(self, client: str) -> str:
        """The client under test a clientId belongs to (itself when the harness did not say)."""
        return self.client_under_test.get(client, client)

    def unmet(self, state: FaultState) -> list[str]:
        """Clients under test the fault is for and has not reached, each named by its
        latest clientId."""
        met = {self.under_test(c) for c in state.met}
        out: dict[str, str] = {}
        for client in self.clients:
            if state.behaviour.aims_at(state, client) and self.under_test(client) not in met:
                out[self.under_test(client)] = client
        return list(out.values())

    def owes(self, state: FaultState, client: str | None) -> bool:
        """Has this client's client under test yet to meet the fault?"""
        if client is None or client not in self.clients:
            return False
        return self.under_test(client) in {self.under_test(c) for c in self.unmet(state)}

    def until_met(self, state: FaultState) -> bool:
        flag = state.spec.until_met
        return state.behaviour.until_met_default if flag is None else flag

    def window_over(self, state: FaultState, now: float) -> None:
        """Count used up or duration over: done, unless a client still has to meet it."""
        if self.until_met(state) and not self.healed and self.unmet(state):
            state.status = "overtime"
            log.info("fault.overtime", index=state.index, kind=state.kind, waiting_for=self.unmet(state))
            return
        self.close(state, now)

    def close(self, state: FaultState, now: float, healed: bool = False) -> None:
        """End an open fault: the kind's own end (unsilence, toxic off), then `t_end`."""
        state.status = "done"
        state.behaviour.on_end(self, state, now, healed)
        if state.window_entry is not None:
            entry = self.applied[state.window_entry]
            if entry.t_end is None:
                self.applied[state.window_entry] = entry.ended(now)
                self.emit(WindowEnd(state.index, now))

    def doom(self, state: FaultState, conn: ConnInfo, at_frame: bool) -> None:
        """A connection action (close/abort) for `conn`: at its next frame (`at_frame`), or
        now unless a frame gets there first."""
        self.doomed[conn.conn_id] = (state, at_frame)
        if not at_frame:
            self.emit(Wake(-math.inf))

    def kill(self, state: FaultState, conn: ConnInfo) -> None:
        """The socket is gone by a fault: nothing more is sent to it."""
        self.conns.pop(conn.conn_id, None)
        self.held.pop(conn.conn_id, None)
        self.dead[conn.conn_id] = state.kind

    def hold(self, state: FaultState, conn: ConnInfo, frame: OutFrame, after: int, max_hold: float | None,
             now: float) -> FrameFate:
        deadline = None
        if max_hold is not None:
            deadline = now + self.seconds(max_hold)
            self.timer(deadline, state)
        self.held.setdefault(conn.conn_id, []).append(
            Held(state, conn, frame, after, deadline, self._current_index)
        )
        return FrameFate(False, state.kind)  # marked delivered when released

    def release(self, held: Held, now: float, reason: str) -> None:
        sends = original(held.frame)
        self.emit(SendFrames(held.conn.conn_id, sends))
        if held.message_index is not None and held.frame.prompt_id is not None:
            self.emit(Mark(held.frame.prompt_id, held.message_index, delivered=True))
        self.record(now, held.state, conn=held.conn, frame=held.frame,
                    detail=held.state.behaviour.release_detail(held, reason), sent=sends_payload(sends))

    def release_due(self, state: FaultState, now: float) -> None:
        """`max_hold`: release this fault's held frames whose deadline has passed."""
        for conn_id, held_list in list(self.held.items()):
            for held in list(held_list):
                if held.state is state and held.deadline is not None and held.deadline <= now:
                    held_list.remove(held)
                    self.release(held, now, reason="max_hold")

    def record(
        self,
        t: float,
        state: FaultState,
        *,
        conn: ConnInfo | None = None,
        frame: OutFrame | None = None,
        detail: dict[str, Any] | None = None,
        sent: bytes | str | None = None,
        client: str | None = None,
        target: dict[str, Any] | None = None,
        target_kind: TargetKind | None = None,
        reached: bool = True,
        window: bool = False,
    ) -> None:
        """Append to the log; `window` marks the entry that `close()` gives its `t_end`."""
        where: dict[str, Any] = dict(target or {})
        if conn is not None:
            where["client"] = conn.sid
            where["conn_id"] = conn.conn_id
            client = client or conn.sid
        if frame is not None:
            where["task"] = frame.task_id
            where["prompt_id"] = frame.prompt_id
            where["message"] = frame.message_type
        applied = AppliedFault(
            t, state.kind, state.index, where, dict(detail or {}), clip(sent),
            target_client_id=client, target_kind=target_kind or state.behaviour.target_kind,
            reached=reached, window=window,
        )
        if window:
            state.window_entry = len(self.applied)
        self.applied.append(applied)
        self._new.append(applied)

    def request_client(self, req: RequestInfo) -> str | None:
        """Whose request this is: its own `clientId`/`client_id`; the client of the prompt in
        `/history/<id>`; the client learnt earlier on the same TCP connection; the only
        client there is. None when none of these tells."""
        client = req.client_id
        if client is not None:
            if req.peer is not None:
                self.peers[req.peer] = client
            return client
        if req.path.startswith("/history/"):
            client = self.prompt_clients.get(req.path.removeprefix("/history/"))
        if client is None and req.peer is not None:
            client = self.peers.get(req.peer)
        if client is None and len({self.under_test(c) for c in self.clients}) == 1:
            client = next(reversed(self.clients))  # the only client under test, by its latest clientId
        return client

    # ---- firing ----------------------------------------------------------------------------

    def fire(self, state: FaultState, now: float, origin: Origin) -> None:
        """The trigger fired: probability draw, then the kind's behaviour takes over."""
        spec = state.spec
        if spec.probability < 1.0 and state.rng.random() >= spec.probability:
            state.status = "skipped"
            log.info("fault.skipped", index=state.index, kind=spec.kind, probability=spec.probability)
            return
        state.status = "active"
        state.fired_at = now
        state.remaining = spec.effective_count
        state.filter = resolve_filter(spec.target, spec.when, origin.client, origin.task)
        if spec.duration is not None:
            state.until = now + self.seconds(spec.duration)
            self.timer(state.until, state)
        log.info("fault.fired", index=state.index, kind=spec.kind, client=origin.client, task=origin.task)
        state.behaviour.on_fire(self, state, origin, now)

    def _anchor(self, state: FaultState, event: ServerEvent, now: float) -> None:
        """Tie an event-triggered fault to the frame stream, so it takes effect at the same
        protocol moment however far the transport lags behind the executor: before the
        node's `executing` (node_start), before `execution_start` (task_start), right after
        the completion message went out (task_complete). With no socket for the client, fire now."""
        if event.client_id is None or not any(c.sid == event.client_id for c in self.conns.values()):
            self.fire(state, now, Origin(event.client_id, event.task_id))
            return
        armed = event.kind == "prompt_completed" and event.prompt_id in self._completion_sent
        self._anchors.append(Anchor(state, event, armed=armed))

    def _resolve_anchors(self, event: ServerEvent, now: float) -> None:
        """On each `message` event (a frame about to go out): fire anchored faults due now."""
        for anchor in list(self._anchors):
            if anchor.state.status != "pending":
                self._anchors.remove(anchor)
            elif anchor.armed or anchor.is_moment(event):
                self._anchors.remove(anchor)
                self.fire(anchor.state, now, Origin(anchor.event.client_id, anchor.event.task_id))
            elif anchor.is_after(event):
                anchor.armed = True

    # ---- the frame path ----------------------------------------------------------------------

    def _frame_fate(self, conn: ConnInfo, frame: OutFrame, now: float) -> FrameFate:
        if conn.conn_id in self.dead:
            return FrameFate(False, self.dead[conn.conn_id])
        doomed = self.doomed.pop(conn.conn_id, None)
        if doomed is not None:
            state = doomed[0]
            return state.behaviour.act(self, state, conn, frame, now)
        if self.restarting is not None:
            self.record(now, self.restarting, conn=conn, frame=frame, detail={"lost": True}, target_kind="server")
            return FrameFate(False, self.restarting.kind)
        for state in self.states:
            if state.status == "active":
                fate = state.behaviour.intercept(self, state, conn, frame, now)
                if fate is not None:
                    return fate
        fate = self._join_held(conn, frame, now) or self._apply_frame_faults(conn, frame, now)
        self._count_held(conn, frame, now)
        return fate

    def _join_held(self, conn: ConnInfo, frame: OutFrame, now: float) -> FrameFate | None:
        for held in self.held.get(conn.conn_id, []):
            fate = held.state.behaviour.join(self, held, frame, now)
            if fate is not None:
                self.held[conn.conn_id].remove(held)
                return fate
        return None

    def _apply_frame_faults(self, conn: ConnInfo, frame: OutFrame, now: float) -> FrameFate:
        for state in self.states:
            if not state.active(now) or not state.filter.matches(frame, conn.sid):
                continue
            fate = state.behaviour.on_frame(self, state, conn, frame, now)
            if fate is not None:
                return fate
        self.emit(SendFrames(conn.conn_id, original(frame)))
        return DELIVERED

    def _count_held(self, conn: ConnInfo, frame: OutFrame, now: float) -> None:
        held_list = self.held.get(conn.conn_id)
        if not held_list:
            return
        for held in list(held_list):
            if held.frame is not frame and held.state.behaviour.count_frame(held, frame):
                held_list.remove(held)
                self.release(held, now, reason="after")

    # ---- plumbing ----------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        """Windows whose duration is over end at the first input after it."""
        for state in self.states:
            if state.status == "active" and state.until is not None and now >= state.until:
                self.window_over(state, now)

    def _act_on_doomed(self, now: float) -> None:
        for conn_id, (state, at_frame) in list(self.doomed.items()):
            conn = self.conns.get(conn_id)
            if at_frame or conn is None:
                continue
            del self.doomed[conn_id]
            state.behaviour.act(self, state, conn, None, now)

    def _note_client(self, client: str | None) -> None:
        if client:
            self.clients.setdefault(client, None)

    def _take(self) -> list[Decision]:
        out, self._out = self._out, []
        return out
