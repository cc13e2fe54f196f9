"""What the reports say about the cause of each failure (docs/scoring.md "Attribution").

A clean-run bug (the client fails the workload without any fault) is reported once per
client, with the reasons of one control run, instead of once per scenario.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from comfy_chaos.harness.results import Attribution, ScenarioResult

CAUSE_LABELS = {
    Attribution.FAULT.value: "faults",
    Attribution.CLEAN_RUN.value: "clean-run",
    Attribution.UNATTRIBUTED.value: "no-control",
}


def cause_label(result: ScenarioResult) -> str:
    """Short cause of a result for a table cell: `faults`, `clean-run`, `faults+clean-run`, …"""
    if result.verdict == "inconclusive":
        return "-"
    if result.verdict == "pass":
        return "clean-run-bug" if result.clean_run_bug else "-"
    label = CAUSE_LABELS.get(result.attribution, result.attribution)
    if result.attribution == Attribution.FAULT.value and result.clean_run_bug:
        label += "+clean-run"
    return label


@dataclass
class CleanRunBug:
    """One client's clean-run bug: the scenarios whose control run (or fault-free run) fails."""

    client: str
    scenarios: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    """The reasons of the first failing clean run (shown once)."""


def clean_run_bugs(results: Iterable[ScenarioResult]) -> list[CleanRunBug]:
    """Per client, the scenarios where the client fails without faults, in first-seen order."""
    bugs: dict[str, CleanRunBug] = {}
    for r in results:
        if not r.clean_run_bug:
            continue
        bug = bugs.setdefault(r.client, CleanRunBug(r.client))
        if r.scenario not in bug.scenarios:
            bug.scenarios.append(r.scenario)
        if not bug.reasons:
            control = r.control or {}
            bug.reasons = list(control.get("reasons") or []) or list(r.reasons)
    return list(bugs.values())


def render_clean_run_bugs(results: Iterable[ScenarioResult]) -> str:
    """Plain text: one block per client with a clean-run bug ('' when there is none)."""
    text = ""
    for bug in clean_run_bugs(results):
        text += (f"\nclean-run bug: {bug.client} fails without any fault in {len(bug.scenarios)} scenario(s): "
                 f"{', '.join(bug.scenarios)}\n")
        text += "".join(f"  {line}\n" for line in bug.reasons)
    return text
