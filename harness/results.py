"""Scored results and the results JSON file (`schema_version: 2`, see docs/scoring.md).

`ScenarioResult` is what the scorer returns for one run (one scenario × one client); it
carries everything the reports need (metrics, per-task classification, a timeline with
fault windows and connection spans), so `comfy-chaos report results.json` can redraw the
HTML report from the JSON alone.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 1 files (no attribution, no client words) still load: the new fields default."""

VERDICTS = ("pass", "fail", "inconclusive")


class TaskClass(StrEnum):
    """Per-task classes; `ok` and `not_completed` are the neutral ones, the rest are problems."""

    OK = "ok"
    LOST = "lost"
    PHANTOM = "phantom"
    DUPLICATE_REPORT = "duplicate_report"
    DUPLICATE_EXECUTION = "duplicate_execution"
    WRONG_OUTCOME = "wrong_outcome"
    WRONG_OUTPUTS = "wrong_outputs"
    INDETERMINATE = "indeterminate"
    CONTRADICTORY = "contradictory"
    STUCK_UI = "stuck_ui"
    NOT_COMPLETED = "not_completed"


TASK_CLASSES = tuple(c.value for c in TaskClass)


class Attribution(StrEnum):
    """Why a result is what it is, from its control run (docs/scoring.md "Attribution")."""

    PASS = "pass"
    FAULT = "fault"
    """Fails only under the faults (or the faults added failures the control run does not have)."""
    CLEAN_RUN = "clean_run"
    """Fails without faults too, and the faults changed nothing that fails."""
    INCONCLUSIVE = "inconclusive"
    UNATTRIBUTED = "unattributed"
    """Fails, and there is no usable control run to compare with."""


class ResultsError(ValueError):
    """A results file is unreadable, has an unknown schema version or a bad shape."""


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TaskScore:
    """One task's classification; times are seconds after the run's t0 (real, not unscaled)."""

    task_id: str
    cls: TaskClass
    problems: list[TaskClass] = field(default_factory=list)
    client_index: int | None = None
    prompt_ids: list[str] = field(default_factory=list)
    server_outcome: str | None = None
    reported_outcomes: list[str] = field(default_factory=list)
    executions: int = 0
    submitted_at: float | None = None
    accepted_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    reported_at: list[float] = field(default_factory=list)
    latency: float | None = None
    """First report minus server completion, in scenario seconds (real seconds / time_scale)."""
    why: str = ""
    detail: str | None = None
    """The client's own words on its first result (its error text), as reported."""
    outputs_compared: bool = True
    """False when the client reported `outputs: null` (it does not expose outputs)."""


@dataclass
class FaultMark:
    """One applied fault on the timeline (seconds after t0; `t_end` None = instantaneous)."""

    t: float
    t_end: float | None
    kind: str
    label: str
    source: str = "server"
    spec_index: int | None = None
    effective: bool = True
    """Reached the client while work was outstanding."""
    target_kind: str = "ws"
    target_client_id: str | None = None
    reached: bool = True
    """The fault reached this client (a frame to its socket, a fault on one of its
    requests, a toxic or restart while it was connected)."""


@dataclass
class ConnSpan:
    """One WebSocket connection of one client id: open from `start` to `end` in `state`."""

    sid: str
    conn_id: Any
    start: float
    end: float
    state: str = "open"
    end_event: str | None = None


@dataclass
class ScenarioResult:
    """The scored outcome of one run (scenario × client)."""

    scenario: str
    client: str
    seed: int
    time_scale: float
    verdict: str
    reasons: list[str]
    replay: str
    metrics: dict[str, Any]
    tasks: list[TaskScore] = field(default_factory=list)
    faults: list[FaultMark] = field(default_factory=list)
    connections: list[ConnSpan] = field(default_factory=list)
    frames: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per problem task: the ledger's frames and faults around it (for the report)."""
    duration: float = 0.0
    source: str | None = None
    description: str = ""
    tags: list[str] = field(default_factory=list)
    client_ids: dict[str, str] = field(default_factory=dict)
    """WebSocket client id (sid) → `c<client_index>`, where a report ties them together."""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    """Browser clients: screenshots `{kind: "screenshot", label, t, src: data URI, client_index}`
    (t in seconds after t0), shown in the HTML report."""
    attribution: str = Attribution.UNATTRIBUTED.value
    attribution_detail: str = ""
    clean_run_bug: bool = False
    """The client fails this workload without any fault (its control run failed, or the
    scenario has no faults)."""
    control: dict[str, Any] | None = None
    """Summary of the control run (`verdict`, `failures`, `problems`, `metrics`, `reasons`)."""
    failures: list[str] = field(default_factory=list)
    """The bars this run broke (also the first reason lines of a fail)."""
    capabilities_missing: list[str] = field(default_factory=list)
    """What the client does not expose, so was not compared (`outputs`, `prompt_ids`)."""
    client_words: dict[str, Any] = field(default_factory=dict)
    """What the client said itself: `errors` (task, outcome, detail), `notes`, `crashes`,
    `counters`, `ready`, `stderr_tail` (last 4 KiB)."""
    comfyui_version: str = ""
    """The ComfyUI version (protocol profile) the fake server imitated in this run."""

    def failure_kinds(self) -> set[str]:
        """For a CI gate: {"fault"} and/or {"clean_run"} when this result fails for that cause."""
        if self.verdict != "fail":
            return set()
        kinds = set()
        if self.attribution in (Attribution.FAULT, Attribution.UNATTRIBUTED):
            kinds.add("fault")
        if self.clean_run_bug:
            kinds.add("clean_run")
        return kinds

    @property
    def key(self) -> tuple[str, str]:
        """Identity of a result across runs (baseline matching)."""
        return (self.scenario, self.client)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioResult:
        data = dict(data)
        data["tasks"] = [_task_from_dict(t) for t in data.get("tasks", [])]
        data["faults"] = [_from_dict(FaultMark, f) for f in data.get("faults", [])]
        data["connections"] = [_from_dict(ConnSpan, c) for c in data.get("connections", [])]
        result: ScenarioResult = _from_dict(cls, data)
        return result


FAILURE_KINDS = ("fault", "clean_run")


def failing(results: list[ScenarioResult], kinds: tuple[str, ...] = FAILURE_KINDS) -> list[ScenarioResult]:
    """The results a CI gate should fail on: those failing for one of `kinds` (`fault`:
    caused by the faults or unattributed; `clean_run`: the client fails without faults)."""
    unknown = sorted(set(kinds) - set(FAILURE_KINDS))
    if unknown:
        raise ValueError(f"failure kinds {unknown}: expected some of {list(FAILURE_KINDS)}")
    return [r for r in results if r.failure_kinds() & set(kinds)]


def _task_from_dict(data: dict[str, Any]) -> TaskScore:
    task: TaskScore = _from_dict(TaskScore, data)
    task.cls = TaskClass(task.cls)
    task.problems = [TaskClass(p) for p in task.problems]
    return task


@dataclass
class ResultsFile:
    """`{"schema_version": 2, "run": {...}, "results": [...]}`."""

    run: dict[str, Any]
    results: list[ScenarioResult]

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "run": self.run, "results": [r.to_dict() for r in self.results]}

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<results>") -> ResultsFile:
        if not isinstance(data, dict):
            raise ResultsError(f"{source}: expected a JSON object at the top level")
        version = data.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise ResultsError(f"{source}: schema_version: expected {SCHEMA_VERSION}, got {version!r}")
        results = data.get("results")
        if not isinstance(results, list):
            raise ResultsError(f"{source}: results: expected a list, got {type(results).__name__}")
        parsed = []
        for i, item in enumerate(results):
            try:
                parsed.append(ScenarioResult.from_dict(item))
            except (TypeError, AttributeError, ValueError) as exc:
                raise ResultsError(f"{source}: results[{i}]: {exc}") from None
        return cls(run=dict(data.get("run") or {}), results=parsed)


def save_results(path: str | Path, results: ResultsFile) -> Path:
    """Write `results` as JSON atomically (a reader never sees half a file)."""
    from comfy_chaos.harness.atomic import write_atomic

    return write_atomic(path, json.dumps(results.to_dict(), indent=2, default=str) + "\n")


def load_results(path: str | Path) -> ResultsFile:
    """Read a results file; `ResultsError` names the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from None
    return ResultsFile.from_dict(data, source=str(path))
