"""Connections and fault coverage (docs/scoring.md "Fault coverage", metric `reconnects`).

Pure functions of the ledger's connection events, its HTTP log and the fault log, all in
seconds after the run's t0: the WebSocket spans of a run, whether a fault reached the
client under test, and how often the client reconnected after a drop.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from comfy_chaos.harness.record import AppliedFault, ConnectionEvent, PromptSnapshot
from comfy_chaos.harness.results import ConnSpan, FaultMark

BREAKING_KINDS = frozenset({"close", "abort", "refuse", "silent", "restart"})
"""WebSocket fault kinds that break the connection rather than one frame."""


def connection_spans(events: Sequence[ConnectionEvent], t0: float, t_end: float) -> list[ConnSpan]:
    """One span per WebSocket connection (and per refused attempt), sorted by client id."""
    spans: dict[Any, ConnSpan] = {}
    done: list[ConnSpan] = []
    end = round(t_end - t0, 6)
    for ev in sorted(events, key=lambda c: c.t):
        t = round(ev.t - t0, 6)
        key = ev.conn_id
        current = spans.get(key)
        if ev.event == "open":
            spans[key] = ConnSpan(sid=ev.sid, conn_id=key, start=t, end=end)
        elif ev.event == "refused":
            done.append(ConnSpan(sid=ev.sid, conn_id=key, start=t, end=t, state="refused", end_event="refused"))
        elif current is None:
            continue
        elif ev.event in ("replaced", "orphaned"):
            current.end, current.end_event = t, ev.event
            done.append(current)
            spans[key] = ConnSpan(sid=ev.sid, conn_id=key, start=t, end=end, state=ev.event)
        else:
            current.end, current.end_event = t, ev.event
            done.append(spans.pop(key))
    done.extend(spans.values())
    return sorted(done, key=lambda s: (s.sid, s.start))


def fault_reached(
    fault: AppliedFault, *, t: float, t_end: float | None, spans: list[ConnSpan], http_times: list[float], slack: float
) -> bool:
    """Did the fault (applied at `t`, until `t_end`) reach the client under test?"""
    stop = t if t_end is None else t_end
    if fault.target_kind == "http":
        return True  # every request the fake answers comes from a client under test
    if fault.target_kind == "ws" and fault.target_client_id is not None:
        return True  # a frame to its socket, or its connection
    ws_open = any(s.start <= stop and s.end >= t and s.state != "refused" for s in spans)
    if fault.target_kind == "ws":
        if fault.kind == "refuse":
            return ws_open or any(s.state == "refused" and t <= s.start <= stop for s in spans)
        return ws_open
    # toxic or server: the client had a connection open, or made a request, meanwhile
    return ws_open or any(t <= h <= stop + slack for h in http_times)


def count_reconnects(
    events: Sequence[ConnectionEvent],
    prompts: Sequence[PromptSnapshot],
    answered: Mapping[str, float],
    marks: list[FaultMark],
    *,
    t0: float,
    slack: float,
) -> int:
    """Connections opened to replace one that dropped.

    A connection *dropped* when it ended (close, abort) while its client id had work
    pending — a prompt of that client id accepted and not yet answered (`answered`: prompt
    id → time of the task's answer) — or when a fault that breaks connections hit it. A
    reconnect is the first open after a drop, of the same client id or of a client id never
    seen before (a client that takes a new id on reconnect). A client that opens one socket
    per task and closes it once the task is answered never drops one, so it never counts."""
    breaking = [m for m in marks if m.kind in BREAKING_KINDS or m.target_kind in ("toxic", "server")]

    def pending(sid: str, t: float) -> bool:
        return any(
            p.client_id == sid and p.accepted_at - t0 <= t and p.outcome != "cancelled"
            and answered.get(p.prompt_id, math.inf) > t
            for p in prompts
        )

    def broken(sid: str, t: float) -> bool:
        return any(
            m.target_client_id in (None, sid) and m.t - slack <= t <= (m.t if m.t_end is None else m.t_end) + slack
            for m in breaking
        )

    seen: set[str] = set()
    drops: list[str] = []
    count = 0
    for ev in sorted(events, key=lambda c: c.t):
        t = ev.t - t0
        if ev.event in ("close", "abort"):
            if pending(ev.sid, t) or broken(ev.sid, t):
                drops.append(ev.sid)
        elif ev.event == "open":
            match = ev.sid if ev.sid in drops else (drops[0] if drops and ev.sid not in seen else None)
            if match is not None:
                drops.remove(match)
                count += 1
            seen.add(ev.sid)
    return count
