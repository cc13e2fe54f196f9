"""What the frontend adapter counts as "shown running", from the page state its driver reads
(no browser: `_digest` is fed the state dicts `browser_frontend.js` returns). Only what the
page puts on screen may make a task stuck UI: the frontend does not badge the active
workflow tab with its own status (WorkflowTab.vue), and 1.4x+ shows no count from the
`status` frames (its "N active" is the job list's)."""
from __future__ import annotations

from typing import Any

from comfy_chaos.harness.adapters.browser import FrontendAdapter, _Tracked


class _Session:
    def __init__(self) -> None:
        self.ui_reports: list[tuple[list[str], str]] = []
        self.results: list[str] = []

    def stats(self, values: dict[str, Any]) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def ui(self, running: list[str], detail: str) -> None:
        self.ui_reports.append((running, detail))

    def result(self, task_id: str, outcome: str, **_: Any) -> None:
        self.results.append(task_id)


def _adapter() -> FrontendAdapter:
    adapter = FrontendAdapter("1.58.1")
    for task_id, prompt_id in (("t0", "p0"), ("t1", "p1")):
        adapter._tracked[task_id] = _Tracked(task_id, prompt_id=prompt_id)
        adapter._by_prompt[prompt_id] = task_id
    return adapter


def _state(**changes: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "tabs": {}, "activeTab": None, "running": [], "pending": [], "history": [],
        "active": None, "queueRemaining": 0, "queueCountShown": False,
    }
    state.update(changes)
    return state


async def _shown(state: dict[str, Any]) -> list[str]:
    session = _Session()
    await _adapter()._digest(session, state)  # type: ignore[arg-type]
    return session.ui_reports[-1][0]


async def test_a_spinning_background_tab_is_shown_running() -> None:
    assert await _shown(_state(tabs={"t0": "running"}, activeTab="t1")) == ["t0"]


async def test_the_active_tab_does_not_show_its_own_status() -> None:
    assert await _shown(_state(tabs={"t1": "running"}, activeTab="t1")) == []


async def test_the_status_count_counts_only_where_the_page_shows_it() -> None:
    # 1.2x: the "queue" sidebar tab's badge shows it; 1.4x+: nothing on screen does
    assert await _shown(_state(queueRemaining=2, queueCountShown=True)) == ["t0", "t1"]
    assert await _shown(_state(queueRemaining=2, queueCountShown=False)) == []


async def test_a_finished_task_in_no_running_place_is_reported() -> None:
    session = _Session()
    adapter = _adapter()
    history = [{"id": "p0", "tag": "t0", "outcome": "error", "outputs": {}}]
    await adapter._digest(session, _state(history=history, tabs={"t1": "running"}, activeTab="t1"))  # type: ignore[arg-type]
    assert session.results == ["t0"] and session.ui_reports[-1][0] == []
