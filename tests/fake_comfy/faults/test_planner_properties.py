"""Property tests of the sans-IO fault planner: fed frames, connects, events and requests
with a hand-driven clock, no sockets, no event loop."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_chaos.fake_comfy.events import ServerEvent
from comfy_chaos.fake_comfy.faults import FaultSchedule
from comfy_chaos.fake_comfy.faults.decisions import Binary, ConnInfo, RawText, RequestInfo, SendFrames, Text
from comfy_chaos.fake_comfy.faults.planner import FaultPlanner
from comfy_chaos.fake_comfy.faults.triggers import type_matches
from comfy_chaos.fake_comfy.testing import recorded_frames

TRACE = Path(__file__).resolve().parents[2] / "data" / "comfyui-traces" / "02-success.jsonl"
FRAMES = recorded_frames(TRACE)
TYPES = sorted({f.message_type for f in FRAMES}) + ["executing:null", "final"]
CONN = ConnInfo(1, "c0")

FRAME_KINDS = ["bom", "junk_prefix", "python_repr", "truncate", "garble", "invalid_utf8", "oversize",
               "drop", "duplicate", "strip_prompt_id", "heartbeat", "noise", "noise_binary",
               "reorder", "concat", "delay"]


@st.composite
def frame_fault(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(FRAME_KINDS))
    trigger = draw(st.one_of(
        st.builds(lambda t, n: {"on": "message", "type": t, "nth": n}, st.sampled_from(TYPES), st.integers(1, 3)),
        st.builds(lambda n: {"on": "frame", "nth": n}, st.integers(1, len(FRAMES))),
    ))
    spec: dict[str, Any] = {"kind": kind, "when": trigger,
                            "probability": draw(st.sampled_from([0.0, 0.5, 1.0])),
                            "count": draw(st.sampled_from([1, 2, None]))}
    if kind == "oversize":
        spec["params"] = {"size": 2048}
    return spec


def message(frame: Any, index: int) -> ServerEvent:
    return ServerEvent("message", 0.0, prompt_id=frame.prompt_id, task_id=frame.task_id, client_id="c0",
                       node=frame.node, message_type=frame.message_type, detail={"message_index": index})


def wire(sends: Any) -> list[Any]:
    out: list[Any] = []
    for s in sends:
        out.append(("text", s.text) if isinstance(s, Text) else ("bytes", s.data) if isinstance(s, Binary)
                   else ("raw", s.payload))
    return out


def play(specs: list[dict[str, Any]], seed: int, heal: bool = True) -> tuple[list[Any], list[Any], list[Any]]:
    """Feed the recorded stream; returns (what reached the wire, fates, the fault log)."""
    planner = FaultPlanner(FaultSchedule.of(specs), seed=seed, time_scale=1.0)
    now = 0.0
    sent: list[Any] = []
    fates = []
    planner.start(now)
    accepted, _ = planner.connect(CONN, now)
    assert accepted
    for index, frame in enumerate(FRAMES):
        planner.event(message(frame, index), now)
        plan = planner.frame(CONN, frame, now)
        fates.append(plan.fate)
        for action in plan.actions:
            if isinstance(action, SendFrames):
                sent.extend(wire(action.sends))
        now += 0.01
    if heal:
        for action in planner.heal(now):
            if isinstance(action, SendFrames):
                sent.extend(wire(action.sends))
    return sent, fates, [a.to_dict() for a in planner.applied]


@settings(max_examples=60, deadline=None)
@given(st.lists(frame_fault(), max_size=4), st.integers(0, 2**32))
def test_same_seed_same_decisions(specs: list[dict[str, Any]], seed: int) -> None:
    assert play(specs, seed) == play(specs, seed), f"seed {seed}"


@settings(max_examples=60, deadline=None)
@given(st.lists(frame_fault(), max_size=4), st.integers(0, 2**32))
def test_every_frame_entry_names_the_socket_it_reached(specs: list[dict[str, Any]], seed: int) -> None:
    _, fates, log = play(specs, seed)
    for entry in log:
        assert entry["target_kind"] == "ws" and entry["reached"], entry
        assert entry["target_client_id"] == "c0" and entry["target"]["conn_id"] == 1, entry
    assert {e["spec_index"] for e in log} <= set(range(len(specs)))
    faulted = {specs[e["spec_index"]]["kind"] for e in log}
    assert {f.fault for f in fates if f.fault is not None} <= faulted


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(TYPES), st.integers(1, 4), st.integers(0, 2**32))
def test_reordered_frames_all_go_out_by_the_heal(type_: str, after: int, seed: int) -> None:
    spec = {"kind": "reorder", "when": {"on": "message", "type": type_}, "count": None, "params": {"after": after}}
    sent, _, log = play([spec], seed)
    assert sorted(text for _, text in sent) == sorted(f.text for f in FRAMES)
    assert log and all(e["detail"]["released"] in ("after", "heal") for e in log)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(TYPES), st.integers(0, 2**32))
def test_concat_keeps_the_stream_in_order(type_: str, seed: int) -> None:
    spec = {"kind": "concat", "when": {"on": "message", "type": type_}, "count": None}
    sent, _, log = play([spec], seed)
    assert "".join(text for _, text in sent) == "".join(f.text for f in FRAMES)
    assert len(sent) == len(FRAMES) - sum(e["detail"]["with"] is not None for e in log)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(TYPES), st.integers(0, 2**32))
def test_drop_removes_exactly_the_targeted_frames(type_: str, seed: int) -> None:
    spec = {"kind": "drop", "when": {"on": "message", "type": type_}, "count": None}
    sent, fates, log = play([spec], seed)
    lost = [f for f, fate in zip(FRAMES, fates, strict=True) if not fate.delivered]
    assert [("text", f.text) for f, fate in zip(FRAMES, fates, strict=True) if fate.delivered] == sent
    assert lost and len(log) == len(lost) and all(fate.fault == "drop" for fate in fates if not fate.delivered)
    assert all(type_matches((type_,), f) for f in lost)


def test_final_selector_hits_only_the_final_frames() -> None:
    spec = {"kind": "bom", "when": {"on": "message", "type": "final"}, "count": None}
    _, fates, log = play([spec], 1)
    hit = [FRAMES[i] for i, fate in enumerate(fates) if fate.fault == "bom"]
    assert [f.message_type for f in hit] == ["execution_success", "executing"]
    assert json.loads(hit[1].text)["data"]["node"] is None and len(log) == 2


# ---- HTTP windows that last until every client has met them ---------------------------------


def request(client: str | None, path: str = "/history") -> RequestInfo:
    return RequestInfo("GET", path, path, client_id=client)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.lists(st.integers(0, 3), max_size=12))
def test_until_met_each_client_meets_the_fault_once(clients: int, order: list[int]) -> None:
    names = [f"c{i}" for i in range(clients)]
    planner = FaultPlanner(FaultSchedule.of([{"kind": "http_error", "params": {"route": "/history"}}]), seed=1)
    for name in names:
        planner.connect(ConnInfo(len(planner.conns) + 1, name), 0.0)
    planner.start(0.0)
    planner.tick(0.0)
    met: list[str] = []
    for i in order:
        name = names[i % clients]
        if planner.request(request(name), 1.0) is not None:
            met.append(name)
    assert len(met) == len(set(met)), f"a client met the one-shot fault twice: {met}"
    assert set(met) == {names[i % clients] for i in order}
    assert (planner.open_until(2.0) is None) == (set(met) == set(names))
    planner.finish(2.0)
    unreached = [a.target_client_id for a in planner.applied if not a.reached]
    assert sorted(unreached) == sorted(set(names) - set(met))


def test_until_met_false_keeps_the_old_one_shot() -> None:
    spec = {"kind": "http_error", "params": {"route": "/history"}, "until_met": False}
    planner = FaultPlanner(FaultSchedule.of([spec]), seed=1)
    planner.connect(ConnInfo(1, "a"), 0.0)
    planner.connect(ConnInfo(2, "b"), 0.0)
    planner.start(0.0)
    planner.tick(0.0)
    assert planner.request(request("a"), 1.0) is not None
    assert planner.request(request("b"), 1.0) is None
    planner.finish(2.0)
    assert not [a for a in planner.applied if not a.reached]  # b is not owed the fault: no reached: false


def test_request_identity_from_prompt_and_connection() -> None:
    planner = FaultPlanner(FaultSchedule.of([{"kind": "http_slow", "duration": 10}]), seed=1)
    planner.event(ServerEvent("prompt_accepted", 0.0, prompt_id="p1", client_id="a"), 0.0)
    planner.event(ServerEvent("prompt_accepted", 0.0, prompt_id="p2", client_id="b"), 0.0)
    assert planner.request_client(request(None, "/history/p2")) == "b"
    assert planner.request_client(RequestInfo("POST", "/prompt", "/prompt", client_id="a", peer=7)) == "a"
    assert planner.request_client(RequestInfo("GET", "/history", "/history", peer=7)) == "a"
    assert planner.request_client(RequestInfo("GET", "/history", "/history", peer=8)) is None


def test_silent_logs_clients_with_no_socket_to_silence() -> None:
    spec = {"kind": "silent", "when": {"on": "task_start", "task": "t0"}, "duration": 5}
    planner = FaultPlanner(FaultSchedule.of([spec]), seed=1)
    planner.event(ServerEvent("prompt_accepted", 0.0, prompt_id="p1", task_id="t0", client_id="poller"), 0.0)
    planner.event(ServerEvent("prompt_started", 0.0, prompt_id="p1", task_id="t0", client_id="poller"), 0.0)
    assert planner.fired_specs() == [0]
    planner.heal(1.0)
    (start, unreached) = planner.applied
    assert start.detail["clients"] == [] and start.t_end == 1.0
    assert (unreached.target_client_id, unreached.reached, unreached.target_kind) == ("poller", False, "ws")
    assert unreached.detail["reason"] == "no WebSocket of this client to silence"


def test_raw_text_kept_as_bytes() -> None:
    sent, _, _ = play([{"kind": "invalid_utf8", "when": {"on": "frame", "nth": 1}, "params": {"at": 0}}], 1)
    assert sent[0] == ("raw", b"\xff" + FRAMES[0].text.encode()) and isinstance(RawText(b""), RawText)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.lists(st.integers(0, 11), min_size=1, max_size=12))
def test_until_met_counts_clients_under_test_not_client_ids(instances: int, per: int, order: list[int]) -> None:
    """A client that opens one clientId per task (several per client under test) meets a
    one-shot fault once, not once per clientId."""
    tasks = {f"t{i}": str(i % instances) for i in range(instances * per)}
    planner = FaultPlanner(FaultSchedule.of([{"kind": "http_error", "params": {"route": "/history"}}]), seed=1,
                           task_clients=tasks)
    for i, task in enumerate(tasks):
        planner.event(ServerEvent("prompt_accepted", 0.0, prompt_id=f"p{i}", task_id=task, client_id=f"id-{task}"), 0.0)
    planner.start(0.0)
    planner.tick(0.0)
    hits = [tasks[f"t{i % len(tasks)}"] for i in order
            if planner.request(request(f"id-t{i % len(tasks)}"), 1.0) is not None]
    assert len(hits) == len(set(hits)), f"a client under test met the one-shot fault twice: {hits}"
    assert set(hits) == {tasks[f"t{i % len(tasks)}"] for i in order}
    planner.finish(2.0)
    unreached = {tasks[a.target_client_id.removeprefix("id-")] for a in planner.applied if not a.reached}
    assert unreached == set(tasks.values()) - set(hits)


def test_abort_logs_a_client_without_websocket_and_not_the_others() -> None:
    spec = {"kind": "abort", "when": {"on": "node_start", "task": "t0", "node_index": 1}}
    planner = FaultPlanner(FaultSchedule.of([spec]), seed=1)
    planner.connect(ConnInfo(1, "ws-client"), 0.0)
    planner.event(ServerEvent("prompt_accepted", 0.0, prompt_id="p1", task_id="t0", client_id="poller"), 0.0)
    planner.event(ServerEvent("node_started", 0.0, prompt_id="p1", task_id="t0", client_id="poller", node="2",
                              node_index=1), 0.0)
    assert planner.fired_specs() == [0]
    planner.heal(1.0)
    (entry,) = planner.applied
    assert (entry.target_client_id, entry.reached, entry.detail["reason"]) == (
        "poller", False, "no WebSocket of this client to end")


def test_frame_triggered_close_is_aimed_at_its_own_socket_only() -> None:
    spec = {"kind": "close", "when": {"on": "message", "type": "execution_start"}}
    planner = FaultPlanner(FaultSchedule.of([spec]), seed=1)
    planner.connect(ConnInfo(2, "other"), 0.0)
    _, fates, log = play_on(planner)
    assert [e["reached"] for e in log] == [True] and log[0]["target_client_id"] == "c0"
    assert any(f.fault == "close" for f in fates)


def play_on(planner: FaultPlanner) -> tuple[list[Any], list[Any], list[Any]]:
    planner.connect(CONN, 0.0)
    fates = []
    for index, frame in enumerate(FRAMES):
        planner.event(message(frame, index), 0.0)
        fates.append(planner.frame(CONN, frame, 0.0).fate)
    planner.heal(1.0)
    return [], fates, [a.to_dict() for a in planner.applied]
