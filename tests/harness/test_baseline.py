"""CI gate: regressions against a stored baseline."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfy_chaos.harness.baseline import Tolerance, check_baseline, compare, main, write_baseline
from comfy_chaos.harness.results import ResultsFile, load_results, save_results
from comfy_chaos.harness.scoring import score_json as score

from .scoring_records import ok_task, record


def run(*, lost: tuple[str, ...] = (), report_delay: float = 0.2, hung: bool = False, crashed: bool = False,
        name: str = "s", client: str = "reference", tasks: int = 4, fault_specs: list | None = None):
    prompts, reports = [], []
    for i in range(tasks):
        task = f"t{i}"
        p, r = ok_task(task, f"p{i}", at=i * 0.1)
        prompts.append(p)
        for rep in r:
            if rep["type"] == "result":
                if task in lost:
                    continue
                rep["t"] = p["completed_at"] + report_delay
            reports.append(rep)
    rec = record(prompts, reports, name=name, adapter={"hung": hung, "crashed": crashed, "exit_code": 1 if crashed else 0},
                 fault_specs=fault_specs or [])
    rec["client"] = client
    return score(rec)


def results(*scored) -> ResultsFile:
    return ResultsFile(run={}, results=list(scored))


def kinds(comparison) -> list[str]:
    return [r.kind for r in comparison.regressions]


def test_identical_runs_have_no_regressions() -> None:
    comparison = compare(results(run()), results(run()))
    assert comparison.ok and comparison.regressions == [] and comparison.notes == []


def test_newly_lost_task_and_verdict_pass_to_fail() -> None:
    comparison = compare(results(run(lost=("t2",))), results(run()))
    assert kinds(comparison) == ["lost", "verdict"]
    assert str(comparison.regressions[0]) == "s / reference: lost: newly lost: t2"
    assert str(comparison.regressions[1]) == "s / reference: verdict: pass → fail"


def test_a_task_lost_in_both_is_not_new_but_another_one_is() -> None:
    comparison = compare(results(run(lost=("t1", "t3"))), results(run(lost=("t1",))))
    assert kinds(comparison) == ["lost"] and comparison.regressions[0].detail == "newly lost: t3"


def test_fixed_task_is_a_note_not_a_regression() -> None:
    comparison = compare(results(run()), results(run(lost=("t1",))))
    assert comparison.ok
    assert "s / reference: no longer lost: t1" in comparison.notes
    assert "s / reference: verdict fail → pass" in comparison.notes


def test_new_hang_and_crash() -> None:
    comparison = compare(results(run(hung=True, crashed=True)), results(run()))
    assert {"hang", "crash", "verdict"} == set(kinds(comparison))
    assert compare(results(run(hung=True)), results(run(hung=True))).ok


def test_latency_needs_relative_absolute_and_real_time_tolerance() -> None:
    base = results(run(report_delay=0.1))  # p95 1.0 scenario s at time scale 0.1
    no_real_floor = Tolerance(latency_abs_real=0)
    slower_but_small = results(run(report_delay=0.14))  # 1.4 s: +40 %
    assert compare(slower_but_small, base, no_real_floor).ok
    slower = results(run(report_delay=0.17))  # 1.7 s: +70 % and +0.7 s
    assert kinds(compare(slower, base, no_real_floor)) == ["latency"]
    tiny = results(run(report_delay=0.001))
    tiny_slower = results(run(report_delay=0.004))  # +300 % but only +0.03 s
    assert compare(tiny_slower, tiny, no_real_floor).ok
    assert compare(slower, base, Tolerance(latency_ratio=1.0, latency_abs_real=0)).ok
    # +0.07 real seconds is a loaded machine's jitter, not a regression (default: 0.25 real s)
    assert compare(slower, base).ok
    much_slower = results(run(report_delay=0.5))  # 5.0 scenario s: +0.4 real s
    regression = compare(much_slower, base).regressions
    assert [r.kind for r in regression] == ["latency"] and "+0.25 real s" in regression[0].detail


def test_pairs_missing_or_new_are_notes() -> None:
    comparison = compare(results(run(name="a")), results(run(name="b")))
    assert comparison.ok
    assert comparison.notes == ["b / reference: in the baseline, not in this run", "a / reference: new (no baseline)"]


def test_pass_to_inconclusive_is_a_note() -> None:
    inconclusive = run(fault_specs=[{"kind": "drop", "when": {"at": 99}}])
    inconclusive_file = results(inconclusive)
    inconclusive_file.results[0].verdict = "inconclusive"
    comparison = compare(inconclusive_file, results(run()))
    assert comparison.ok and "s / reference: verdict pass → inconclusive" in comparison.notes


def test_repeats_are_merged_worst_first() -> None:
    comparison = compare(results(run(), run(lost=("t0",))), results(run(), run()))
    assert kinds(comparison) == ["lost", "verdict"]


def test_write_baseline_then_compare_via_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = save_results(tmp_path / "good.json", results(run()))
    bad = save_results(tmp_path / "bad.json", results(run(lost=("t1",))))
    base = tmp_path / "ci" / "baseline.json"
    assert main(["write", str(good), str(base)]) == 0
    stored = load_results(base)
    assert stored.run["baseline_of"] == str(good) and stored.results[0].frames == {}
    assert main(["compare", str(good), str(base)]) == 0
    assert main(["compare", str(bad), str(base)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION s / reference: lost: newly lost: t1" in out
    (tmp_path / "junk.json").write_text(json.dumps({"schema_version": 9}))
    assert main(["compare", str(tmp_path / "junk.json"), str(base)]) == 3
    assert main(["frobnicate"]) == 3


def test_check_and_write_baseline_take_results_directly(tmp_path: Path) -> None:
    lossy = run(lost=("t1",))
    assert lossy.frames
    base = write_baseline([lossy], tmp_path / "baseline.json")
    assert lossy.frames, "writing a baseline must not change the results passed in"
    assert load_results(base).results[0].frames == {}
    assert check_baseline([run(lost=("t1",))], base) == []
    assert check_baseline(results(run(lost=("t0", "t1"))), base) == ["s / reference: lost: newly lost: t0"]


def test_a_new_pair_that_fails_is_a_regression_a_passing_one_a_note() -> None:
    comparison = compare(results(run(name="a"), run(name="b", lost=("t1",))), results(run(name="a")))
    assert kinds(comparison) == ["new failure"] and comparison.matched == 1
    assert str(comparison.regressions[0]) == "b / reference: new failure: fails and is not in the baseline"


def test_inconclusive_to_fail_is_a_regression() -> None:
    base = results(run())
    base.results[0].verdict = "inconclusive"
    assert "verdict" in kinds(compare(results(run(lost=("t1",))), base))


def test_gate_decisions() -> None:
    from comfy_chaos.harness.baseline import gate

    same = compare(results(run(lost=("t1",))), results(run(lost=("t1",))))
    assert gate(same, "b.json").code == 0  # a known failure that stays the same
    assert gate(compare(results(run(lost=("t1", "t2"))), results(run(lost=("t1",)))), "b.json").code == 1
    nothing = gate(compare(results(run(name="a")), results(run(name="b"))), "b.json")
    assert nothing.code == 3 and "no run matched the baseline b.json" in nothing.summary
    inconclusive = results(run())
    inconclusive.results[0].verdict = "inconclusive"
    comparison = compare(inconclusive, results(run()))
    assert gate(comparison, "b.json").code == 0
    assert gate(comparison, "b.json", fail_on_inconclusive=True).code == 2
