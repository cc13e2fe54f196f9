"""`comfy-chaos run | replay | report`, run as a child process (exit codes, output, files)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .cli_helpers import DROP_T1, NEVER_FIRES, OK, cli

pytestmark = pytest.mark.e2e  # each test runs the CLI in a child process





@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "s").mkdir()
    for name, text in {"ok": OK, "drop": DROP_T1, "never": NEVER_FIRES}.items():
        (tmp_path / "s" / f"{name}.yaml").write_text(text)
    return tmp_path


def test_run_pass_writes_the_report(work: Path) -> None:
    run = cli(work, "run", "s/ok.yaml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS" in run.stdout and "ok [reference] seed 3" in run.stdout
    assert "1 passed, 0 failed, 0 inconclusive" in run.stdout
    results = json.loads((work / "comfy-chaos-report" / "results.json").read_text())
    assert [(r["scenario"], r["verdict"]) for r in results["results"]] == [("ok", "pass")]
    assert (work / "comfy-chaos-report" / "index.html").is_file()


def test_run_fail_names_the_lost_task_and_the_replay(work: Path) -> None:
    run = cli(work, "run", "s/drop.yaml", "s/ok.yaml", "--client", "naive", "--report-dir", "out", "-j", "2")
    assert run.returncode == 1, run.stdout + run.stderr
    line = next(x for x in run.stdout.splitlines() if x.startswith("FAIL"))
    assert "drop [naive]" in line and "lost t1" in line
    assert "replay: comfy-chaos replay s/drop.yaml --client naive --seed 11" in run.stdout
    assert (work / "out" / "results.json").is_file()


def test_inconclusive_exit_code(work: Path) -> None:
    run = cli(work, "run", "s/never.yaml")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "INCONCLUSIVE" in run.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--no-such-flag"], "unrecognized arguments"),
        (["run", "s/ok.yaml", "--client", "no-such-client"], "unknown adapter"),
        (["run", "missing.yaml"], "no such file"),
        (["run", "s/ok.yaml", "-j", "0"], "-j"),
        (["run", "bad.yaml"], "faults[0].probability"),
        (["replay", "s/ok.yaml"], "--seed"),
        (["report", "nothing.json"], "cannot read"),
    ],
)
def test_usage_and_config_errors_exit_3(work: Path, args: list[str], message: str) -> None:
    (work / "bad.yaml").write_text(OK + "faults:\n  - {kind: drop, probability: 1.5}\n")
    run = cli(work, *args)
    assert run.returncode == 3, run.stdout + run.stderr
    assert message in run.stderr


def test_replay_runs_one_scenario_with_the_given_seed(work: Path) -> None:
    run = cli(work, "replay", "s/drop.yaml", "--seed", "77", "--client", "naive")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "seed: 77" in run.stdout and "t1 (prompt" in run.stdout


def test_report_rerenders_from_results_json(work: Path) -> None:
    assert cli(work, "run", "s/ok.yaml", "--report-dir", "first").returncode == 0
    run = cli(work, "report", "first/results.json", "--out", "again")
    assert run.returncode == 0, run.stderr
    assert "ok" in (work / "again" / "index.html").read_text()


def test_write_baseline_then_check_it(work: Path) -> None:
    assert cli(work, "run", "s/ok.yaml", "--write-baseline", "base.json").returncode == 0
    run = cli(work, "run", "s/ok.yaml", "--baseline", "base.json")
    assert run.returncode == 0 and "no regression against base.json" in run.stdout


def test_own_library_minus_slow_with_the_reference_client(tmp_path: Path) -> None:
    (tmp_path / "mine" / "sub").mkdir(parents=True)
    (tmp_path / "mine" / "sub" / "ok.yaml").write_text(OK)
    (tmp_path / "mine" / "slow.yaml").write_text(OK + "tags: [slow]\n")
    run = cli(tmp_path, "run", "--scenarios", "mine", "--no-builtin")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 slow scenarios skipped" in run.stdout
    results = json.loads((tmp_path / "comfy-chaos-report" / "results.json").read_text())["results"]
    assert [(r["scenario"], r["client"]) for r in results] == [("ok", "reference")]


def _pids_with(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_ctrl_c_stops_the_run_and_kills_the_client_process(work: Path) -> None:
    import shutil
    import signal
    import time

    hang = work / "hang_adapter_marker.py"
    shutil.copy(Path(__file__).parent / "adapter_scripts" / "scripted.py", hang)
    (work / "s" / "long.yaml").write_text(OK.replace("deadline: 60", "deadline: 600").replace("grace: 5", "grace: 500"))
    proc = subprocess.Popen([sys.executable, "-m", "comfy_chaos.harness.cli", "run", "s/long.yaml", "--client",
                             f"cmd:{sys.executable} {hang} hang"], cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not set(_pids_with(str(hang))) - {proc.pid}:  # polling a condition, bounded
            assert time.monotonic() < deadline, "the adapter process never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2, out + err
    assert "interrupted" in err
    assert _pids_with(str(hang)) == []
