"""`comfy-chaos run --no-control / --unscalable` (child process: exit codes, results.json)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .cli_helpers import OK, cli

SCRIPTED = Path(__file__).parent / "adapter_scripts" / "scripted.py"




def test_unscalable_runs_the_named_cmd_client_at_time_scale_one(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(OK)
    client = f"cmd:{sys.executable} {SCRIPTED} ok"
    run = cli(tmp_path, "run", "ok.yaml", "--client", client, "--unscalable", client, "--no-control")
    assert run.returncode in (0, 1), run.stdout + run.stderr  # the scripted client fakes its prompts
    results = json.loads((tmp_path / "comfy-chaos-report" / "results.json").read_text())
    assert [r["time_scale"] for r in results["results"]] == [1.0]


def test_unscalable_must_name_a_client_of_the_run(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(OK)
    run = cli(tmp_path, "run", "ok.yaml", "--unscalable", "naive")
    assert run.returncode == 3
    assert "--unscalable naive: not one of the --client values (reference)" in run.stderr
