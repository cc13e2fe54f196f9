"""Ledger bookkeeping and task tagging (Contracts 1 and 2)."""
from __future__ import annotations

import json

import pytest

from comfy_chaos.fake_comfy.ledger import SENT_LIMIT, Ledger, tag_workflow, task_tag
from comfy_chaos.fake_comfy.testing import W_BASIC


def test_tag_workflow_tags_smallest_node_id_on_a_copy() -> None:
    workflow = {"10": {"class_type": "A", "inputs": {}}, "2": {"class_type": "B", "inputs": {}, "_meta": {"title": "x"}}}
    tagged = tag_workflow(workflow, "t3")
    assert tagged["10"].get("_meta") == {"chaos_task": "t3"}  # "10" < "2" as strings
    assert tagged["2"]["_meta"] == {"title": "x"}
    assert "_meta" not in workflow["10"]  # the input is untouched
    assert task_tag(tagged) == "t3"
    assert task_tag(W_BASIC) is None and task_tag([1]) is None


@pytest.mark.parametrize("bad", [{}, [], {"1": "not-a-node"}, {"1": {"_meta": []}}])
def test_tag_workflow_rejects_bad_input_clearly(bad) -> None:
    with pytest.raises(ValueError, match="tag_workflow"):
        tag_workflow(bad, "t0")


def test_reused_prompt_id_keeps_one_record_and_resets_outcome() -> None:
    ledger = Ledger()
    first = ledger.accept("p", "t0", "c", 0, 1.0)
    first.outcome, first.executions = "success", 1
    again = ledger.accept("p", "t0", "c", 1, 2.0)
    assert again is first and again.outcome is None and again.executions == 1 and again.number == 1
    assert list(ledger.prompts) == ["p"]


def test_messages_are_indexed_and_markable_and_everything_serialises() -> None:
    ledger = Ledger()
    ledger.accept("p", None, "c", 0, 1.0)
    assert ledger.record_message("unknown", 1.0, "c", "status", True) is None
    index = ledger.record_message("p", 1.5, "c", "execution_success", False)
    ledger.mark_message("p", index, delivered=False, fault="drop")
    assert (ledger.prompts["p"].messages[index].delivered, ledger.prompts["p"].messages[index].fault) == (False, "drop")
    ledger.record_fault(2.0, "garble", {"client": "c"}, {"n": 1}, sent=b"\xff" * (SENT_LIMIT + 10))
    ledger.record_connection(2.0, "c", "open", 1)
    ledger.record_http(2.0, "GET", "/queue", 200)
    data = json.loads(json.dumps(ledger.to_dict()))
    assert data["prompts"]["p"]["messages"][0]["fault"] == "drop"
    assert len(ledger.faults[0].sent) == SENT_LIMIT and "b64" in data["faults"][0]["sent"]
    assert data["connections"][0]["event"] == "open" and data["http"][0]["path"] == "/queue"
