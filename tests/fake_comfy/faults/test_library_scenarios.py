"""The scenarios added for issue 13 catch what they were written for."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from comfy_chaos.fake_comfy.faults import KINDS
from comfy_chaos.harness.runner import Harness
from comfy_chaos.harness.scenario import load_scenario
from comfy_chaos.harness.scoring import score

HERE = Path(__file__).parent
SCENARIOS = HERE.parents[2] / "scenarios"


def test_every_fault_kind_is_in_the_library() -> None:
    used = {spec.kind for path in SCENARIOS.rglob("*.yaml") for spec in load_scenario(path).fault_schedule()}
    assert set(KINDS) <= used, sorted(set(KINDS) - used)


def test_final_frame_scenarios_target_the_final_frames() -> None:
    for name in ("bom-final", "truncated-final"):
        (spec,) = load_scenario(SCENARIOS / "frame" / f"{name}.yaml").fault_schedule()
        assert spec.when.types == ("final",), name


@pytest.fixture
async def harness(toxiproxy_backend) -> Harness:
    async with Harness(toxiproxy_url=toxiproxy_backend.url, done_margin=0.5) as h:
        yield h


async def test_slow_queue_catches_a_client_that_batches_its_results(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    async with asyncio.timeout(120):
        result = score(await harness.run(load_scenario(SCENARIOS / "baseline" / "slow-queue.yaml"),
                                         "py:batching_adapter:BatchingAdapter"))
    assert result.verdict == "fail", result.reasons
    assert any("p95" in line for line in result.reasons), result.reasons
    assert {t.cls for t in result.tasks} == {"ok"}  # every task reported, only late


async def test_one_shot_history_500_reaches_a_slow_polling_client(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 item 10: the 500 used to be lifted when the server went quiet, before the
    client's next poll, so it never reached a polling client (inconclusive every time)."""
    monkeypatch.syspath_prepend(str(HERE))
    async with asyncio.timeout(120):
        record = await harness.run(load_scenario(SCENARIOS / "http" / "history-500-after-completion.yaml"),
                                   "py:polling_adapter:PollingAdapter")
    result = score(record)
    (entry,) = [e for e in record.fault_log if e.kind == "http_error"]
    assert entry.reached and entry.target_kind == "http"
    assert entry.target_client_id == next(iter(record.ledger.prompts.values())).client_id
    assert any("/history answered 500" in (r.detail or "") for r in record.reports if r.type == "note"), record.reports
    assert result.verdict == "pass", result.reasons
