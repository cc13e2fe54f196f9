"""No leaks: a dozen scenarios back to back (faults of every family, in-process and
subprocess clients that pass, fail, crash and hang) leave no file descriptor, child
process, listening socket or asyncio task behind; leaving the Harness releases the
Toxiproxy backend too. The 100-scenario version is benchmarks/leak_check.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from comfy_chaos.fake_comfy.testing.resources import snapshot
from comfy_chaos.harness.runner import Harness
from comfy_chaos.harness.scenario import load_scenario, parse_scenario
from comfy_chaos.harness.suite import run_one

pytestmark = pytest.mark.e2e  # a dozen whole scenario runs

ROOT = Path(__file__).resolve().parents[2]
SCRIPTED = ROOT / "tests" / "harness" / "adapter_scripts" / "scripted.py"

TINY = """
name: tiny
seed: 3
time_scale: 0.1
workload: {tasks: 2, workflow: basic}
deadline: 20
grace: 2
"""

LIBRARY_RUNS = [  # chosen to cover every fault family and still take seconds, not minutes
    ("baseline/clean.yaml", "reference"),
    ("message/drop-completion.yaml", "reference"),
    ("connection/abort-mid-run.yaml", "reference"),
    ("connection/silent-window.yaml", "reference"),
    ("network/reset-mid-node.yaml", "reference"),
    ("network/blackhole-last-node.yaml", "reference"),
    ("frame/junk-prefix.yaml", "naive"),
    ("http/history-5xx-storm.yaml", "reference"),
]
RESTART = TINY.replace("name: tiny", "name: tiny-restart") + """
faults:
  - kind: restart
    when: {on: task_complete, task: t0}
    params: {keep_history: true}
"""
SCRIPTED_MODES = ["ok", "crash", "hang", "garbage"]  # "ok" invents prompt ids: phantoms, a fail


async def test_a_dozen_scenarios_leave_nothing_behind() -> None:
    outside = snapshot()
    async with Harness(done_margin=0.5) as harness:
        await run_one(harness, load_scenario(ROOT / "scenarios" / "baseline" / "clean.yaml"), "reference")  # warm-up
        before = snapshot()
        verdicts = []
        for path, client in LIBRARY_RUNS:
            result = await run_one(harness, load_scenario(ROOT / "scenarios" / path), client)
            verdicts.append((path, client, result.verdict))
        result = await run_one(harness, parse_scenario(RESTART, source="<tiny-restart>"), "reference")
        verdicts.append(("tiny-restart", "reference", result.verdict))
        tiny = parse_scenario(TINY, source="<tiny>")
        for mode in SCRIPTED_MODES:
            result = await run_one(harness, tiny, f"cmd:{sys.executable} {SCRIPTED} {mode}")
            verdicts.append((f"tiny/{mode}", "scripted", result.verdict))
        after = snapshot()
        assert not before.diff(after), f"leaked after {verdicts}: {before.diff(after)}"
        # the runs really ran: the reference client passed, the broken clients failed
        by_name = {name: verdict for name, _, verdict in verdicts}
        assert by_name["baseline/clean.yaml"] == "pass" and by_name["network/reset-mid-node.yaml"] == "pass", verdicts
        assert by_name["frame/junk-prefix.yaml"] == "fail", verdicts
        assert all(by_name[f"tiny/{mode}"] == "fail" for mode in SCRIPTED_MODES), verdicts
    left = snapshot()
    assert not outside.diff(left), f"leaving the Harness leaked: {outside.diff(left)}"
