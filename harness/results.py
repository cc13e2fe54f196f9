"""Scored results and the results JSON file (`schema_version: 1`, see docs/scoring.md).

`ScenarioResult` is what the scorer returns for one run (one scenario × one client); it
carries everything the reports need (metrics, per-task classification, a timeline with
fault windows and connection spans), so `comfy-chaos report results.json` can redraw the
HTML report from the JSON alone.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

VERDICTS = ("pass", "fail", "inconclusive")

TASK_CLASSES = (
    "ok",
    "lost",
    "phantom",
    "duplicate_report",
    "duplicate_execution",
    "wrong_outcome",
    "wrong_outputs",
    "indeterminate",
    "contradictory",
    "stuck_ui",
    "not_completed",
)
"""Per-task classes; `ok` and `not_completed` are the neutral ones, the rest are problems."""


class ResultsError(ValueError):
    """A results file is unreadable, has an unknown schema version or a bad shape."""


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TaskScore:
    """One task's classification; times are seconds after the run's t0 (real, not unscaled)."""

    task_id: str
    cls: str
    problems: list[str] = field(default_factory=list)
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

    @property
    def key(self) -> tuple[str, str]:
        """Identity of a result across runs (baseline matching)."""
        return (self.scenario, self.client)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioResult:
        data = dict(data)
        data["tasks"] = [_from_dict(TaskScore, t) for t in data.get("tasks", [])]
        data["faults"] = [_from_dict(FaultMark, f) for f in data.get("faults", [])]
        data["connections"] = [_from_dict(ConnSpan, c) for c in data.get("connections", [])]
        return _from_dict(cls, data)


@dataclass
class ResultsFile:
    """`{"schema_version": 1, "run": {...}, "results": [...]}`."""

    run: dict[str, Any]
    results: list[ScenarioResult]

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "run": self.run, "results": [r.to_dict() for r in self.results]}

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<results>") -> ResultsFile:
        if not isinstance(data, dict):
            raise ResultsError(f"{source}: expected a JSON object at the top level")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultsError(f"{source}: schema_version: expected {SCHEMA_VERSION}, got {version!r}")
        results = data.get("results")
        if not isinstance(results, list):
            raise ResultsError(f"{source}: results: expected a list, got {type(results).__name__}")
        parsed = []
        for i, item in enumerate(results):
            try:
                parsed.append(ScenarioResult.from_dict(item))
            except (TypeError, AttributeError) as exc:
                raise ResultsError(f"{source}: results[{i}]: {exc}") from None
        return cls(run=dict(data.get("run") or {}), results=parsed)


def save_results(path: str | Path, results: ResultsFile) -> Path:
    """Write `results` as JSON atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(results.to_dict(), fh, indent=2, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_results(path: str | Path) -> ResultsFile:
    """Read a results file; `ResultsError` names the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from None
    return ResultsFile.from_dict(data, source=str(path))
