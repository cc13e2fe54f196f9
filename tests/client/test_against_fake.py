"""The client against the in-process fake ComfyUI: results compared with the fake's ledger."""
from __future__ import annotations

import asyncio
import socket

import pytest
from structlog.testing import capture_logs

from comfy_chaos.client import ClientConfig, ComfyClient, ComfyUnavailable, PromptRejected
from comfy_chaos.fake_comfy.ledger import tag_workflow

from .client_helpers import RUNTIME_ERROR, basic, ledger_images

# time scale 0.1 as in the scenario suite; HTTP timeout and ping interval relaxed so a
# loaded CI machine cannot fake a fault in the fault-free tests
CFG = ClientConfig.reference().scaled(0.1).replace(http_timeout=5.0, ws_heartbeat=5.0)


async def run_tasks(comfy: ComfyClient, workflows: list[dict]) -> list:
    handles = await asyncio.gather(*(comfy.submit(wf) for wf in workflows))
    return list(await asyncio.gather(*(h.result() for h in handles)))


def check_against_ledger(server, outcomes) -> None:
    for outcome in outcomes:
        record = server.ledger.prompts[outcome.prompt_id]
        assert record.executions == 1, outcome.prompt_id
        assert outcome.status == record.outcome, (outcome.prompt_id, outcome.detail)
        assert ledger_images(outcome.outputs) == ledger_images(record.outputs), outcome.prompt_id


async def test_hundred_tasks_no_faults_each_reported_once_with_right_outputs(make_fake):
    server = await make_fake()
    with capture_logs() as logs:
        async with ComfyClient(server.base_url, CFG) as comfy:
            outcomes = await run_tasks(comfy, [tag_workflow(basic(i), f"t{i}") for i in range(100)])
            stats = comfy.stats
    assert len({o.prompt_id for o in outcomes}) == 100
    assert all(o.status == "success" for o in outcomes)
    check_against_ledger(server, outcomes)
    assert set(server.ledger.prompts) == {o.prompt_id for o in outcomes}
    reported = [e["prompt_id"] for e in logs if e["event"] == "task.reported"]
    assert sorted(reported) == sorted(o.prompt_id for o in outcomes)  # exactly once each
    assert stats.reported == 100 and stats.reconnect_attempts == 0 and stats.frames_dropped == 0
    # one POST and (normally) one history fetch per task
    assert stats.http_requests <= 100 * 2 + 10, stats


async def test_runtime_error_reports_the_server_payload(make_fake):
    server = await make_fake()
    async with ComfyClient(server.base_url, CFG) as comfy:
        (outcome,) = await run_tasks(comfy, [RUNTIME_ERROR])
    record = server.ledger.prompts[outcome.prompt_id]
    assert outcome.status == "error" == record.outcome
    assert outcome.error["exception_message"] == record.error["exception_message"]
    assert outcome.error["node_id"] == "3"


async def test_progress_callback_sees_the_run(make_fake):
    server = await make_fake()
    events = []
    async with ComfyClient(server.base_url, CFG) as comfy:
        handle = await comfy.submit(basic(1), on_progress=events.append)
        outcome = await handle.result()
    assert outcome.status == "success"
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and "executing" in kinds and "executed" in kinds
    assert {e.prompt_id for e in events} == {outcome.prompt_id}


async def test_rejected_workflow_raises_with_the_server_body(make_fake):
    server = await make_fake()
    bad = {"1": {"class_type": "NoSuchNodeClass", "inputs": {}}}
    async with ComfyClient(server.base_url, CFG) as comfy:
        with pytest.raises(PromptRejected) as info:
            await comfy.submit(bad)
    assert info.value.status == 400
    expected = "missing_node_type" if server.config.profile.missing_node_type else "invalid_prompt"
    assert info.value.body["error"]["type"] == expected
    assert "NoSuchNodeClass" in info.value.body["error"]["message"]


async def test_unreachable_server_gives_a_clear_error_not_a_hang():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = CFG.replace(submit_attempts=3)
    async with asyncio.timeout(30):
        async with ComfyClient(f"http://127.0.0.1:{port}", cfg) as comfy:
            with pytest.raises(ComfyUnavailable, match="3 attempt"):
                await comfy.submit(basic(0))
            assert not comfy.connected


@pytest.mark.parametrize("bad", [[], {}, "x", {"1": {"class_type": "EmptyImage", "inputs": {"v": object()}}}])
async def test_malformed_workflow_is_a_value_error(make_fake, bad):
    server = await make_fake()
    async with ComfyClient(server.base_url, CFG) as comfy:
        with pytest.raises(ValueError, match="workflow"):
            await comfy.submit(bad)


async def test_lost_finish_frames_are_recovered(make_fake):
    faults = [
        {"kind": "drop", "when": {"on": "message", "type": ["execution_success", "executing:null"], "task": "t1"},
         "count": 2},
        {"kind": "drop", "when": {"on": "message", "type": "executing:null", "task": "t3"}},
    ]
    server = await make_fake(faults, time_scale=0.01)
    async with ComfyClient(server.base_url, CFG) as comfy:
        outcomes = await run_tasks(comfy, [tag_workflow(basic(i), f"t{i}") for i in range(5)])
    assert all(o.status == "success" for o in outcomes)
    check_against_ledger(server, outcomes)
    assert {f.kind for f in server.ledger.faults} == {"drop"}


async def test_connection_closed_mid_run_reconnects_and_reconciles(make_fake):
    faults = [{"kind": "close", "when": {"on": "message", "type": "execution_start", "task": "t2"}}]
    server = await make_fake(faults, time_scale=0.01)
    with capture_logs() as logs:
        async with ComfyClient(server.base_url, CFG) as comfy:
            outcomes = await run_tasks(comfy, [tag_workflow(basic(i), f"t{i}") for i in range(6)])
            stats = comfy.stats
    check_against_ledger(server, outcomes)
    assert stats.reconnect_attempts >= 1 and stats.ws_connects >= 2 and stats.reconciles >= 1
    events = [e["event"] for e in logs]
    assert "ws.reconnect.attempt" in events and "reconcile.start" in events
    # the old socket was gone before the new one registered: never replaced, never orphaned
    ours = [c.event for c in server.ledger.connections if c.sid == comfy.client_id]
    assert ours[:3] == ["open", "close", "open"], ours
    assert "replaced" not in ours and "orphaned" not in ours


async def test_lost_post_reply_is_looked_up_not_resent(make_fake):
    faults = [{"kind": "prompt_response_lost", "when": {"at": 0}, "count": 1}]
    server = await make_fake(faults, time_scale=0.01)
    async with ComfyClient(server.base_url, CFG) as comfy:
        outcomes = await run_tasks(comfy, [basic(0)])
        stats = comfy.stats
    check_against_ledger(server, outcomes)  # executions == 1: not run twice
    assert stats.submit_ambiguous == 1 and stats.resubmits == 0


async def test_history_5xx_is_retried(make_fake):
    faults = [{"kind": "http_error", "when": {"at": 0}, "count": 3, "params": {"route": "/history", "status": 500}}]
    server = await make_fake(faults, time_scale=0.01)
    async with ComfyClient(server.base_url, CFG) as comfy:
        outcomes = await run_tasks(comfy, [basic(i) for i in range(3)])
    check_against_ledger(server, outcomes)


async def test_corrupted_frames_are_repaired_or_counted(make_fake):
    faults = [
        {"kind": kind, "when": {"on": "frame", "nth": n}}
        for n, kind in enumerate(["bom", "junk_prefix", "python_repr", "invalid_utf8", "heartbeat", "noise",
                                  "noise_binary", "truncate", "garble", "concat"], start=3)
    ]
    server = await make_fake(faults, time_scale=0.01)
    async with ComfyClient(server.base_url, CFG) as comfy:
        outcomes = await run_tasks(comfy, [basic(i) for i in range(4)])
        stats = comfy.stats
    check_against_ledger(server, outcomes)
    assert stats.frames_repaired >= 1 and stats.frames_dropped + stats.frames_ignored >= 1
    assert stats.ws_connects == 1  # invalid UTF-8 did not kill the socket


async def test_seed_profile_runs_a_clean_workload(make_fake):
    server = await make_fake()
    async with ComfyClient(server.base_url, ClientConfig.seed().scaled(0.1)) as comfy:
        outcomes = await run_tasks(comfy, [basic(i) for i in range(5)])
    check_against_ledger(server, outcomes)


async def test_silent_socket_is_detected_and_tasks_still_reported(make_fake):
    # the socket stays open but nothing arrives and pings go unanswered, for 3 s (scaled 0.1 → 0.3 s... 
    # scaled by the engine's time_scale 0.01 → 2 s of wall time here)
    faults = [{"kind": "silent", "when": {"on": "message", "type": "execution_start", "task": "t1"}, "duration": 200}]
    server = await make_fake(faults, time_scale=0.01)
    async with ComfyClient(server.base_url, CFG) as comfy:
        outcomes = await run_tasks(comfy, [tag_workflow(basic(i), f"t{i}") for i in range(4)])
        stats = comfy.stats
    check_against_ledger(server, outcomes)
    assert stats.probes + stats.ws_connects > 1  # noticed through the probe or the heartbeat


async def test_abort_then_refused_reconnects_fall_back_to_polling(make_fake):
    faults = [
        {"kind": "abort", "when": {"on": "message", "type": "execution_start", "task": "t0"}},
        {"kind": "refuse", "when": {"on": "message", "type": "execution_start", "task": "t0"}, "duration": 150},
    ]
    server = await make_fake(faults, time_scale=0.01)
    with capture_logs() as logs:
        async with ComfyClient(server.base_url, CFG) as comfy:
            outcomes = await run_tasks(comfy, [tag_workflow(basic(i), f"t{i}") for i in range(4)])
            stats = comfy.stats
    check_against_ledger(server, outcomes)
    assert stats.reconnect_attempts >= 2
    sources = {o.source for o in outcomes}
    assert sources & {"poll", "reconcile", "hint", "probe"}, sources
    assert any(e["event"] == "ws.connect.failed" for e in logs)


async def test_server_restart_keeping_history(make_fake):
    faults = [{"kind": "restart", "when": {"on": "task_complete", "task": "t1"}, "params": {"keep_history": True}}]
    server = await make_fake(faults, time_scale=0.01)
    async with ComfyClient(server.base_url, CFG) as comfy:
        handles = [await comfy.submit(tag_workflow(basic(i), f"t{i}")) for i in range(2)]
        outcomes = [await h.result() for h in handles]
    check_against_ledger(server, outcomes)


async def test_seed_waits_for_its_final_check_where_the_reference_recovers_at_once(make_fake):
    """Both finish frames of t1 are lost while the socket stays up: the difference the harness shows."""
    faults = [{"kind": "drop", "when": {"on": "message", "type": ["execution_success", "executing:null"],
                                        "task": "t1"}, "count": 2}]
    sources = {}
    for name, cfg in (("reference", CFG), ("seed", ClientConfig.seed().scaled(0.1))):
        server = await make_fake(faults, time_scale=0.01)
        async with ComfyClient(server.base_url, cfg) as comfy:
            handles = [await comfy.submit(tag_workflow(basic(i), f"t{i}"), deadline=3.0) for i in range(2)]
            outcomes = [await h.result() for h in handles]
        check_against_ledger(server, outcomes)
        sources[name] = outcomes[1].source
    assert sources["seed"] == "final_check"
    assert sources["reference"] in ("hint", "probe", "ws")


async def test_restart_losing_the_queue_reports_unknown_never_a_phantom(make_fake):
    faults = [{"kind": "restart", "when": {"on": "task_complete", "task": "t0"}, "params": {"keep_history": False}}]
    server = await make_fake(faults, time_scale=0.05)
    async with ComfyClient(server.base_url, CFG) as comfy:
        handles = await asyncio.gather(*(comfy.submit(tag_workflow(basic(i), f"t{i}"), deadline=5.0)
                                         for i in range(4)))
        outcomes = [await h.result() for h in handles]
        stats = comfy.stats
    assert any(f.kind == "restart" for f in server.ledger.faults)
    lost = [o for o in outcomes if server.ledger.prompts[o.prompt_id].outcome is None]
    assert lost, "the restart should have wiped at least one queued prompt"
    for outcome in lost:
        assert outcome.status == "unknown" and outcome.source == "deadline"
        assert "not in /queue nor /history" in outcome.detail
    check_against_ledger(server, [o for o in outcomes if o not in lost])
    assert stats.final_checks >= len(lost)


async def test_same_id_socket_that_steals_then_orphans_us_is_survived(make_fake):
    """protocol.md §3.4: a second socket with our clientId takes our messages; when it closes
    after we re-registered, the server forgets the id and our open socket is orphaned.
    The probe must notice both."""
    import aiohttp

    server = await make_fake(time_scale=0.2)
    opens: list[str] = []
    reconnected = asyncio.Event()

    def on_event(event) -> None:
        if event.kind == "ws_connected" and event.client_id == "orphan-test":
            opens.append(event.client_id)
            if len(opens) == 3:  # ours, the intruder's, ours again
                reconnected.set()

    server.events.subscribe(on_event)
    async with ComfyClient(server.base_url, CFG, client_id="orphan-test") as comfy, aiohttp.ClientSession() as session:
        intruder = await session.ws_connect(f"{server.base_url}/ws?clientId={comfy.client_id}")
        try:
            first = await asyncio.gather(*(comfy.submit(tag_workflow(basic(i), f"t{i}")) for i in range(2)))
            outcomes = [await h.result() for h in first]
            async with asyncio.timeout(10):
                await reconnected.wait()
        finally:
            await intruder.close()  # the server now drops the id: our new socket is orphaned
        second = await asyncio.gather(*(comfy.submit(tag_workflow(basic(i), f"t{i}")) for i in range(2, 4)))
        outcomes += [await h.result() for h in second]
        stats = comfy.stats
    check_against_ledger(server, outcomes)
    conns = [c.event for c in server.ledger.connections if c.sid == comfy.client_id]
    assert "replaced" in conns and "orphaned" in conns, conns
    assert stats.unresponsive >= 2 and stats.forced_reconnects >= 2
    # both times the deaf socket was noticed (echo watchdog or probe) and the tasks came via HTTP
    assert sum(o.source in ("probe", "reconcile", "hint") for o in outcomes) >= 2


async def test_queue_reads_use_the_jobs_api_where_the_server_has_it(make_fake):
    faults = [{"kind": "close", "when": {"on": "message", "type": "execution_start", "task": "t1"}}]
    server = await make_fake(faults, time_scale=0.01)
    async with ComfyClient(server.base_url, CFG) as comfy:
        outcomes = await run_tasks(comfy, [tag_workflow(basic(i), f"t{i}") for i in range(4)])
        stats, jobs_api = comfy.stats, comfy._http.jobs_api
    check_against_ledger(server, outcomes)
    paths = [r.path for r in server.ledger.http]
    if server.config.profile.jobs_api:
        assert jobs_api is True and stats.jobs_reads >= 1 and stats.jobs_fallbacks == 0
        assert "/api/jobs?status=in_progress,pending" in paths and "/queue" not in paths
    else:  # 0.3.64: one 404, then /queue for good
        assert jobs_api is False and stats.jobs_reads == 0
        assert paths.count("/api/jobs?status=in_progress,pending") == 1 and "/queue" in paths


async def test_failing_jobs_api_falls_back_to_queue(make_fake):
    faults = [
        {"kind": "close", "when": {"on": "message", "type": "execution_start", "task": "t1"}},
        {"kind": "http_error", "when": {"at": 0}, "count": 1000, "params": {"route": "/api/jobs", "status": 503}},
    ]
    server = await make_fake(faults, time_scale=0.01)
    async with ComfyClient(server.base_url, CFG) as comfy:
        outcomes = await run_tasks(comfy, [tag_workflow(basic(i), f"t{i}") for i in range(4)])
        stats = comfy.stats
    check_against_ledger(server, outcomes)
    assert stats.jobs_reads == 0 and "/queue" in [r.path for r in server.ledger.http]
