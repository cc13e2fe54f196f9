"""Scorer: the stuck-UI class of browser clients (`ui` reports, docs/browser.md) and the
screenshots they leave as evidence."""
from __future__ import annotations

from comfy_chaos.harness.report.html import render_html
from comfy_chaos.harness.results import ResultsFile, ScenarioResult
from comfy_chaos.harness.scoring import score_json as score

from .scoring_records import T0, ok_task, prompt, record, submitted


def ui(t: float, running: list[str], detail: str = "") -> dict:
    return {"t": T0 + t, "client_index": 0, "type": "ui", "task_id": None, "prompt_id": None, "outcome": None,
            "outputs": None, "detail": detail or f"{running} shown running", "running": running}


def stuck_record(*, cleared_at: float | None = None, t_end: float = 9.0) -> dict:
    """t0 reported; t1 finished on the server at +2.0 s and never reported, shown running from +0.5 s."""
    p0, r0 = ok_task("t0", "p0")
    p1 = prompt("p1", "t1", accepted=0.3, started=1.1, completed=2.0)
    reports = [*r0, submitted("t1", "p1", t=0.4), ui(0.5, ["t1"], "t1: shown executing (progress)")]
    if cleared_at is not None:
        reports.append(ui(cleared_at, []))
    return record([p0, p1], reports, time_scale=1.0, t_end=t_end)


def test_a_finished_task_still_shown_running_at_the_judgement_is_stuck_ui() -> None:
    res = score(stuck_record())
    t1 = next(t for t in res.tasks if t.task_id == "t1")
    assert t1.cls == "stuck_ui" and "lost" not in t1.problems
    assert res.verdict == "fail"
    assert res.metrics["stuck_ui"] == 1 and res.metrics["lost"] == 0
    text = "\n".join(res.reasons)
    assert "stuck_ui: 1 > expect.stuck_ui 0" in text
    assert "t1 (prompt p1) stuck ui: completed success on the server at +2.000 s" in text
    assert "still showed it running at the judgement, 7.0 s after the server finished it" in text
    assert "stuck from +2.000 s" in text


def test_a_page_that_stops_showing_it_running_before_the_judgement_is_not_stuck() -> None:
    res = score(stuck_record(cleared_at=4.0))
    t1 = next(t for t in res.tasks if t.task_id == "t1")
    assert t1.cls == "lost"  # not shown running any more, and never reported
    assert res.metrics["stuck_ui"] == 0


def test_ui_reports_after_the_judgement_do_not_count() -> None:
    res = score(stuck_record(cleared_at=12.0, t_end=9.0))
    assert next(t for t in res.tasks if t.task_id == "t1").cls == "stuck_ui"


def test_a_task_shown_running_that_the_server_has_not_finished_is_not_stuck() -> None:
    p0, r0 = ok_task("t0", "p0")
    p1 = prompt("p1", "t1", outcome=None, completed=None)
    rec = record([p0, p1], [*r0, submitted("t1", "p1"), ui(0.5, ["t1"])], time_scale=1.0)
    res = score(rec)
    assert next(t for t in res.tasks if t.task_id == "t1").cls == "not_completed"
    assert res.metrics["stuck_ui"] == 0


def test_clients_without_ui_reports_score_as_before() -> None:
    p0, r0 = ok_task("t0", "p0")
    p1 = prompt("p1", "t1", completed=2.0)
    res = score(record([p0, p1], [*r0, submitted("t1", "p1")], time_scale=1.0))
    assert next(t for t in res.tasks if t.task_id == "t1").cls == "lost"


def test_screenshots_become_evidence_in_the_result_and_the_html_report() -> None:
    rec = stuck_record()
    shot = {"kind": "screenshot", "label": "at judgement", "t": T0 + 9.0, "src": "data:image/jpeg;base64,AAAA"}
    rec["adapter"] = {"instances": [{"client_index": 0, "evidence": [shot]}]}
    res = score(rec)
    assert res.evidence == [{**shot, "t": 9.0, "client_index": 0}]
    again = ScenarioResult.from_dict(res.to_dict())
    assert again.evidence == res.evidence
    html = render_html(ResultsFile(run={}, results=[res]))
    assert '<img src="data:image/jpeg;base64,AAAA"' in html and "at judgement at 9" in html


def test_evidence_that_is_not_an_image_is_not_rendered() -> None:
    rec = stuck_record()
    rec["adapter"] = {"instances": [{"client_index": 0, "evidence": [{"kind": "screenshot", "label": "x", "t": T0,
                                                                      "src": "javascript:alert(1)"}]}]}
    html = render_html(ResultsFile(run={}, results=[score(rec)]))
    assert "javascript:alert" not in html
