"""The HTML report: one self-contained `index.html` (inline CSS and SVG, no scripts, no
external assets) with a summary table, the scenarios × clients matrix, and per result a
timeline picture, the reasons and the frames around every problem task.

Timeline rows, top to bottom: the time axis; faults (windows are shaded through the whole
picture, instantaneous faults are thin marks); one lane per WebSocket client id showing
its connections (open / orphaned / replaced / refused); one lane per task: waiting
(submitted → completed), running on the server (started → completed), completed marker
(coloured by the server outcome) and one dot per report the client made.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from comfy_chaos.harness.report.attribution import cause_label, clean_run_bugs
from comfy_chaos.harness.report.matrix import build_matrix
from comfy_chaos.harness.report.terminal import COLUMNS, format_cell
from comfy_chaos.harness.results import ResultsFile, ScenarioResult, TaskScore
from comfy_chaos.harness.scoring import merge_windows

MAX_LANES = 80
MAX_FRAME_TASKS = 20
LABEL_W = 150
PLOT_W = 800
ROW_H = 16
AXIS_H = 22

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d232b;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px}h3{font-size:15px;margin:16px 0 4px}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #d5dae1;padding:3px 7px;text-align:right}
th{background:#f2f4f7}td:first-child,th:first-child,td.l{text-align:left}
.pass{background:#dcf5e3;color:#115a2a}.fail{background:#fbdcdc;color:#8a1414}
.inconclusive{background:#fdf0cf;color:#7a5300}.missing{background:#eee;color:#777}
td.verdict{font-weight:600;text-align:center}.run-info{color:#555}
pre.reasons{background:#fafafa;border:1px solid #e3e6ea;padding:8px;white-space:pre-wrap;font-size:12.5px}
section.result{border-top:2px solid #e3e6ea;margin-top:24px}
svg.timeline{border:1px solid #e3e6ea;background:#fcfcfd}
svg text{font:11px system-ui,sans-serif;fill:#333}svg text.cut{fill:#777;font-style:italic}
.axis line{stroke:#ccd}.fault-window{fill:#f3b6b6;fill-opacity:.35}.fault-window.ineffective{fill:#bbb}
.fault-mark{fill:#d33}.fault-mark.ineffective{fill:#999}
.conn-open{fill:#7fbf8e}.conn-orphaned{fill:#e0b050}.conn-replaced{fill:#c9a0dc}.conn-refused{fill:#d33}
.wait{stroke:#9aa4b1;stroke-width:2}.run{fill:#8fb3e8}
.done-success{fill:#1f8a46}.done-error{fill:#c0392b}.done-interrupted{fill:#8e44ad}.done-other{fill:#777}
.report{fill:#1d4ed8;stroke:#fff;stroke-width:1}
.lane-label.bad{fill:#b00;font-weight:700}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
table.frames td,table.tasks td{font-size:12.5px}tr.bad td{background:#fff4f4}
pre.words{background:#f7f7fb;border:1px solid #e3e6ea;padding:8px;white-space:pre-wrap;font-size:12px;max-height:24em;overflow:auto}
p.cause{font-weight:600}
"""


def _slug(index: int, result: ScenarioResult) -> str:
    return f"r{index}-" + re.sub(r"[^A-Za-z0-9]+", "-", f"{result.scenario}-{result.client}").strip("-").lower()


def _fmt(value: Any) -> str:
    return format_cell(value, missing="–")


def _verdict_cell(verdict: str) -> str:
    return f'<td class="verdict {escape(verdict)}">{escape(verdict.upper())}</td>'


def _summary(results: list[ScenarioResult]) -> str:
    titles = ["scenario", "client", "verdict", "cause", *(t for t, _ in COLUMNS)]
    head = "".join(f"<th>{escape(t)}</th>" for t in titles)
    rows = []
    for i, r in enumerate(results):
        cells = "".join(f"<td>{escape(_fmt(r.metrics.get(key)))}</td>" for _, key in COLUMNS)
        rows.append(
            f'<tr data-scenario="{escape(r.scenario)}" data-client="{escape(r.client)}">'
            f'<td><a href="#{_slug(i, r)}">{escape(r.scenario)}</a></td><td class="l">{escape(r.client)}</td>'
            f'{_verdict_cell(r.verdict)}<td class="l cause">{escape(cause_label(r))}</td>{cells}</tr>'
        )
    return f'<table class="summary" id="summary"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _matrix(results: list[ScenarioResult]) -> str:
    scenarios, clients, cells = build_matrix(results)
    anchors = {id(r): _slug(i, r) for i, r in enumerate(results)}
    head = "<th>scenario</th>" + "".join(f"<th>{escape(c)}</th>" for c in clients)
    rows = []
    for s in scenarios:
        tds = []
        for c in clients:
            cell = cells.get((s, c))
            if cell is None:
                tds.append('<td class="missing">–</td>')
            else:
                worst = next(r for r in cell.results if r.verdict == cell.grade)
                tds.append(
                    f'<td class="cell {cell.grade}" data-grade="{cell.grade}">'
                    f'<a href="#{anchors[id(worst)]}">{escape(cell.label())}</a></td>'
                )
        rows.append(f"<tr><td>{escape(s)}</td>{''.join(tds)}</tr>")
    return f'<table class="matrix" id="matrix"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


class _Timeline:
    def __init__(self, result: ScenarioResult) -> None:
        self.r = result
        times = [result.duration]
        for t in result.tasks:
            times += [x for x in (t.submitted_at, t.accepted_at, t.completed_at, *t.reported_at) if x is not None]
        for f in result.faults:
            times += [x for x in (f.t, f.t_end) if x is not None]
        active = max(times[1:], default=0.0)
        # A run that idled long after the last event (a hang until the deadline) is drawn
        # up to shortly after that event, so the interesting part is not squashed.
        self.cut = result.duration if active > 0 and active < 0.5 * result.duration else None
        self.span = max(active * 1.15 if self.cut is not None else max(times), 1e-3)

    def x(self, t: float) -> float:
        return round(LABEL_W + min(max(0.0, t), self.span) / self.span * PLOT_W, 2)

    def lanes(self) -> tuple[list[TaskScore], int]:
        tasks = self.r.tasks
        if len(tasks) <= MAX_LANES:
            return tasks, 0
        bad = [t for t in tasks if t.problems]
        rest = [t for t in tasks if not t.problems]
        shown = (bad + rest)[:MAX_LANES]
        order = {t.task_id: i for i, t in enumerate(tasks)}
        return sorted(shown, key=lambda t: order[t.task_id]), len(tasks) - len(shown)

    def render(self) -> str:
        r = self.r
        sids = list(dict.fromkeys(c.sid for c in r.connections))
        tasks, hidden = self.lanes()
        rows = 1 + len(sids) + len(tasks)
        height = AXIS_H + rows * ROW_H + 6
        width = LABEL_W + PLOT_W + 16
        out = [
            f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline of {escape(r.scenario)}">'
        ]
        out.append(self.axis(height))
        out.append(self.faults(height))
        y = AXIS_H + ROW_H
        for sid in sids:
            out.append(self.conn_lane(sid, y))
            y += ROW_H
        for task in tasks:
            out.append(self.task_lane(task, y))
            y += ROW_H
        if self.cut is not None:
            out.append(
                f'<text class="cut" x="{LABEL_W + PLOT_W}" y="{height - 4}" text-anchor="end">'
                f"nothing new until the run ended at +{self.cut:.2f} s →</text>"
            )
        out.append("</svg>")
        if hidden:
            out.append(f'<p class="hidden-lanes">{hidden} tasks without problems are not drawn.</p>')
        return "".join(out)

    def axis(self, height: int) -> str:
        step = _nice_step(self.span)
        parts = ['<g class="axis">']
        k = 0
        while k * step <= self.span + 1e-9:
            t = k * step
            x = self.x(t)
            parts.append(f'<line x1="{x}" y1="{AXIS_H - 4}" x2="{x}" y2="{height}"/>')
            parts.append(f'<text x="{x}" y="12" text-anchor="middle">+{t:g}s</text>')
            k += 1
        parts.append("</g>")
        return "".join(parts)

    def faults(self, height: int) -> str:
        parts = ['<g class="faults">', f'<text x="4" y="{AXIS_H + 11}">faults</text>']
        for first, start, end, count in merge_windows(self.r.faults):
            x0 = self.x(start)
            width = max(2.0, round(self.x(end) - x0, 2))
            cls = "fault-window" if first.effective else "fault-window ineffective"
            label = first.kind if count > 1 else first.label
            records = f", {count} records" if count > 1 else ""
            parts.append(
                f'<rect class="{cls}" data-kind="{escape(first.kind)}" data-t="{start:.3f}" x="{x0}" y="{AXIS_H}" '
                f'width="{width}" height="{height - AXIS_H}"><title>{escape(label)} +{start:.2f} s to '
                f"+{end:.2f} s ({escape(first.source)}{records})</title></rect>"
            )
        for f in self.r.faults:
            if f.t_end is not None and f.t_end > f.t:
                continue
            cls = "fault-mark" if f.effective else "fault-mark ineffective"
            parts.append(
                f'<rect class="{cls}" data-kind="{escape(f.kind)}" data-t="{f.t:.3f}" x="{self.x(f.t)}" '
                f'y="{AXIS_H + 2}" width="2" height="{ROW_H - 4}"><title>{escape(f.label)} +{f.t:.2f} s '
                f"({escape(f.source)})</title></rect>"
            )
        parts.append("</g>")
        return "".join(parts)

    def conn_lane(self, sid: str, y: int) -> str:
        name = self.r.client_ids.get(sid) or (sid if len(sid) <= 14 else sid[:12] + "…")
        parts = [f'<g class="conn-lane" data-sid="{escape(sid)}"><text x="4" y="{y + 11}">ws {escape(name)}</text>']
        for span in (c for c in self.r.connections if c.sid == sid):
            x0 = self.x(span.start)
            width = max(2.0, round(self.x(span.end) - x0, 2))
            end = f" until +{span.end:.2f} s ({span.end_event})" if span.end_event else " until the end"
            parts.append(
                f'<rect class="conn conn-{escape(span.state)}" data-conn="{escape(str(span.conn_id))}" x="{x0}" '
                f'y="{y + 4}" width="{width}" height="{ROW_H - 8}"><title>{escape(span.state)} from '
                f"+{span.start:.2f} s{escape(end)}</title></rect>"
            )
        parts.append("</g>")
        return "".join(parts)

    def task_lane(self, task: TaskScore, y: int) -> str:
        mid = y + ROW_H // 2
        label_cls = "lane-label bad" if task.problems else "lane-label"
        title = f"{task.task_id}: {task.cls}" + (f" — {task.why}" if task.why else "")
        parts = [
            f'<g class="lane cls-{escape(task.cls)}" data-task="{escape(task.task_id)}" data-class="{escape(task.cls)}">',
            f"<title>{escape(title)}</title>",
            f'<text class="{label_cls}" x="4" y="{y + 11}">{escape(task.task_id)} {escape(task.cls)}</text>',
        ]
        start = task.submitted_at if task.submitted_at is not None else task.accepted_at
        stop = task.completed_at if task.completed_at is not None else self.r.duration
        if start is not None:
            parts.append(f'<line class="wait" x1="{self.x(start)}" y1="{mid}" x2="{self.x(stop)}" y2="{mid}"/>')
        if task.started_at is not None:
            x0 = self.x(task.started_at)
            width = max(2.0, round(self.x(stop) - x0, 2))
            parts.append(f'<rect class="run" x="{x0}" y="{y + 4}" width="{width}" height="{ROW_H - 8}"/>')
        if task.completed_at is not None:
            outcome = task.server_outcome if task.server_outcome in ("success", "error", "interrupted") else "other"
            x = self.x(task.completed_at)
            parts.append(
                f'<rect class="done done-{outcome}" data-t="{task.completed_at:.3f}" x="{x - 3}" y="{y + 2}" '
                f'width="6" height="{ROW_H - 4}"><title>completed {escape(str(task.server_outcome))} at '
                f"+{task.completed_at:.2f} s</title></rect>"
            )
        for t, outcome in zip(task.reported_at, task.reported_outcomes, strict=False):
            parts.append(
                f'<circle class="report" data-t="{t:.3f}" cx="{self.x(t)}" cy="{mid}" r="4">'
                f"<title>reported {escape(outcome)} at +{t:.2f} s</title></circle>"
            )
        parts.append("</g>")
        return "".join(parts)


def _nice_step(span: float) -> float:
    raw = span / 10
    for unit in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600):
        if unit >= raw:
            return unit
    return 1200.0


LEGEND = (
    '<p class="legend"><span><i class="sw" style="background:#f3b6b6"></i>fault window</span>'
    '<span><i class="sw" style="background:#d33"></i>instant fault</span>'
    '<span><i class="sw" style="background:#7fbf8e"></i>ws open</span>'
    '<span><i class="sw" style="background:#e0b050"></i>ws orphaned</span>'
    '<span><i class="sw" style="background:#8fb3e8"></i>running on server</span>'
    '<span><i class="sw" style="background:#1f8a46"></i>completed (success)</span>'
    '<span><i class="sw" style="background:#c0392b"></i>completed (error)</span>'
    '<span><i class="sw" style="background:#1d4ed8;border-radius:6px"></i>reported by client</span></p>'
)


def _tasks_table(result: ScenarioResult) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ["task", "class", "server", "reported", "prompt", "completed", "first report", "latency", "why"]
    )
    rows = []
    for t in result.tasks:
        if not t.problems and len(result.tasks) > MAX_LANES:
            continue
        pid = t.prompt_ids[-1] if t.prompt_ids else None
        cells = [
            t.task_id,
            t.cls,
            _fmt(t.server_outcome),
            ", ".join(t.reported_outcomes) or "–",
            (pid[:8] + "…") if pid and len(pid) > 9 else _fmt(pid),
            f"+{t.completed_at:.2f}" if t.completed_at is not None else "–",
            f"+{t.reported_at[0]:.2f}" if t.reported_at else "–",
            _fmt(t.latency),
            t.why or "",
        ]
        tds = "".join(f'<td class="l">{escape(str(c))}</td>' for c in cells)
        rows.append(f'<tr class="{"bad" if t.problems else "ok"}" data-task="{escape(t.task_id)}">{tds}</tr>')
    return f'<table class="tasks"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _frames(result: ScenarioResult) -> str:
    parts = []
    shown = list(result.frames.items())[:MAX_FRAME_TASKS]
    for task_id, frames in shown:
        rows = []
        for f in frames:
            t = f"+{f['t']:.3f}" if isinstance(f.get("t"), (int, float)) else "?"
            delivered = {True: "delivered", False: "NOT delivered", None: ""}.get(f.get("delivered"), "")
            cells = [t, f.get("what", ""), f.get("to", ""), f.get("type", ""), delivered, f.get("fault") or ""]
            tds = "".join(f'<td class="l">{escape(str(c))}</td>' for c in cells)
            rows.append(f'<tr class="{"bad" if f.get("delivered") is False or f.get("what") == "fault" else ""}">{tds}</tr>')
        head = "".join(f"<th>{h}</th>" for h in ["t", "what", "to", "type", "delivered", "fault"])
        parts.append(
            f'<details class="frames" data-task="{escape(task_id)}" open><summary>frames and faults around '
            f'{escape(task_id)}</summary><table class="frames"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></details>'
        )
    if len(result.frames) > len(shown):
        parts.append(f'<p class="more-frames">{len(result.frames) - len(shown)} more problem tasks: see results.json.</p>')
    return "".join(parts)


def _evidence(result: ScenarioResult) -> str:
    """A browser client's screenshots (data URIs, so the page stays self-contained)."""
    figures = []
    for shot in result.evidence:
        src = str(shot.get("src") or "")
        if shot.get("kind") != "screenshot" or not src.startswith("data:image/"):
            continue
        caption = f"{shot.get('label') or 'screenshot'} at {_fmt(shot.get('t'))} s (client c{shot.get('client_index', 0)})"
        figures.append(
            f'<figure class="evidence"><img src="{escape(src)}" alt="{escape(caption)}" loading="lazy" '
            f'style="max-width:100%;border:1px solid #e3e6ea"><figcaption>{escape(caption)}</figcaption></figure>'
        )
    return "".join(figures)


def _clean_run_bugs(results: list[ScenarioResult]) -> str:
    """Each client's clean-run bug once (not once per scenario)."""
    bugs = clean_run_bugs(results)
    if not bugs:
        return ""
    intro = ("<p>These clients fail the workload without any fault; their fault cells say whether the faults "
             "changed anything.</p>")
    parts = ["<h2>Clean-run bugs</h2>", intro]
    for bug in bugs:
        parts.append(
            f'<div class="clean-run-bug" data-client="{escape(bug.client)}"><h3>{escape(bug.client)} — fails '
            f"without faults in {len(bug.scenarios)} scenario(s)</h3><p>{escape(', '.join(bug.scenarios))}</p>"
            f'<pre class="reasons">{escape(chr(10).join(bug.reasons))}</pre></div>'
        )
    return "".join(parts)


def _client_words(r: ScenarioResult) -> str:
    """What the client said itself: errors, notes, crashes, counters, the stderr tail."""
    words = r.client_words
    lines: list[str] = []
    for ready in words.get("ready") or []:
        caps = ", ".join(ready.get("caps") or [])
        lines.append(f"ready c{ready.get('client_index')}: {ready.get('client', '')} {ready.get('version') or ''}"
                     + (f" (caps: {caps})" if caps else ""))
    for err in words.get("errors") or []:
        lines.append(f"{err.get('task_id')} {err.get('outcome')}: {err.get('detail')}")
    for note in words.get("notes") or []:
        lines.append(f"note c{note.get('client_index')} at +{float(note.get('t') or 0):.3f} s: {note.get('text')}")
    for crash in words.get("crashes") or []:
        lines.append(f"crash c{crash.get('client_index')}: {crash.get('detail')}")
    counters = words.get("counters") or {}
    if counters:
        lines.append("counters: " + ", ".join(f"{k}={v}" for k, v in counters.items()))
    parts = []
    if r.capabilities_missing:
        parts.append(f'<p class="capabilities">Not compared (the client does not expose them): '
                     f"{escape(', '.join(r.capabilities_missing))}</p>")
    if lines:
        parts.append(f'<pre class="words client-said">{escape(chr(10).join(lines))}</pre>')
    if words.get("stderr_tail"):
        parts.append(f'<details class="stderr"><summary>stderr (last 4 KiB)</summary><pre class="words">'
                     f"{escape(words['stderr_tail'])}</pre></details>")
    return "<h3>The client's own words</h3>" + "".join(parts) if parts else ""


def _section(index: int, r: ScenarioResult) -> str:
    m = r.metrics
    facts = (
        f"seed {r.seed} · time scale {r.time_scale:g} · "
        + (f"ComfyUI {r.comfyui_version} · " if r.comfyui_version else "")
        + f"{m.get('tasks', 0)} tasks · "
        f"{m.get('faults_applied', 0)} faults applied ({m.get('faults_effective', 0)} while work was outstanding) · "
        f"{_fmt(r.duration)} s · timeline and event times in real seconds since the run started"
    )
    parts = [
        f'<section class="result {escape(r.verdict)}-result" id="{_slug(index, r)}" '
        f'data-scenario="{escape(r.scenario)}" data-client="{escape(r.client)}" data-verdict="{escape(r.verdict)}">',
        f'<h2>{escape(r.scenario)} / {escape(r.client)} — <span class="{escape(r.verdict)}">'
        f"{escape(r.verdict.upper())}</span></h2>",
    ]
    if r.description:
        parts.append(f'<p class="description">{escape(r.description)}</p>')
    parts.append(f'<p class="facts">{escape(facts)}</p>')
    if r.attribution_detail:
        parts.append(f'<p class="cause" data-attribution="{escape(r.attribution)}">Cause: '
                     f"{escape(r.attribution_detail)}</p>")
    parts.append(_Timeline(r).render())
    parts.append(LEGEND)
    if r.reasons:
        parts.append(f'<pre class="reasons">{escape(chr(10).join(r.reasons))}</pre>')
    parts.append(f'<p class="replay">Replay: <code>{escape(r.replay)}</code></p>')
    parts.append(_client_words(r))
    parts.append("<h3>Tasks</h3>" + _tasks_table(r))
    if r.frames:
        parts.append("<h3>Around each problem task</h3>" + _frames(r))
    if r.evidence:
        parts.append("<h3>Screenshots</h3>" + _evidence(r))
    parts.append("</section>")
    return "".join(parts)


def render_html(
    results: ResultsFile | Iterable[ScenarioResult], *, title: str = "comfy-chaos report", sections: Iterable[str] = ()
) -> str:
    """The whole report page as a string; `sections` (HTML) go after the matrix (bench totals)."""
    run: dict[str, Any] = {}
    if isinstance(results, ResultsFile):
        run = results.run
        results = results.results
    results = list(results)
    counts = {v: sum(1 for r in results if r.verdict == v) for v in ("pass", "fail", "inconclusive")}
    run_bits = " · ".join(f"{escape(str(k))}: {escape(str(v))}" for k, v in run.items() if not isinstance(v, (dict, list)))
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="run-info">{run_bits}</p>' if run_bits else "",
        f'<p class="totals"><span class="pass">{counts["pass"]} passed</span> · <span class="fail">'
        f'{counts["fail"]} failed</span> · <span class="inconclusive">{counts["inconclusive"]} inconclusive'
        "</span> · latencies in scenario seconds (real seconds ÷ time scale)</p>",
        "<h2>Summary</h2>",
        _summary(results),
        "<h2>Scenarios × clients</h2>",
        _matrix(results),
        _clean_run_bugs(results),
        *sections,
        *(_section(i, r) for i, r in enumerate(results)),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def write_html_report(out_dir: str | Path, results: ResultsFile | Iterable[ScenarioResult], **kwargs: Any) -> Path:
    """Write `<out_dir>/index.html` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from comfy_chaos.harness.atomic import write_atomic

    return write_atomic(out / "index.html", render_html(results, **kwargs))
