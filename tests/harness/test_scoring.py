"""Scorer: one hand-written RunRecord per class, verdict rules, metrics, reasons."""
from __future__ import annotations

import copy
import json

import pytest

from comfy_chaos.harness.record import RunRecord
from comfy_chaos.harness.scoring import output_set, percentile, summarise_control
from comfy_chaos.harness.scoring import score as score_record
from comfy_chaos.harness.scoring import score_json as score

from .scoring_records import (
    SID,
    T0,
    batching_client,
    fault,
    http_log,
    late_reporter,
    no_submitted_client,
    null_outputs_client,
    ok_task,
    outputs_for,
    prompt,
    record,
    result,
    spinning_client,
    storm_client,
    submitted,
)


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


REPLY_LOST = [{"kind": "prompt_response_lost", "when": {"on": "request", "route": "/prompt"}}]


def reply_lost_at(t: float) -> dict:
    return {"t": T0 + t, "kind": "prompt_response_lost", "spec_index": 0, "target_kind": "http",
            "target_client_id": None, "target": {"method": "POST", "path": "/prompt"}, "detail": {}}


def test_indeterminate_when_submission_reply_lost_and_never_reported() -> None:
    rec = record([prompt("p0", "t0")], [], fault_specs=REPLY_LOST, fault_log=[reply_lost_at(0.1)])
    res = score(rec)
    assert classes(rec) == {"t0": "indeterminate"} and res.verdict == "fail"


def test_indeterminate_when_reported_error_without_prompt_id() -> None:
    rec = record([prompt("p0", "t0")], [result("t0", None, outcome="error")], fault_specs=REPLY_LOST,
                 fault_log=[reply_lost_at(0.1)])
    assert classes(rec) == {"t0": "indeterminate"}


def test_no_submitted_line_and_no_fault_is_not_indeterminate() -> None:
    """Regression (issue 13 #3): a client that never exposes prompt ids, on a fault-free
    run, was 'indeterminate … without ever learning its prompt id'. The ledger ties the
    prompt to the task by its workflow tag: a wrong report is wrong_outcome, none is lost."""
    wrong = record([prompt("p0", "t0"), prompt("p1", "t1")],
                   [result("t0", None, outcome="error"), result("t1", None, outputs=outputs_for("p1"))])
    res = score(wrong)
    assert classes(wrong) == {"t0": "wrong_outcome", "t1": "ok"}
    assert "without ever learning" not in "\n".join(res.reasons)
    assert "prompt_ids" in res.capabilities_missing
    silent = record([prompt("p0", "t0")], [])
    assert classes(silent) == {"t0": "lost"}


def test_a_fault_far_from_the_submission_does_not_excuse_a_missing_prompt_id() -> None:
    rec = record([prompt("p0", "t0")], [result("t0", None, outcome="error", t=4.0)], fault_specs=REPLY_LOST,
                 fault_log=[reply_lost_at(3.0)])
    assert classes(rec) == {"t0": "wrong_outcome"}


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
    per_client = score(record(prompts, reports, adapter={"instances": [{"hung": False}, {"crashed": True}]}))
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
    typed = RunRecord.from_json(rec)
    assert score_record(typed).to_dict() == first
    assert score_record(RunRecord.from_json(json.loads(json.dumps(typed.to_json())))).to_dict() == first
    with pytest.raises(ValueError, match="unknown keys"):
        RunRecord.from_json({**rec, "bogus": 1})


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


def conn(t: float, sid: str, event: str, conn_id: int) -> dict:
    return {"t": T0 + t, "sid": sid, "event": event, "conn_id": conn_id}


def test_reconnects_count_new_client_ids_too() -> None:
    prompts, reports = run_of_ok(1)
    # the socket drops while t0 is running; the client comes back with a new client id
    connections = [conn(0.0, SID, "open", 0), conn(0.5, SID, "abort", 0), conn(0.6, "sid-new", "open", 1)]
    assert score(record(prompts, reports, connections=connections)).metrics["reconnects"] == 1


def test_one_websocket_per_task_is_not_reconnecting() -> None:
    """Regression (issue 13 #4): a client that opens a socket (new client id) per task and
    closes it once the task is reported was counted as reconnecting once per task."""
    prompts, reports, connections = [], [], []
    for i in range(4):
        sid = f"sid-task-{i}"
        at = i * 2.0
        prompts.append(prompt(f"p{i}", f"t{i}", accepted=at + 0.1, started=at + 0.2, completed=at + 1.0, sid=sid))
        reports.append(result(f"t{i}", f"p{i}", t=at + 1.2))
        connections += [conn(at + 0.05, sid, "open", i), conn(at + 1.25, sid, "close", i)]
    res = score(record(prompts, reports, connections=connections, t_end=9.0))
    assert res.metrics["reconnects"] == 0 and res.verdict == "pass"
    # the same client, its third socket dropped by the server while t2 runs, then reopened
    dropped = [c for c in connections if not (c["conn_id"] == 2 and c["event"] == "close")]
    dropped += [conn(4.5, "sid-task-2", "abort", 2), conn(4.7, "sid-task-2", "open", 9), conn(5.3, "sid-task-2",
                                                                                              "close", 9)]
    assert score(record(prompts, reports, connections=dropped, t_end=9.0)).metrics["reconnects"] == 1


# --- issue 13: false failures, slow-burn bars, attribution, coverage, the client's words ---


def with_control(rec: dict, control: dict):
    """Score `rec` with `control` (a record of the same workload without faults) as its control run."""
    typed = RunRecord.from_json(rec)
    typed.control = summarise_control(score(control))
    return score_record(typed)


def test_null_outputs_are_not_compared_and_the_report_says_so() -> None:
    """Regression (issue 13 #1): `outputs: null` made every success wrong_outputs."""
    res = score(null_outputs_client(3))
    assert res.verdict == "pass" and [t.cls for t in res.tasks] == ["ok"] * 3
    assert res.metrics["wrong_outputs"] == 0 and res.metrics["outputs_not_compared"] == 3
    assert res.capabilities_missing == ["outputs"]
    assert all(not t.outputs_compared for t in res.tasks)


def test_empty_outputs_are_still_compared() -> None:
    rec = null_outputs_client(1)
    rec["reports"][-1]["outputs"] = {}
    assert score(rec).metrics["wrong_outputs"] == 1


def test_a_client_without_submitted_lines_passes_a_clean_run() -> None:
    res = score(no_submitted_client(3))
    assert res.verdict == "pass" and res.metrics["indeterminate"] == 0
    assert res.capabilities_missing == ["prompt_ids"]


def test_contradictory_callback_after_judgement_is_judged() -> None:
    """Regression (issue 13 #6): failed, then (after judgement) finished was dropped by the
    runner and scored as a plain wrong_outcome; the late second callback now counts."""
    res = score(late_reporter("error", "success"))
    assert [t.cls for t in res.tasks] == ["contradictory"] and res.verdict == "fail"
    assert res.tasks[0].reported_outcomes == ["error", "success"]
    assert "after judgement" in res.tasks[0].why
    dup = score(late_reporter("success", "success"))
    assert [t.cls for t in dup.tasks] == ["duplicate_report"] and "1 after judgement" in dup.tasks[0].why
    assert dup.metrics["latency_max"] == pytest.approx(2.0)  # the late one is not the answer


def test_a_task_reported_only_after_judgement_is_lost() -> None:
    rec = late_reporter("success", "success")
    rec["reports"] = [r for r in rec["reports"] if r.get("late") or r["type"] == "submitted"]
    res = score(rec)
    assert [t.cls for t in res.tasks] == ["lost"] and "only after judgement" in res.tasks[0].why


def test_request_storm_fails_relative_to_the_control() -> None:
    """Issue 13 #7: 116 requests per task (about 1000/s after a drop) against 3 clean."""
    control = storm_client(3, rate=1.0, faulted=False)
    res = with_control(storm_client(116, rate=1000.0), control)
    assert res.verdict == "fail" and res.attribution == "fault"
    text = "\n".join(res.reasons)
    assert "requests per task 116" in text and "request storm" in text
    assert res.metrics["peak_requests_per_s"] == 115  # 115 polls within 0.12 s
    calm = with_control(storm_client(4, rate=1.0), control)
    assert calm.verdict == "pass", calm.reasons


def test_request_storm_on_a_run_without_control_still_fails_on_requests_per_task() -> None:
    res = score(storm_client(116, rate=1000.0))
    assert res.verdict == "fail" and any(r.startswith("requests per task 116") for r in res.reasons)
    assert res.attribution == "unattributed"


def test_polling_each_pending_prompt_once_a_second_is_no_storm() -> None:
    """Regression (PyPI comfykit on server/restart-keeps-history): a client that polls each
    of its prompts once a second kept polling three prompts the restart had lost for the
    rest of the run — 1 request per second per pending prompt, not a storm — and was failed
    on 'requests per task' because the allowance was 2/s per client over the run."""
    prompts, reports = [], []
    for i in range(5):
        lost_on_restart = i >= 2
        prompts.append(prompt(f"p{i}", f"t{i}", accepted=0.1, started=None if lost_on_restart else 0.2,
                              completed=None if lost_on_restart else 1.0,
                              outcome=None if lost_on_restart else "success"))
        reports.append(submitted(f"t{i}", f"p{i}"))
        if not lost_on_restart:
            reports.append(result(f"t{i}", f"p{i}", t=1.1))
    polls = http_log([k * 0.333 for k in range(600)])  # three prompts, once a second each, 200 s
    rec = record(prompts, reports, http=polls, fault_specs=[{"kind": "restart", "when": {"at": 0.5}}],
                 fault_log=[fault(0.5, "restart", message=None, client=None)], time_scale=1.0, t_end=200.0)
    res = score(rec)
    assert res.metrics["http_per_task"] == 120 and res.metrics["pending_task_s"] == pytest.approx(3 * 199.9 + 2 * 1.0)
    assert not any(r.startswith("requests per task") for r in res.reasons), res.reasons


def test_cpu_spin_fails() -> None:
    """Issue 13 #8: a busy loop after a close was only a cpu_s figure."""
    control = spinning_client(0.4, faulted=False)
    res = with_control(spinning_client(3.8), control)
    assert res.metrics["cpu_per_wall"] == pytest.approx(0.95)
    assert res.verdict == "fail" and any("keeps a core busy" in r for r in res.reasons)
    assert with_control(spinning_client(0.5), control).verdict == "pass"
    assert score(spinning_client(3.8)).verdict == "fail"  # no control: the 0.9 floor


def test_batching_until_the_queue_is_empty_fails_on_latency() -> None:
    """Issue 13 #9: holding every result until the queue is empty (seconds late) passed."""
    res = score(with_expect(batching_client(4, hold_until=8.0), latency_floor=6.0))
    assert res.verdict == "fail" and res.metrics["latency_max"] == pytest.approx(6.05)
    assert any(r.startswith("latency p95 6.05 s > 6.00 s (the largest of the floor 6 s") for r in res.reasons)
    assert res.attribution == "clean_run" and res.clean_run_bug
    assert score(with_expect(batching_client(4), latency_floor=6.0)).verdict == "pass"


def test_a_slow_but_correct_client_passes_a_fault_free_run_without_latency_bars() -> None:
    """Regression (found on npm comfy-ui-client, which downloads every image before it
    reports): with no faults and no control run there is nothing to compare with, so the
    default latency floor (10 scenario s = 1 real s at time scale 0.1) must not fail it;
    only a bar the scenario sets itself applies."""
    slow = batching_client(1, hold_until=3.5, time_scale=0.1)  # 1.5 s real after completion
    assert score(slow).verdict == "pass"
    assert score(with_expect(slow, latency_floor=6.0)).verdict == "fail"


def with_expect(rec: dict, **bars: float) -> dict:
    rec["scenario"].setdefault("expect", {}).update(bars)
    return rec


def late_after_frame_fault(kind: str, late_by: float) -> dict:
    prompts, reports = [], []
    for i in range(4):
        p, r = ok_task(f"t{i}", f"p{i}", at=i * 0.5)
        prompts.append(p)
        reports += r
    reports[-1]["t"] = prompts[-1]["completed_at"] + late_by
    specs = [{"kind": kind, "when": {"on": "message", "type": "execution_success", "task": "t3"}}]
    return record(prompts, reports, fault_specs=specs, fault_log=[fault(2.5, kind, task="t3")], time_scale=1.0,
                  t_end=12.0)


def test_a_report_seconds_late_after_a_bad_final_frame_fails() -> None:
    control = late_after_frame_fault("bom", 0.2)
    control["scenario"]["faults"], control["fault_log"], control["scheduled"], control["fired"] = [], [], [], []
    res = with_control(late_after_frame_fault("bom", 7.0), control)
    assert res.verdict == "fail" and res.attribution == "fault"
    assert any(r.startswith("latency p95 7.00 s > 6.00 s") for r in res.reasons), res.reasons
    # a fault that breaks the connection earns recovery time: 7 s is fine there
    assert with_control(late_after_frame_fault("abort", 7.0), control).verdict == "pass"


def test_reconnect_storm_fails() -> None:
    prompts, reports = run_of_ok(2)
    connections = [{"t": T0, "sid": SID, "event": "open", "conn_id": 0},
                   {"t": T0 + 0.3, "sid": SID, "event": "abort", "conn_id": 0}]
    for k in range(1, 20):  # the client reopens and drops its own socket again and again
        connections += [{"t": T0 + 0.3 + k * 0.01, "sid": SID, "event": "open", "conn_id": k},
                        {"t": T0 + 0.305 + k * 0.01, "sid": SID, "event": "close", "conn_id": k}]
    specs = [{"kind": "abort", "when": {"at": 0.3}}]
    res = score(record(prompts, reports, connections=connections, fault_specs=specs,
                       fault_log=[fault(0.3, "abort", message=None)]))
    assert res.metrics["reconnects"] == 19 and res.verdict == "fail"
    assert any("reconnect storm" in r for r in res.reasons)


def test_many_client_instances_reconnecting_once_each_is_no_storm() -> None:
    """Regression: fifty reference clients whose sockets all dropped once on a loaded machine
    (about 50 reconnects around one abort fault) were failed as a reconnect storm; one
    instance reconnecting again and again among them still fails."""
    prompts, reports = run_of_ok(2)
    sids = [SID] + [f"c{i}" for i in range(1, 50)]

    def run(storm: int) -> dict:
        connections = []
        for n, sid in enumerate(sids):
            connections += [{"t": T0, "sid": sid, "event": "open", "conn_id": 1000 * n},
                            {"t": T0 + 0.3, "sid": sid, "event": "abort", "conn_id": 1000 * n},
                            {"t": T0 + 0.305, "sid": sid, "event": "open", "conn_id": 1000 * n + 1}]
        for k in range(2, storm + 2):  # SID, with work pending, drops its own socket again and again
            connections += [{"t": T0 + 0.3 + k * 0.001, "sid": SID, "event": "close", "conn_id": k - 1},
                            {"t": T0 + 0.3005 + k * 0.001, "sid": SID, "event": "open", "conn_id": k}]
        rec = record(prompts, reports, connections=connections, fault_specs=[{"kind": "abort", "when": {"at": 0.3}}],
                     fault_log=[fault(0.3, "abort", message=None, client=None)])  # a server-wide drop
        rec["scenario"]["clients"] = len(sids)
        return rec

    once = score(run(0))
    assert once.metrics["reconnects"] == 50 and once.verdict == "pass", once.reasons
    storm = score(run(200))
    assert storm.verdict == "fail" and any("reconnect storm" in r for r in storm.reasons), storm.reasons


# --- attribution ---------------------------------------------------------------------------


def lost_run(lost: int, *, faulted: bool) -> dict:
    prompts, reports = run_of_ok(4)
    lost_ids = {f"t{i}" for i in range(lost)}
    reports = [r for r in reports if r["type"] == "submitted" or r["task_id"] not in lost_ids]
    specs = [{"kind": "drop", "when": {"at": 0.3}}] if faulted else []
    return record(prompts, reports, fault_specs=specs, fault_log=[fault(0.3)] if faulted else [])


def test_attribution_from_the_control_run() -> None:
    clean_pass, clean_fail = lost_run(0, faulted=False), lost_run(1, faulted=False)
    by_faults = with_control(lost_run(1, faulted=True), clean_pass)
    assert (by_faults.verdict, by_faults.attribution, by_faults.clean_run_bug) == ("fail", "fault", False)
    assert by_faults.failure_kinds() == {"fault"}
    assert "fails only under the faults" in by_faults.attribution_detail
    same = with_control(lost_run(1, faulted=True), clean_fail)
    assert (same.attribution, same.clean_run_bug) == ("clean_run", True)
    assert same.failure_kinds() == {"clean_run"}
    assert "faults changed nothing" in same.attribution_detail
    worse = with_control(lost_run(3, faulted=True), clean_fail)
    assert (worse.attribution, worse.clean_run_bug) == ("fault", True)
    assert worse.failure_kinds() == {"fault", "clean_run"} and "lost: 3 > expect.lost 0" in worse.attribution_detail.split("the faults added:")[1]
    passing = with_control(lost_run(0, faulted=True), clean_fail)
    assert (passing.verdict, passing.attribution, passing.clean_run_bug) == ("pass", "pass", True)
    assert passing.failure_kinds() == set()
    alone = score(lost_run(1, faulted=True))
    assert (alone.attribution, alone.failure_kinds()) == ("unattributed", {"fault"})
    fault_free = score(lost_run(1, faulted=False))
    assert (fault_free.attribution, fault_free.clean_run_bug) == ("clean_run", True)
    assert by_faults.control is not None and by_faults.control["verdict"] == "pass"


# --- fault coverage --------------------------------------------------------------------------


def test_a_socket_fault_never_reaches_a_client_without_a_websocket() -> None:
    """Issue 13 #13: connection/silent-window passed clients that never open a WebSocket."""
    prompts, reports = run_of_ok(2)
    for r in reports:
        r["prompt_id"] = r["prompt_id"]
    window = {"t": T0 + 0.2, "t_end": T0 + 1.5, "kind": "silent", "spec_index": 0, "target": {},
              "detail": {"window_start": True}, "target_kind": "ws", "target_client_id": None}
    specs = [{"kind": "silent", "when": {"at": 0.2}, "duration": 13}]
    polling = score(record(prompts, reports, fault_specs=specs, fault_log=[window],
                           http=http_log([0.1, 0.6, 1.1, 1.6])))
    assert polling.verdict == "inconclusive" and polling.metrics["faults_reached"] == 0
    assert any("never reached this client (it never opened a WebSocket)" in r for r in polling.reasons)
    assert polling.faults[0].reached is False and polling.attribution == "inconclusive"
    connected = score(record(prompts, reports, fault_specs=specs, fault_log=[window],
                             connections=[{"t": T0, "sid": SID, "event": "open", "conn_id": 1}]))
    assert connected.verdict == "pass" and connected.metrics["faults_reached"] == 1


def test_a_frame_fault_for_another_client_id_counts_as_reached_by_target() -> None:
    prompts, reports = run_of_ok(2)
    log = [{"t": T0 + 0.5, "kind": "drop", "spec_index": 0, "target": {"client": SID, "message": "executed"},
            "target_kind": "ws", "target_client_id": SID}]
    res = score(record(prompts, reports, fault_specs=[{"kind": "drop", "when": {"at": 0.5}}], fault_log=log))
    assert res.faults[0].reached and res.faults[0].target_client_id == SID and res.verdict == "pass"


def test_fault_target_is_derived_for_logs_without_it() -> None:
    from comfy_chaos.harness.record import AppliedFault

    assert AppliedFault.from_json({"t": 1, "kind": "drop", "target": {"client": "s1"}}).target_kind == "ws"
    assert AppliedFault.from_json({"t": 1, "kind": "drop", "target": {"client": "s1"}}).target_client_id == "s1"
    assert AppliedFault.from_json({"t": 1, "kind": "http_error", "target": {"path": "/history"}}).target_kind == "http"
    assert AppliedFault.from_json({"t": 1, "kind": "toxic", "target": {}}).target_kind == "toxic"
    assert AppliedFault.from_json({"t": 1, "kind": "restart", "target": {}}).target_kind == "server"
    given = AppliedFault.from_json({"t": 1, "kind": "x", "target_kind": "http", "target_client_id": "c9"})
    assert (given.target_kind, given.target_client_id) == ("http", "c9")


# --- the client's own words ------------------------------------------------------------------


def test_the_clients_words_are_kept() -> None:
    prompts, reports = run_of_ok(2)
    reports[-1]["outcome"], reports[-1]["outputs"] = "error", None
    reports[-1]["detail"] = "ended expired: websocket closed 1006"
    reports.append({"t": T0 + 0.5, "client_index": 0, "type": "note", "detail": "reconnecting in 1 s"})
    reports.append({"t": T0 + 0.01, "client_index": 0, "type": "ready", "client": "comfy-js", "version": "1.2",
                    "caps": ["outputs"]})
    rec = record(prompts, reports, adapter={"exit_code": 0, "stderr_tail": "x" * 5000 + "WARN end"})
    rec["client_stats"] = {"polls": 7}
    res = score(rec)
    words = res.client_words
    assert words["errors"] == [{"task_id": "t1", "outcome": "error", "detail": "ended expired: websocket closed 1006"}]
    assert words["notes"] == [{"t": pytest.approx(0.5), "client_index": 0, "text": "reconnecting in 1 s"}]
    assert words["ready"] == [{"client_index": 0, "client": "comfy-js", "version": "1.2", "caps": ["outputs"]}]
    assert words["counters"] == {"polls": 7}
    assert len(words["stderr_tail"]) == 4096 and words["stderr_tail"].endswith("WARN end")
    assert any("the client said: 'ended expired: websocket closed 1006'" in r for r in res.reasons)


def test_gate_can_fail_on_either_kind() -> None:
    from comfy_chaos.harness.results import failing

    clean_pass, clean_fail = lost_run(0, faulted=False), lost_run(1, faulted=False)
    by_faults = with_control(lost_run(1, faulted=True), clean_pass)
    clean = with_control(lost_run(1, faulted=True), clean_fail)
    ok = with_control(lost_run(0, faulted=True), clean_pass)
    results = [by_faults, clean, ok]
    assert failing(results) == [by_faults, clean]
    assert failing(results, ("fault",)) == [by_faults]
    assert failing(results, ("clean_run",)) == [clean]
    with pytest.raises(ValueError, match="failure kinds"):
        failing(results, ("bogus",))


def test_latency_floor_is_never_below_a_real_second() -> None:
    """At time scale 0.1 a loaded machine's 0.8 s (real) delay is 8 scenario seconds: not a
    failure; 1.5 s real (15 scenario seconds) is."""
    starved = score(with_expect(batching_client(1, hold_until=2.75, time_scale=0.1), latency_floor=6.0))
    assert starved.metrics["latency_max"] == pytest.approx(8.0) and starved.verdict == "pass"
    slow = score(with_expect(batching_client(1, hold_until=3.45, time_scale=0.1), latency_floor=6.0))
    assert slow.verdict == "fail" and any("> 10.00 s (the largest of the floor 10 s" in r for r in slow.reasons)


def test_hang_before_the_deadline_says_when_the_client_was_stopped() -> None:
    """Regression (issue 13 #6, second half): 'did not finish by the deadline' was printed
    for adapters stopped right after an early judgement, long before the deadline."""
    prompts, reports = run_of_ok(1)
    rec = record(prompts, reports, adapter={"hung": True}, t_end=5.0)
    rec["scenario"]["deadline"] = 120  # 12 s real at time scale 0.1
    early = score(rec)
    assert any(r.startswith("hang: the client did not stop after the run was judged at +5.000 s (before the "
                            "deadline at +12.000 s)") for r in early.reasons)
    rec["scenario"]["deadline"] = 50
    assert "hang: the client did not finish by the deadline" in score(rec).reasons


def test_the_engines_unmet_entries_make_the_fault_unreached() -> None:
    """The fault engine writes `reached: false` for a client under test a fired fault never
    met (no socket to silence); its window-start entry names no client."""
    prompts, reports = run_of_ok(2)
    window = {"t": T0 + 0.2, "t_end": T0 + 1.5, "kind": "silent", "spec_index": 0, "target": {}, "detail": {},
              "target_kind": "ws", "target_client_id": None, "reached": True, "window": True}
    unmet = {"t": T0 + 1.5, "kind": "silent", "spec_index": 0, "target": {}, "target_kind": "ws",
             "target_client_id": SID, "reached": False, "detail": {"reason": "no WebSocket to silence"}}
    specs = [{"kind": "silent", "when": {"at": 0.2}, "duration": 13}]
    # the client had a socket open, yet the engine says it was not silenced: trust the engine
    connections = [{"t": T0, "sid": "someone-else", "event": "open", "conn_id": 1}]
    res = score(record(prompts, reports, fault_specs=specs, fault_log=[window, unmet], connections=connections))
    assert res.verdict == "inconclusive" and res.metrics["faults_reached"] == 0
    assert (res.metrics["faults_applied"], res.metrics["faults_unmet"]) == (1, 1)
    assert any("silent never reached c0 (no WebSocket to silence)" in r for r in res.reasons), res.reasons
    # the engine names the client on the window start too (the window opened for it)
    named = {**window, "target_client_id": SID}
    assert score(record(prompts, reports, fault_specs=specs, fault_log=[named, unmet])).verdict == "inconclusive"
    typed = RunRecord.from_json(record(prompts, reports, fault_specs=specs, fault_log=[window, unmet]))
    assert [f.reached for f in typed.fault_log] == [True, False] and typed.fault_log[0].window
