"""`comfy-chaos bench`: seeds, per-client totals from hand-made results, and one small real
bench (2 scenarios × 2 clients × 2 seeds) whose matrix, totals, JSON and HTML are checked."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from comfy_chaos.harness.bench import client_totals, nearest_rank, render_totals, seeds_for
from comfy_chaos.harness.cli.bench import main
from comfy_chaos.harness.results import ScenarioResult, TaskScore, load_results


def _result(scenario: str, client: str, verdict: str, *, latencies: list[float], time_scale: float = 0.1,
            **metrics: object) -> ScenarioResult:
    tasks = [TaskScore(task_id=f"t{i}", cls="ok", latency=lat) for i, lat in enumerate(latencies)]
    base = {"tasks": len(latencies), "http_requests": 3 * len(latencies), "reconnects": 1}
    return ScenarioResult(scenario=scenario, client=client, seed=1, time_scale=time_scale, verdict=verdict, reasons=[], replay="",
                          metrics={**base, **metrics}, tasks=tasks)


def test_seeds_from_the_scenario_seed_or_explicit() -> None:
    assert seeds_for(7, count=3, explicit=None) == [7, 1007, 2007]
    assert seeds_for(7, count=None, explicit=None) == [7]
    assert seeds_for(7, count=3, explicit=[1, 2]) == [1, 2]


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert nearest_rank(values, 95) == 19.0 and nearest_rank(values, 50) == 10.0
    assert nearest_rank([], 95) is None


def test_client_totals_sum_problems_and_pool_latencies() -> None:
    results = [
        _result("a", "good", "pass", latencies=[0.1, 0.2]),
        _result("b", "good", "pass", latencies=[0.3, 0.4]),
        _result("a", "bad", "fail", latencies=[1.0], lost=1, hang=True),
        _result("b", "bad", "fail", latencies=[2.0, 3.0], duplicate_report=1, phantom=2, time_scale=1.0),
        _result("b", "bad", "pass", latencies=[4.0, 5.0], time_scale=1.0),
    ]
    good, bad = client_totals(results, {"a": 0.1, "b": 0.1})
    assert (good.client, good.scenarios_passed, good.scenarios, good.runs_passed) == ("good", 2, 2, 2)
    assert good.latency_p95 == 0.4 and good.latency_max == 0.4 and good.http_per_task == 3.0
    assert good.reconnects_per_task == pytest.approx(2 / 4) and good.unscaled_runs == 0
    assert (bad.scenarios_passed, bad.runs, bad.runs_passed) == (0, 3, 1)
    assert (bad.lost, bad.phantom, bad.duplicate, bad.hangs, bad.tasks) == (1, 2, 1, 1, 5)
    assert bad.latency_p50 == 3.0 and bad.unscaled_runs == 2
    text = render_totals([good, bad])
    assert "bad cannot be time-scaled: 2 of its 3 runs ran at time scale 1.0" in text
    assert re.search(r"^good\s+2/2\s+2/2\s+4\s+0", text, re.MULTILINE)


SCENARIO = """
name: {name}
description: small bench scenario
seed: 5
workload: {{tasks: 3, workflow: basic}}
faults: {faults}
deadline: 20
grace: 10
"""


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_bench_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "fam").mkdir()
    (tmp_path / "fam" / "calm.yaml").write_text(SCENARIO.format(name="calm", faults="[]"))
    drop = '[{kind: drop, when: {on: message, type: [execution_success, "executing:null"], task: t1}, count: 2}]'
    (tmp_path / "fam" / "drop.yaml").write_text(SCENARIO.format(name="drop", faults=drop))
    out = tmp_path / "report"
    code = main([str(tmp_path / "fam"), "--client", "reference", "--client", "naive", "--seeds", "2",
                 "-j", "2", "--report-dir", str(out)])
    printed = capsys.readouterr().out
    assert code == 1, printed  # naive loses t1 of `drop`
    results = load_results(out / "results.json")
    pairs = sorted((r.scenario, r.client, r.seed) for r in results.results)
    assert pairs == sorted((s, c, seed) for s in ("calm", "drop") for c in ("reference", "naive") for seed in (5, 1005))
    drop_naive = [r for r in results.results if (r.scenario, r.client) == ("drop", "naive")]
    assert all(r.verdict == "fail" and r.metrics["lost"] == 1 for r in drop_naive)
    assert all(r.verdict == "pass" for r in results.results if r.client == "reference")
    totals = {t["client"]: t for t in results.run["bench"]["client_totals"]}
    assert totals["naive"]["lost"] == 2 and totals["naive"]["scenarios_passed"] == 1
    assert totals["reference"]["lost"] == 0 and totals["reference"]["scenarios_passed"] == 2
    assert re.search(r"^drop\s+PASS 2/2 .*FAIL \(faults\) 0/2 lost 2", printed, re.MULTILINE), printed
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="client-totals"' in page
    links = re.findall(r'<td class="cell fail"[^>]*><a href="#([^"]+)"', page)
    assert links and all(f'id="{anchor}"' in page for anchor in links)
    json.loads((out / "results.json").read_text())


def test_bench_usage_errors_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "0"]) == 3
    assert main([str(tmp_path / "missing")]) == 3
    assert main(["--seeds", "2", "--seed", "3"]) == 3
    err = capsys.readouterr().err
    assert "--seeds" in err and "no such file" in err and "not allowed with" in err
