"""The runnable example works end to end against its in-process fake server."""
from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "submit_and_wait.py"


async def test_example_runs_and_prints_every_outcome(capsys):
    spec = importlib.util.spec_from_file_location("submit_and_wait", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert await module.run(None, "reference", 0.05) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}
    assert " success " in lines["basic"] and "basic_00001_.png" in lines["basic"]
    assert " success " in lines["preview"]
    assert " error " in lines["runtime-error"] and "outside the output folder" in lines["runtime-error"]
    assert "rejected: missing_node_type" in lines["rejected"]  # the example's server: the newest profile
