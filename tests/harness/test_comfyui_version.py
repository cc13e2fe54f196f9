"""`--comfyui-version` and the scenario key `comfyui_version`: which ComfyUI the fake imitates
in a run, recorded in results.json and repeated in the replay command."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from comfy_chaos.harness.comfyui_version import version_arg, with_version
from comfy_chaos.harness.scenario import ScenarioError, parse_scenario

from .cli_helpers import DROP_T1, cli


def test_scenario_key_defaults_to_the_newest_and_is_checked() -> None:
    assert parse_scenario("name: x\n").profile_version == "0.33"
    assert parse_scenario("name: x\ncomfyui_version: '0.3.64'\n").profile_version == "0.3.64"
    assert parse_scenario("name: x\ncomfyui_version: 0.33\n").comfyui_version == "0.33"  # a YAML number
    with pytest.raises(ScenarioError, match=r"comfyui_version: expected '0.3.64' or '0.33', got \"0.34\" \(line 2\)"):
        parse_scenario("name: x\ncomfyui_version: '0.34'\n")


def test_override_keeps_the_source_and_the_option_names_the_choices() -> None:
    scenario = parse_scenario("name: x\n", source="s/x.yaml")
    assert with_version(scenario, None) is scenario
    moved = with_version(scenario, "0.3.64")
    assert moved.profile_version == "0.3.64" and moved.source == "s/x.yaml"
    assert version_arg("0.33.0") == "0.33"
    with pytest.raises(argparse.ArgumentTypeError, match="expected one of 0.3.64, 0.33"):
        version_arg("1.0")


@pytest.mark.e2e
def test_run_records_the_version_and_replays_with_it(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "drop.yaml").write_text(DROP_T1)
    run = cli(tmp_path, "run", "s/drop.yaml", "--client", "naive", "--comfyui-version", "0.3.64", "--report-dir", "out")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "comfy-chaos replay s/drop.yaml --client naive --seed 11 --comfyui-version 0.3.64" in run.stdout
    result = json.loads((tmp_path / "out" / "results.json").read_text())["results"][0]
    assert result["comfyui_version"] == "0.3.64"
    assert "ComfyUI 0.3.64" in (tmp_path / "out" / "index.html").read_text()
    default = cli(tmp_path, "run", "s/drop.yaml", "--client", "naive", "--report-dir", "out2")
    result = json.loads((tmp_path / "out2" / "results.json").read_text())["results"][0]
    assert result["comfyui_version"] == "0.33" and "--comfyui-version" not in result["replay"]
    assert default.returncode == 1


@pytest.mark.e2e
def test_unknown_version_is_a_usage_error(tmp_path: Path) -> None:
    run = cli(tmp_path, "run", "--comfyui-version", "9.9")
    assert run.returncode == 3
    assert "unknown ComfyUI version '9.9'" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.e2e
def test_pytest_plugin_option(tmp_path: Path) -> None:
    (tmp_path / "clean.yaml").write_text("seed: 3\nworkload: {tasks: 2, workflow: basic}\ndeadline: 60\ngrace: 5\n")
    args = [sys.executable, "-m", "pytest", "clean.yaml", "-p", "no:cacheprovider", "-n", "0", "-q",
            "--chaos-scenarios", str(tmp_path), "--chaos-report-dir", "out"]  # fmt: skip
    run = subprocess.run([*args, "--chaos-comfyui-version", "0.3.64"], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((tmp_path / "out" / "results.json").read_text())["results"][0]["comfyui_version"] == "0.3.64"
    bad = subprocess.run([*args, "--chaos-comfyui-version", "9"], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert bad.returncode == 4 and "--chaos-comfyui-version: unknown ComfyUI version '9'" in bad.stdout + bad.stderr
