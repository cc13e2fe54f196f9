"""Property test of the core: random submit / delete / clear / interrupt / advance / reconnect
sequences keep the bookkeeping consistent (hypothesis prints the failing sequence)."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfy_chaos.fake_comfy.core import ComfyCore
from comfy_chaos.fake_comfy.events import EventBus
from comfy_chaos.fake_comfy.ledger import Ledger

WORKFLOWS = [
    {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
     "2": {"class_type": "ChaosProgress", "inputs": {"images": ["1", 0], "steps": 3, "seconds": 0.3}},
     "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}},
    {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 2}},
     "2": {"class_type": "ChaosFail", "inputs": {"images": ["1", 0], "message": "x"}},
     "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}},
    {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 2, "color": 3}},
     "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "p/x"}}},
]  # fmt: skip

ACTIONS = st.one_of(
    st.tuples(st.just("submit"), st.integers(0, len(WORKFLOWS) - 1), st.sampled_from(["a", "b", None]), st.booleans()),
    st.tuples(st.just("advance"), st.integers(1, 6)),
    st.tuples(st.just("delete"), st.integers(0, 20)),
    st.tuples(st.just("clear")),
    st.tuples(st.just("interrupt")),
    st.tuples(st.just("reconnect"), st.sampled_from(["a", "b"])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ACTIONS, max_size=40))
def test_random_operations_keep_ledger_history_and_frames_consistent(actions) -> None:
    core = ComfyCore(clock=lambda: 0.0, wall_ms=lambda: 0, ledger=Ledger(), events=EventBus(), seed=0)
    conn_ids = iter(range(1, 10_000))
    core.connect(next(conn_ids), "a")
    core.connect(next(conn_ids), "b")
    frames = []
    submitted: list[str] = []
    for action in actions:
        kind = action[0]
        if kind == "submit":
            body = {"prompt": WORKFLOWS[action[1]], "front": action[3]}
            if action[2] is not None:
                body["client_id"] = action[2]
            result = core.submit(body)
            assert result.status == 200
            submitted.append(result.body["prompt_id"])
            frames += result.frames
        elif kind == "advance":
            for _ in range(action[1]):
                frames += core.advance().frames
        elif kind == "delete" and submitted:
            frames += core.delete_pending(submitted[action[1] % len(submitted)])
        elif kind == "clear":
            frames += core.clear_pending()
        elif kind == "interrupt":
            core.interrupt()
        elif kind == "reconnect":
            frames += core.connect(next(conn_ids), action[1])
        assert core.queue_remaining() == len(core.queue) + (core.running is not None)
    for _ in range(10_000):
        step = core.advance()
        frames += step.frames
        if step.delay is None:
            break
    assert core.idle
    outcomes = {pid: core.ledger.prompts[pid].outcome for pid in submitted}
    assert set(outcomes.values()) <= {"success", "error", "interrupted", "cancelled"}
    finished = {pid for pid, outcome in outcomes.items() if outcome != "cancelled"}
    assert set(core.history) == finished
    for pid in finished:
        status = core.history[pid]["status"]
        assert status["status_str"] == ("success" if outcomes[pid] == "success" else "error")
        assert status["messages"][0][0] == "execution_start"
    for pid in submitted:  # every prompt of a client with a socket got exactly one final `executing null`
        client = core.ledger.prompts[pid].client_id
        ends = [
            f for f in frames
            if f.message_type == "executing" and f.prompt_id == pid and json.loads(f.text)["data"]["node"] is None
        ]  # fmt: skip
        expected = 0 if client is None or outcomes[pid] == "cancelled" else 1
        assert len(ends) == expected, (pid, client, outcomes[pid], len(ends))
    statuses = [json.loads(f.text)["data"]["status"]["exec_info"]["queue_remaining"] for f in frames if f.message_type == "status"]
    assert not statuses or statuses[-1] == 0  # the last word to clients is "queue empty"
