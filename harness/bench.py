"""The bench (`comfy-chaos bench`, harness/cli/bench.py): scenarios × clients over several seeds, one graded matrix.

Autobahn-style comparison of client implementations: every scenario runs with every client
and every seed; the matrix (scenarios down, clients across) is printed and written into the
HTML report, where each cell links to the detail of its worst run. Per client it totals
what matters: tasks lost, phantoms, duplicates, hangs, report-latency percentiles over all
tasks, HTTP requests and reconnects per task. A client that cannot be time-scaled runs at
time scale 1.0 (the runner decides); the totals and the report say so.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from comfy_chaos.harness.report.matrix import build_matrix
from comfy_chaos.harness.report.terminal import format_table
from comfy_chaos.harness.results import ResultsFile, ScenarioResult
from comfy_chaos.harness.scenario import Scenario

DEFAULT_CLIENTS = ("reference", "seed", "naive")
SEED_STRIDE = 1000  # --seeds N: the scenario's own seed, then seed + 1000, seed + 2000, …


@dataclass(frozen=True)
class ClientTotals:
    """One client's column summed over every run of the bench."""

    client: str
    scenarios: int
    scenarios_passed: int
    runs: int
    runs_passed: int
    tasks: int
    lost: int
    indeterminate: int
    phantom: int
    duplicate: int
    wrong: int
    hangs: int
    crashes: int
    latency_p50: float | None
    latency_p95: float | None
    latency_max: float | None
    http_per_task: float | None
    reconnects_per_task: float | None
    unscaled_runs: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def nearest_rank(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (as the scorer uses); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _scale_of(result: ScenarioResult, scenario_scales: dict[str, float]) -> bool:
    """True when the run ran unscaled although its scenario asks for another time scale."""
    wanted = scenario_scales.get(result.scenario)
    return wanted is not None and result.time_scale == 1.0 and wanted != 1.0


def client_totals(results: Iterable[ScenarioResult], scenario_scales: dict[str, float] | None = None) -> list[ClientTotals]:
    """Per client totals over all results (clients in first-seen order)."""
    results = list(results)
    scenarios, clients, cells = build_matrix(results)
    scales = scenario_scales or {}
    out = []
    for client in clients:
        mine = [r for r in results if r.client == client]
        graded = [cells[(s, client)].grade for s in scenarios if (s, client) in cells]

        def total(metric: str, runs: list[ScenarioResult] = mine) -> int:
            return sum(int(r.metrics.get(metric) or 0) for r in runs)

        latencies = [t.latency for r in mine for t in r.tasks if t.latency is not None]
        tasks = total("tasks")
        out.append(
            ClientTotals(
                client=client,
                scenarios=len(graded),
                scenarios_passed=graded.count("pass"),
                runs=len(mine),
                runs_passed=sum(1 for r in mine if r.verdict == "pass"),
                tasks=tasks,
                lost=total("lost"),
                indeterminate=total("indeterminate"),
                phantom=total("phantom"),
                duplicate=total("duplicate_report") + total("duplicate_execution"),
                wrong=total("wrong_outcome") + total("wrong_outputs") + total("contradictory"),
                hangs=sum(1 for r in mine if r.metrics.get("hang")),
                crashes=sum(1 for r in mine if r.metrics.get("crash")),
                latency_p50=nearest_rank(latencies, 50),
                latency_p95=nearest_rank(latencies, 95),
                latency_max=max(latencies) if latencies else None,
                http_per_task=total("http_requests") / tasks if tasks else None,
                reconnects_per_task=total("reconnects") / tasks if tasks else None,
                unscaled_runs=sum(1 for r in mine if _scale_of(r, scales)),
            )
        )
    return out


_TOTAL_COLUMNS = (
    ("scenarios passed", lambda t: f"{t.scenarios_passed}/{t.scenarios}"),
    ("runs passed", lambda t: f"{t.runs_passed}/{t.runs}"),
    ("tasks", lambda t: str(t.tasks)),
    ("lost", lambda t: str(t.lost)),
    ("indet", lambda t: str(t.indeterminate)),
    ("phantom", lambda t: str(t.phantom)),
    ("dup", lambda t: str(t.duplicate)),
    ("wrong", lambda t: str(t.wrong)),
    ("hangs", lambda t: str(t.hangs)),
    ("crashes", lambda t: str(t.crashes)),
    ("p50 s", lambda t: _num(t.latency_p50)),
    ("p95 s", lambda t: _num(t.latency_p95)),
    ("max s", lambda t: _num(t.latency_max)),
    ("http/task", lambda t: _num(t.http_per_task)),
    ("reconn/task", lambda t: _num(t.reconnects_per_task, 3)),
)


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_totals(totals: list[ClientTotals]) -> str:
    """Plain-text per-client totals, plus a line for every client that ran unscaled."""
    header = ["client", *(name for name, _ in _TOTAL_COLUMNS)]
    rows = [[t.client, *(fmt(t) for _, fmt in _TOTAL_COLUMNS)] for t in totals]
    text = format_table(header, rows)
    for note in unscaled_notes(totals):
        text += f"note: {note}\n"
    return text


def unscaled_notes(totals: list[ClientTotals]) -> list[str]:
    return [
        f"{t.client} cannot be time-scaled: {t.unscaled_runs} of its {t.runs} runs ran at time scale 1.0 "
        "(latencies are still in scenario seconds)"
        for t in totals
        if t.unscaled_runs
    ]


def totals_html(totals: list[ClientTotals]) -> str:
    """The per-client totals as an HTML section for the report."""
    head = "<th>client</th>" + "".join(f"<th>{escape(name)}</th>" for name, _ in _TOTAL_COLUMNS)
    rows = "".join(
        f'<tr><td class="l">{escape(t.client)}</td>' + "".join(f"<td>{escape(fmt(t))}</td>" for _, fmt in _TOTAL_COLUMNS) + "</tr>"
        for t in totals
    )
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in unscaled_notes(totals))
    return (
        '<h2>Per client totals</h2><p>Summed over every scenario and seed; latencies are the '
        "percentiles of all tasks' report latencies in scenario seconds.</p>"
        f'<table class="summary" id="client-totals"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{notes}'
    )


def seeds_for(base: int, *, count: int | None, explicit: list[int] | None) -> list[int]:
    """The seeds one scenario runs with: the explicit list, or `count` seeds from its own."""
    if explicit:
        return list(explicit)
    return [base + i * SEED_STRIDE for i in range(count or 1)]


def bench_jobs(scenarios: Iterable[Scenario], clients: Sequence[str], *, count: int | None = None,
               explicit: list[int] | None = None) -> list[tuple[Scenario, str]]:
    """Every scenario × seed × client, the seed set on the scenario (so each run replays as is)."""
    return [
        (scenario.model_copy(update={"seed": seed}), client)
        for scenario in scenarios
        for seed in seeds_for(scenario.seed, count=count, explicit=explicit)
        for client in clients
    ]


def write_bench_report(results: list[ScenarioResult], totals: list[ClientTotals], out_dir: str | Path,
                       *, clients: list[str], run: dict[str, Any] | None = None) -> Path:
    """results.json (with the totals under `run.bench`) and index.html (matrix + totals)."""
    from comfy_chaos.harness.report import write_html_report
    from comfy_chaos.harness.results import save_results
    from comfy_chaos.harness.suite import run_info

    run = dict(run) if run is not None else run_info(runner="comfy-chaos bench", clients=", ".join(clients))
    run["bench"] = {"client_totals": [t.to_dict() for t in totals], "notes": unscaled_notes(totals)}
    results_file = ResultsFile(run=run, results=results)
    path = save_results(Path(out_dir) / "results.json", results_file)
    write_html_report(out_dir, results_file, title="comfy-chaos bench", sections=[totals_html(totals)])
    return path
