"""Shrinking: ddmin over the fault list (sans-IO, with a known failure condition), and end to
end with the naive client on a random-chaos scenario: the shrunk schedule is smaller, is
written as a regression scenario, and that file still fails on replay."""
from __future__ import annotations

from pathlib import Path

import pytest

from comfy_chaos.fake_comfy.faults.spec import FaultSpec
from comfy_chaos.harness.chaos import expand
from comfy_chaos.harness.runner import Harness
from comfy_chaos.harness.scenario import load_scenario, parse_scenario
from comfy_chaos.harness.shrink import minimize, regression_scenario, shrink, write_regression
from comfy_chaos.harness.suite import run_one


def _spec(kind: str, **extra: object) -> FaultSpec:
    return FaultSpec.model_validate({"kind": kind, "when": {"on": "task_start", "task": "t0"}, **extra})


async def test_minimize_keeps_exactly_the_faults_the_failure_needs() -> None:
    specs = [_spec("noise"), _spec("drop"), _spec("bom"), _spec("abort"), _spec("heartbeat"), _spec("close")]
    calls: list[list[str]] = []

    async def fails(candidate: list[FaultSpec]) -> bool:
        kinds = [s.kind for s in candidate]
        calls.append(kinds)
        return "drop" in kinds and "abort" in kinds

    shrunk = await minimize(specs, fails)
    assert [s.kind for s in shrunk] == ["drop", "abort"]
    assert [] in calls, "the empty schedule is tried first"


async def test_minimize_simplifies_params_count_and_duration() -> None:
    specs = [
        _spec("silent", duration=40.0),
        _spec("truncate", params={"at": 5}, count=3),
    ]

    async def fails(candidate: list[FaultSpec]) -> bool:
        return len(candidate) == 2  # needs both, whatever their settings

    shrunk = await minimize(specs, fails)
    assert shrunk[0].duration is not None and shrunk[0].duration < 1.0
    assert shrunk[1].params == {} and shrunk[1].count == 1


async def test_minimize_returns_empty_when_the_client_fails_anyway() -> None:
    async def fails(candidate: list[FaultSpec]) -> bool:
        return True

    assert await minimize([_spec("noise"), _spec("drop")], fails) == []


CHAOS = """
name: shrink-me
description: random chaos for the shrink test; junk frames make the naive client fail
seed: {seed}
time_scale: 0.05
workload: {{tasks: 4, workflow: basic, submit: {{pattern: interval, interval: 1}}}}
chaos: {{faults: 4, kinds: [noise, noise_binary, junk_prefix]}}
deadline: 30
grace: 10
"""


def _seed_with_one_junk_fault() -> int:
    """A seed whose schedule holds exactly one junk_prefix among four faults, first in the
    list (the lowest index wins a frame several faults target), so a shrink must remove the
    unknown-type noise the naive client ignores."""
    from comfy_chaos.harness.chaos import Chaos

    chaos = Chaos(faults=4, kinds=["noise", "noise_binary", "junk_prefix"])
    for seed in range(1, 500):
        kinds = [s.kind for s in expand(chaos, seed=seed, tasks=4)]
        if kinds.count("junk_prefix") == 1 and kinds[0] == "junk_prefix":
            return seed
    raise AssertionError("no seed with exactly one junk_prefix fault")


@pytest.mark.e2e
@pytest.mark.timeout(600)
async def test_shrink_naive_on_chaos_scenario(tmp_path: Path) -> None:
    seed = _seed_with_one_junk_fault()
    path = tmp_path / "shrink-me.yaml"
    path.write_text(CHAOS.format(seed=seed), encoding="utf-8")
    scenario = load_scenario(path)
    lines: list[str] = []
    async with Harness() as harness:
        result = await shrink(scenario, "naive", seed=seed, harness=harness, replays=2, progress=lines.append)
        assert result.reproducible, f"seed {seed}: naive should fail this chaos scenario\n" + "\n".join(lines)
        assert len(result.shrunk) < len(result.original) == 4, f"seed {seed}\n" + "\n".join(lines)
        kept = [line for line in lines if line.endswith("failed 2/2")]
        assert kept and result.runs >= result.candidates + len(kept), "a candidate is kept only after 2 failing replays"
        out = write_regression(regression_scenario(scenario, result.shrunk, client="naive", seed=seed), tmp_path / "regressions")
        regression = load_scenario(out)
        assert regression.chaos is None and len(regression.faults) == len(result.shrunk)
        assert "naive" in regression.description and str(seed) in regression.description
        assert "regression" in regression.tags
        replayed = await run_one(harness, regression, "naive")
        assert replayed.verdict == "fail", f"seed {seed}: shrunk schedule no longer fails\n" + "\n".join(replayed.reasons)


def test_regression_scenario_round_trips_through_yaml(tmp_path: Path) -> None:
    scenario = parse_scenario(CHAOS.format(seed=3), source="scenarios/chaos/x.yaml")
    data = regression_scenario(scenario, scenario.fault_schedule()[:2], client="cmd:node a.js", seed=3)
    path = write_regression(data, tmp_path)
    assert path.name == "shrink-me-cmd-node-a-js-seed3.yaml"
    loaded = load_scenario(path)
    assert [s.model_dump() for s in loaded.faults] == [s.model_dump() for s in scenario.fault_schedule()[:2]]
    assert loaded.workload == scenario.workload and loaded.deadline == scenario.deadline


def test_shrink_cli_usage_errors_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from comfy_chaos.harness.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(CHAOS.format(seed=1), encoding="utf-8")
    assert main(["shrink", str(path), "--client", "naive"]) == 3
    assert main(["shrink", str(path), "--client", "no-such-client", "--seed", "1"]) == 3
    assert main(["shrink", str(tmp_path / "missing.yaml"), "--client", "naive", "--seed", "1"]) == 3
    assert main(["shrink", str(path), "--client", "naive", "--seed", "1", "--replays", "0"]) == 3
    err = capsys.readouterr().err
    assert "--seed" in err and "unknown adapter" in err and "cannot read" in err and "--replays" in err


@pytest.mark.timeout(300)
def test_shrink_cli_writes_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from comfy_chaos.harness.cli import main

    seed = _seed_with_one_junk_fault()
    path = tmp_path / "shrink-me.yaml"
    path.write_text(CHAOS.format(seed=seed), encoding="utf-8")
    code = main(["shrink", str(path), "--client", "naive", "--seed", str(seed), "--replays", "2",
                 "--out", str(tmp_path / "regressions")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "candidate 1 (4 faults): failed 2/2" in out and "regression written to" in out
    written = list((tmp_path / "regressions").glob("*.yaml"))
    assert [p.name for p in written] == [f"shrink-me-naive-seed{seed}.yaml"]
    assert 0 < len(load_scenario(written[0]).faults) < 4
