"""Unit tests of the sans-IO core: no sockets, no event loop, a hand-driven clock."""
from __future__ import annotations

import json
from typing import Any

import pytest

from comfy_chaos.fake_comfy.core import HISTORY_LAG, ComfyCore, Step
from comfy_chaos.fake_comfy.events import EventBus, ServerEvent
from comfy_chaos.fake_comfy.ledger import Ledger, tag_workflow
from comfy_chaos.fake_comfy.profiles import V0_3_64
from comfy_chaos.fake_comfy.testing import W_BASIC
from comfy_chaos.fake_comfy.wire import OutFrame


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def core() -> ComfyCore:
    return make_core()


def make_core() -> ComfyCore:
    """A core of the 0.3.64 profile, the behaviour these tests pin (0.33's switches: test_profiles.py)."""
    clock = Clock()
    return ComfyCore(
        clock=clock, wall_ms=lambda: 1_700_000_000_000, ledger=Ledger(), events=EventBus(), seed=3, profile=V0_3_64
    )


def run_all(core: ComfyCore, limit: int = 10_000) -> list[OutFrame]:
    """Advance until idle, ignoring time (every delay elapses at once)."""
    frames: list[OutFrame] = []
    for _ in range(limit):
        step = core.advance()
        frames += step.frames
        if step.delay is None:
            return frames
    raise AssertionError("executor did not become idle")


def messages(frames: list[OutFrame], sid: str | None = None) -> list[dict[str, Any]]:
    return [json.loads(f.text) for f in frames if f.text is not None and (sid is None or f.sid == sid)]


def types(frames: list[OutFrame], sid: str) -> list[str]:
    return [f.message_type for f in frames if f.sid == sid]


def submit(core: ComfyCore, prompt: dict[str, Any] = W_BASIC, **body: Any) -> dict[str, Any]:
    result = core.submit({"prompt": prompt, **body})
    assert result.status == 200, result.body
    return result.body


def chaos(cls: str, **inputs: Any) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
        "2": {"class_type": cls, "inputs": {"images": ["1", 0], **inputs}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }


# ---------------------------------------------------------------- queue


def test_number_counts_every_parsed_post_and_front_is_negative(core: ComfyCore) -> None:
    assert submit(core)["number"] == 0
    assert core.submit({"prompt": {}}).status == 400  # rejected, still consumes a number
    assert core.submit({"client_id": "x"}).status == 400  # no prompt: consumes one too
    assert submit(core, front=True)["number"] == -3
    assert submit(core, number=5)["number"] == 5.0  # client number: float, counter untouched
    assert isinstance(submit(core, number=5)["number"], float)
    assert submit(core)["number"] == 4


def test_queue_runs_lowest_number_first_ties_by_prompt_id(core: ComfyCore) -> None:
    core.connect(1, "c")
    for prompt_id, number in [("b", 7), ("a", 7), ("z", -1), ("m", 0.5)]:
        submit(core, prompt_id=prompt_id, number=number, client_id="c")
    starts = [m["data"]["prompt_id"] for m in messages(run_all(core), "c") if m["type"] == "execution_start"]
    assert starts == ["z", "m", "a", "b"]


def test_queue_view_shows_heap_order_and_unfiltered_extra_data(core: ComfyCore) -> None:
    extra = {"auth_token_comfy_org": "SECRET", "extra_pnginfo": {"w": 1}}
    submit(core, prompt_id="p1", extra_data=dict(extra), client_id="c")
    view = core.queue_view()
    assert view["queue_running"] == []
    [item] = view["queue_pending"]
    assert item[:2] == [0, "p1"] and item[3] == {**extra, "client_id": "c"} and item[4] == ["3", "4"]
    run_all(core)
    history = core.get_history("p1")["p1"]
    assert history["prompt"][3] == {"extra_pnginfo": {"w": 1}, "client_id": "c"}  # secrets stripped


def test_queue_json_is_what_json_dumps_gives_for_the_view(core: ComfyCore) -> None:
    assert core.queue_view_json() == json.dumps(core.queue_view())  # empty queue
    for prompt_id, number in [("b", 7), ("a", 7), ("z", -1), ("m", 0.5)]:
        submit(core, prompt_id=prompt_id, number=number, client_id="c", extra_data={"k": "ü"})
    core.advance()  # one of them is running now
    assert core.queue_view()["queue_running"] and len(core.queue_view()["queue_pending"]) == 3
    assert core.queue_view_json() == json.dumps(core.queue_view())
    run_all(core)
    assert core.queue_view_json() == json.dumps(core.queue_view())


def test_delete_pending_and_clear_broadcast_status_and_cancel(core: ComfyCore) -> None:
    core.connect(1, "c")
    for pid in ["p1", "p2", "p3"]:
        submit(core, prompt_id=pid)
    core.advance()  # p1 starts running
    assert core.delete_pending("p1") == []  # the running prompt cannot be deleted
    assert core.delete_pending("nope") == []
    assert [json.loads(f.text)["data"]["status"]["exec_info"]["queue_remaining"] for f in core.delete_pending("p2")] == [2]
    last = core.delete_pending("p3")  # deleting the last pending item: wipe_queue + queue_updated
    assert len(last) == 2
    assert core.ledger.prompts["p2"].outcome == "cancelled" and core.ledger.prompts["p3"].outcome == "cancelled"
    run_all(core)
    assert set(core.history) == {"p1"}


def test_reused_prompt_id_runs_twice_and_overwrites_history(core: ComfyCore) -> None:
    submit(core, prompt_id="same")
    run_all(core)
    other = json.loads(json.dumps(W_BASIC))
    other["1"]["inputs"]["color"] = 5
    submit(core, prompt=other, prompt_id="same")
    run_all(core)
    assert list(core.history) == ["same"]
    assert core.history["same"]["prompt"][2]["1"]["inputs"]["color"] == 5
    assert core.ledger.prompts["same"].executions == 2


# ---------------------------------------------------------------- validation


def test_validation_errors_have_comfyui_bodies(core: ComfyCore) -> None:
    bad = json.loads(json.dumps(W_BASIC))
    bad["1"]["inputs"]["width"] = 0
    result = core.submit({"prompt": bad})
    assert result.status == 400
    assert result.body["error"]["type"] == "prompt_outputs_failed_validation"
    error = result.body["node_errors"]["1"]
    assert error["class_type"] == "EmptyImage" and error["dependent_outputs"] == ["3", "4"]
    assert error["errors"][0]["type"] == "value_smaller_than_min"
    assert error["errors"][0]["message"] == "Value 0 smaller than min of 1"
    unknown = core.submit({"prompt": {"1": {"class_type": "Nope", "inputs": {}}}})
    assert unknown.body["error"] == {
        "type": "invalid_prompt",
        "message": "Cannot execute because node Nope does not exist.",
        "details": "Node ID '#1'",
        "extra_info": {},
    }
    assert core.submit({"prompt": {"1": "not-a-dict"}}).body["error"]["type"] == "invalid_prompt"
    assert core.submit({"prompt": {}}).body["error"]["type"] == "prompt_no_outputs"
    assert core.submit({"prompt": [1, 2]}).status == 400
    assert core.queue_remaining() == 0  # nothing queued by rejected prompts


def test_partly_valid_graph_is_queued_with_node_errors(core: ComfyCore) -> None:
    prompt = json.loads(json.dumps(W_BASIC))
    prompt["5"] = {"class_type": "ImageInvert", "inputs": {}}
    prompt["6"] = {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "x"}}
    body = submit(core, prompt=prompt)
    assert list(body["node_errors"]) == ["5"] and body["node_errors"]["5"]["dependent_outputs"] == ["6"]
    run_all(core)
    assert core.history[body["prompt_id"]]["prompt"][4] == ["3", "4"]
    assert set(core.history[body["prompt_id"]]["outputs"]) == {"3", "4"}


def test_partial_execution_targets(core: ComfyCore) -> None:
    body = submit(core, partial_execution_targets=["4"])
    run_all(core)
    assert core.history[body["prompt_id"]]["prompt"][4] == ["4"]
    assert core.submit({"prompt": W_BASIC, "partial_execution_targets": ["2"]}).body["error"]["type"] == "prompt_no_outputs"


# ---------------------------------------------------------------- execution + routing


def test_success_sequence_per_protocol_7_1(core: ComfyCore) -> None:
    core.connect(1, "c")
    result = core.submit({"prompt": W_BASIC, "client_id": "c"})
    body = result.body
    frames = result.frames + run_all(core)
    seq = types(frames, "c")
    assert seq[:4] == ["status", "status", "execution_start", "execution_cached"]
    assert seq[-3:] == ["execution_success", "status", "executing"]
    executing = [m["data"]["node"] for m in messages(frames, "c") if m["type"] == "executing"]
    assert executing == ["1", "4", "2", "3", None]  # output nodes first when ready (ux_friendly_pick_node)
    entry = core.history[body["prompt_id"]]
    assert list(entry) == ["prompt", "outputs", "status", "meta"]
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    assert entry["outputs"]["3"]["images"][0] == {"filename": "basic_00001_.png", "subfolder": "t", "type": "output"}
    assert entry["meta"]["3"] == {"node_id": "3", "display_node": "3", "parent_node": None, "real_node_id": "3"}


def test_history_is_written_after_success_message_and_before_executing_null(core: ComfyCore) -> None:
    core.connect(1, "c")
    body = submit(core, client_id="c")
    frames: list[OutFrame] = []
    while not any(f.message_type == "execution_success" for f in frames):
        step = core.advance()
        frames += step.frames
    assert step.delay == HISTORY_LAG
    assert core.get_history(body["prompt_id"]) == {}  # the 09b race window
    last = core.advance()
    assert [f.message_type for f in last.frames] == ["status", "executing"]
    assert body["prompt_id"] in core.get_history(body["prompt_id"])


def test_prompt_without_client_id_is_half_silent(core: ComfyCore) -> None:
    core.connect(1, "a")
    core.connect(2, "b")
    submit(core, prompt={"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 2, "color": 0}},
                         "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}})  # fmt: skip
    frames = run_all(core)
    for sid in ("a", "b"):
        seen = set(types(frames, sid))
        assert seen == {"status", "progress_state", "progress", "binary:1"}, seen


def test_preview_metadata_flag_switches_binary_event_type(core: ComfyCore) -> None:
    core.connect(1, "flag")
    out, first_free = core.client_text("flag", json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}), True)
    assert not first_free and json.loads(out[0].text)["data"] == {"supports_preview_metadata": True, "max_upload_size": 104857600}
    submit(core, prompt=chaos("ChaosProgress", steps=2, seconds=0.0, previews=True), client_id="flag")
    seq = [t for t in types(run_all(core), "flag") if t in ("progress", "binary:4", "binary:1")]
    assert seq == ["binary:4", "progress", "binary:4", "progress"]


def test_feature_flags_only_as_first_parsed_json_object(core: ComfyCore) -> None:
    core.connect(1, "s")
    out, free = core.client_text("s", "not json", True)
    assert out == [] and free
    out, free = core.client_text("s", "[1, 2]", free)
    assert out == [] and free
    out, free = core.client_text("s", '{"type": "hello"}', free)
    assert out == [] and not free
    out, free = core.client_text("s", '{"type": "feature_flags", "data": {}}', free)
    assert out == []


def test_socket_table_replacement_and_orphaning(core: ComfyCore) -> None:
    core.connect(1, "c")
    core.connect(2, "c")  # replaces 1 without closing it
    assert core.sockets["c"] == 2
    assert core.disconnect("c") == 2  # the OLDER socket closed: the newer one is forgotten (orphaned)
    assert "c" not in core.sockets


def test_reconnect_replays_bare_executing_only_for_running_prompt_owner(core: ComfyCore) -> None:
    core.connect(1, "c")
    submit(core, prompt=chaos("ChaosSleep", seconds=1.0), client_id="c")
    step = core.advance()
    while not any(f.message_type == "executing" and f.node == "2" for f in step.frames):
        step = core.advance()
    replay = core.connect(2, "c")
    assert [json.loads(f.text) for f in replay][1] == {"type": "executing", "data": {"node": "2"}}
    assert len(core.connect(3, "other")) == 1
    run_all(core)
    assert len(core.connect(4, "c")) == 1  # nothing replayed after the prompt finished


def test_binary_text_event_from_get_image_size_is_broadcast(core: ComfyCore) -> None:
    core.connect(1, "a")
    core.connect(2, "b")
    submit(core, prompt={
        "1": {"class_type": "EmptyImage", "inputs": {"width": 40, "height": 30, "batch_size": 2, "color": 0}},
        "2": {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": ["2", 0], "height": ["2", 1], "batch_size": 1, "color": 0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }, client_id="a")  # fmt: skip
    frames = [f for f in run_all(core) if f.message_type == "binary:3"]
    assert {f.sid for f in frames} == {"a", "b"}
    data = frames[0].data
    assert data[:4] == (3).to_bytes(4, "big") and data[4:8] == (1).to_bytes(4, "big") and data[8:9] == b"2"
    assert data[9:] == b"width: 40, height: 30\n batch size: 2"


# ---------------------------------------------------------------- cache


def test_cache_classic_semantics(core: ComfyCore) -> None:
    core.connect(1, "c")

    def run(prompt: dict[str, Any], sid: str = "c") -> list[dict[str, Any]]:
        submit(core, prompt=prompt, client_id=sid)
        return messages(run_all(core), sid)

    run(W_BASIC)
    second = run(W_BASIC)
    cached = next(m for m in second if m["type"] == "execution_cached")
    assert cached["data"]["nodes"] == ["1", "2", "3", "4"]
    assert not [m for m in second if m["type"] == "executing" and m["data"]["node"] is not None]
    assert [m["data"]["node"] for m in second if m["type"] == "executed"] == ["3", "4"]
    first_files = {m["data"]["output"]["images"][0]["filename"] for m in second if m["type"] == "executed"}
    assert "basic_00001_.png" in first_files  # old filenames replayed, nothing rewritten

    other = {"1": {"class_type": "EmptyImage", "inputs": {"width": 9, "height": 9, "batch_size": 1, "color": 9}},
             "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}  # fmt: skip
    run(other)
    third = run(W_BASIC)  # the classic cache only keeps what the previous prompt used
    assert next(m for m in third if m["type"] == "execution_cached")["data"]["nodes"] == []
    core.request_free(free_memory=True, unload_models=False)
    fourth = run(W_BASIC)
    assert next(m for m in fourth if m["type"] == "execution_cached")["data"]["nodes"] == []


def test_save_image_websocket_never_caches(core: ComfyCore) -> None:
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
              "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}}  # fmt: skip
    core.connect(1, "c")
    submit(core, prompt=prompt, client_id="c")
    run_all(core)
    submit(core, prompt=prompt, client_id="c")
    msgs = messages(run_all(core), "c")
    assert next(m for m in msgs if m["type"] == "execution_cached")["data"]["nodes"] == ["1"]
    assert [m["data"]["node"] for m in msgs if m["type"] == "executing"] == ["2", None]


# ---------------------------------------------------------------- errors and interrupts


def test_runtime_error_payload_and_history(core: ComfyCore) -> None:
    core.connect(1, "c")
    body = submit(core, prompt=chaos("ChaosFail", message="boom"), client_id="c")
    msgs = messages(run_all(core), "c")
    error = next(m for m in msgs if m["type"] == "execution_error")["data"]
    assert list(error) == ["prompt_id", "node_id", "node_type", "executed", "exception_message", "exception_type",
                           "traceback", "current_inputs", "current_outputs", "timestamp"]  # fmt: skip
    assert error["node_id"] == "2" and error["exception_message"] == "boom\n" and error["executed"] == ["1"]
    assert error["current_outputs"] == ["1", "2", "3"]
    assert [m["type"] for m in msgs][-3:] == ["execution_error", "status", "executing"]
    entry = core.history[body["prompt_id"]]
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert core.ledger.prompts[body["prompt_id"]].outcome == "error"
    assert core.ledger.prompts[body["prompt_id"]].error == error


def test_save_image_outside_output_folder_fails_at_run_time(core: ComfyCore) -> None:
    prompt = json.loads(json.dumps(W_BASIC))
    prompt["3"]["inputs"]["filename_prefix"] = "../../escape/x"
    body = submit(core, prompt=prompt)
    run_all(core)
    messages_ = core.history[body["prompt_id"]]["status"]["messages"]
    assert messages_[-1][0] == "execution_error" and messages_[-1][1]["exception_type"] == "Exception"
    assert "outside the output folder" in messages_[-1][1]["exception_message"]
    assert set(core.history[body["prompt_id"]]["outputs"]) == {"4"}  # the preview ran before: kept


def drive_until(core: ComfyCore, predicate) -> list[OutFrame]:
    frames: list[OutFrame] = []
    for _ in range(10_000):
        step: Step = core.advance()
        frames += step.frames
        if any(predicate(f) for f in step.frames):
            return frames
    raise AssertionError("condition never reached")


def test_interrupt_between_nodes_lands_at_next_node_start(core: ComfyCore) -> None:
    core.connect(1, "c")
    submit(core, prompt=chaos("ChaosSleep", seconds=1.0), client_id="c")
    drive_until(core, lambda f: f.message_type == "executing" and f.node == "2")
    core.interrupt()
    msgs = messages(run_all(core), "c")
    kinds = [m["type"] for m in msgs]
    start = kinds.index("executing")
    assert msgs[start]["data"]["node"] == "3"  # node 2 ran to its end, node 3 started, then the check
    assert kinds[start - 1 : start + 2] == ["progress_state", "executing", "execution_interrupted"]
    interrupted = next(m for m in msgs if m["type"] == "execution_interrupted")["data"]
    assert interrupted["node_id"] == "3" and interrupted["executed"] == ["1", "2"]


def test_interrupt_inside_progress_names_current_node(core: ComfyCore) -> None:
    core.connect(1, "c")
    submit(core, prompt=chaos("ChaosProgress", steps=10, seconds=1.0), client_id="c")
    drive_until(core, lambda f: f.message_type == "progress")
    core.interrupt()
    msgs = messages(run_all(core), "c")
    assert msgs[0]["type"] == "execution_interrupted" and msgs[0]["data"]["node_id"] == "2"


def test_interrupt_with_wrong_prompt_id_is_ignored_and_late_interrupt_is_lost(core: ComfyCore) -> None:
    core.connect(1, "c")
    body = submit(core, prompt=chaos("ChaosSleep", seconds=1.0), client_id="c")
    drive_until(core, lambda f: f.message_type == "executing" and f.node == "2")
    core.interrupt("not-running")
    drive_until(core, lambda f: f.message_type == "executing" and f.node == "3")  # last node started
    core.interrupt(body["prompt_id"])  # after the last check: lost
    assert "execution_success" in [m["type"] for m in messages(run_all(core), "c")]
    second = submit(core, client_id="c")  # the stale flag is cleared when the next prompt starts
    run_all(core)
    assert core.history[second["prompt_id"]]["status"]["status_str"] == "success"


def test_interrupt_of_anonymous_prompt_is_broadcast(core: ComfyCore) -> None:
    core.connect(1, "a")
    submit(core, prompt=chaos("ChaosSleep", seconds=1.0))
    drive_until(core, lambda f: f.message_type == "progress_state")
    core.interrupt()
    assert "execution_interrupted" in types(run_all(core), "a")


# ---------------------------------------------------------------- ledger, events, restart


def test_ledger_and_events_follow_the_prompt(core: ComfyCore) -> None:
    seen: list[ServerEvent] = []
    core.events.subscribe(seen.append)
    prompt = tag_workflow(W_BASIC, "t7")
    body = submit(core, prompt=prompt, client_id="c")
    run_all(core)
    record = core.ledger.prompts[body["prompt_id"]]
    assert (record.task_id, record.client_id, record.outcome, record.executions) == ("t7", "c", "success", 1)
    assert record.outputs == core.history[body["prompt_id"]]["outputs"]
    kinds = [e.kind for e in seen]
    assert kinds[0] == "prompt_accepted" and kinds[1] == "prompt_started" and kinds[-1] == "prompt_completed"
    nodes = [(e.node, e.node_index) for e in seen if e.kind == "node_started"]
    assert nodes == [("1", 0), ("4", 1), ("2", 2), ("3", 3)]
    assert all(e.task_id == "t7" for e in seen)
    json.dumps(core.ledger.to_dict())


def test_reset_loses_queue_running_and_counter(core: ComfyCore) -> None:
    first = submit(core, prompt=chaos("ChaosSleep", seconds=1.0))
    core.advance()
    second = submit(core)
    core.reset(keep_history=False)
    assert core.queue_remaining() == 0 and core.number == 0 and core.history == {}
    assert core.ledger.prompts[first["prompt_id"]].outcome is None
    assert core.ledger.prompts[second["prompt_id"]].outcome is None
    assert core.advance().delay is None
    assert submit(core)["number"] == 0
