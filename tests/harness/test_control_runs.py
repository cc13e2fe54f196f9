"""Control-run helpers (harness.control_runs): the cache key, the fault-free scenario,
the fixed-timer hints."""
from __future__ import annotations

from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.harness.control_runs import (
    control_key,
    control_scenario,
    fixed_timer_hints,
    needs_control,
)
from comfy_chaos.harness.record import HttpEvent
from comfy_chaos.harness.scenario import parse_scenario

TEXT = """
name: k
seed: 5
workload: {tasks: 3, workflow: basic}
faults:
  - kind: drop
    when: {on: message, type: executed, task: t1}
expect: {lost: 0}
"""


def test_the_control_scenario_has_the_workload_and_no_fault() -> None:
    scenario = parse_scenario(TEXT, source="k.yaml")
    clean = control_scenario(scenario)
    assert clean.fault_schedule() == [] and clean.workload == scenario.workload and clean.seed == 5
    assert scenario.fault_schedule() != []  # the original is untouched


def test_the_key_ignores_faults_and_bars_but_not_workload_client_seed_or_scale() -> None:
    scenario = parse_scenario(TEXT, source="k.yaml")
    other_faults = parse_scenario(TEXT.replace("executed", "executing").replace("lost: 0", "lost: 1"), source="x.yaml")
    key = control_key(scenario, "naive", 5, 0.1)
    assert control_key(other_faults, "naive", 5, 0.1) == key
    assert control_key(parse_scenario(TEXT.replace("tasks: 3", "tasks: 4"), source="k.yaml"), "naive", 5, 0.1) != key
    assert len({key, control_key(scenario, "reference", 5, 0.1), control_key(scenario, "naive", 6, 0.1),
                control_key(scenario, "naive", 5, 1.0)}) == 4


def requests(path: str, times: list[float]) -> list[HttpEvent]:
    return [HttpEvent(t, "GET", path, 200) for t in times]


def test_a_regular_long_poll_at_a_small_time_scale_is_a_fixed_timer_hint() -> None:
    http = requests("/history/5b0c1d2e-aaaa-bbbb-cccc-000000000000", [10.0, 11.0, 12.0, 13.01, 14.0])
    http += requests("/queue", [10.0, 10.05, 10.1, 10.15])  # 0.5 scenario s: scales fine
    hints = fixed_timer_hints(http, TimeScale(0.1), "cmd:x")
    assert len(hints) == 1
    assert "GET /history/{id} every 1.00 s (real)" in hints[0] and "every 10.0 scenario seconds" in hints[0]
    assert "--unscalable cmd:x" in hints[0]


def test_no_hint_at_time_scale_one_or_for_irregular_requests() -> None:
    regular = requests("/history", [0.0, 1.0, 2.0, 3.0, 4.0])
    assert fixed_timer_hints(regular, TimeScale(1.0), "c") == []
    assert fixed_timer_hints(requests("/history", [0.0, 1.0, 1.2, 4.0, 4.1, 9.0]), TimeScale(0.1), "c") == []


def test_a_control_is_needed_for_a_failure_and_for_bars_only_a_control_can_judge() -> None:
    from types import SimpleNamespace

    def result(verdict: str, **metrics: float | None) -> SimpleNamespace:
        return SimpleNamespace(verdict=verdict, metrics={"peak_requests_per_s": 3.0, "cpu_per_wall": None, **metrics})

    assert needs_control(result("fail"), {})
    assert not needs_control(result("pass"), {})
    assert not needs_control(result("inconclusive"), {})
    assert needs_control(result("pass", peak_requests_per_s=25.0), {})  # a storm? only a control says
    assert not needs_control(result("pass", peak_requests_per_s=25.0), {"peak_rps": 40})
    assert needs_control(result("pass", cpu_per_wall=0.6), {})  # the control may tighten 0.9 to 0.5
    assert not needs_control(result("pass", cpu_per_wall=0.2), {})
