"""Per-run JSON-lines event logs: each run's events land in its own file, also when two
runs share the event loop."""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
import structlog

from comfy_chaos.harness.eventlog import RunLog, configure, log_path
from comfy_chaos.harness.runner import Harness
from comfy_chaos.harness.scenario import parse_scenario

TWO = """
name: {name}
seed: {seed}
workload: {{tasks: 2, workflow: basic}}
deadline: 60
grace: 5
"""


@pytest.fixture
def captured_logging():
    configure(logging.CRITICAL)
    yield
    structlog.reset_defaults()


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_log_path_is_safe_and_names_the_run(tmp_path: Path) -> None:
    path = log_path(tmp_path, "a b/c", "cmd:python x.py", 7)
    assert path.parent == tmp_path
    assert path.name == "a_b_c--cmd_python_x.py--seed7.jsonl"


async def test_events_go_to_the_file_of_the_run_that_logged_them(tmp_path: Path, captured_logging) -> None:
    log = structlog.get_logger("test")

    async def one(name: str) -> None:
        with RunLog(tmp_path / f"{name}.jsonl"):
            for step in range(3):
                log.info("step", run=name, step=step)
                await asyncio.sleep(0)  # let the other run interleave

    log.info("outside")
    await asyncio.gather(one("a"), one("b"))
    for name in ("a", "b"):
        lines = events(tmp_path / f"{name}.jsonl")
        assert [(e["event"], e["run"], e["step"]) for e in lines] == [("step", name, i) for i in range(3)]
        assert all(e["level"] == "info" and e["timestamp"] for e in lines)


async def test_harness_writes_one_log_per_run_with_server_runner_and_client_events(
    tmp_path: Path, toxiproxy_backend, captured_logging
) -> None:
    scenarios = [parse_scenario(TWO.format(name=n, seed=s), source=f"{n}.yaml") for n, s in (("one", 1), ("two", 2))]
    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5, log_dir=tmp_path) as harness:
        async with asyncio.timeout(120):
            await asyncio.gather(*(harness.run(s, "reference") for s in scenarios))
    for name, seed in (("one", 1), ("two", 2)):
        lines = events(tmp_path / f"{name}--reference--seed{seed}.jsonl")
        kinds = {e["event"] for e in lines}
        assert {"runner.start", "fake_comfy.started", "task.reported", "runner.end"} <= kinds
        assert {e["scenario"] for e in lines if e["event"] == "runner.start"} == {name}
        assert sum(e["event"] == "task.reported" for e in lines) == 2
