"""The pytest plugin, run in a child pytest on a scratch scenario directory."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .cli_helpers import DROP_T1, OK

pytestmark = pytest.mark.e2e  # a child pytest session per test

ROOT = Path(__file__).resolve().parents[2]

SLOW = OK + "tags: [slow]\n"
BROKEN = OK + "faults:\n  - {kind: drop, probability: 1.5}\n"


CONFTEST = "from comfy_chaos.harness.pytest_plugin import collect_scenario_file as pytest_collect_file  # noqa: F401\n"


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "conftest.py").write_text(CONFTEST)
    for name, text in {"ok": OK, "slow": SLOW, "broken": BROKEN, "drop": DROP_T1}.items():
        (scenarios / f"{name}.yaml").write_text(text)
    return tmp_path


def pytest_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args],
        cwd=cwd, capture_output=True, text=True, timeout=240,
    )


def test_scenarios_become_items_per_client_and_failures_name_the_lost_task(suite: Path) -> None:
    run = pytest_run(suite, "scenarios", "--chaos-client", "naive", "--chaos-client", "reference", "--chaos-report-dir", "rep")
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
    assert "slow.yaml::slow[reference]" in pytest_run(suite, "scenarios", "--collect-only", "--chaos-run-slow").stdout
    assert "slow.yaml::slow[reference]" in pytest_run(suite, "scenarios", "--collect-only", "-m", "slow").stdout


def test_xdist_workers_results_are_merged(suite: Path) -> None:
    (suite / "scenarios" / "broken.yaml").unlink()
    run = pytest_run(suite, "scenarios", "-n", "2", "--chaos-client", "naive", "--chaos-report-dir", "rep")
    assert run.returncode == 1, run.stdout
    results = json.loads((suite / "rep" / "results.json").read_text())["results"]
    assert sorted((r["scenario"], r["verdict"]) for r in results) == [("drop", "fail"), ("ok", "pass")]


def test_baseline_is_checked_at_session_end(suite: Path) -> None:
    for name in ("broken", "drop"):
        (suite / "scenarios" / f"{name}.yaml").unlink()
    first = pytest_run(suite, "scenarios", "--chaos-report-dir", "rep")
    assert first.returncode == 0, first.stdout
    shutil.copy(suite / "rep" / "results.json", suite / "baseline.json")
    second = pytest_run(suite, "scenarios", "--chaos-baseline", "baseline.json")
    assert second.returncode == 0 and "no regression against baseline.json" in second.stdout, second.stdout


def test_baseline_known_failure_xfails_and_a_new_one_fails(suite: Path) -> None:
    (suite / "scenarios" / "broken.yaml").unlink()
    first = pytest_run(suite, "scenarios", "--chaos-client", "naive", "--chaos-report-dir", "rep")
    assert first.returncode == 1, first.stdout  # naive loses t1 of drop.yaml
    shutil.copy(suite / "rep" / "results.json", suite / "baseline.json")
    same = pytest_run(suite, "scenarios", "--chaos-client", "naive", "--chaos-baseline", "baseline.json")
    assert same.returncode == 0, same.stdout
    assert "XFAIL scenarios/drop.yaml::drop[naive]" in same.stdout and "known failure" in same.stdout
    assert "no regression against baseline.json in 2 matched pair(s)" in same.stdout
    (suite / "scenarios" / "ok.yaml").write_text(DROP_T1.replace("seed: 11", "seed: 12"))  # ok now loses t1 too
    worse = pytest_run(suite, "scenarios", "--chaos-client", "naive", "--chaos-baseline", "baseline.json")
    assert worse.returncode == 1, worse.stdout
    assert "FAILED scenarios/ok.yaml::ok[naive]" in worse.stdout and "newly lost: t1" in worse.stdout


def test_baseline_that_matches_nothing_fails_the_session(suite: Path) -> None:
    for name in ("broken", "drop", "slow"):
        (suite / "scenarios" / f"{name}.yaml").unlink()
    assert pytest_run(suite, "scenarios", "--chaos-report-dir", "rep").returncode == 0
    shutil.copy(suite / "rep" / "results.json", suite / "baseline.json")
    other = pytest_run(suite, "scenarios", "--chaos-client", "naive", "--chaos-baseline", "baseline.json")
    assert other.returncode == 1, other.stdout
    assert "no run matched the baseline baseline.json" in other.stdout


def test_yaml_outside_a_scenario_directory_is_not_collected(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("just: data\n")
    (tmp_path / "test_a.py").write_text("def test_a():\n    assert True\n")
    run = pytest_run(tmp_path)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout


def test_seed_and_time_scale_overrides_reach_the_run(suite: Path) -> None:
    run = pytest_run(suite, "scenarios/drop.yaml", "--chaos-client", "naive", "--chaos-seed", "77", "--chaos-time-scale", "0.5",
                     "--chaos-report-dir", "rep")
    assert run.returncode == 1, run.stdout
    assert "seed: 77" in run.stdout and "--seed 77" in run.stdout and "time scale 0.5" in run.stdout
    result = json.loads((suite / "rep" / "results.json").read_text())["results"][0]
    assert (result["seed"], result["time_scale"]) == (77, 0.5)


NEVER_FIRES = OK + """
faults:
  - kind: drop
    when: {on: message, type: execution_success, task: t9}
"""


def test_inconclusive_is_its_own_outcome_and_can_fail_the_session(suite: Path) -> None:
    for name in ("broken", "drop", "slow"):
        (suite / "scenarios" / f"{name}.yaml").unlink()
    (suite / "scenarios" / "never.yaml").write_text(NEVER_FIRES)
    run = pytest_run(suite, "scenarios")
    assert run.returncode == 0, run.stdout
    assert "1 passed, 1 inconclusive" in run.stdout and "skipped" not in run.stdout
    assert "INCONCLUSIVE scenarios/never.yaml::never[reference]" in run.stdout
    gated = pytest_run(suite, "scenarios", "--chaos-fail-on-inconclusive")
    assert gated.returncode == 1 and "--chaos-fail-on-inconclusive: the session fails" in gated.stdout, gated.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--chaos-time-scale", "-1"], "--chaos-time-scale: expected a number in [0.01, 10], got -1.0"),
    (["--chaos-seed", "x"], "expected a number, got 'x'"),
    (["--chaos-shard", "3/2"], "expected 1 <= K <= N"),
])
def test_bad_option_values_are_usage_errors(suite: Path, args: list[str], message: str) -> None:
    run = pytest_run(suite, "scenarios/ok.yaml", *args)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert message in run.stderr


def test_ini_keys_stand_for_the_options(suite: Path) -> None:
    (suite / "pytest.ini").write_text("[pytest]\nchaos_client = naive reference\nchaos_seed = 77\n"
                                      "chaos_report_dir = rep\nchaos_run_slow = true\n")
    run = pytest_run(suite, "scenarios/drop.yaml", "scenarios/slow.yaml")
    assert run.returncode == 1, run.stdout
    assert "PASSED scenarios/slow.yaml::slow[naive]" in run.stdout
    results = json.loads((suite / "rep" / "results.json").read_text())["results"]
    assert {(r["scenario"], r["client"], r["seed"]) for r in results} == {
        ("drop", "naive", 77), ("drop", "reference", 77), ("slow", "naive", 77), ("slow", "reference", 77)}
    override = pytest_run(suite, "scenarios/slow.yaml", "--chaos-client", "reference", "--collect-only")
    assert "slow[reference]" in override.stdout and "slow[naive]" not in override.stdout


def test_no_collision_with_a_projects_own_run_slow_and_client_options(suite: Path) -> None:
    (suite / "conftest.py").write_text(
        "def pytest_addoption(parser):\n"
        "    parser.addoption('--run-slow', action='store_true')\n"
        "    parser.addoption('--client', default='mine')\n"
        "    parser.addoption('--seed', type=int, default=0)\n"
    )
    (suite / "test_own.py").write_text(
        "def test_own(request):\n"
        "    assert request.config.getoption('--client') == 'theirs'\n"
        "    assert request.config.getoption('--run-slow') is True\n"
    )
    run = pytest_run(suite, "test_own.py", "scenarios/ok.yaml", "--client", "theirs", "--run-slow", "--seed", "4",
                     "--chaos-client", "naive")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED test_own.py::test_own" in run.stdout and "PASSED scenarios/ok.yaml::ok[naive]" in run.stdout


def test_shards_split_the_scenario_items(suite: Path) -> None:
    (suite / "scenarios" / "broken.yaml").unlink()
    ids = []
    for shard in ("1/2", "2/2"):
        run = pytest_run(suite, "scenarios", "--chaos-client", "naive", "--chaos-client", "reference",
                         "--chaos-run-slow", "--chaos-shard", shard, "--collect-only")
        ids.append({line.strip() for line in run.stdout.splitlines() if ".yaml::" in line})
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    assert len(ids[0] | ids[1]) == 6  # ok, slow, drop × naive, reference


def test_chaos_scenarios_names_folders_without_a_conftest(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    (repo / "mine" / "sub").mkdir(parents=True)
    (repo / "mine" / "sub" / "ok.yaml").write_text(OK)
    outside.mkdir()
    (outside / "drop.yaml").write_text(DROP_T1)
    (repo / "test_own.py").write_text("def test_own():\n    assert True\n")
    (repo / "pytest.ini").write_text(f"[pytest]\nchaos_scenarios = mine {outside}\n")
    run = pytest_run(repo, "--collect-only")
    items = sorted(line.strip() for line in run.stdout.splitlines() if "::" in line)
    assert [i.rsplit("/", 1)[-1] for i in items] == ["drop.yaml::drop[reference]", "ok.yaml::ok[reference]",
                                                     "test_own.py::test_own"], run.stdout
    missing = pytest_run(repo, "--chaos-scenarios", "nowhere", "--collect-only")
    assert missing.returncode == pytest.ExitCode.USAGE_ERROR and "no such folder" in missing.stderr
