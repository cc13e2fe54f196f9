"""Plain-text summary table for the CLI (no colours, no terminal control codes)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from comfy_chaos.harness.report.attribution import cause_label, render_clean_run_bugs
from comfy_chaos.harness.results import Attribution, ScenarioResult

COLUMNS: tuple[tuple[str, str], ...] = (
    ("tasks", "tasks"),
    ("done", "server_completed"),
    ("ok", "ok"),
    ("lost", "lost"),
    ("indet", "indeterminate"),
    ("phantom", "phantom"),
    ("dup", "duplicate_report"),
    ("dup-exec", "duplicate_execution"),
    ("wrong", "wrong_outcome"),
    ("p95 s", "latency_p95"),
    ("max s", "latency_max"),
    ("http/task", "http_per_task"),
    ("peak/s", "peak_requests_per_s"),
    ("cpu/s", "cpu_per_wall"),
    ("reconn", "reconnects"),
)


def format_cell(value: Any, missing: str = "-") -> str:
    """One metric as table text: `missing` for None, yes/no, floats to 2 decimals."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned first column, right-aligned others, columns separated by two spaces."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i]) for i, v in enumerate(row)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)]) + "\n"


def render_summary(results: Iterable[ScenarioResult], *, reasons: bool = True) -> str:
    """One row per result (verdict and its cause), a totals line, then (optionally) each
    client's clean-run bug once and the reasons of each other non-pass."""
    results = list(results)
    header = ["scenario", "client", "verdict", "cause", *(title for title, _ in COLUMNS)]
    rows = []
    for r in results:
        verdict = r.verdict.upper()
        if r.metrics.get("hang"):
            verdict += " (hang)"
        if r.metrics.get("crash"):
            verdict += " (crash)"
        rows.append([r.scenario, r.client, verdict, cause_label(r),
                     *(format_cell(r.metrics.get(key)) for _, key in COLUMNS)])
    text = format_table(header, rows)
    counts = {v: sum(1 for r in results if r.verdict == v) for v in ("pass", "fail", "inconclusive")}
    text += f"\n{counts['pass']} passed, {counts['fail']} failed, {counts['inconclusive']} inconclusive " \
            f"({len(results)} runs; latencies in scenario seconds)\n"
    by_cause = {c: sum(1 for r in results if r.verdict == "fail" and r.attribution == c) for c in
                (Attribution.FAULT, Attribution.CLEAN_RUN, Attribution.UNATTRIBUTED)}
    if counts["fail"]:
        text += (f"failures: {by_cause[Attribution.FAULT]} caused by the faults, {by_cause[Attribution.CLEAN_RUN]} "
                 f"clean-run bugs, {by_cause[Attribution.UNATTRIBUTED]} without a control run\n")
    if reasons:
        text += render_clean_run_bugs(results)
        for r in results:
            if r.verdict == "fail" and r.attribution == Attribution.CLEAN_RUN:
                text += f"\n{r.scenario} / {r.client}: FAIL (clean-run bug, see above): {r.attribution_detail}\n"
            elif r.verdict != "pass":
                text += f"\n{r.scenario} / {r.client}: {r.verdict.upper()}\n"
                text += "".join(f"  {line}\n" for line in r.reasons)
    return text
