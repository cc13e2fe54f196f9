"""Scorer invariants over generated RunRecords (Hypothesis; the seed is printed on failure)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_chaos.harness.results import TASK_CLASSES, ScenarioResult
from comfy_chaos.harness.scoring import PRIMARY_ORDER, score

from .scoring_records import outputs_for, prompt, record, result, submitted

FINISHED = ("success", "error", "interrupted")

task_strategy = st.fixed_dictionaries(
    {
        "server": st.sampled_from(["none", "cancelled", *FINISHED]),
        "executions": st.integers(1, 2),
        "knows_pid": st.booleans(),
        "reports": st.lists(st.sampled_from(["success", "error", "interrupted", "unknown"]), max_size=3),
        "good_outputs": st.booleans(),
    }
)


def build(tasks: list[dict]) -> dict:
    prompts, reports = [], []
    for i, spec in enumerate(tasks):
        task, pid = f"t{i}", f"p{i}"
        base = i * 0.1
        if spec["server"] != "none":
            finished = spec["server"] in FINISHED
            prompts.append(prompt(pid, task, outcome=spec["server"], accepted=base + 0.1,
                                  started=base + 0.2 if finished else None,
                                  completed=base + 1.0 if finished else None,
                                  executions=spec["executions"] if finished else 0))
        if spec["knows_pid"] and spec["server"] != "none":
            reports.append(submitted(task, pid, t=base + 0.15))
        for k, outcome in enumerate(spec["reports"]):
            outputs = outputs_for(pid) if spec["good_outputs"] else {"9": {"images": []}}
            reports.append(result(task, pid if spec["knows_pid"] else None, outcome=outcome,
                                  t=base + 1.2 + k * 0.01, outputs=outputs if outcome == "success" else None))
    return record(prompts, reports, tasks=len(tasks), t_end=10.0)


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
        expect_ok = (
            completed
            and len(spec["reports"]) == 1
            and spec["reports"][0] == spec["server"]
            and (spec["server"] != "success" or spec["good_outputs"])
            and spec["executions"] == 1
        )
        assert (t.cls == "ok") == expect_ok, (spec, t)
        if completed and not spec["reports"]:
            assert t.cls in ("lost", "indeterminate") and t.cls == ("lost" if spec["knows_pid"] else "indeterminate")
        if not completed:
            claims = any(o in ("success", "interrupted") for o in spec["reports"])
            assert ("phantom" in t.problems) == claims, (spec, t)
            assert (t.cls == "not_completed") == (not t.problems)
        if len(set(spec["reports"])) > 1:
            assert "contradictory" in t.problems
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
