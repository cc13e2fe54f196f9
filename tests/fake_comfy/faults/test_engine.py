"""FaultEngine against an in-memory connection fed a recorded real-ComfyUI frame stream."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from comfy_chaos.fake_comfy.events import ServerEvent
from comfy_chaos.fake_comfy.faults import FaultEngine, FaultSchedule
from comfy_chaos.fake_comfy.testing import MemConn, MemServer, binary_frame, recorded_frames, wait_until

TRACE = Path(__file__).resolve().parents[2] / "data" / "comfyui-traces" / "02-success.jsonl"
FRAMES = recorded_frames(TRACE)  # 22 frames: status x3, execution_start ... execution_success, status, executing null


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(specs: list[dict], seed: int = 1, clock=None) -> tuple[FaultEngine, MemServer]:
    engine = FaultEngine(FaultSchedule.of(specs), seed=seed, clock=clock or FakeClock(), time_scale=1.0)
    server = MemServer()
    engine.bind(server)
    return engine, server


async def send(engine: FaultEngine, conn: MemConn, frame) -> None:
    """What the transport does per frame: a `message` event, then the fault hook."""
    engine.on_event(ServerEvent("message", 0.0, prompt_id=frame.prompt_id, task_id=frame.task_id,
                                client_id=conn.sid, node=frame.node, message_type=frame.message_type,
                                detail={"conn_id": conn.conn_id, "message_index": None}))
    await engine.on_ws_frame(conn, frame)


async def play(engine: FaultEngine, conn: MemConn, frames=FRAMES) -> None:
    assert engine.on_ws_connect(conn)
    for frame in frames:
        await send(engine, conn, frame)


def types_on_wire(conn: MemConn) -> list[str]:
    out = []
    for item in conn.wire:
        if item[0] == "text":
            try:
                out.append(json.loads(item[1])["type"])
            except json.JSONDecodeError:
                out.append("<bad>")
        else:
            out.append(item[0])
    return out


async def test_empty_schedule_passes_every_frame_untouched() -> None:
    engine, server = make([])
    conn = MemConn()
    await play(engine, conn)
    assert conn.texts() == [f.text for f in FRAMES]
    assert engine.applied() == [] and server.ledger.faults == []


async def test_drop_completion_of_a_task_by_message_trigger() -> None:
    engine, server = make([{"kind": "drop", "when": {"on": "message", "type": ["execution_success", "executing:null"], "task": "t0"}, "count": 2}])
    conn = MemConn()
    await play(engine, conn)
    expected = [f.text for f in FRAMES if f.message_type != "execution_success" and not (f.message_type == "executing" and f.node is None)]
    assert conn.texts() == expected
    assert [(a.kind, a.target["message"], a.sent) for a in engine.applied()] == [
        ("drop", "execution_success", None), ("drop", "executing", None)]
    assert [f.kind for f in server.ledger.faults] == ["drop", "drop"]
    assert engine.fired_specs() == [0]


async def test_nth_frame_trigger_truncates_exactly_that_frame() -> None:
    engine, _ = make([{"kind": "truncate", "when": {"on": "frame", "client": "c0", "nth": 4}, "params": {"at": 20}}])
    conn = MemConn()
    await play(engine, conn)
    texts = conn.texts()
    assert texts[3] == FRAMES[3].text[:20]
    assert texts[:3] + texts[4:] == [f.text for i, f in enumerate(FRAMES) if i != 3]
    (applied,) = engine.applied()
    assert applied.sent == FRAMES[3].text[:20] and applied.target["message"] == FRAMES[3].message_type


async def test_trigger_for_another_client_never_fires() -> None:
    engine, _ = make([{"kind": "drop", "when": {"on": "frame", "client": "other"}}])
    await play(engine, MemConn())
    assert engine.fired_specs() == [] and engine.applied() == []


async def test_reorder_sends_executed_after_execution_success() -> None:
    engine, _ = make([{"kind": "reorder", "when": {"on": "message", "type": "executed", "nth": 2}, "params": {"after": 2}}])
    conn = MemConn()
    await play(engine, conn)
    wire = types_on_wire(conn)
    assert wire[-6:] == ["executing", "progress_state", "execution_success", "executed", "status", "executing"]
    assert sorted(conn.texts()) == sorted(f.text for f in FRAMES)
    (applied,) = engine.applied()
    assert applied.detail["after"] == ["progress_state", "execution_success"]


async def test_reorder_after_two_frames() -> None:
    engine, _ = make([{"kind": "reorder", "when": {"on": "message", "type": "execution_success"}, "params": {"after": 2}}])
    conn = MemConn()
    await play(engine, conn)
    assert types_on_wire(conn)[-3:] == ["status", "executing", "execution_success"]


async def test_held_frame_is_released_by_heal_all() -> None:
    engine, _ = make([{"kind": "reorder", "when": {"on": "message", "type": "executing:null"}, "params": {"after": 5}}])
    conn = MemConn()
    await play(engine, conn)
    assert conn.texts() == [f.text for f in FRAMES[:-1]]
    await engine.heal_all()
    assert conn.texts() == [f.text for f in FRAMES]
    assert engine.applied()[0].detail["released"] == "heal"


async def test_concat_joins_two_messages_in_one_frame() -> None:
    engine, _ = make([{"kind": "concat", "when": {"on": "message", "type": "execution_success"}}])
    conn = MemConn()
    await play(engine, conn)
    texts = conn.texts()
    assert len(texts) == len(FRAMES) - 1
    assert texts[-2] == FRAMES[-3].text + FRAMES[-2].text  # execution_success + status
    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        json.loads(texts[-2])


async def test_duplicate_and_strip_prompt_id() -> None:
    engine, _ = make([
        {"kind": "duplicate", "when": {"on": "message", "type": "execution_success"}},
        {"kind": "strip_prompt_id", "when": {"on": "message", "type": "executed"}, "count": None},
    ])
    conn = MemConn()
    await play(engine, conn)
    texts = conn.texts()
    success = next(f.text for f in FRAMES if f.message_type == "execution_success")
    assert texts.count(success) == 2
    executed = [json.loads(t) for t in texts if json.loads(t)["type"] == "executed"]
    assert len(executed) == 2 and all("prompt_id" not in m["data"] for m in executed)


async def test_close_on_execution_start_loses_that_frame() -> None:
    engine, server = make([{"kind": "close", "when": {"on": "message", "type": "execution_start"}, "params": {"code": 4001}}])
    conn = MemConn()
    await play(engine, conn, FRAMES[:5])
    await wait_until(lambda: ("close", 4001) in conn.wire)  # closed aside, not in the send loop
    # Nothing more goes to a socket the fault closed.
    assert conn.wire == [("text", FRAMES[0].text), ("text", FRAMES[1].text), ("text", FRAMES[2].text), ("close", 4001)]
    (applied,) = engine.applied()
    assert applied.kind == "close" and applied.detail == {"frame_lost": True, "code": 4001}


async def test_abort_on_node_start_fires_at_that_nodes_executing_frame() -> None:
    """The executor may run ahead of the transport: the fault waits for the node's own frame."""
    engine, _ = make([{"kind": "abort", "when": {"on": "node_start", "task": "t0", "node_index": 1}}])
    conn = MemConn()
    assert engine.on_ws_connect(conn)
    for frame in FRAMES[:5]:
        await send(engine, conn, frame)
    pid = FRAMES[3].prompt_id
    engine.on_event(ServerEvent("node_started", 1.0, prompt_id=pid, task_id="t0", client_id="c0", node="1", node_index=0))
    engine.on_event(ServerEvent("node_started", 1.0, prompt_id=pid, task_id="t0", client_id="c0", node="4", node_index=1))
    for frame in FRAMES[5:12]:  # executing 1, progress_state x2, executing 4, ...
        await send(engine, conn, frame)
    executing_4 = next(i for i, f in enumerate(FRAMES) if f.message_type == "executing" and f.node == "4")
    assert conn.texts() == [f.text for f in FRAMES[:executing_4]]
    assert conn.wire[executing_4] == ("abort",)
    (applied,) = engine.applied()
    assert applied.detail == {"frame_lost": True} and applied.target["message"] == "executing"
    await engine.stop()


async def test_silent_window_drops_and_unsilences() -> None:
    clock = FakeClock()
    engine, _ = make([{"kind": "silent", "when": {"on": "message", "type": "execution_start"}, "duration": 5}], clock=clock)
    conn = MemConn()
    assert engine.on_ws_connect(conn)
    for frame in FRAMES[:6]:
        await engine.on_ws_frame(conn, frame)
    assert conn.texts() == [f.text for f in FRAMES[:3]]
    assert conn.silent == [True]
    clock.now += 5
    await engine.on_ws_frame(conn, FRAMES[6])
    assert conn.texts()[-1] == FRAMES[6].text
    await engine.heal_all()
    assert conn.silent == [True, False]
    kinds = [(a.kind, a.target.get("message")) for a in engine.applied()]
    assert kinds[0] == ("silent", None)
    assert kinds[1:] == [("silent", f.message_type) for f in FRAMES[3:6]]


async def test_refuse_counts_upgrades_then_allows() -> None:
    engine, server = make([{"kind": "refuse", "when": {"on": "reconnect", "client": "c0"}, "count": 2}])
    assert engine.on_ws_connect(MemConn(conn_id=1))
    assert engine.on_ws_connect(MemConn(conn_id=2, reconnect_index=1))  # the trigger: reconnect #1 itself is accepted
    assert not engine.on_ws_connect(MemConn(conn_id=3, reconnect_index=2))
    assert not engine.on_ws_connect(MemConn(conn_id=4, reconnect_index=2))
    assert engine.on_ws_connect(MemConn(conn_id=5, reconnect_index=2))
    assert [a.kind for a in engine.applied()] == ["refuse", "refuse", "refuse"]


async def test_binary_frames_skip_text_only_kinds_but_can_be_dropped() -> None:
    engine, _ = make([
        {"kind": "truncate", "when": {"at": 0}, "count": None},
        {"kind": "drop", "when": {"on": "message", "type": "binary:1"}},
    ])
    await engine.start()
    await wait_until(lambda: engine.fired_specs() == [0])
    conn = MemConn()
    assert engine.on_ws_connect(conn)
    await engine.on_ws_frame(conn, binary_frame())
    await engine.on_ws_frame(conn, binary_frame())
    assert conn.wire == [("bytes", binary_frame().data)]
    await engine.stop()


async def test_noise_binary_and_heartbeat_injected_next_to_frames() -> None:
    engine, _ = make([
        {"kind": "heartbeat", "when": {"on": "frame", "nth": 1}, "params": {"text": "heartbeat"}},
        {"kind": "noise_binary", "when": {"on": "frame", "nth": 2}, "params": {"event": 42, "size": 3}},
    ])
    conn = MemConn()
    await play(engine, conn, FRAMES[:2])
    assert conn.wire[0] == ("text", "heartbeat") and conn.wire[1] == ("text", FRAMES[0].text)
    assert conn.wire[2][0] == "bytes" and conn.wire[2][1][:4] == (42).to_bytes(4, "big") and len(conn.wire[2][1]) == 7


async def test_probability_zero_skips_and_one_fires() -> None:
    engine, _ = make([
        {"kind": "drop", "when": {"on": "message", "type": "execution_start"}, "probability": 0.0},
        {"kind": "bom", "when": {"on": "message", "type": "execution_start"}, "probability": 1.0},
    ])
    conn = MemConn()
    await play(engine, conn)
    assert engine.fired_specs() == [1] and engine.skipped_specs() == [0]
    assert "\ufeff" + FRAMES[3].text in conn.texts()


async def test_restart_on_task_complete_after_the_completion_message() -> None:
    engine, server = make([{"kind": "restart", "when": {"on": "task_complete", "task": "t0"}, "params": {"keep_history": True}}])
    conn = MemConn()
    assert engine.on_ws_connect(conn)
    engine.on_event(ServerEvent("prompt_completed", 1.0, prompt_id=FRAMES[3].prompt_id, task_id="t0", client_id="c0"))
    for frame in FRAMES[-3:]:  # execution_success, status, executing null
        await send(engine, conn, frame)
    assert conn.texts() == [FRAMES[-3].text]  # the success went out; the rest died with the process
    async with asyncio.timeout(5):
        await server.restarted.wait()
    assert server.restarts == [True]
    assert [a.kind for a in engine.applied()] == ["restart", "restart", "restart"]
    await engine.stop()


async def test_toxic_gate_holds_frames_until_external_confirms() -> None:
    engine, _ = make([{"kind": "toxic", "when": {"on": "message", "type": "execution_start"},
                        "toxic": {"type": "timeout", "attributes": {"timeout": 0}}}])
    order: list[str] = []
    release = asyncio.Event()

    async def external(spec) -> None:
        order.append(f"external:{spec.toxic.type}")
        await release.wait()
        order.append("toxic in place")

    engine.external = external
    conn = MemConn()
    assert engine.on_ws_connect(conn)
    for frame in FRAMES[:3]:
        await engine.on_ws_frame(conn, frame)
    sending = asyncio.create_task(engine.on_ws_frame(conn, FRAMES[3]))
    await wait_until(lambda: bool(order))
    assert len(conn.wire) == 3  # execution_start waits for the toxic
    release.set()
    async with asyncio.timeout(5):
        await sending
    assert order == ["external:timeout", "toxic in place"] and conn.texts()[-1] == FRAMES[3].text
    assert engine.fired_specs() == [0]


async def test_toxic_external_timeout_is_bounded() -> None:
    engine, _ = make([{"kind": "toxic", "when": {"on": "frame"}, "toxic": {"type": "latency"}}])
    engine.external_timeout = 0.05
    never = asyncio.Event()

    async def external(spec) -> None:
        await never.wait()

    engine.external = external
    conn = MemConn()
    async with asyncio.timeout(5):
        await play(engine, conn, FRAMES[:2])
    assert conn.texts() == [FRAMES[0].text, FRAMES[1].text]


async def test_ledger_message_marked_with_fault() -> None:
    class Ledger:
        def __init__(self) -> None:
            self.faults, self.marks = [], []

        def record_fault(self, t, kind, target, detail=None, sent=None):
            self.faults.append((kind, detail, sent))

        def mark_message(self, prompt_id, index, **changes):
            self.marks.append((prompt_id, index, changes))

    engine, server = make([{"kind": "garble", "when": {"on": "message", "type": "execution_success"}}])
    server.ledger = Ledger()
    conn = MemConn()
    assert engine.on_ws_connect(conn)
    for i, frame in enumerate(FRAMES):
        engine.on_event(ServerEvent("message", 1.0, prompt_id=frame.prompt_id, message_type=frame.message_type,
                                    detail={"message_index": i}))
        await engine.on_ws_frame(conn, frame)
    success = next(i for i, f in enumerate(FRAMES) if f.message_type == "execution_success")
    assert server.ledger.marks == [(FRAMES[success].prompt_id, success, {"fault": "garble"})]
    ((kind, detail, sent),) = server.ledger.faults
    assert kind == "garble" and detail["spec_index"] == 0 and sent == conn.texts()[success]


@pytest.mark.parametrize("event_first", [True, False])
async def test_task_complete_fires_at_the_same_frame_whichever_comes_first(event_first: bool) -> None:
    """The executor's completion event and the transport's completion message race; the
    fault must hit the frame after the completion message either way."""
    engine, _ = make([{"kind": "drop", "when": {"on": "task_complete", "task": "t0"}, "target": {"client": "c0"}}])
    conn = MemConn()
    assert engine.on_ws_connect(conn)
    completed = ServerEvent("prompt_completed", 1.0, prompt_id=FRAMES[3].prompt_id, task_id="t0", client_id="c0")
    if event_first:
        engine.on_event(completed)
    await send(engine, conn, FRAMES[-3])  # execution_success
    if not event_first:
        engine.on_event(completed)
    for frame in FRAMES[-2:]:  # status, executing null
        await send(engine, conn, frame)
    assert conn.texts() == [FRAMES[-3].text, FRAMES[-1].text]
    assert [a.target["message"] for a in engine.applied()] == ["status"]


async def test_periodic_noise_to_every_targeted_connection() -> None:
    import time

    engine = FaultEngine(FaultSchedule.of([{"kind": "noise", "when": {"on": "connect", "client": "c0"}, "count": 3,
                                            "params": {"interval": 0.001}}]), seed=1, clock=time.monotonic)
    conn = MemConn()
    assert engine.on_ws_connect(conn)
    await wait_until(lambda: len(conn.wire) == 3)
    assert all(json.loads(text)["type"] == "crystools.monitor" for text in conn.texts())
    assert [a.detail for a in engine.applied()] == [{"periodic": True}] * 3
    await engine.stop()
    assert len(conn.wire) == 3


async def test_reorder_max_hold_releases_without_further_frames() -> None:
    import time

    engine = FaultEngine(FaultSchedule.of([{"kind": "reorder", "when": {"on": "message", "type": "executing:null"},
                                            "params": {"after": 5, "max_hold": 0.01}}]), seed=1, clock=time.monotonic)
    conn = MemConn()
    await play(engine, conn)
    await wait_until(lambda: len(conn.wire) == len(FRAMES))
    assert conn.texts() == [f.text for f in FRAMES]
    assert engine.applied()[0].detail["released"] == "max_hold"
    await engine.stop()
