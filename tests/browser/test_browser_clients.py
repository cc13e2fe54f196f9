"""Web clients in headless Chromium, end to end (marker `browser`; skipped without Chromium or
Playwright): ComfyUI's own frontend, and the worked example page through the user-page
contract. The frontend package is fetched once into ~/.cache/comfy-chaos/frontend/."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from comfy_chaos.harness.adapters.browser_chromium import BrowserUnavailable, chromium_path
from comfy_chaos.harness.runner import Harness
from comfy_chaos.harness.scenario import parse_scenario
from comfy_chaos.harness.scoring import score


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install 'comfy-chaos[browser]')"
    try:
        chromium_path()
    except BrowserUnavailable as exc:
        return str(exc)
    return None


# CI (.ci/run) sets COMFY_CHAOS_REQUIRE_BROWSER=1: there a missing browser is a failure, not a skip.
REQUIRED = os.environ.get("COMFY_CHAOS_REQUIRE_BROWSER") == "1"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not REQUIRED and _missing() is not None, reason=str(_missing()))]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "web"
SILENT_WINDOW_UI = ROOT / "scenarios" / "connection" / "silent-window-ui.yaml"
FRONTEND = "frontend@1.27.10"  # the version ComfyUI 0.3.64 pins

CLEAN = """
name: browser-clean
seed: 5
workload: {tasks: 3, workflow: basic, submit: {pattern: burst}}
faults: []
deadline: 40
grace: 5
expect: {latency_floor: 60, http_per_task: 200}  # correctness here, not speed on a loaded machine
"""

# The last task's final `executing` (node null) is lost: nothing after it moves the page on.
# A time window (not an event trigger): the heal must not come between completion and frame.
DROP_LAST = """
name: browser-drop-last-completion
seed: 6
workload: {tasks: 2, workflow: basic, submit: {pattern: burst}}
faults:
  - kind: drop
    when: {at: 0}
    duration: 10
    target: {type: "executing:null", task: t1}
deadline: 40
grace: 8
expect: {latency_floor: 60, http_per_task: 200}
"""


async def _run(toxiproxy_backend: Any, text: str, client: str) -> tuple[Any, Any]:
    scenario = parse_scenario(text, source=f"<{client}>")
    async with Harness(toxiproxy_url=toxiproxy_backend.url) as harness:
        record = await harness.run(scenario, client)
    return record, score(record)


def _shots(result: Any) -> list[str]:
    return [shot["label"] for shot in result.evidence if shot["src"].startswith("data:image/jpeg;base64,")]


async def test_the_frontend_reports_every_task_of_a_clean_run(toxiproxy_backend: Any) -> None:
    record, result = await _run(toxiproxy_backend, CLEAN, FRONTEND)
    assert result.verdict == "pass", result.reasons
    assert result.metrics["untagged_prompts"] == 0  # the task tag survived the page's graph conversion
    assert {t.cls for t in result.tasks} == {"ok"}
    assert record.time_scale == 1.0  # browser clients are not scalable
    # warm-up: the page loaded and connected before t0; none of it is in the run's figures
    assert record.client_stats["page_load_s"] > 0
    opened = [c for c in record.ledger.connections if c.event == "open"]
    assert opened and opened[0].t < record.t0
    assert all(h.t >= record.t0 for h in record.ledger.http)
    assert not any(h.path.startswith(("/assets", "/api/users", "/api/settings")) for h in record.ledger.http)
    assert min(p.accepted_at for p in record.ledger.prompts.values()) > record.t0
    assert "at judgement" in _shots(result)
    ready = [r for r in record.reports if r.type == "ready"]
    assert ready and ready[0].extra["version"] == "1.27.10"


async def test_the_frontend_left_running_after_a_lost_completion_is_stuck_ui(toxiproxy_backend: Any) -> None:
    record, result = await _run(toxiproxy_backend, DROP_LAST, FRONTEND)
    assert result.verdict == "fail", result.reasons
    t1 = next(t for t in result.tasks if t.task_id == "t1")
    assert t1.cls == "stuck_ui", t1
    assert result.metrics["stuck_ui"] == 1 and result.metrics["ok"] == 1
    assert any("stuck UI: the page still showed it running at the judgement" in line for line in result.reasons)
    shots = _shots(result)
    assert "first stuck moment" in shots and "at judgement" in shots
    ui = [r for r in record.reports if r.type == "ui"]
    assert ui[-1].extra["running"] == ["t1"] and "executing" in (ui[-1].detail or "")


async def test_the_example_page_is_scored_through_the_contract(toxiproxy_backend: Any) -> None:
    record, result = await _run(toxiproxy_backend, CLEAN, f"web:{EXAMPLE}")
    assert result.verdict == "pass", result.reasons
    assert result.metrics["reported"] == 3 and result.metrics["untagged_prompts"] == 0
    ready = next(r for r in record.reports if r.type == "ready")
    assert ready.extra["client"] == "tiny-comfyui-client"


async def test_the_example_page_waiting_for_a_lost_frame_is_stuck_ui(toxiproxy_backend: Any) -> None:
    _, result = await _run(toxiproxy_backend, DROP_LAST, f"web:{EXAMPLE}")
    assert result.verdict == "fail"
    assert next(t for t in result.tasks if t.task_id == "t1").cls == "stuck_ui"
    assert "at judgement" in _shots(result)


@pytest.mark.slow
async def test_the_frontend_after_a_silent_window_over_two_completions_is_stuck_ui(toxiproxy_backend: Any) -> None:
    """`--client frontend` (the version the default profile pins, 1.48.7) on the library's
    browser-oriented silent window: the silence begins at t2's start, which the server holds
    back until t0 and t1 have run 8 s each, so the page has queued all four tasks before it;
    both completions in the silence stay shown running. The same workload without the fault
    passes (the clean run)."""
    text = SILENT_WINDOW_UI.read_text()
    record, result = await _run(toxiproxy_backend, text, "frontend")
    assert next(r for r in record.reports if r.type == "ready").extra["version"] == "1.48.7"
    silence = next(f for f in result.faults if f.kind == "silent" and f.t_end is not None)
    accepted = sorted(p.accepted_at - record.t0 for p in record.ledger.prompts.values())
    assert len(accepted) == 4 and accepted[-1] < silence.t, (accepted, silence)  # the premise: all queued first
    completed = {p.prompt_id: p.completed_at - record.t0 for p in record.ledger.prompts.values() if p.completed_at}
    assert sum(silence.t < t < silence.t_end for t in completed.values()) == 2, (completed, silence)
    assert result.verdict == "fail", result.reasons
    assert {t.task_id: t.cls for t in result.tasks} == {"t0": "ok", "t1": "ok", "t2": "stuck_ui", "t3": "stuck_ui"}
    assert sum("stuck UI: the page still showed it running at the judgement" in line for line in result.reasons) == 2
    assert {"first stuck moment", "at judgement"} <= set(_shots(result))

    clean = parse_scenario(text, source=str(SILENT_WINDOW_UI)).model_copy(update={"faults": []})
    async with Harness(toxiproxy_url=toxiproxy_backend.url) as harness:
        clean_record = await harness.run(clean, "frontend")
    clean_result = score(clean_record)
    assert clean_result.verdict == "pass", clean_result.reasons
    assert clean_result.metrics["reported"] == 4 and clean_result.metrics["untagged_prompts"] == 0
