"""The JSON-lines subprocess adapter against scripted children (no server needed)."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from comfy_chaos.harness.adapters import AdapterError, load_adapter
from comfy_chaos.harness.adapters.base import AdapterSession, Task
from comfy_chaos.harness.adapters.subprocess import SubprocessAdapter

SCRIPTS = Path(__file__).parent / "adapter_scripts"


def scripted(mode: str) -> SubprocessAdapter:
    return SubprocessAdapter([sys.executable, str(SCRIPTS / "scripted.py"), mode], name=f"scripted-{mode}")


def make_session(reports: list[dict]) -> AdapterSession:
    return AdapterSession(
        base_url="http://127.0.0.1:9", time_scale=0.1, deadline_s=5.0, max_concurrency=4, sink=reports.append
    )


async def feed_all(session: AdapterSession, n: int) -> None:
    for i in range(n):
        session.feed(Task(f"t{i}", {"1": {"class_type": "X", "inputs": {}}}))
    session.end()


async def test_well_behaved_child_reports_everything_and_exits_cleanly() -> None:
    reports: list[dict] = []
    session = make_session(reports)
    await feed_all(session, 3)
    async with asyncio.timeout(30):
        await scripted("ok").run(session)
    kinds = [r["type"] for r in reports]
    assert kinds[0] == "ready" and kinds[-1] == "done"
    results = [r for r in reports if r["type"] == "result"]
    assert [(r["task_id"], r["prompt_id"], r["outcome"]) for r in results] == [
        ("t0", "p0", "success"), ("t1", "p1", "success"), ("t2", "p2", "success")
    ]
    assert session.counters == {"reconnects": 0, "polls": 2}
    assert session.info.exit_code == 0 and not session.info.crashed
    assert session.info.cpu_s is not None and session.info.cpu_s > 0


async def test_cpu_time_of_the_child_is_measured() -> None:
    session = make_session([])
    await feed_all(session, 1)
    async with asyncio.timeout(30):
        await scripted("burn").run(session)
    assert session.info.cpu_s is not None and session.info.cpu_s >= 0.25


async def test_crash_is_recorded_with_exit_code_and_stderr() -> None:
    reports: list[dict] = []
    session = make_session(reports)
    await feed_all(session, 2)
    async with asyncio.timeout(30):
        await scripted("crash").run(session)
    assert session.info.crashed and session.info.exit_code == 3
    assert "deliberate crash" in session.info.stderr_tail
    crash = [r for r in reports if r["type"] == "crash"]
    assert len(crash) == 1 and "exit code 3" in crash[0]["detail"]
    assert not [r for r in reports if r["type"] == "result"]


async def test_garbage_on_stdout_is_a_protocol_crash_and_the_child_is_killed() -> None:
    reports: list[dict] = []
    session = make_session(reports)
    await feed_all(session, 1)
    async with asyncio.timeout(30):
        await scripted("garbage").run(session)
    crash = [r for r in reports if r["type"] == "crash"]
    assert crash and "not JSON" in crash[0]["detail"]
    assert session.info.exit_code is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_hanging_child_and_its_grandchild_are_killed_on_cancel() -> None:
    reports: list[dict] = []
    session = make_session(reports)
    await feed_all(session, 1)
    noted = asyncio.Event()

    def sink(report: dict) -> None:
        reports.append(report)
        if report["type"] == "note":
            noted.set()

    session.sink = sink
    run = asyncio.create_task(scripted("hang").run(session))
    async with asyncio.timeout(30):
        await noted.wait()
    grandchild = int(next(r for r in reports if r["type"] == "note")["detail"].split()[-1])
    assert _alive(grandchild)
    run.cancel()
    async with asyncio.timeout(30):
        with pytest.raises(asyncio.CancelledError):
            await run
    assert session.info.exit_code == -9 and not session.info.crashed
    async with asyncio.timeout(10):
        while _alive(grandchild):  # reaped by init after SIGKILL; poll with a bound
            await asyncio.sleep(0.05)


async def test_subprocess_host_runs_an_in_process_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")]))
    adapter = load_adapter("isolated:py:echo_adapter:EchoAdapter")
    reports: list[dict] = []
    session = make_session(reports)
    await feed_all(session, 2)
    async with asyncio.timeout(60):
        await adapter.run(session)
    assert [(r["type"], r["task_id"]) for r in reports if r["type"] in ("submitted", "result")] == [
        ("submitted", "t0"), ("result", "t0"), ("submitted", "t1"), ("result", "t1")
    ]
    assert reports[0]["type"] == "ready" and reports[0]["client"] == "echo"
    assert reports[-1]["type"] == "done"
    assert session.counters == {"tasks": 1}
    assert session.info.exit_code == 0


def test_unknown_client_names_the_known_ones() -> None:
    with pytest.raises(AdapterError, match=r"unknown adapter.*naive.*reference"):
        load_adapter("no-such-client")


def test_cmd_without_command_is_rejected() -> None:
    with pytest.raises(AdapterError, match="needs a command line"):
        load_adapter("cmd:  ")


def test_cmd_with_a_missing_program_is_rejected() -> None:
    with pytest.raises(AdapterError, match="no-such-program-xyz"):
        load_adapter("cmd:no-such-program-xyz --flag")


def test_bad_outcome_is_turned_into_an_error_result() -> None:
    reports: list[dict] = []
    make_session(reports).result("t0", "maybe", detail="shrug")
    assert reports[0]["outcome"] == "error" and "maybe" in reports[0]["detail"]
