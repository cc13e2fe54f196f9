"""Clean runs of the third-party npm/PyPI client adapters against a real FakeComfy (no faults).

One test per library pins down what it reports on a fault-free run, checked against the
fake's ledger: the correct results, and the clean-run bugs that docs/ecosystem.md lists
(each is the library's behaviour, reproduced without any fault). Unscalable clients run at
time scale 1.0, as the harness runs them. An adapter whose runtime or library is missing is
skipped with the registry's install command (see test_subprocess_adapters.py).
"""
from __future__ import annotations

import asyncio
from typing import Any

from comfy_chaos.fake_comfy import FakeComfy
from comfy_chaos.fake_comfy.ledger import tag_workflow
from comfy_chaos.harness import workflows
from comfy_chaos.harness.adapters.base import AdapterSession, Task

from .test_subprocess_adapters import (
    BASIC_AND_ERROR,
    RUN_TIMEOUT_S,
    SEED,
    assert_clean_run,
    files,
    ledger_by_task,
    occupy_worker,
    require_adapter,
    results_by_task,
    run_adapter,
)


async def test_comfykit_reports_history_outcome_prompt_id_and_outputs(slow_server: FakeComfy) -> None:
    reports, session = await run_adapter("comfykit", slow_server, BASIC_AND_ERROR, time_scale=1.0)
    assert_clean_run("comfykit", reports, session, [t for t, _ in BASIC_AND_ERROR])
    ledger = ledger_by_task(slow_server)
    for task_id, [result] in results_by_task(reports).items():
        record = ledger[task_id]
        assert record.outcome in ("success", "error"), f"seed {SEED}: {task_id} not finished on the server"
        assert (result["outcome"], result["prompt_id"]) == (record.outcome, record.prompt_id), result
        if record.outcome == "success":
            assert files(result["outputs"]) == files(record.outputs) != set(), task_id
        else:
            assert record.error is not None and record.error["exception_message"] in result["detail"]


async def test_comfy_ui_client_reports_outputs_but_a_failed_prompt_as_success(slow_server: FakeComfy) -> None:
    # The blocker keeps the worker busy until every POST reply has been read: getImages()
    # starts listening only then, and misses a prompt that finished sooner (a clean-run
    # race of the library, docs/adapters-thirdparty.md).
    server = slow_server
    reports, session = await run_adapter(
        "comfy-ui-client", server, BASIC_AND_ERROR, max_concurrency=5, when_ready=occupy_worker(server)
    )
    assert_clean_run("comfy-ui-client", reports, session, [t for t, _ in BASIC_AND_ERROR])
    ledger = ledger_by_task(server)
    for task_id, [result] in results_by_task(reports).items():
        record = ledger[task_id]
        assert result["prompt_id"] is None, "getImages() never reveals the prompt id"
        # getImages() ignores execution_error: it waits for `executing` null, reads history
        # and resolves with whatever images history lists (none for the failed prompt).
        assert result["outcome"] == "success", result
        assert files(result["outputs"]) == files(record.outputs), f"{task_id}: {result['outputs']} vs {record.outputs}"
    assert ledger["t2"].outcome == "error" and results_by_task(reports)["t2"][0]["outputs"] == {}


async def test_saintno_sdk_reports_every_declared_output_node(slow_server: FakeComfy) -> None:
    # `slow`: the output node runs a second after the prompt starts, long after the SDK's
    # first GET /history; a faster output node is missed (docs/adapters-thirdparty.md).
    plan = [("t0", "slow"), ("t1", "slow")]
    reports, session = await run_adapter("saintno-comfyui-sdk", slow_server, plan, time_scale=1.0)
    assert_clean_run("saintno-comfyui-sdk", reports, session, ["t0", "t1"])
    ledger = ledger_by_task(slow_server)
    for task_id, [result] in results_by_task(reports).items():
        record = ledger[task_id]
        assert record.outcome == "success"
        assert (result["outcome"], result["prompt_id"]) == ("success", record.prompt_id), result
        assert files(result["outputs"]) == files(record.outputs) != set(), task_id
        submitted = [r for r in reports if r["type"] == "submitted" and r["task_id"] == task_id]
        assert [r["prompt_id"] for r in submitted] == [record.prompt_id], "onPending gives the id once, early"


async def test_stable_canvas_resolves_at_the_first_output_node(slow_server: FakeComfy) -> None:
    # The blocker keeps the prompt queued until enqueue() listens (it starts after the POST reply).
    server = slow_server
    completed = asyncio.Event()
    unsubscribe = server.events.subscribe(
        lambda event: completed.set() if event.kind == "prompt_completed" and event.task_id == "t0" else None
    )
    try:
        reports, session = await run_adapter(
            "stable-canvas-comfyui-client", server, [("t0", "basic")], max_concurrency=1, time_scale=1.0,
            when_ready=occupy_worker(server),
        )
        async with asyncio.timeout(RUN_TIMEOUT_S):
            await completed.wait()  # it reports at the first output node, before the prompt ends
    finally:
        unsubscribe()
    assert_clean_run("stable-canvas-comfyui-client", reports, session, ["t0"])
    record = ledger_by_task(server)["t0"]
    [result] = results_by_task(reports)["t0"]
    assert (result["outcome"], result["prompt_id"]) == ("success", record.prompt_id)
    assert len(record.outputs) == 2, f"precondition: `basic` has two output nodes: {record.outputs}"
    [node] = result["outputs"]
    assert files(result["outputs"]) == files({node: record.outputs[node]}) != set()
    assert files(result["outputs"]) < files(record.outputs), "the other output node's files are never reported"


async def test_stable_canvas_fails_every_waiting_task_on_another_prompts_error(slow_server: FakeComfy) -> None:
    """enqueue() rejects on any execution_error, whichever prompt it belongs to."""
    adapter = require_adapter("stable-canvas-comfyui-client")
    reports: list[dict[str, Any]] = []
    ready = asyncio.Event()
    accepted: list[str | None] = []
    t0_accepted = asyncio.Event()

    def sink(report: dict[str, Any]) -> None:
        reports.append(report)
        if report["type"] in ("ready", "crash"):
            ready.set()

    def on_event(event: Any) -> None:
        if event.kind == "prompt_accepted":
            accepted.append(event.task_id)
            if event.task_id == "t0":
                t0_accepted.set()

    t1_completed = asyncio.Event()
    unsubscribe = slow_server.events.subscribe(on_event)
    unsubscribe_completed = slow_server.events.subscribe(
        lambda event: t1_completed.set() if event.kind == "prompt_completed" and event.task_id == "t1" else None
    )
    session = AdapterSession(base_url=slow_server.base_url, time_scale=1.0, deadline_s=30.0, max_concurrency=2, sink=sink)
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            running = asyncio.create_task(adapter.run(session))
            try:
                await ready.wait()
                await occupy_worker(slow_server)()  # both tasks wait in the queue behind it
                session.feed(Task("t0", tag_workflow(workflows.build("error", seed=SEED, index=0), "t0")))
                await t0_accepted.wait()  # queue order: t0 (error) runs before t1
                session.feed(Task("t1", tag_workflow(workflows.build("basic", seed=SEED, index=1), "t1")))
                session.end()
                await running
                await t1_completed.wait()  # the library gave up on t1 before it ran
            finally:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
    finally:
        unsubscribe()
        unsubscribe_completed()
    assert_clean_run("stable-canvas-comfyui-client", reports, session, ["t0", "t1"])
    ledger = ledger_by_task(slow_server)
    assert accepted.index("t0") < accepted.index("t1")
    assert ledger["t0"].outcome == "error" and ledger["t1"].outcome == "success"
    results = {task_id: result for task_id, [result] in results_by_task(reports).items()}
    assert results["t0"]["outcome"] == "error"
    t1 = results["t1"]
    assert (t1["outcome"], t1["prompt_id"]) == ("error", ledger["t1"].prompt_id), t1
    assert ledger["t0"].error is not None and ledger["t0"].error["exception_message"].splitlines()[0] in t1["detail"]
