"""Scenario inputs are bounded: an alias bomb, a huge workload, infinite times and an absurd
time scale are refused at load time with an error naming the field (exit 3 from the CLI),
instead of exhausting memory, never ending, or blaming the client."""
from __future__ import annotations

from pathlib import Path

import pytest

from comfy_chaos.harness.scenario import MAX_TASKS, ScenarioError, parse_scenario

from .cli_helpers import cli

LOL = "\n".join(
    [f'a: &a [{", ".join(["lol"] * 9)}]']
    + [f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]" for prev, name in zip("abcdefgh", "bcdefghi")]
)


def refused(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, source="s.yaml")
    return str(caught.value)


def test_a_yaml_alias_bomb_is_refused_before_it_expands() -> None:
    assert len(LOL) < 600  # a few hundred bytes that expand to 9**9 nodes
    assert "YAML too large" in refused(LOL)


@pytest.mark.parametrize("text", ["a: &a [*a]", "a: &a {b: *a}"])
def test_a_recursive_alias_is_refused(text: str) -> None:
    assert "refers to itself" in refused(text)


def test_deep_nesting_and_a_huge_file_are_refused() -> None:
    assert "nested too deeply" in refused("x: " + "[" * 500 + "]" * 500)
    assert "file too large" in refused("description: " + "x" * (2 * 1024 * 1024))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workload: {tasks: 1000000}", f"workload.tasks: expected an integer in [1, {MAX_TASKS}], got 1000000"),
        ("clients: 100000", "clients: expected an integer in [1, 1000], got 100000"),
        ("deadline: .inf", "deadline: expected a finite number, got inf"),
        ("grace: .nan", "grace: expected a finite number, got nan"),
        ("deadline: 1000000000000.0", "deadline: expected a number in (0, 86400], got 1000000000000.0"),
        ("workload: {tasks: 3, submit: {pattern: interval, interval: .inf}}",
         "workload.submit.interval: expected a finite number, got inf"),
        ("workload: {tasks: 4, submit: {pattern: interval, interval: 30}}\ndeadline: 60",
         "workload.submit.interval: the last task (t3) would be due at 90 s, not before the deadline (60 s)"),
        ("faults: [{kind: drop, when: {at: .inf}}]", "faults[0].when.at: expected a finite number <= 86400, got inf"),
        ("faults: [{kind: silent, duration: .inf, when: {at: 1}}]", "faults[0].duration: expected a finite number"),
        ("time_scale: 0.000001", "time_scale: expected a number in [0.01, 10], got 1e-06"),
    ],
)
def test_counts_and_times_are_bounded_with_a_clear_error(text: str, message: str) -> None:
    assert message in refused(text)


def test_the_bounds_still_admit_the_largest_reasonable_scenarios() -> None:
    big = parse_scenario(f"workload: {{tasks: {MAX_TASKS}}}\nclients: 200\ndeadline: 3000\ntime_scale: 0.01")
    assert big.workload.tasks == MAX_TASKS




@pytest.mark.e2e
def test_the_cli_refuses_an_alias_bomb_and_an_absurd_time_scale_with_exit_3(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(LOL)
    (tmp_path / "ok.yaml").write_text("workload: {tasks: 1}\n")
    run = cli(tmp_path, "run", "bomb.yaml")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "YAML too large" in run.stderr and "Traceback" not in run.stderr
    run = cli(tmp_path, "run", "ok.yaml", "--time-scale", "1e-300")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "--time-scale: expected a number in [0.01, 10], got 1e-300" in run.stderr
