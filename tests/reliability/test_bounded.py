"""Bounded: a client that hangs, spins the CPU, floods its stdout or the server, or
breaks the line protocol is scored (hang / crash), stopped within its deadline plus the
harness's margins, leaves no process behind, and the next scenario starts clean.

The time bound below is a hang detector, not a speed goal: it allows the scenario
deadline + the harness's done margin + its cancel timeout + generous slack for a noisy
machine, so it only fails when the harness waits on a client it should have stopped.
"""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import pytest

from comfy_chaos.fake_comfy.testing.resources import snapshot
from comfy_chaos.harness.runner import CANCEL_TIMEOUT_S, Harness
from comfy_chaos.harness.scenario import load_scenario, parse_scenario
from comfy_chaos.harness.suite import run_one

pytestmark = pytest.mark.e2e  # whole scenario runs with misbehaving client processes

ROOT = Path(__file__).resolve().parents[2]
MISBEHAVE = Path(__file__).with_name("misbehave.py")
CLEAN = ROOT / "scenarios" / "baseline" / "clean.yaml"
DONE_MARGIN_S = 1.0
SLACK_S = 15.0

SCENARIO = """
name: bounded
seed: 11
time_scale: 0.1
workload: {tasks: 3, workflow: basic}
deadline: 20
grace: 2
"""


@pytest.mark.parametrize(
    ("mode", "expect"),
    [
        ("hang", "hang"),
        ("spin", "hang"),
        ("flood_stdout", "hang"),
        ("flood_server", "hang"),
        ("huge_line", "crash"),
    ],
)
async def test_misbehaving_client_is_scored_and_stopped_in_time(mode: str, expect: str) -> None:
    scenario = parse_scenario(SCENARIO, source="<bounded>")
    async with Harness(done_margin=DONE_MARGIN_S) as harness:
        await run_one(harness, load_scenario(CLEAN), "reference")  # warm-up: lazily created things exist
        before = snapshot()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        result = await run_one(harness, scenario, f"cmd:{sys.executable} {MISBEHAVE} {mode}")
        elapsed = time.monotonic() - started
        bound = scenario.scaled(scenario.time_scale).deadline_s + DONE_MARGIN_S + CANCEL_TIMEOUT_S + SLACK_S
        assert elapsed < bound, f"{mode}: the run took {elapsed:.1f} s, bound {bound:.1f} s"
        if result.verdict == "inconclusive":
            # A client flooding the in-process server next to a CPU hog can starve the loop
            # (or the in-process Toxiproxy) past the harness's budgets; then the harness
            # rightly declines to blame, but still says what it saw.
            assert any(r.startswith(f"it would have failed: {expect}:") for r in result.reasons), (mode, result.reasons)
        else:
            assert result.verdict == "fail", (mode, result.verdict, result.reasons)
            assert any(reason.startswith(f"{expect}:") for reason in result.reasons), (mode, result.reasons)
        after = snapshot()
        assert not before.diff(after), f"{mode}: {before.diff(after)}"
        grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        assert grown_mib < 100, f"{mode}: the harness's peak memory grew by {grown_mib:.0f} MiB"
        next_run = await run_one(harness, load_scenario(CLEAN), "reference")
        assert next_run.verdict == "pass", (mode, next_run.reasons)
        assert not before.diff(snapshot()), f"{mode}: after the next scenario: {before.diff(snapshot())}"
