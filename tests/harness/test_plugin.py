"""The pytest plugin, run in a child pytest on a scratch scenario directory."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # a child pytest session per test

ROOT = Path(__file__).resolve().parents[2]

OK = """
seed: 3
workload: {tasks: 2, workflow: basic}
deadline: 60
grace: 5
"""
SLOW = OK + "tags: [slow]\n"
BROKEN = OK + "faults:\n  - {kind: drop, probability: 1.5}\n"
DROP_T1 = """
seed: 11
workload: {tasks: 3, workflow: basic}
faults:
  - kind: drop
    when: {on: message, type: [execution_success, "executing:null"], task: t1}
    count: 2
deadline: 60
grace: 10
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    shutil.copy(ROOT / "scenarios" / "conftest.py", scenarios / "conftest.py")
    for name, text in {"ok": OK, "slow": SLOW, "broken": BROKEN, "drop": DROP_T1}.items():
        (scenarios / f"{name}.yaml").write_text(text)
    return tmp_path


def pytest_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args],
        cwd=cwd, capture_output=True, text=True, timeout=240,
    )


def test_scenarios_become_items_per_client_and_failures_name_the_lost_task(suite: Path) -> None:
    run = pytest_run(suite, "scenarios", "--client", "naive", "--client", "reference", "--report-dir", "rep")
    out = run.stdout
    assert run.returncode == 1, out
    assert "PASSED scenarios/ok.yaml::ok[naive]" in out and "PASSED scenarios/ok.yaml::ok[reference]" in out
    assert "PASSED scenarios/drop.yaml::drop[reference]" in out
    assert "FAILED scenarios/drop.yaml::drop[naive]" in out
    assert "t1 (prompt" in out and "lost" in out and "replay: comfy-chaos replay" in out and "seed: 11" in out
    assert "FAILED scenarios/broken.yaml::load" in out and "faults[0].probability" in out
    assert "slow" not in "".join(line for line in out.splitlines() if "PASSED" in line)
    assert "2 deselected" in out  # slow.yaml × 2 clients
    results = json.loads((suite / "rep" / "results.json").read_text())["results"]
    assert sorted((r["scenario"], r["client"], r["verdict"]) for r in results) == [
        ("drop", "naive", "fail"), ("drop", "reference", "pass"), ("ok", "naive", "pass"), ("ok", "reference", "pass")
    ]
    assert (suite / "rep" / "index.html").is_file()


def test_slow_scenarios_run_with_run_slow_or_marker(suite: Path) -> None:
    assert "slow.yaml::slow[reference]" not in pytest_run(suite, "scenarios", "--collect-only").stdout
    assert "slow.yaml::slow[reference]" in pytest_run(suite, "scenarios", "--collect-only", "--run-slow").stdout
    assert "slow.yaml::slow[reference]" in pytest_run(suite, "scenarios", "--collect-only", "-m", "slow").stdout


def test_xdist_workers_results_are_merged(suite: Path) -> None:
    (suite / "scenarios" / "broken.yaml").unlink()
    run = pytest_run(suite, "scenarios", "-n", "2", "--client", "naive", "--report-dir", "rep")
    assert run.returncode == 1, run.stdout
    results = json.loads((suite / "rep" / "results.json").read_text())["results"]
    assert sorted((r["scenario"], r["verdict"]) for r in results) == [("drop", "fail"), ("ok", "pass")]


def test_baseline_is_checked_at_session_end(suite: Path) -> None:
    for name in ("broken", "drop"):
        (suite / "scenarios" / f"{name}.yaml").unlink()
    first = pytest_run(suite, "scenarios", "--report-dir", "rep")
    assert first.returncode == 0, first.stdout
    shutil.copy(suite / "rep" / "results.json", suite / "baseline.json")
    second = pytest_run(suite, "scenarios", "--baseline", "baseline.json")
    assert second.returncode == 0 and "no regression against baseline.json" in second.stdout


def test_yaml_outside_a_scenario_directory_is_not_collected(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("just: data\n")
    (tmp_path / "test_a.py").write_text("def test_a():\n    assert True\n")
    run = pytest_run(tmp_path)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout


def test_seed_and_time_scale_overrides_reach_the_run(suite: Path) -> None:
    run = pytest_run(suite, "scenarios/drop.yaml", "--client", "naive", "--seed", "77", "--time-scale", "0.05",
                     "--report-dir", "rep")
    assert run.returncode == 1, run.stdout
    assert "seed: 77" in run.stdout and "--seed 77" in run.stdout and "time scale 0.05" in run.stdout
    result = json.loads((suite / "rep" / "results.json").read_text())["results"][0]
    assert (result["seed"], result["time_scale"]) == (77, 0.05)
