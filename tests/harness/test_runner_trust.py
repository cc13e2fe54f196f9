"""Runner side of "verdicts a client author can trust" (issue 13) and of overload (issue 18):
the heal race and heal verification, reports after the judgement, what a stopped adapter
is told, control runs, scalability, the client's own words, starvation.

Expected outcomes come from the scenarios' and the scripted adapters' design.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from comfy_chaos.harness.runner import Harness
from comfy_chaos.harness.scenario import Scenario
from comfy_chaos.harness.scoring import score
from comfy_chaos.harness.toxiproxy import ToxiproxyControl, ToxiproxyError
from comfy_chaos.harness.toxiproxy.backend import resolve_backend

from .runner_helpers import CLEAN, DROP_T3, SCRIPTS, scenario

SCRIPTED = f"cmd:{sys.executable} {SCRIPTS / 'scripted.py'}"


# A latency toxic on the way to the client from the start for 3 scenario seconds (0.3 s
# real): the server finishes the tasks inside the window, the client hears of them only
# later, so the window's end (its toxic's removal) and the heal meet.
TOXIC_WINDOW = """
name: toxic-window
seed: 9
workload: {tasks: 2, workflow: basic}
faults:
  - kind: toxic
    when: {at: 0}
    duration: 3
    toxic: {type: latency, stream: downstream, attributes: {latency: 500}}
deadline: 60
grace: 5
"""


@pytest.fixture
async def harness(toxiproxy_backend: Any) -> AsyncIterator[Harness]:
    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5, control=False) as h:
        yield h


def classes(result: Any) -> dict[str, str]:
    return {t.task_id: t.cls for t in result.tasks}


# --- the heal race (issue 13 item 5) ----------------------------------------------------


@pytest.fixture(params=["bundled", "real"])
async def any_toxiproxy(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    if request.param == "real":
        if shutil.which("toxiproxy-server") is None:
            pytest.skip("toxiproxy-server is not on PATH")
        backend = await resolve_backend(env={"PATH": os.environ.get("PATH", "")})
    else:
        backend = await resolve_backend(env={}, use_binary=False)
    try:
        yield backend.url
    finally:
        await backend.stop()


async def test_heal_removes_a_toxic_whose_removal_was_in_flight(
    any_toxiproxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The toxic's duration ends as the server goes quiet: Toxiproxy answers its removal
    # 300 ms late, and the fault engine gives up on (cancels) a removal after 0.2 s here
    # (5 s normally: a starved machine). Then the heal comes.
    from comfy_chaos.fake_comfy.faults import engine

    monkeypatch.setattr(engine, "EXTERNAL_TIMEOUT", 0.2)
    original_remove = ToxiproxyControl.remove_toxic
    original_delete = ToxiproxyControl.delete_proxy
    left_at_teardown: list[list[str]] = []

    async def slow_remove(self: ToxiproxyControl, name: str, toxic_name: str) -> None:
        await asyncio.sleep(0.3)  # the slow control call under test, not a synchronisation
        await original_remove(self, name, toxic_name)

    async def spying_delete(self: ToxiproxyControl, name: str) -> None:
        left_at_teardown.append([toxic.name for toxic in await self.list_toxics(name)])
        await original_delete(self, name)

    monkeypatch.setattr(ToxiproxyControl, "remove_toxic", slow_remove)
    monkeypatch.setattr(ToxiproxyControl, "delete_proxy", spying_delete)
    async with Harness(toxiproxy_url=any_toxiproxy, done_margin=0.5, control=False) as h:
        async with asyncio.timeout(120):
            record = await h.run(scenario(TOXIC_WINDOW), "reference")
    assert record.fired == [0] and record.healed_at is not None
    assert left_at_teardown == [[]], "a toxic outlived the heal"
    assert record.inconclusive == []
    assert score(record).verdict == "pass"


async def test_a_heal_that_cannot_be_verified_is_inconclusive_never_a_fail(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))

    async def unanswered(self: ToxiproxyControl, name: str) -> Any:
        raise ToxiproxyError(f"get_proxy({name})", "no answer within 5 s")

    monkeypatch.setattr(ToxiproxyControl, "get_proxy", unanswered)
    async with asyncio.timeout(120):
        record = await harness.run(scenario(CLEAN), "py:lossy_adapter:LossyAdapter")
    result = score(record)
    assert len(record.inconclusive) == 1 and "heal could not be verified" in record.inconclusive[0]
    assert "no answer within 5 s" in record.inconclusive[0]
    assert result.verdict == "inconclusive", result.reasons
    assert any(line.startswith("it would have failed: lost") for line in result.reasons)


# --- reports around the judgement (issue 13 item 6, issue 18 item 3) --------------------


async def test_a_report_the_client_made_before_the_judgement_counts_despite_a_stall(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    text = CLEAN.replace("deadline: 60", "deadline: 20").replace("grace: 5", "grace: 20")
    async with asyncio.timeout(120):
        record = await harness.run(scenario(text), "py:lossy_adapter:ReportDuringStallAdapter")
    t3 = [r for r in record.reports if r.type == "result" and r.task_id == "t3"]
    assert len(t3) == 1 and not t3[0].late, t3
    assert classes(score(record))["t3"] == "ok"


async def test_a_second_callback_after_the_judgement_is_kept_and_marked_late(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    async with asyncio.timeout(120):
        record = await harness.run(scenario(CLEAN), "py:lossy_adapter:ContradictAfterJudgementAdapter")
    t0 = [r for r in record.reports if r.type == "result" and r.task_id == "t0"]
    assert [(r.outcome, r.late) for r in t0] == [("error", False), ("success", True)]
    assert t0[1].t > record.t_end
    info = record.adapter.instances[0]
    assert not info.hung and info.ended is not None and "reported every task" in info.ended, info


async def test_a_hang_says_when_the_adapter_was_killed_and_what_it_still_owed(harness: Harness) -> None:
    async with asyncio.timeout(120):
        record = await harness.run(scenario(DROP_T3), "naive")
    info = record.adapter.instances[0]
    assert info.hung and info.ended is not None
    assert re.search(r"killed 0.5 s after the judgement at \+\d+\.\d\d s, before its deadline \+6\.00 s", info.ended)
    assert "still waiting for t3" in info.ended
    # (On a starved machine the failure is voided: "it would have failed: hang: …".)
    hang = next(line for line in score(record).reasons if re.match(r"(it would have failed: )?hang:", line))
    assert "did not finish by the deadline" not in hang and "before its deadline" in hang


# --- control runs -------------------------------------------------------------------------


async def test_every_record_gets_a_control_run_without_faults_made_once(
    toxiproxy_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    runs: list[str] = []
    from comfy_chaos.harness import runner

    original = runner.run_scenario

    async def counting(scn: Scenario, client: str, **kwargs: Any) -> Any:
        runs.append(f"{scn.name}:{len(scn.fault_schedule())}")
        return await original(scn, client, **kwargs)

    monkeypatch.setattr(runner, "run_scenario", counting)
    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5) as h:
        async with asyncio.timeout(180):
            first = await h.run(scenario(DROP_T3), "py:lossy_adapter:LossyAdapter")
            again = await h.run(scenario(DROP_T3), "py:lossy_adapter:LossyAdapter")
            other_seed = await h.run(scenario(DROP_T3), "py:lossy_adapter:LossyAdapter", seed=7)
    assert runs == ["drop-t3:1", "drop-t3:0", "drop-t3:1", "drop-t3:1", "drop-t3:0"]
    control = first.control
    assert control is not None and control is again.control and control is not other_seed.control
    # The lossy adapter's t1 is lost with and without faults (a clean-run bug), its t2
    # reported twice; its t3 is lost only when t3's completion frames are dropped.
    assert control.verdict == "fail" and dict(control.problems) == {"lost": 1, "duplicate_report": 1}
    result = score(first)
    assert classes(result)["t1"] == "lost" and classes(result)["t3"] == "lost"
    assert result.attribution == "fault" and result.attribution_detail.startswith("fails without faults too")
    assert "lost: 2 > expect.lost 0" in result.attribution_detail  # what the faults added


async def test_no_faults_is_its_own_control_a_pass_needs_none_and_no_control_means_none(
    toxiproxy_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comfy_chaos.harness import runner

    runs: list[str] = []
    original = runner.run_scenario

    async def counting(scn: Scenario, client: str, **kwargs: Any) -> Any:
        runs.append(scn.name)
        return await original(scn, client, **kwargs)

    monkeypatch.setattr(runner, "run_scenario", counting)
    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5) as h:
        async with asyncio.timeout(120):
            record = await h.run(scenario(CLEAN), "reference")
    assert record.control is not None and record.control.verdict == "pass"
    assert runs == ["clean-test"]
    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5) as h:
        async with asyncio.timeout(120):
            passed = await h.run(scenario(DROP_T3), "reference")
    assert score(passed).verdict == "pass" and passed.control is None  # a pass needs no control run
    assert runs == ["clean-test", "drop-t3"]
    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5, control=False) as h:
        async with asyncio.timeout(120):
            failed = await h.run(scenario(DROP_T3), "naive")
    assert failed.control is None and score(failed).attribution == "unattributed"


async def test_run_record_with_its_control_round_trips_through_json(toxiproxy_backend: Any) -> None:
    from comfy_chaos.harness.record import RunRecord

    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5, control="always") as h:
        async with asyncio.timeout(120):
            record = await h.run(scenario(DROP_T3), "reference")
    again = RunRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert again.control == record.control and again.control is not None and again.control.verdict == "pass"
    assert again.starvation == record.starvation and again.warnings == record.warnings
    assert again.adapter.instances[0].ended == record.adapter.instances[0].ended
    assert score(again).to_dict() == score(record).to_dict()


# --- scalability ----------------------------------------------------------------------------


async def test_a_ready_line_saying_not_scalable_restarts_the_run_at_time_scale_one(harness: Harness) -> None:
    client = f"{SCRIPTED} unscalable"
    async with asyncio.timeout(120):
        record = await harness.run(scenario(CLEAN), client)
    assert record.time_scale == 1.0
    assert record.adapter.instances[0].scalable is False
    assert any("ready line said it is not scalable" in w for w in record.warnings)
    assert client in harness.unscalable  # later runs start at 1.0 at once
    result = score(record)
    assert result.warnings == record.warnings and result.starvation == record.starvation


async def test_unscalable_option_runs_a_cmd_client_at_time_scale_one(toxiproxy_backend: Any) -> None:
    client = f"{SCRIPTED} ok"
    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5, unscalable=[client]) as h:
        async with asyncio.timeout(120):
            record = await h.run(scenario(CLEAN), client, time_scale=0.1)
    assert record.time_scale == 1.0
    assert any("--unscalable" in w for w in record.warnings)


async def test_a_client_with_fixed_timers_is_warned_about(
    toxiproxy_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2 tasks, deadline 5 scenario s: 0.5 s real at time scale 0.1, shorter than the
    # client's fixed 1 s timer; at time scale 1.0 it has 5 s.
    from comfy_chaos.harness import runner

    scales: list[float | None] = []
    original = runner.run_scenario

    async def counting(scn: Scenario, client: str, **kwargs: Any) -> Any:
        scales.append(kwargs.get("time_scale"))
        return await original(scn, client, **kwargs)

    monkeypatch.setattr(runner, "run_scenario", counting)
    text = CLEAN.replace("tasks: 4", "tasks: 2").replace("deadline: 60", "deadline: 5").replace("grace: 5", "grace: 1")
    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5) as h:
        async with asyncio.timeout(120):
            record = await h.run(scenario(text), f"{SCRIPTED} fixed")
            other = await h.run(scenario(text), f"{SCRIPTED} fixed", seed=4)
    assert record.time_scale == 0.1
    warning = next(w for w in record.warnings if w.startswith("fixed timers?"))
    assert "t0, t1" in warning and "at 1.0" in warning and "--unscalable" in warning
    assert any(w.startswith("fixed timers?") for w in other.warnings)
    assert scales == [None, 1.0, None]  # the run at 1.0 is made once per client


# --- the client's own words ------------------------------------------------------------------


@pytest.fixture
def captured_logging() -> Any:
    import logging

    import structlog

    from comfy_chaos.harness.eventlog import configure

    configure(logging.CRITICAL)
    yield
    structlog.reset_defaults()


async def test_notes_errors_counters_and_stderr_reach_the_record_and_the_log(
    toxiproxy_backend: Any, tmp_path: Path, captured_logging: Any
) -> None:
    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5, control=False, log_dir=tmp_path) as h:
        async with asyncio.timeout(120):
            record = await h.run(scenario(CLEAN), f"{SCRIPTED} words")
    t0 = next(r for r in record.reports if r.type == "result" and r.task_id == "t0")
    assert t0.detail == "ended expired: no status for p0 within 5 s"
    assert record.client_stats["polls"] == 2
    assert "giving up on t0" in record.adapter.stderr_tail
    assert record.adapter.instances[0].ended == "exited with code 0 after done"
    events = [json.loads(line) for log in tmp_path.glob("*.jsonl") for line in log.read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert {"client.note", "client.result", "client.stats"} <= kinds
    assert any(e.get("detail") == "ended expired: no status for p0 within 5 s" for e in events)


async def test_crash_keeps_the_documented_four_kib_of_stderr(harness: Harness) -> None:
    script = "import sys; sys.stdin.readline(); sys.stderr.write('x' * 3000 + 'END-OF-STDERR\\n'); sys.exit(5)"
    async with asyncio.timeout(120):
        record = await harness.run(scenario(CLEAN), f"cmd:{sys.executable} -c \"{script}\"")
    crash = next(r for r in record.reports if r.type == "crash")
    assert crash.detail is not None and "END-OF-STDERR" in crash.detail and len(record.adapter.stderr_tail) >= 3000
    assert record.adapter.instances[0].ended == "exited with code 5 without done"


# --- starvation -------------------------------------------------------------------------------


async def test_a_failure_on_a_starved_machine_is_inconclusive_with_the_time_scale_that_would_work(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    async with asyncio.timeout(120):
        record = await harness.run(scenario(CLEAN), "py:lossy_adapter:StallingLossyAdapter")
    assert record.starvation is not None and record.starvation["too_slow"]
    assert record.starvation["lag_max_ms"] >= 1400
    result = score(record)
    assert result.verdict == "inconclusive", result.reasons
    assert any(line.startswith("the machine was too slow") and "try --time-scale" in line for line in result.reasons)


async def test_a_pass_on_a_slow_machine_stays_a_pass(harness: Harness) -> None:
    async with asyncio.timeout(120):
        record = await harness.run(scenario(CLEAN), "reference")
    assert record.starvation is not None and record.starvation["samples"] >= 1
    record.starvation = {**record.starvation, "too_slow": True, "reason": "the machine was too slow: test"}
    assert score(record).verdict == "pass"  # the client coped: slowness only voids a failure


async def test_an_inconclusive_run_on_a_slow_machine_also_says_the_machine_was_too_slow(harness: Harness) -> None:
    never = CLEAN.replace("name: clean-test", "name: never-fires") + (
        "faults:\n  - kind: drop\n    when: {on: message, type: execution_success, task: t9}\n")
    async with asyncio.timeout(120):
        record = await harness.run(scenario(never), "reference")
    assert record.starvation is not None
    record.starvation = {**record.starvation, "too_slow": True, "reason": "the machine was too slow: test"}
    result = score(record)
    assert result.verdict == "inconclusive"
    assert any("never fired" in line for line in result.reasons) and "the machine was too slow: test" in result.reasons


async def test_a_toxic_that_toxiproxy_keeps_after_the_heal_is_found_and_named(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def ignored(self: ToxiproxyControl, name: str, toxic_name: str) -> None:
        return None  # answers 204 but keeps the toxic (a broken or racing Toxiproxy)

    monkeypatch.setattr(ToxiproxyControl, "remove_toxic", ignored)
    async with asyncio.timeout(120):
        record = await harness.run(scenario(TOXIC_WINDOW), "reference")
    assert record.inconclusive == [
        (
            "the heal could not be verified, so the verdict cannot blame the client: "
            "toxics still in Toxiproxy after the heal: f0-latency-downstream"
        )
    ]
    assert score(record).verdict == "inconclusive"
