"""Reports: HTML structure (parsed with html.parser), terminal table, matrix, results JSON."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from comfy_chaos.harness.report import build_matrix, render_html, render_matrix, render_summary, write_html_report
from comfy_chaos.harness.results import SCHEMA_VERSION, ResultsError, ResultsFile, load_results, save_results
from comfy_chaos.harness.scoring import score_json as score

from .scoring_records import SID, T0, fault, null_outputs_client, ok_task, prompt, record, result, submitted

VOID = {"meta", "br", "img", "hr", "input", "link", "col", "area", "base", "wbr", "source"}
SVG_LEAVES = {"line", "circle", "rect", "path"}


class Page(HTMLParser):
    """Collects every element with its attributes, its text, and checks nesting."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict] = []
        self.stack: list[dict] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "parents": [p["tag"] for p in self.stack]}
        self.elements.append(el)
        if tag not in VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.elements.append({"tag": tag, "attrs": dict(attrs), "text": "", "parents": [p["tag"] for p in self.stack]})

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1]["tag"] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {[e['tag'] for e in self.stack][-3:]})")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        for el in self.stack:
            el["text"] += data

    def find(self, tag: str, **attrs: str) -> list[dict]:
        def match(el: dict) -> bool:
            if el["tag"] != tag:
                return False
            for key, want in attrs.items():
                have = el["attrs"].get(key.rstrip("_").replace("_", "-"))
                if key == "class_":
                    if have is None or want not in have.split():
                        return False
                elif have != want:
                    return False
            return True

        return [el for el in self.elements if match(el)]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    assert page.errors == [] and page.stack == [], (page.errors, [e["tag"] for e in page.stack])
    return page


def failing_result():
    prompts = [
        prompt("p0", "t0"),
        prompt("9f2c1a7e-0000", "t1", accepted=0.6, started=0.7, completed=2.41,
               messages=[(2.40, "execution_success", False, "drop"), (2.41, "executing", True, None)]),
        prompt("p2", "t2", outcome="error", accepted=1.0, started=1.5, completed=3.0),
    ]
    reports = [
        submitted("t0", "p0"), result("t0", "p0"),
        submitted("t1", "9f2c1a7e-0000", t=0.55),
        submitted("t2", "p2", t=0.9), result("t2", "p2", outcome="error", t=3.3),
    ]
    connections = [
        {"t": T0, "sid": SID, "event": "open", "conn_id": 1},
        {"t": T0 + 1.5, "sid": SID, "event": "abort", "conn_id": 1},
        {"t": T0 + 2.0, "sid": SID, "event": "open", "conn_id": 2},
    ]
    specs = [{"kind": "drop"}, {"kind": "silent"}]
    log = [fault(2.40, task="t1"), fault(1.2, "silent", message=None, t_end=1.5, spec_index=1)]
    return score(record(prompts, reports, fault_specs=specs, fault_log=log, connections=connections, name="drop-completion"))


def passing_result(name: str = "baseline", client: str = "reference"):
    p, r = ok_task("t0", "p0")
    rec = record([p], r, name=name)
    rec["client"] = client
    return score(rec)


def test_html_has_lanes_fault_windows_connections_and_tables() -> None:
    bad, good = failing_result(), passing_result()
    assert bad.verdict == "fail" and good.verdict == "pass"
    page = parse(render_html(ResultsFile(run={"started": "2026-01-01T00:00:00Z"}, results=[bad, good])))

    svgs = page.find("svg", class_="timeline")
    assert len(svgs) == 2
    lanes = {el["attrs"]["data-task"]: el["attrs"]["data-class"] for el in page.find("g", class_="lane")}
    assert lanes == {"t0": "ok", "t1": "lost", "t2": "ok"}
    assert page.find("g", class_="lane", data_task="t1")[0]["attrs"]["class"].split() == ["lane", "cls-lost"]
    windows = page.find("rect", class_="fault-window")
    assert [w["attrs"]["data-kind"] for w in windows] == ["silent"]
    assert float(windows[0]["attrs"]["width"]) > 2
    marks = page.find("rect", class_="fault-mark")
    assert [m["attrs"]["data-kind"] for m in marks] == ["drop"] and marks[0]["attrs"]["data-t"] == "2.400"
    conns = page.find("rect", class_="conn-open")
    assert len(conns) == 2 and {c["attrs"]["data-conn"] for c in conns} == {"1", "2"}
    done = page.find("rect", class_="done-error")
    assert [d["attrs"]["data-t"] for d in done] == ["3.000"]
    dots = page.find("circle", class_="report")
    assert len(dots) == 3  # t0 and t2 in the failing run, t0 in the passing one
    assert all(d["parents"][-2:] == ["svg", "g"] for d in dots)

    summary_rows = page.find("tr", data_scenario="drop-completion")
    assert len(summary_rows) == 1 and "FAIL" in summary_rows[0]["text"]
    assert page.find("table", id="matrix") and page.find("td", data_grade="fail")
    reasons = page.find("pre", class_="reasons")
    assert len(reasons) == 1 and "t1 (prompt 9f2c1a7e…) lost" in reasons[0]["text"]
    frames = page.find("details", data_task="t1")
    assert frames and "execution_success" in frames[0]["text"] and "NOT delivered" in frames[0]["text"]
    section = page.find("section", data_verdict="fail")
    assert len(section) == 1 and "comfy-chaos replay" in section[0]["text"]


def test_html_is_self_contained() -> None:
    page = parse(render_html([failing_result()]))
    assert not page.find("script") and not page.find("link") and not page.find("img")
    hrefs = [el["attrs"]["href"] for el in page.elements if "href" in el["attrs"]]
    assert hrefs and all(h.startswith("#") for h in hrefs)
    assert not [el for el in page.elements if "src" in el["attrs"]]
    assert len(page.find("style")) == 1


def test_html_escapes_text_from_the_run() -> None:
    res = passing_result(name="<b>x</b>")
    res.description = 'a "quoted" <i>thing</i>'
    text = render_html([res])
    assert "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text
    parse(text)


def test_many_tasks_draw_problem_lanes_first(tmp_path: Path) -> None:
    prompts, reports = [], []
    for i in range(120):
        p, r = ok_task(f"t{i}", f"p{i}", at=i * 0.01)
        prompts.append(p)
        reports.extend(x for x in r if not (i == 117 and x["type"] == "result"))
    res = score(record(prompts, reports, t_end=3.0))
    page = parse(write_html_report(tmp_path, [res]).read_text(encoding="utf-8"))
    lanes = page.find("g", class_="lane")
    assert len(lanes) == 80 and any(el["attrs"]["data-task"] == "t117" for el in lanes)
    assert page.find("p", class_="hidden-lanes")


def test_terminal_summary_rows_totals_and_reasons() -> None:
    text = render_summary([failing_result(), passing_result()])
    lines = text.splitlines()
    assert lines[0].split()[:6] == ["scenario", "client", "verdict", "cause", "tasks", "done"]
    row = next(line for line in lines if line.startswith("drop-completion"))
    cols = row.split()
    assert cols[:8] == ["drop-completion", "reference", "FAIL", "no-control", "3", "3", "2", "1"]
    assert "1 passed, 1 failed, 0 inconclusive (2 runs" in text
    assert "drop-completion / reference: FAIL" in text and "  t1 (prompt 9f2c1a7e…) lost" in text
    assert "\x1b" not in text


def test_matrix_aggregates_repeats_and_grades_by_worst() -> None:
    results = [passing_result("a", "x"), passing_result("a", "x"), passing_result("a", "y"), failing_result()]
    results[-1].client = "y"
    scenarios, clients, cells = build_matrix(results)
    assert scenarios == ["a", "drop-completion"] and clients == ["x", "y"]
    assert cells[("a", "x")].grade == "pass" and cells[("a", "x")].label().startswith("PASS 2/2")
    assert cells[("drop-completion", "y")].grade == "fail"
    assert cells[("drop-completion", "y")].label() == "FAIL lost 1"
    text = render_matrix(results)
    assert "FAIL lost 1" in text and text.splitlines()[-1].split() == ["passed", "1/1", "1/2"]
    assert ("drop-completion", "x") not in cells
    assert text.splitlines()[3].split() == ["drop-completion", "-", "FAIL", "lost", "1"]


def test_results_json_round_trip_and_report_from_json_alone(tmp_path: Path) -> None:
    original = ResultsFile(run={"command": "comfy-chaos run"}, results=[failing_result(), passing_result()])
    path = save_results(tmp_path / "out" / "results.json", original)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION == 2 and len(data["results"]) == 2
    assert {"scenario", "client", "seed", "verdict", "reasons", "replay", "metrics", "tasks", "attribution",
            "attribution_detail", "clean_run_bug", "control", "capabilities_missing", "client_words"} <= set(
        data["results"][0])
    loaded = load_results(path)
    assert [r.to_dict() for r in loaded.results] == [r.to_dict() for r in original.results]
    assert render_html(loaded) == render_html(original)


def test_results_errors_name_file_and_problem(tmp_path: Path) -> None:
    bad_version = tmp_path / "v.json"
    bad_version.write_text(json.dumps({"schema_version": 3, "results": []}))
    with pytest.raises(ResultsError, match=r"v\.json: schema_version: expected 2, got 3"):
        load_results(bad_version)
    broken = tmp_path / "b.json"
    broken.write_text('{"schema_version": 1,\n "results": [}')
    with pytest.raises(ResultsError, match=r"b\.json: line 2, column \d+: invalid JSON"):
        load_results(broken)
    with pytest.raises(ResultsError, match="cannot read"):
        load_results(tmp_path / "missing.json")


def test_one_window_per_merged_fault_and_idle_tail_is_cut() -> None:
    p = prompt("p0", "t0", completed=0.3)
    window = [fault(0.1 + i * 0.01, "silent", message=m, t_end=0.6 + i * 0.01, spec_index=0)
              for i, m in enumerate(["execution_start", "executing", "executed"])]
    connections = [{"t": T0, "sid": SID, "event": "open", "conn_id": 1}]
    res = score(record([p], [submitted("t0", "p0")], fault_specs=[{"kind": "silent"}], fault_log=window,
                       connections=connections, t_end=30.0))
    page = parse(render_html([res]))
    (rect,) = page.find("rect", class_="fault-window")
    assert rect["attrs"]["data-t"] == "0.100" and "3 records" in rect["text"]
    (cut,) = page.find("text", class_="cut")
    assert "+30.00 s" in cut["text"]
    lane = page.find("g", class_="conn-lane")[0]
    assert lane["attrs"]["data-sid"] == SID and "ws c0" in lane["text"]


def test_frames_sections_are_capped_but_results_keep_them_all() -> None:
    prompts = [prompt(f"p{i}", f"t{i}", completed=0.5 + i * 0.01) for i in range(25)]
    reports = [submitted(f"t{i}", f"p{i}") for i in range(25)]
    res = score(record(prompts, reports))
    assert len(res.frames) == 25
    page = parse(render_html([res]))
    assert len(page.find("details", class_="frames")) == 20
    (more,) = page.find("p", class_="more-frames")
    assert more["text"].startswith("5 more problem tasks")


def attributed(lost: int, *, control_lost: int | None, scenario: str, client: str = "real-js"):
    """A run of 4 tasks where `lost` are never reported, scored with a control run in which
    `control_lost` are (None: no control run)."""
    from comfy_chaos.harness.record import RunRecord
    from comfy_chaos.harness.scoring import score as score_record
    from comfy_chaos.harness.scoring import summarise_control

    def run(n_lost: int, faulted: bool) -> dict:
        prompts, reports = [], []
        for i in range(4):
            p, r = ok_task(f"t{i}", f"p{i}", at=i * 0.5)
            prompts.append(p)
            reports += [x for x in r if i >= n_lost or x["type"] == "submitted"]
        specs = [{"kind": "drop", "when": {"at": 0.3}}] if faulted else []
        rec = record(prompts, reports, fault_specs=specs, fault_log=[fault(0.3)] if faulted else [], name=scenario)
        rec["client"] = client
        return rec

    typed = RunRecord.from_json(run(lost, True))
    if control_lost is not None:
        typed.control = summarise_control(score(run(control_lost, False)))
    return score_record(typed)


def test_causes_in_the_terminal_matrix_and_html_and_clean_run_bugs_once() -> None:
    results = [
        attributed(1, control_lost=0, scenario="drop-a"),
        attributed(1, control_lost=1, scenario="drop-b"),
        attributed(1, control_lost=1, scenario="drop-c"),
        attributed(0, control_lost=0, scenario="drop-d"),
    ]
    assert [r.attribution for r in results] == ["fault", "clean_run", "clean_run", "pass"]
    text = render_summary(results)
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.split()[1:2] == ["real-js"]}
    assert rows["drop-a"][2:4] == ["FAIL", "faults"] and rows["drop-b"][2:4] == ["FAIL", "clean-run"]
    assert "failures: 1 caused by the faults, 2 clean-run bugs, 0 without a control run" in text
    # the clean-run bug is told once, with the control run's reasons; its cells point there
    assert text.count("clean-run bug: real-js fails without any fault in 2 scenario(s): drop-b, drop-c") == 1
    assert text.count("t0 (prompt p0) lost") == 2  # drop-a's own reasons + the control's, once
    assert "drop-b / real-js: FAIL (clean-run bug, see above)" in text
    _, _, cells = build_matrix(results)
    assert cells[("drop-a", "real-js")].label() == "FAIL (faults) lost 1"
    assert cells[("drop-b", "real-js")].label() == "FAIL (clean-run) lost 1"
    page = parse(render_html(results))
    bugs = page.find("div", class_="clean-run-bug")
    assert len(bugs) == 1 and bugs[0]["attrs"]["data-client"] == "real-js" and "drop-b, drop-c" in bugs[0]["text"]
    causes = [el["text"] for el in page.find("td", class_="cause")]
    assert causes == ["faults", "clean-run", "clean-run", "-"]
    assert [el["attrs"]["data-attribution"] for el in page.find("p", class_="cause")][:2] == ["fault", "clean_run"]


def test_html_and_json_carry_the_clients_own_words(tmp_path: Path) -> None:
    rec = null_outputs_client(2)
    rec["reports"][-1]["outcome"], rec["reports"][-1]["detail"] = "error", "ended expired <timeout>"
    rec["reports"].append({"t": T0 + 0.4, "client_index": 0, "type": "note", "detail": "polling /history"})
    rec["adapter"]["stderr_tail"] = "Traceback (most recent call last): boom"
    rec["client_stats"] = {"reconnects": 2}
    res = score(rec)
    page = parse(render_html([res]))
    said = page.find("pre", class_="client-said")[0]["text"]
    assert "t1 error: ended expired <timeout>" in said and "note c0 at +0.400 s: polling /history" in said
    assert "counters: reconnects=2" in said
    assert "Traceback (most recent call last): boom" in page.find("details", class_="stderr")[0]["text"]
    assert "outputs" in page.find("p", class_="capabilities")[0]["text"]
    path = save_results(tmp_path / "results.json", ResultsFile(run={}, results=[res]))
    words = json.loads(path.read_text())["results"][0]["client_words"]
    assert words["stderr_tail"].endswith("boom") and words["notes"][0]["text"] == "polling /history"
