"""The scenarios × clients matrix (used by `comfy-chaos bench`): one graded cell per pair.

A pair may have several results (repeats, several seeds); the cell aggregates them and is
graded by its worst verdict: any fail → `fail`, else any inconclusive → `inconclusive`,
else `pass`.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from comfy_chaos.harness.report.terminal import format_table
from comfy_chaos.harness.results import Attribution, ScenarioResult

PROBLEM_METRICS = (
    ("lost", "lost"),
    ("indeterminate", "indet"),
    ("phantom", "phantom"),
    ("duplicate_report", "dup"),
    ("contradictory", "contra"),
    ("duplicate_execution", "dup-exec"),
    ("wrong_outcome", "wrong"),
    ("wrong_outputs", "wrong-out"),
)


@dataclass
class Cell:
    """Aggregate of the results for one (scenario, client)."""

    results: list[ScenarioResult] = field(default_factory=list)

    @property
    def grade(self) -> str:
        verdicts = {r.verdict for r in self.results}
        for worst in ("fail", "inconclusive", "pass"):
            if worst in verdicts:
                return worst
        return "missing"

    @property
    def counts(self) -> dict[str, int]:
        """Problem counts summed over the results (only the non-zero ones)."""
        totals: dict[str, int] = {}
        for metric, short in PROBLEM_METRICS:
            total = sum(int(r.metrics.get(metric) or 0) for r in self.results)
            if total:
                totals[short] = total
        hangs = sum(1 for r in self.results if r.metrics.get("hang"))
        crashes = sum(1 for r in self.results if r.metrics.get("crash"))
        if hangs:
            totals["hang"] = hangs
        if crashes:
            totals["crash"] = crashes
        return totals

    @property
    def p95(self) -> float | None:
        values = [float(r.metrics["latency_p95"]) for r in self.results if r.metrics.get("latency_p95") is not None]
        return max(values) if values else None

    @property
    def cause(self) -> str:
        """Why the cell fails: `faults` (fails only under faults, or the faults add failures),
        `clean-run` (fails without faults too, the faults change nothing), or '' (passes,
        or no control run to tell)."""
        failed = [r for r in self.results if r.verdict == "fail"]
        if any(r.attribution == Attribution.FAULT for r in failed):
            return "faults"
        if failed and all(r.attribution == Attribution.CLEAN_RUN for r in failed):
            return "clean-run"
        return ""

    def label(self) -> str:
        """Short text for a matrix cell, e.g. `FAIL (faults) lost 2` or `PASS 2/2 p95 0.4s`."""
        if not self.results:
            return "-"
        text = self.grade.upper() if self.grade != "inconclusive" else "INCONCL"
        if self.cause:
            text += f" ({self.cause})"
        passed = sum(1 for r in self.results if r.verdict == "pass")
        if len(self.results) > 1:
            text += f" {passed}/{len(self.results)}"
        counts = self.counts
        if counts:
            text += " " + " ".join(f"{k} {v}" for k, v in counts.items())
        elif self.p95 is not None:
            text += f" p95 {self.p95:.1f}s"
        return text


def build_matrix(results: Iterable[ScenarioResult]) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
    """Rows (scenarios), columns (clients), both in first-seen order, and the cells."""
    scenarios: list[str] = []
    clients: list[str] = []
    cells: dict[tuple[str, str], Cell] = {}
    for r in results:
        if r.scenario not in scenarios:
            scenarios.append(r.scenario)
        if r.client not in clients:
            clients.append(r.client)
        cells.setdefault((r.scenario, r.client), Cell()).results.append(r)
    return scenarios, clients, cells


def render_matrix(results: Iterable[ScenarioResult]) -> str:
    """Plain-text matrix, scenarios down, clients across, plus a pass count per client."""
    scenarios, clients, cells = build_matrix(results)
    header = ["scenario", *clients]
    rows = [[s, *(cells.get((s, c), Cell()).label() for c in clients)] for s in scenarios]
    footer = ["passed"]
    for c in clients:
        graded = [cells[(s, c)].grade for s in scenarios if (s, c) in cells]
        footer.append(f"{graded.count('pass')}/{len(graded)}")
    return format_table(header, rows + [footer])
