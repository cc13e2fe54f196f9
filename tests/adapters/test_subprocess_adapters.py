"""The subprocess client adapters of adapters/registry.toml against a real FakeComfy (no faults).

Each adapter is loaded with `harness.adapters.load_adapter(name)` and run as a child
process through the harness's own JSON-lines machinery, as `--client NAME` runs it. The
expected outcome and outputs of every task come from the fake's ledger, not from the
adapters. An adapter whose runtime or library is missing is skipped with the registry's
install command.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
from comfy_chaos.fake_comfy.ledger import tag_workflow
from comfy_chaos.harness import workflows
from comfy_chaos.harness.adapters import AdapterError, load_adapter, subprocess_registry
from comfy_chaos.harness.adapters.base import AdapterSession, Task
from comfy_chaos.harness.adapters.subprocess import SubprocessAdapter

RUN_TIMEOUT_S = 60.0
SEED = 7
REGISTERED = sorted(subprocess_registry())


def require_adapter(name: str) -> SubprocessAdapter:
    """The adapter `--client NAME` would run; skip (naming the install command) if unavailable."""
    try:
        adapter = load_adapter(name)
    except AdapterError as exc:
        pytest.skip(f"client adapter {name!r} unavailable: {exc}")
    assert isinstance(adapter, SubprocessAdapter), f"{name} is not a subprocess client"
    return adapter


async def started_fake(time_scale: float) -> FakeComfy:
    fake = FakeComfy(FakeConfig(time_scale=time_scale, seed=SEED), faults=None)
    await fake.start(host="127.0.0.1", port=0)
    return fake


@pytest.fixture
async def server() -> AsyncIterator[FakeComfy]:
    fake = await started_fake(0.1)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def slow_server() -> AsyncIterator[FakeComfy]:
    """Unscaled node durations: the `slow` workflow runs for over a second."""
    fake = await started_fake(1.0)
    try:
        yield fake
    finally:
        await fake.stop()


async def run_adapter(
    name: str,
    server: FakeComfy,
    plan: list[tuple[str, str]],
    *,
    max_concurrency: int = 2,
    deadline_s: float = 30.0,
    when_ready: Callable[[], Awaitable[None]] | None = None,
    time_scale: float = 0.1,
) -> tuple[list[dict[str, Any]], AdapterSession]:
    """Run adapter `name` on tasks (task_id, workflow name); return its reports and session.

    `when_ready` runs after the adapter said `ready` and before any task is fed to it.
    """
    adapter = require_adapter(name)
    reports: list[dict[str, Any]] = []
    ready = asyncio.Event()

    def sink(report: dict[str, Any]) -> None:
        reports.append(report)
        if report["type"] in ("ready", "crash"):
            ready.set()

    session = AdapterSession(
        base_url=server.base_url,
        time_scale=time_scale,
        deadline_s=deadline_s,
        max_concurrency=max_concurrency,
        sink=sink,
    )
    async with asyncio.timeout(RUN_TIMEOUT_S):
        running = asyncio.create_task(adapter.run(session))
        try:
            if when_ready is not None:
                await ready.wait()
                await when_ready()
            for index, (task_id, workflow_name) in enumerate(plan):
                workflow = tag_workflow(workflows.build(workflow_name, seed=SEED, index=index), task_id)
                session.feed(Task(task_id, workflow))
            session.end()
            await running
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    return reports, session


async def post_prompt(server: FakeComfy, workflow: dict[str, Any]) -> str:
    async with aiohttp.ClientSession() as http, http.post(f"{server.base_url}/prompt", json={"prompt": workflow}) as reply:
        assert reply.status == 200, await reply.text()
        return (await reply.json())["prompt_id"]


def ledger_by_task(server: FakeComfy) -> dict[str, Any]:
    records = {}
    for record in server.ledger.prompts.values():
        assert record.task_id not in records, f"task {record.task_id} submitted twice"
        records[record.task_id] = record
    return records


def files(outputs: dict[str, Any] | None, *, with_node: bool = True) -> set[tuple[str, ...]]:
    """(node, filename, subfolder, type) of every file in history-style outputs."""
    found = set()
    for node, per_node in (outputs or {}).items():
        for items in (per_node or {}).values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and "filename" in item:
                    key = (item["filename"], item.get("subfolder", ""), item.get("type", ""))
                    found.add((str(node), *key) if with_node else key)
    return found


def results_by_task(reports: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_task: dict[str, list[dict[str, Any]]] = {}
    for report in reports:
        if report["type"] == "result":
            by_task.setdefault(report["task_id"], []).append(report)
    return by_task


def assert_clean_run(name: str, reports: list[dict[str, Any]], session: AdapterSession, task_ids: list[str]) -> None:
    kinds = [r["type"] for r in reports]
    assert kinds[0] == "ready" and kinds[-1] == "done", f"{name}: report types {kinds}"
    assert "crash" not in kinds, f"{name}: {reports}; stderr: {session.info.stderr_tail}"
    assert session.info.exit_code == 0, f"{name}: exit {session.info.exit_code}; stderr: {session.info.stderr_tail}"
    by_task = results_by_task(reports)
    assert sorted(by_task) == sorted(task_ids), f"{name}: results for {sorted(by_task)}"
    for task_id, results in by_task.items():
        assert len(results) == 1, f"{name}: {task_id} reported {len(results)} times: {results}"


BASIC_AND_ERROR = [("t0", "basic"), ("t1", "basic"), ("t2", "error"), ("t3", "basic"), ("t4", "basic")]
BASIC_ONLY = [(f"t{i}", "basic") for i in range(5)]


# comfy-api-simplified gets no error task here: whether it sees the error depends on a
# race in the library (docs/adapters-thirdparty.md); the blocker test below covers it.
@pytest.mark.parametrize(("name", "plan"), [("node", BASIC_AND_ERROR), ("comfy-api-simplified", BASIC_ONLY)])
async def test_history_based_adapters_report_every_task_once_as_the_ledger_says(
    name: str, plan: list[tuple[str, str]], server: FakeComfy
) -> None:
    reports, session = await run_adapter(name, server, plan)
    assert_clean_run(name, reports, session, [t for t, _ in plan])
    ledger = ledger_by_task(server)
    for task_id, [result] in results_by_task(reports).items():
        record = ledger[task_id]
        assert record.outcome in ("success", "error"), f"seed {SEED}: {task_id} not finished on the server"
        assert result["outcome"] == record.outcome, f"{name} {task_id}: {result} vs ledger {record.outcome}"
        if record.outcome == "success":
            assert result["prompt_id"] == record.prompt_id
            assert files(result["outputs"]) == files(record.outputs), f"{name} {task_id}"
            assert files(record.outputs), f"{task_id}: the ledger has no output files to compare"
        else:
            assert result["detail"], f"{name} {task_id}: error without detail"


async def test_node_adapter_matches_the_ledger_for_every_named_workflow(server: FakeComfy) -> None:
    plan = [(f"t{i}", name) for i, name in enumerate(workflows.WORKFLOW_NAMES * 2)]
    reports, session = await run_adapter("node", server, plan, max_concurrency=3)
    assert_clean_run("node", reports, session, [t for t, _ in plan])
    ledger = ledger_by_task(server)
    for task_id, [result] in results_by_task(reports).items():
        record = ledger[task_id]
        assert (result["outcome"], result["prompt_id"]) == (record.outcome, record.prompt_id), f"{task_id}: {result}"
        assert files(result["outputs"]) == files(record.outputs), task_id


async def test_node_adapter_reports_submission_before_result_and_the_error_cause(server: FakeComfy) -> None:
    reports, session = await run_adapter("node", server, BASIC_AND_ERROR)
    assert_clean_run("node", reports, session, [t for t, _ in BASIC_AND_ERROR])
    ledger = ledger_by_task(server)
    for task_id, _ in BASIC_AND_ERROR:
        mine = [r for r in reports if r["task_id"] == task_id]
        assert [r["type"] for r in mine] == ["submitted", "result"], f"{task_id}: {mine}"
        assert mine[0]["prompt_id"] == mine[1]["prompt_id"] == ledger[task_id].prompt_id
    [error] = results_by_task(reports)["t2"]
    assert error["outcome"] == "error"
    assert ledger["t2"].error is not None
    assert ledger["t2"].error["exception_type"] in error["detail"]
    assert ledger["t2"].error["node_id"] in error["detail"]


def occupy_worker(server: FakeComfy) -> Callable[[], Awaitable[None]]:
    """A `when_ready` hook queuing a slow prompt from another client ahead of the tasks.

    comfy-api-simplified opens its socket only after its POST; with the worker busy, the
    socket is up before the task's prompt runs, so the library sees that prompt's frames.
    """

    async def post_blocker() -> None:
        await post_prompt(server, tag_workflow(workflows.build("slow", seed=SEED, index=99), "blocker"))

    return post_blocker


def assert_socket_open_before_start(server: FakeComfy, task_id: str) -> None:
    record = ledger_by_task(server)[task_id]
    opened = [c.t for c in server.ledger.connections if c.sid == record.client_id and c.event == "open"]
    assert opened and min(opened) < record.started_at, (
        f"precondition: the library's socket for {task_id} opened at {opened} after its prompt started "
        f"at {record.started_at} (machine too slow for the blocker?)"
    )


async def test_comfy_api_simplified_error_has_no_prompt_id_because_the_library_hides_it(slow_server: FakeComfy) -> None:
    reports, session = await run_adapter(
        "comfy-api-simplified", slow_server, [("t0", "error")], when_ready=occupy_worker(slow_server)
    )
    assert_clean_run("comfy-api-simplified", reports, session, ["t0"])
    assert_socket_open_before_start(slow_server, "t0")
    assert ledger_by_task(slow_server)["t0"].outcome == "error"
    [result] = results_by_task(reports)["t0"]
    assert result["outcome"] == "error", result
    assert result["prompt_id"] is None
    assert "ComfyApiError" in result["detail"]


async def test_comfy_api_simplified_returns_websocket_images_instead_of_history(slow_server: FakeComfy) -> None:
    reports, session = await run_adapter(
        "comfy-api-simplified", slow_server, [("t0", "progress")], when_ready=occupy_worker(slow_server)
    )
    assert_clean_run("comfy-api-simplified", reports, session, ["t0"])
    assert_socket_open_before_start(slow_server, "t0")
    record = ledger_by_task(slow_server)["t0"]
    assert record.outcome == "success"
    binary_sent = [m for m in record.messages if m.message_type.startswith("binary:") and m.delivered]
    assert binary_sent, "the progress workflow sent no binary frames to the client"
    [result] = results_by_task(reports)["t0"]
    assert result["outcome"] == "success" and result["prompt_id"] == record.prompt_id
    assert result["outputs"] == {}
    assert f"returned {len(binary_sent)} websocket image(s)" in result["detail"]


async def test_comfyui_utils_reports_one_output_node_without_its_id(server: FakeComfy) -> None:
    plan = [("t0", "basic"), ("t1", "basic"), ("t2", "basic")]
    all_completed = asyncio.Event()
    completed: set[str | None] = set()

    def on_event(event: Any) -> None:
        if event.kind == "prompt_completed":
            completed.add(event.task_id)
            if len(completed) == len(plan):
                all_completed.set()

    unsubscribe = server.events.subscribe(on_event)
    try:
        reports, session = await run_adapter("comfyui-utils", server, plan)
        # The library reports at the first `executed`, before the prompt ends on the server.
        async with asyncio.timeout(RUN_TIMEOUT_S):
            await all_completed.wait()
    finally:
        unsubscribe()
    assert_clean_run("comfyui-utils", reports, session, [t for t, _ in plan])
    ledger = ledger_by_task(server)
    for task_id, [result] in results_by_task(reports).items():
        record = ledger[task_id]
        assert record.outcome == "success", f"seed {SEED}: {task_id} {record.outcome}"
        assert result["outcome"] == "success", f"{task_id}: {result}"
        assert result["prompt_id"] is None
        reported = files(result["outputs"], with_node=False)
        assert reported, f"{task_id}: no output reported: {result}"
        assert reported < files(record.outputs, with_node=False), f"{task_id}: {reported} vs ledger {record.outputs}"
        assert set(result["outputs"]) == {"?"}


# The server-side moment each client considers a prompt finished (comfyui-utils and
# stable-canvas: the first `executed` frame; saintno: the `executed` of its last output
# node, the only one of the `slow` workflow); with max_concurrency 1 the next prompt may
# only be accepted after it.
FINISH_FRAME = {"comfyui-utils": "executed", "stable-canvas-comfyui-client": "executed", "saintno-comfyui-sdk": "executed"}
# These libraries start listening for a prompt's frames only after an HTTP round trip
# (saintno: one GET /history after the prompt starts; comfy-ui-client and stable-canvas:
# after the POST reply), so a prompt that ends sooner is never reported
# (docs/adapters-thirdparty.md). They get a workflow whose output node comes later.
WORKFLOW_FOR = {"saintno-comfyui-sdk": "slow", "comfy-ui-client": "slow", "stable-canvas-comfyui-client": "slow"}


def scaled_server(name: str, server: FakeComfy, slow_server: FakeComfy) -> tuple[FakeComfy, float]:
    """The fake at the time scale the harness runs `name` at (1.0 for unscalable clients)."""
    return (server, 0.1) if require_adapter(name).scalable else (slow_server, 1.0)


def finish_time(name: str, record: Any) -> float:
    frame = FINISH_FRAME.get(name)
    if frame is None:
        assert record.completed_at is not None, f"{record.task_id} never completed"
        return record.completed_at
    return min(m.t for m in record.messages if m.message_type == frame and m.delivered)


@pytest.mark.parametrize("name", REGISTERED)
async def test_max_concurrency_one_keeps_one_prompt_in_flight(name: str, server: FakeComfy, slow_server: FakeComfy) -> None:
    server, time_scale = scaled_server(name, server, slow_server)
    plan = [(f"t{i}", WORKFLOW_FOR.get(name, "basic")) for i in range(3)]
    reports, session = await run_adapter(name, server, plan, max_concurrency=1, time_scale=time_scale)
    assert_clean_run(name, reports, session, [t for t, _ in plan])
    records = sorted(server.ledger.prompts.values(), key=lambda r: r.accepted_at)
    assert len(records) == len(plan)
    for earlier, later in zip(records, records[1:]):
        assert later.accepted_at >= finish_time(name, earlier), f"{name}: {later.task_id} submitted while {earlier.task_id} ran"


@pytest.mark.parametrize("name", REGISTERED)
async def test_deadline_ends_the_adapter_with_done(name: str, server: FakeComfy, slow_server: FakeComfy) -> None:
    # Unscalable clients: unscaled durations, and a deadline longer than their start-up.
    server, time_scale = scaled_server(name, server, slow_server)
    plan = [(f"t{i}", "slow") for i in range(4)]
    reports, session = await run_adapter(
        name, server, plan, max_concurrency=1, deadline_s=0.2 if time_scale < 1.0 else 2.0, time_scale=time_scale
    )
    kinds = [r["type"] for r in reports]
    assert kinds[0] == "ready" and kinds[-1] == "done", kinds
    assert session.info.exit_code == 0, session.info.stderr_tail
    reported = len(results_by_task(reports))
    if reported < len(plan):
        notes = [r["detail"] for r in reports if r["type"] == "note"]
        assert any(f"deadline reached with {len(plan) - reported} task(s) unreported" in n for n in notes), notes


@pytest.mark.parametrize("name", REGISTERED)
async def test_adapter_rejects_bad_input_naming_the_line(name: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *require_adapter(name).argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            stdout, stderr = await process.communicate(b'{"type": "task", "task_id": "t0", "workflow": {}}\n')
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 2, (stdout, stderr)
    assert b"stdin line 1" in stderr and b"start" in stderr, stderr
    assert stdout == b""


# What each client reports for a prompt interrupted on the server (docs/adapters-thirdparty.md).
# stable-canvas is left out: it ignores the interrupt and waits for an `executed` frame that
# never comes, until its 5-minute timeout. saintno is interrupted only at the third node: an
# interrupt that lands during its first GET /history (before it listens for
# `execution_interrupted`) ends the job as "went missing" instead, depending on timing.
INTERRUPT_AT_NODE_INDEX = {"saintno-comfyui-sdk": 2}
REPORTED_FOR_INTERRUPT = {
    "node": "interrupted",
    "comfy-api-simplified": "success",
    "comfyui-utils": "error",
    "saintno-comfyui-sdk": "interrupted",
    "comfy-ui-client": "success",
    "comfykit": "error",
}


@pytest.mark.parametrize("name", sorted(REPORTED_FOR_INTERRUPT))
async def test_interrupted_prompt_is_reported_as_the_client_understands_it(name: str, slow_server: FakeComfy) -> None:
    # Unscaled durations: the interrupt sent when the first node starts lands at a later one.
    started = asyncio.Event()
    at_index = INTERRUPT_AT_NODE_INDEX.get(name, 0)
    unsubscribe = slow_server.events.subscribe(
        lambda event: started.set()
        if event.kind == "node_started" and event.task_id == "t0" and (event.node_index or 0) >= at_index
        else None
    )
    interrupter: asyncio.Task[None] | None = None

    async def interrupt_when_started() -> None:
        await started.wait()
        async with aiohttp.ClientSession() as http, http.post(f"{slow_server.base_url}/interrupt") as reply:
            assert reply.status == 200

    async def start_interrupter() -> None:
        nonlocal interrupter
        interrupter = asyncio.create_task(interrupt_when_started())

    try:
        reports, session = await run_adapter(name, slow_server, [("t0", "slow")], when_ready=start_interrupter)
        assert interrupter is not None
        await interrupter
        assert_clean_run(name, reports, session, ["t0"])
        assert ledger_by_task(slow_server)["t0"].outcome == "interrupted"
        [result] = results_by_task(reports)["t0"]
        assert result["outcome"] == REPORTED_FOR_INTERRUPT[name], (result["detail"], result)
        if name == "comfy-api-simplified":
            notes = [r["detail"] for r in reports if r["type"] == "note"]
            assert any("status_str='error'" in n for n in notes), notes
    finally:
        unsubscribe()
        if interrupter is not None:
            interrupter.cancel()
            await asyncio.gather(interrupter, return_exceptions=True)
