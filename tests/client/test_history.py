"""Reading history entries recorded from a real ComfyUI into outcomes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfy_chaos.client.history import history_entry, outcome_from_history

DATA = Path(__file__).resolve().parents[1] / "data"
#: Both recording sets: ComfyUI 0.3.64 and 0.33.0 (whose entries carry extra_data.create_time).
TRACE_SETS = (DATA / "comfyui-traces", DATA / "comfyui-traces-current")
EXPECTED = {"execution_success": "success", "execution_error": "error", "execution_interrupted": "interrupted"}


def recorded_entries() -> list[tuple[str, str, dict]]:
    """(file, prompt_id, entry) for every `GET /history/{id}` answer in the traces."""
    found = []
    for path in [p for folder in TRACE_SETS for p in sorted(folder.glob("*.jsonl"))]:
        request_path = None
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event.get("kind") == "http-request":
                request_path = event.get("path", "")
            elif event.get("kind") == "http-response" and request_path and "/history/" in request_path:
                pid = request_path.rsplit("/", 1)[1].split("?")[0]
                body = event.get("body")
                if isinstance(body, dict) and pid in body:
                    found.append((f"{path.parent.name}/{path.name}", pid, body[pid]))
    return found


ENTRIES = recorded_entries()


def test_traces_have_every_kind_of_ending():
    kinds = {e["status"]["messages"][-1][0] for _, _, e in ENTRIES}
    assert kinds == set(EXPECTED)


@pytest.mark.parametrize("name, pid, entry", ENTRIES, ids=[f"{n}:{p[:8]}" for n, p, _ in ENTRIES])
def test_outcome_matches_the_recorded_ending(name, pid, entry):
    outcome = outcome_from_history(pid, entry, "poll")
    last_type, last_payload = entry["status"]["messages"][-1]
    assert outcome is not None
    assert outcome.status == EXPECTED[last_type]
    assert outcome.outputs == entry["outputs"]
    assert outcome.prompt_id == pid and outcome.source == "poll"
    if last_type == "execution_success":
        assert outcome.error is None
    else:
        assert outcome.error == last_payload


@pytest.mark.parametrize("name, pid, entry", ENTRIES, ids=[f"{n}:{p[:8]}" for n, p, _ in ENTRIES])
def test_seed_reading_only_trusts_completed(name, pid, entry):
    outcome = outcome_from_history(pid, entry, "poll", requires_completed=True)
    if entry["status"]["completed"]:
        assert outcome is not None and outcome.status == "success"
    else:
        assert outcome is None


@pytest.mark.parametrize("folder", [f.name for f in TRACE_SETS])
def test_error_after_good_output_keeps_the_outputs(folder):
    name, pid, entry = next(e for e in ENTRIES if e[0].startswith(f"{folder}/05b"))
    outcome = outcome_from_history(pid, entry, "ws")
    assert outcome.status == "error" and outcome.outputs == entry["outputs"] and outcome.outputs
    assert "outside the output folder" in outcome.detail


@pytest.mark.parametrize("reply", [{}, None, [], "x", {"other": {}}, {"p": "not-a-dict"}])
def test_empty_or_odd_replies_have_no_entry(reply):
    assert history_entry(reply, "p") is None


def test_entry_without_status_settles_nothing():
    assert outcome_from_history("p", {"outputs": {}}, "poll") is None
