"""Glue shared by the CLI and the pytest plugin: find scenario files, run one scenario ×
client into a scored result, write the results JSON + HTML report."""
from __future__ import annotations

import asyncio
import platform
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comfy_chaos.harness.results import ResultsFile, ScenarioResult, save_results
from comfy_chaos.harness.runner import Harness, RunError
from comfy_chaos.harness.scenario import Scenario, ScenarioError, load_scenario
from comfy_chaos.harness.scoring import score

DEFAULT_SUITE = Path(__file__).resolve().parents[1] / "scenarios"


@dataclass(frozen=True)
class Loaded:
    """One scenario file: the scenario, or the error that makes it unusable."""

    path: Path
    scenario: Scenario | None
    error: ScenarioError | None = None

    @property
    def slow(self) -> bool:
        return self.scenario is not None and "slow" in self.scenario.tags


def scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every `*.yaml` under the given directories, plus the given files, sorted and unique."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.yaml") if p.is_file()))
        else:
            found.append(path)
    unique = list(dict.fromkeys(found))
    return unique


def load_all(paths: Iterable[str | Path]) -> list[Loaded]:
    loaded = []
    for path in scenario_files(paths):
        try:
            loaded.append(Loaded(path, load_scenario(path)))
        except ScenarioError as exc:
            loaded.append(Loaded(path, None, exc))
    return loaded


async def run_one(
    harness: Harness, scenario: Scenario, client: str, *, seed: int | None = None, time_scale: float | None = None
) -> ScenarioResult:
    """Run and score one scenario × client. A harness failure scores the partial record
    (the scorer makes it inconclusive and names the error); AdapterError propagates."""
    try:
        record = await harness.run(scenario, client, seed=seed, time_scale=time_scale)
    except RunError as exc:
        record = exc.record
    # Scoring 1000 tasks takes a while: off the loop, so a run going on beside it (-j 2)
    # is not starved by the harness itself.
    return await asyncio.to_thread(score, record)


def run_info(**extra: Any) -> dict[str, Any]:
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "argv": sys.argv,
        **extra,
    }


def write_report(results: list[ScenarioResult], out_dir: str | Path, run: dict[str, Any]) -> Path:
    """Write `results.json` and `index.html` into `out_dir`; returns the JSON path."""
    out = Path(out_dir)
    results_file = ResultsFile(run=run, results=results)
    path = save_results(out / "results.json", results_file)
    render_html(results_file, out)
    return path


def render_html(results_file: ResultsFile, out_dir: Path) -> None:
    from comfy_chaos.harness.report import write_html_report

    write_html_report(out_dir, results_file)
