"""Scorer: one hand-written RunRecord per class, verdict rules, metrics, reasons."""
from __future__ import annotations

import copy

import pytest
from .scoring_records import SID, T0, fault, ok_task, outputs_for, prompt, record, result, submitted

from comfy_chaos.harness.record import RunRecord
from comfy_chaos.harness.scoring import output_set, percentile, score


def classes(rec: dict) -> dict[str, str]:
    return {t.task_id: t.cls for t in score(rec).tasks}


def run_of_ok(n: int) -> tuple[list, list]:
    prompts, reports = [], []
    for i in range(n):
        p, r = ok_task(f"t{i}", f"p{i}", at=i * 0.5)
        prompts.append(p)
        reports.extend(r)
    return prompts, reports


def test_all_reported_correctly_passes_with_latency_in_scenario_seconds() -> None:
    prompts, reports = run_of_ok(3)
    res = score(record(prompts, reports))
    assert res.verdict == "pass" and res.reasons == []
    assert [t.cls for t in res.tasks] == ["ok", "ok", "ok"]
    m = res.metrics
    assert (m["tasks"], m["server_completed"], m["reported"], m["completeness"], m["ok"]) == (3, 3, 3, 1.0, 3)
    # reported 0.2 s (real) after completion at time scale 0.1 -> 2 scenario seconds
    assert m["latency_p50"] == pytest.approx(2.0) and m["latency_max"] == pytest.approx(2.0)
    assert res.tasks[0].completed_at == pytest.approx(1.0) and res.tasks[0].reported_at == [pytest.approx(1.2)]


def test_lost_task_fails_with_a_falsifying_example() -> None:
    prompts, reports = run_of_ok(3)
    prompts[1] = prompt("9f2c1a7e-0000", "t1", completed=2.41,
                        messages=[(2.40, "execution_success", False, "drop"), (2.405, "executing", True, None)])
    reports = [r for r in reports if r["task_id"] != "t1"] + [submitted("t1", "9f2c1a7e-0000")]
    specs = [{"kind": "drop", "when": {"on": "message", "type": "execution_success", "task": "t1"}}]
    rec = record(prompts, reports, fault_specs=specs, fault_log=[fault(2.40, task="t1")])
    res = score(rec)
    assert res.verdict == "fail"
    assert classes(rec)["t1"] == "lost" and res.metrics["lost"] == 1
    assert res.metrics["completeness"] == pytest.approx(2 / 3)
    text = "\n".join(res.reasons)
    assert "t1 (prompt 9f2c1a7e…) lost: completed success on the server at +2.410 s, never reported;" in text
    assert "faults around it: drop execution_success→c0 at +2.400 s" in text
    assert "lost: 1 > expect.lost 0" in text
    assert "seed: 1234" in text
    assert res.replay == "comfy-chaos replay scenarios/unit.yaml --client reference --seed 1234"
    assert res.reasons[-1] == f"replay: {res.replay}"
    frames = res.frames["t1"]
    assert any(f["what"] == "frame" and f["type"] == "execution_success" and f["delivered"] is False for f in frames)
    assert any(f["what"] == "fault" and f["fault"] == "drop" for f in frames)
    assert set(res.frames) == {"t1"}


def test_phantom_success_for_a_task_the_server_never_completed() -> None:
    rec = record([prompt("p0", "t0", outcome=None, completed=None)], [submitted("t0", "p0"), result("t0", "p0")])
    res = score(rec)
    assert classes(rec) == {"t0": "phantom"} and res.verdict == "fail"


def test_report_for_an_unknown_task_is_phantom() -> None:
    prompts, reports = run_of_ok(1)
    rec = record(prompts, reports + [result("t9", None, outcome="error")], tasks=1)
    assert classes(rec)["t9"] == "phantom"


def test_honest_error_for_a_task_that_never_ran_is_neutral() -> None:
    prompts, reports = run_of_ok(1)
    prompts.append(prompt("p1", "t1", outcome="cancelled", started=None, completed=None))
    reports += [submitted("t1", "p1"), result("t1", "p1", outcome="error", t=3.0)]
    rec = record(prompts, reports)
    res = score(rec)
    assert classes(rec) == {"t0": "ok", "t1": "not_completed"}
    assert res.verdict == "pass" and res.metrics["server_completed"] == 1


def test_duplicate_report() -> None:
    prompts, reports = run_of_ok(1)
    rec = record(prompts, reports + [result("t0", "p0", t=1.5)])
    res = score(rec)
    assert classes(rec) == {"t0": "duplicate_report"}
    assert res.metrics["duplicate_report"] == 1 and res.verdict == "fail"
    assert any("duplicate_report: 1 > expect.duplicate 0" in r for r in res.reasons)


def test_contradictory_when_reported_both_failed_and_finished() -> None:
    prompts, reports = run_of_ok(1)
    rec = record(prompts, reports + [result("t0", "p0", outcome="error", t=1.5)])
    assert classes(rec) == {"t0": "contradictory"}
    assert score(rec).tasks[0].problems == ["contradictory"]


def test_duplicate_execution_by_resubmission() -> None:
    p_first = prompt("p0", "t0", completed=1.0)
    p_again = prompt("p0b", "t0", accepted=1.5, started=1.6, completed=2.0)
    rec = record([p_first, p_again], [submitted("t0", "p0"), submitted("t0", "p0b", t=1.45), result("t0", "p0b", t=2.1)])
    res = score(rec)
    assert classes(rec) == {"t0": "duplicate_execution"}
    assert res.tasks[0].executions == 2 and res.verdict == "fail"


def test_duplicate_execution_by_reused_prompt_id() -> None:
    rec = record([prompt("p0", "t0", executions=2)], [submitted("t0", "p0"), result("t0", "p0")])
    assert classes(rec) == {"t0": "duplicate_execution"}


def test_server_error_must_be_reported_as_error() -> None:
    rec = record([prompt("p0", "t0", outcome="error")], [submitted("t0", "p0"), result("t0", "p0", outcome="success")])
    res = score(rec)
    assert classes(rec) == {"t0": "wrong_outcome"} and res.verdict == "fail"
    assert "completed error on the server" in "\n".join(res.reasons)
    good = record([prompt("p0", "t0", outcome="error")], [submitted("t0", "p0"), result("t0", "p0", outcome="error")])
    assert score(good).verdict == "pass"


def test_wrong_outputs_compares_node_filename_subfolder_type() -> None:
    bad = outputs_for("p0")
    bad["3"]["images"][0]["subfolder"] = "elsewhere"
    rec = record([prompt("p0", "t0")], [submitted("t0", "p0"), result("t0", "p0", outputs=bad)])
    assert classes(rec) == {"t0": "wrong_outputs"}
    reordered = {"4": outputs_for("p0")["4"], "3": outputs_for("p0")["3"]}
    same = record([prompt("p0", "t0")], [submitted("t0", "p0"), result("t0", "p0", outputs=reordered)])
    assert classes(same) == {"t0": "ok"}


def test_indeterminate_when_submission_reply_lost_and_never_reported() -> None:
    rec = record([prompt("p0", "t0")], [])
    res = score(rec)
    assert classes(rec) == {"t0": "indeterminate"} and res.verdict == "fail"


def test_indeterminate_when_reported_error_without_prompt_id() -> None:
    rec = record([prompt("p0", "t0")], [result("t0", None, outcome="error")])
    assert classes(rec) == {"t0": "indeterminate"}


def test_reply_lost_but_reconciled_by_tag_is_ok() -> None:
    rec = record([prompt("p0", "t0")], [result("t0", None, outputs=outputs_for("p0"))])
    assert classes(rec) == {"t0": "ok"}


def test_result_without_task_id_is_matched_by_prompt_id() -> None:
    rec = record([prompt("p0", "t0")], [submitted("t0", "p0"), result(None, "p0")])
    assert classes(rec) == {"t0": "ok"}


def test_untagged_prompts_are_counted_not_scored() -> None:
    prompts, reports = run_of_ok(1)
    prompts.append(prompt("px", None))
    res = score(record(prompts, reports))
    assert [t.task_id for t in res.tasks] == ["t0"] and res.metrics["untagged_prompts"] == 1


def test_scheduled_fault_that_never_fired_is_inconclusive() -> None:
    prompts, reports = run_of_ok(2)
    specs = [{"kind": "drop", "when": {"on": "message", "type": "execution_success", "task": "t7"}}]
    res = score(record(prompts, reports, fault_specs=specs, fired=[]))
    assert res.verdict == "inconclusive"
    assert any("faults[0] (drop" in r and "never fired" in r for r in res.reasons)


def test_fault_after_the_last_task_finished_is_inconclusive() -> None:
    prompts, reports = run_of_ok(2)  # last report at +1.7 s
    specs = [{"kind": "drop", "when": {"at": 30}}]
    res = score(record(prompts, reports, fault_specs=specs, fault_log=[fault(3.0)]))
    assert res.verdict == "inconclusive"
    assert res.faults[0].effective is False
    assert any("no fault hit outstanding work" in r for r in res.reasons)


def test_fault_during_the_work_makes_a_clean_run_a_pass() -> None:
    prompts, reports = run_of_ok(2)
    specs = [{"kind": "close", "when": {"at": 0.5}}]
    res = score(record(prompts, reports, fault_specs=specs, fault_log=[fault(0.5, "close", message=None)]))
    assert res.verdict == "pass" and res.faults[0].effective and res.metrics["faults_effective"] == 1


def test_nothing_completed_on_the_server_is_inconclusive() -> None:
    rec = record([], [], tasks=3)
    res = score(rec)
    assert res.verdict == "inconclusive" and set(classes(rec).values()) == {"not_completed"}


def test_fail_beats_inconclusive() -> None:
    specs = [{"kind": "drop", "when": {"at": 30}}]
    rec = record([prompt("p0", "t0")], [submitted("t0", "p0")], fault_specs=specs, fired=[])
    assert score(rec).verdict == "fail"


def test_expect_bar_can_allow_a_loss() -> None:
    rec = record([prompt("p0", "t0"), prompt("p1", "t1")],
                 [submitted("t0", "p0"), submitted("t1", "p1"), result("t1", "p1")],
                 expect={"lost": 1, "completeness": 0.5})
    assert score(rec).verdict == "pass"


def test_hang_and_crash() -> None:
    prompts, reports = run_of_ok(1)
    hung = score(record(prompts, reports, adapter={"hung": True, "crashed": False, "exit_code": None}))
    assert hung.verdict == "fail" and hung.metrics["hang"] is True
    assert any(r.startswith("hang:") for r in hung.reasons)
    allowed = score(record(prompts, reports, adapter={"hung": True}, expect={"hang": True}))
    assert allowed.verdict == "pass"
    crashed = score(record(prompts, reports, adapter={"crashed": True, "exit_code": 1, "stderr_tail": "Traceback: X"}))
    assert crashed.verdict == "fail" and any("crash" in r and "Traceback: X" in r for r in crashed.reasons)
    per_client = score(record(prompts, reports, adapter={"clients": [{"hung": False}, {"crashed": True}]}))
    assert per_client.metrics["crash"] is True


def test_p95_latency_bar_and_late_by_batching_is_visible() -> None:
    prompts, reports = run_of_ok(4)
    for r in reports:
        if r["type"] == "result":
            r["t"] = T0 + 4.0  # every report held back and sent in one batch
    res = score(record(prompts, reports, expect={"p95_latency": 10.0}, t_end=6.0))
    assert res.metrics["latency_max"] == pytest.approx(30.0)  # (4.0 - 1.0) s / 0.1
    assert res.verdict == "fail" and any("latency p95" in r for r in res.reasons)


def test_overhead_metrics_from_ledger_logs() -> None:
    prompts, reports = run_of_ok(2)
    connections = [
        {"t": T0, "sid": SID, "event": "open", "conn_id": 1},
        {"t": T0 + 0.5, "sid": SID, "event": "abort", "conn_id": 1},
        {"t": T0 + 0.7, "sid": SID, "event": "open", "conn_id": 2},
        {"t": T0 + 0.8, "sid": "other", "event": "refused", "conn_id": 3},
    ]
    http = [{"t": T0 + i * 0.1, "method": "GET", "path": "/history", "status": 200, "fault": None, "bytes": 100}
            for i in range(6)]
    res = score(record(prompts, reports, connections=connections, http=http))
    m = res.metrics
    assert (m["http_requests"], m["http_per_task"], m["reconnects"], m["bytes_per_task"]) == (6, 3.0, 1, 300.0)
    spans = [(c.conn_id, c.start, c.end, c.state) for c in res.connections]
    assert (1, 0.0, 0.5, "open") in spans and (2, 0.7, 5.0, "open") in spans
    assert any(c.state == "refused" for c in res.connections)


def test_scoring_is_pure_and_accepts_a_run_record() -> None:
    prompts, reports = run_of_ok(2)
    rec = record(prompts, reports, fault_log=[fault(0.3)], fault_specs=[{"kind": "drop", "when": {"at": 0.3}}])
    before = copy.deepcopy(rec)
    first = score(rec).to_dict()
    assert rec == before
    assert score(RunRecord.from_dict(rec)).to_dict() == first


def test_percentile_nearest_rank() -> None:
    assert percentile([], 95) is None
    assert percentile([3.0], 50) == 3.0
    values = [float(i) for i in range(1, 21)]
    assert percentile(values, 50) == 10.0 and percentile(values, 95) == 19.0 and percentile(values, 100) == 20.0


def test_output_set() -> None:
    assert output_set(outputs_for("p")) == {("3", "p_00001_.png", "chaos", "output"), ("4", "p_temp_.png", "", "temp")}
    assert output_set(None) == set()
    assert output_set({"2": {"text": ["40x30"]}}) == {("2", "text", "'40x30'")}


def test_toxic_fault_label_from_the_runner_fault_log_shape() -> None:
    prompts, reports = run_of_ok(1)
    toxic = {"t": T0 + 0.3, "t_end": T0 + 0.9, "kind": "toxic", "spec_index": 0,
             "target": {"proxy": "chaos-x", "stream": "downstream"},
             "detail": {"name": "n", "type": "timeout", "attributes": {"timeout": 0}, "toxicity": 1.0},
             "source": "toxiproxy"}
    res = score(record(prompts, reports, fault_specs=[{"kind": "toxic"}], fault_log=[toxic]))
    (mark,) = res.faults
    assert (mark.label, mark.t, mark.t_end, mark.source) == ("toxic timeout downstream", 0.3, 0.9, "toxiproxy")


def test_repeated_fault_records_are_folded_in_reasons() -> None:
    p = prompt("p0", "t0", completed=0.3)
    window = [fault(0.1 + i * 0.01, "silent", message=m, t_end=0.6, spec_index=0)
              for i, m in enumerate(["execution_start", "executing", "executed"])]
    instants = [fault(0.2 + i * 0.01, "junk_prefix", message="executing", spec_index=1) for i in range(3)]
    specs = [{"kind": "silent"}, {"kind": "junk_prefix"}]
    res = score(record([p], [submitted("t0", "p0")], fault_specs=specs, fault_log=window + instants))
    line = next(r for r in res.reasons if r.startswith("t0 "))
    assert line.endswith(
        "faults around it: silent from +0.100 s to +0.600 s (×3), "
        "junk_prefix executing→c0 at +0.200 s (×3, last at +0.220 s)"
    )


def test_reconnects_count_new_client_ids_too() -> None:
    prompts, reports = run_of_ok(1)
    connections = [{"t": T0 + i * 0.1, "sid": f"sid-{i}", "event": "open", "conn_id": i} for i in range(3)]
    assert score(record(prompts, reports, connections=connections)).metrics["reconnects"] == 2
