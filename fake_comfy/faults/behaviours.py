"""What each fault kind does, as the planner's hook points see it (sans-IO).

A kind's registry entry (`faults.kinds.KINDS`) holds one `Behaviour`; the planner calls
its hooks and never looks at a kind's name. The hooks decide through the planner's
operations (`emit`, `record`, `consume`, `hold`, `doom`, `timer`) and return what happened
to the frame or request at hand. Adding a kind = a registry entry with one of these
behaviours (or a new subclass) + its tests.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from comfy_chaos.fake_comfy.faults.decisions import (
    Abort,
    Close,
    ConnInfo,
    ErrorReply,
    FrameFate,
    FrameResult,
    HttpPlan,
    RequestInfo,
    Restart,
    Send,
    SendFrames,
    Silence,
    Sleep,
    TargetKind,
    Text,
    ToxicOff,
    ToxicOn,
    original,
    sends_payload,
)
from comfy_chaos.fake_comfy.wire import OutFrame

if TYPE_CHECKING:
    from comfy_chaos.fake_comfy.events import ServerEvent
    from comfy_chaos.fake_comfy.faults.planner import FaultPlanner, FaultState, Held, Origin

Transform = Callable[[OutFrame, Any, random.Random], FrameResult]
Maker = Callable[[Any, random.Random], Send]


def normalize_path(path: str) -> str:
    """`/api/x` and `/x` are the same route in ComfyUI."""
    if path == "/api" or path.startswith("/api/"):
        path = path[4:] or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/")
    return path


class Behaviour:
    """The default: a kind that does nothing at any hook."""

    target_kind: TargetKind = "ws"
    #: HTTP windows stay open until every client has met them, unless the spec says otherwise.
    until_met_default: bool = False
    #: Why a client the fault was meant for did not get it (the `reached: false` entries).
    unmet_reason: str = ""

    def reports_unmet(self, state: FaultState) -> bool:
        return False

    def aims_at(self, state: FaultState, client: str) -> bool:
        """Is `client` one this fault is for (its filter's client)?"""
        return state.filter.matches_client(client)

    def on_fire(self, p: FaultPlanner, st: FaultState, origin: Origin, now: float) -> None:
        """The trigger fired and the probability draw passed."""

    def on_tick(self, p: FaultPlanner, st: FaultState, now: float) -> None:
        """A timer this fault set is due."""

    def on_end(self, p: FaultPlanner, st: FaultState, now: float, healed: bool) -> None:
        """The window closed (duration, count, or the heal when `healed`)."""

    def on_heal(self, p: FaultPlanner, st: FaultState, now: float) -> None:
        """The heal: drop any lingering effect."""

    def on_event(self, p: FaultPlanner, st: FaultState, event: ServerEvent, now: float) -> None:
        """A server event, for a fault that has fired."""

    def on_connect(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, now: float) -> bool:
        """A WebSocket upgrade; False refuses it."""
        return True

    def on_accepted(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, now: float) -> None:
        """A WebSocket was accepted while this fault is active."""

    def intercept(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, frame: OutFrame, now: float) -> FrameFate | None:
        """Connection-level: take any frame to the client before frame faults see it."""
        return None

    def on_frame(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, frame: OutFrame, now: float) -> FrameFate | None:
        """A frame this active fault's filter matches; None = not taken."""
        return None

    def act(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, frame: OutFrame | None, now: float) -> FrameFate:
        """A connection action due on `conn` (at `frame`, or with no frame)."""
        raise AssertionError(f"{st.kind} does not act on connections")

    def join(self, p: FaultPlanner, held: Held, frame: OutFrame, now: float) -> FrameFate | None:
        """A held frame of this kind meets the next frame of its connection."""
        return None

    def count_frame(self, held: Held, frame: OutFrame) -> bool:
        """Another frame went out after a held one; True releases it."""
        return False

    def release_detail(self, held: Held, reason: str) -> dict[str, Any]:
        return {"released": reason}

    def on_request(
        self, p: FaultPlanner, st: FaultState, req: RequestInfo, client: str | None, now: float
    ) -> HttpPlan | None:
        """An HTTP request; a plan takes it."""
        return None


# ---- frame and message kinds ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameTransform(Behaviour):
    """A pure transform of the targeted frame: the frames sent instead (none = dropped)."""

    transform: Transform
    binary_ok: bool = False

    def on_frame(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, frame: OutFrame, now: float) -> FrameFate | None:
        if frame.text is None and not self.binary_ok:
            return None
        p.consume(st, now, conn.sid)
        result = self.transform(frame, st.params, st.rng)
        p.emit(SendFrames(conn.conn_id, result.sends))
        p.record(now, st, conn=conn, frame=frame, detail=result.detail, sent=sends_payload(result.sends))
        return FrameFate(bool(result.sends), st.kind)


@dataclass(frozen=True, slots=True)
class Inject(FrameTransform):
    """An extra frame next to the targeted one, or every `interval` to every targeted socket."""

    maker: Maker | None = None

    def on_frame(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, frame: OutFrame, now: float) -> FrameFate | None:
        if st.params.interval:
            return None
        return FrameTransform.on_frame(self, p, st, conn, frame, now)

    def on_fire(self, p: FaultPlanner, st: FaultState, origin: Origin, now: float) -> None:
        if st.params.interval:
            p.timer(now, st)

    def on_tick(self, p: FaultPlanner, st: FaultState, now: float) -> None:
        if not st.params.interval or not st.active(now):
            return
        assert self.maker is not None
        extra = self.maker(st.params, st.rng)
        for conn in p.conns_for(st):
            p.emit(SendFrames(conn.conn_id, (extra,)))
            p.record(now, st, conn=conn, detail={"periodic": True}, sent=sends_payload((extra,)))
        p.consume(st, now)
        if st.active(now):
            p.timer(now + p.seconds(st.params.interval), st)


@dataclass(frozen=True, slots=True)
class Hold(Behaviour):
    """The frame is held back: sent after `after` more frames (reorder) or joined to the next
    text frame (concat); `max_hold` releases it anyway."""

    mode: Literal["reorder", "concat"]

    def on_frame(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, frame: OutFrame, now: float) -> FrameFate | None:
        if frame.text is None and self.mode == "concat":
            return None
        p.consume(st, now, conn.sid)
        after = st.params.after if self.mode == "reorder" else 1
        return p.hold(st, conn, frame, after, st.params.max_hold, now)

    def on_tick(self, p: FaultPlanner, st: FaultState, now: float) -> None:
        p.release_due(st, now)

    def join(self, p: FaultPlanner, held: Held, frame: OutFrame, now: float) -> FrameFate | None:
        if self.mode != "concat" or frame.text is None or held.frame.text is None:
            return None
        merged = (Text(held.frame.text + held.state.params.separator + frame.text),)
        p.emit(SendFrames(held.conn.conn_id, merged))
        p.record(now, held.state, conn=held.conn, frame=held.frame, detail={"with": frame.message_type},
                 sent=sends_payload(merged))
        return FrameFate(True, held.state.kind)

    def count_frame(self, held: Held, frame: OutFrame) -> bool:
        if self.mode != "reorder":
            return False
        held.after -= 1
        held.released_after.append(frame.message_type)
        return held.after <= 0

    def release_detail(self, held: Held, reason: str) -> dict[str, Any]:
        if self.mode == "concat":
            return {"with": None, "released": reason}
        return {"after": held.released_after, "released": reason}


@dataclass(frozen=True, slots=True)
class Delay(Behaviour):
    """The frame goes out `seconds` late; the stream waits behind it."""

    def on_frame(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, frame: OutFrame, now: float) -> FrameFate | None:
        p.consume(st, now, conn.sid)
        seconds = p.seconds(st.params.seconds)
        sends = original(frame)
        p.emit(Sleep(seconds))
        p.emit(SendFrames(conn.conn_id, sends))
        p.record(now + seconds, st, conn=conn, frame=frame, detail={"seconds": seconds}, sent=sends_payload(sends))
        return FrameFate(True, st.kind)


# ---- connection kinds ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionAction(Behaviour):
    """The server closes (`close`, with `code`) or drops (`abort`) the targeted sockets: the
    triggering frame's socket at that frame, a connecting socket at its first frame, every
    matching socket otherwise."""

    action: Literal["close", "abort"]
    unmet_reason: str = "no WebSocket of this client to end"

    def reports_unmet(self, state: FaultState) -> bool:
        return True

    def aims_at(self, state: FaultState, client: str) -> bool:
        origin = state.data.get("origin")  # fired by a frame or a connect: that socket only
        return client == origin if origin is not None else state.filter.matches_client(client)

    def on_fire(self, p: FaultPlanner, st: FaultState, origin: Origin, now: float) -> None:
        if origin.conn is not None:
            st.data["origin"] = origin.conn.sid
            p.doom(st, origin.conn, at_frame=True)
        else:
            for conn in p.conns_for(st):
                p.doom(st, conn, at_frame=False)
        st.status = "done"

    def act(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, frame: OutFrame | None, now: float) -> FrameFate:
        send_first = frame is not None and st.params.send_frame
        if send_first:
            assert frame is not None
            p.emit(SendFrames(conn.conn_id, original(frame)))
        detail: dict[str, Any] = {"frame_lost": frame is not None and not send_first}
        st.met.add(conn.sid)
        p.kill(st, conn)
        if self.action == "close":
            detail["code"] = st.params.code
            p.emit(Close(conn.conn_id, st.params.code))
        else:
            p.emit(Abort(conn.conn_id))
        p.record(now, st, conn=conn, frame=frame, detail=detail)
        return FrameFate(send_first, st.kind)


@dataclass(frozen=True, slots=True)
class SilentWindow(Behaviour):
    """Sockets stay open but nothing is sent and PINGs go unanswered; a client with no
    socket to silence is logged as not reached."""

    unmet_reason: str = "no WebSocket of this client to silence"

    def reports_unmet(self, state: FaultState) -> bool:
        return True

    def on_fire(self, p: FaultPlanner, st: FaultState, origin: Origin, now: float) -> None:
        conns = p.conns_for(st)
        for conn in conns:
            self._silence(p, st, conn)
        client = st.filter.client
        p.record(now, st, window=True, client=client if client and not set(client) & set("*?[") else None, detail={
            "window": st.until is not None, "client": client, "clients": sorted({c.sid for c in conns}),
        })

    def _silence(self, p: FaultPlanner, st: FaultState, conn: ConnInfo) -> None:
        st.data.setdefault("silenced", []).append(conn.conn_id)
        st.met.add(conn.sid)
        p.emit(Silence(conn.conn_id, True))

    def on_accepted(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, now: float) -> None:
        if st.active(now) and st.filter.matches_client(conn.sid):
            self._silence(p, st, conn)
            p.record(now, st, conn=conn, detail={"silenced": True})

    def intercept(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, frame: OutFrame, now: float) -> FrameFate | None:
        if not st.active(now) or not st.filter.matches_client(conn.sid):
            return None
        p.record(now, st, conn=conn, frame=frame, detail={"dropped": True})
        return FrameFate(False, st.kind)

    def on_end(self, p: FaultPlanner, st: FaultState, now: float, healed: bool) -> None:
        for conn_id in st.data.pop("silenced", []):
            if conn_id in p.conns:
                p.emit(Silence(conn_id, False))


@dataclass(frozen=True, slots=True)
class RefuseWindow(Behaviour):
    """WebSocket upgrades are refused (503) while active."""

    unmet_reason: str = "no WebSocket upgrade of this client while refusing"

    def reports_unmet(self, state: FaultState) -> bool:
        return True

    def on_fire(self, p: FaultPlanner, st: FaultState, origin: Origin, now: float) -> None:
        p.record(now, st, window=True, detail={"window_start": True})

    def on_connect(self, p: FaultPlanner, st: FaultState, conn: ConnInfo, now: float) -> bool:
        if not st.active(now) or not st.filter.matches_client(conn.sid):
            return True
        p.record(now, st, conn=conn)
        p.consume(st, now, conn.sid)
        return False


# ---- HTTP kinds ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpFault(Behaviour):
    """A fault on matching requests: `reply` instead of the handler, `delay` before it, or
    an `after` step on the handler's response. Its window lasts until every client has met
    it (`until_met`), bounded by the heal; a client that never met it is logged as such."""

    after: Literal["abort", "truncate", "error"] | None = None
    reply: bool = False
    delay: bool = False
    route: tuple[str, str] | None = None  # fixed (method, path); else the params' route/method
    target_kind: TargetKind = "http"
    until_met_default: bool = True
    unmet_reason: str = "no request of this client while the fault was open"

    def reports_unmet(self, state: FaultState) -> bool:
        return state.spec.until_met is not False

    def aims_at(self, state: FaultState, client: str) -> bool:
        return True  # a route fault takes every client's requests

    def matches(self, params: Any, req: RequestInfo) -> bool:
        if self.route is not None:
            return (req.method, req.path) == self.route
        if params.method is not None and params.method != req.method:
            return False
        if params.route is None:
            return req.path != "/ws"
        route = normalize_path(params.route)
        return req.path == route or req.path.startswith(route.rstrip("/") + "/")

    def on_request(
        self, p: FaultPlanner, st: FaultState, req: RequestInfo, client: str | None, now: float
    ) -> HttpPlan | None:
        if not self.matches(st.params, req):
            return None
        overtime = st.status == "overtime"
        if not (st.active(now) or (overtime and p.owes(st, client))):
            return None
        p.consume(st, now, client)
        params = st.params
        detail: dict[str, Any] = {"overtime": True} if overtime else {}
        error = ErrorReply(params.status, params.body) if hasattr(params, "status") else None
        if self.reply:
            assert error is not None
            return HttpPlan(st.index, st.kind, client, reply=error, detail={**detail, "status": params.status,
                                                                              "body": params.body})
        if self.delay:
            seconds = p.seconds(params.delay)
            return HttpPlan(st.index, st.kind, client, delay=seconds, detail={**detail, "delay": seconds})
        if self.after == "error":
            assert error is not None
            return HttpPlan(st.index, st.kind, client, after=error, detail={**detail, "status": params.status})
        return HttpPlan(st.index, st.kind, client, after=self.after,
                        truncate_at=getattr(params, "at", None), detail=detail)


@dataclass(frozen=True, slots=True)
class HistoryLag(Behaviour):
    """A prompt that completes while active is hidden from /history for `delay` seconds, and
    from the Jobs API too (it reads the same history: the job is neither queued nor finished)."""

    target_kind: TargetKind = "http"

    def on_event(self, p: FaultPlanner, st: FaultState, event: ServerEvent, now: float) -> None:
        if event.kind != "prompt_completed" or event.prompt_id is None or not st.active(now):
            return
        if st.filter.task is not None and st.filter.task != event.task_id:
            return
        delay = p.seconds(st.params.delay)
        st.data.setdefault("lagged", {})[event.prompt_id] = event.t + delay
        client = p.prompt_clients.get(event.prompt_id, event.client_id)
        p.record(now, st, client=client, detail={"prompt_id": event.prompt_id, "task": event.task_id,
                                                 "until": event.t + delay, "delay": delay})
        p.consume(st, now, client)

    def on_request(
        self, p: FaultPlanner, st: FaultState, req: RequestInfo, client: str | None, now: float
    ) -> HttpPlan | None:
        lagged: dict[str, float] = st.data.get("lagged", {})
        route = next((r for r in ("/history", "/jobs") if req.path == r or req.path.startswith(r + "/")), None)
        if req.method != "GET" or not lagged or route is None:
            return None
        for prompt_id, until in list(lagged.items()):
            if until <= now:
                del lagged[prompt_id]
        hidden = tuple(lagged)
        if req.path.startswith(route + "/"):  # one prompt: /history/<id>, /jobs/<id>
            hidden = tuple(pid for pid in hidden if pid == req.path.removeprefix(route + "/"))
        if not hidden:
            return None
        return HttpPlan(st.index, st.kind, client, after="hide", hidden=hidden)

    def on_heal(self, p: FaultPlanner, st: FaultState, now: float) -> None:
        st.data.pop("lagged", None)


# ---- server and network kinds ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestartServer(Behaviour):
    """A simulated process restart; frames sent meanwhile are lost."""

    target_kind: TargetKind = "server"

    def on_fire(self, p: FaultPlanner, st: FaultState, origin: Origin, now: float) -> None:
        keep = st.params.keep_history
        p.restarting = st
        p.conns.clear()
        p.held.clear()
        p.record(now, st, detail={"keep_history": keep})
        p.emit(Restart(st.index, keep))


@dataclass(frozen=True, slots=True)
class Toxic(Behaviour):
    """A Toxiproxy toxic, put in place by the harness (`ToxicOn`); removed when its duration
    ends (`ToxicOff`) or by the harness's heal."""

    target_kind: TargetKind = "toxic"

    def on_fire(self, p: FaultPlanner, st: FaultState, origin: Origin, now: float) -> None:
        p.emit(ToxicOn(st.index, st.spec))
        toxic = st.spec.toxic
        p.record(now, st, detail=toxic.model_dump() if toxic else {}, window=True)
        if st.spec.duration is None:
            st.status = "done"

    def on_end(self, p: FaultPlanner, st: FaultState, now: float, healed: bool) -> None:
        if not healed:
            p.emit(ToxicOff(st.index, st.spec))
