"""Scorer invariants over generated RunRecords (Hypothesis; the seed is printed on failure)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_chaos.harness.results import TASK_CLASSES, ScenarioResult
from comfy_chaos.harness.scoring import PRIMARY_ORDER
from comfy_chaos.harness.scoring import score_json as score

from .scoring_records import T0, outputs_for, prompt, record, result, submitted

FINISHED = ("success", "error", "interrupted")

task_strategy = st.fixed_dictionaries(
    {
        "server": st.sampled_from(["none", "cancelled", *FINISHED]),
        "executions": st.integers(1, 2),
        "knows_pid": st.booleans(),
        "reports": st.lists(st.sampled_from(["success", "error", "interrupted", "unknown"]), max_size=3),
        "good_outputs": st.booleans(),
        "null_outputs": st.booleans(),
        "reply_fault": st.booleans(),
        "late": st.lists(st.sampled_from(["success", "error"]), max_size=2),
    }
)


def build(tasks: list[dict]) -> dict:
    prompts, reports, log = [], [], []
    for i, spec in enumerate(tasks):
        task, pid = f"t{i}", f"p{i}"
        base = i * 2.0  # further apart than the "around a fault" window
        if spec["server"] != "none":
            finished = spec["server"] in FINISHED
            prompts.append(prompt(pid, task, outcome=spec["server"], accepted=base + 0.1,
                                  started=base + 0.2 if finished else None,
                                  completed=base + 1.0 if finished else None,
                                  executions=spec["executions"] if finished else 0))
        if spec["reply_fault"] and spec["server"] != "none":
            log.append({"t": T0 + base + 0.1, "kind": "prompt_response_lost", "spec_index": 0, "target_kind": "http",
                        "target_client_id": None, "target": {"method": "POST", "path": "/prompt"}})
        if spec["knows_pid"] and spec["server"] != "none":
            reports.append(submitted(task, pid, t=base + 0.15))
        for k, outcome in enumerate(spec["reports"]):
            outputs = outputs_for(pid) if spec["good_outputs"] else {"9": {"images": []}}
            line = result(task, pid if spec["knows_pid"] else None, outcome=outcome, t=base + 1.2 + k * 0.01,
                          outputs=outputs if outcome == "success" else None)
            if spec["null_outputs"]:
                line["outputs"] = None
            reports.append(line)
        for k, outcome in enumerate(spec["late"]):
            line = result(task, pid if spec["knows_pid"] else None, outcome=outcome, t=14.5 + i * 0.1 + k * 0.01,
                          outputs=outputs_for(pid))
            line["late"] = True
            reports.append(line)
    specs = [{"kind": "prompt_response_lost", "when": {"on": "request", "route": "/prompt"}}] if log else []
    return record(prompts, reports, tasks=len(tasks), t_end=14.0, fault_specs=specs, fault_log=log)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(task_strategy, min_size=1, max_size=6))
def test_scorer_invariants(tasks: list[dict]) -> None:
    rec = build(tasks)
    res = score(rec)
    by_id = {t.task_id: t for t in res.tasks}
    assert sorted(by_id) == sorted(f"t{i}" for i in range(len(tasks)))
    for i, spec in enumerate(tasks):
        t = by_id[f"t{i}"]
        assert t.cls in TASK_CLASSES
        assert t.problems == [c for c in PRIMARY_ORDER if c in t.problems]
        assert t.cls == (t.problems[0] if t.problems else t.cls)
        completed = spec["server"] in FINISHED
        # the spec's definition of ok, stated independently of the implementation
        all_reports = spec["reports"] + spec["late"]
        expect_ok = (
            completed
            and len(spec["reports"]) == 1
            and not spec["late"]
            and spec["reports"][0] == spec["server"]
            and (spec["server"] != "success" or spec["good_outputs"] or spec["null_outputs"])
            and spec["executions"] == 1
        )
        assert (t.cls == "ok") == expect_ok, (spec, t)
        if spec["null_outputs"]:
            assert "wrong_outputs" not in t.problems  # null = not compared
        if completed and not spec["reports"]:
            # indeterminate only when a fault could have lost the POST /prompt reply
            unknowable = not spec["knows_pid"] and spec["reply_fault"]
            assert ("indeterminate" if unknowable else "lost") in t.problems, (spec, t)
            assert ("lost" if unknowable else "indeterminate") not in t.problems, (spec, t)
        if not completed:  # a late report never answers a task
            claims = any(o in ("success", "interrupted") for o in spec["reports"])
            assert ("phantom" in t.problems) == claims, (spec, t)
            assert (t.cls == "not_completed") == (not t.problems)
        if len(set(all_reports)) > 1:
            assert "contradictory" in t.problems  # late reports count here
        elif len(spec["reports"]) > 1:
            assert "duplicate_report" in t.problems
        if completed and spec["executions"] > 1:
            assert "duplicate_execution" in t.problems
    m = res.metrics
    assert 0.0 <= m["completeness"] <= 1.0 and m["reported"] <= m["server_completed"]
    any_problem = any(t.problems for t in res.tasks)
    assert (res.verdict == "fail") == any_problem
    if res.verdict == "fail":
        assert res.reasons[-1] == f"replay: {res.replay}" and "seed: 1234" in res.reasons
    assert score(rec).to_dict() == res.to_dict()
    again = ScenarioResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert again.to_dict() == json.loads(json.dumps(res.to_dict()))
