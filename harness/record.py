"""`RunRecord`: everything one scenario × client run produced (Contract 7).

The runner fills it; the scorer reads it. It holds plain JSON values only, so it can be
written next to a report and scored again later (`RunRecord.from_dict`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(slots=True)
class AdapterInfo:
    """How the client process itself behaved (one per client instance)."""

    client_index: int = 0
    exit_code: int | None = None
    crashed: bool = False
    hung: bool = False
    cpu_s: float | None = None
    stderr_tail: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    """Browser clients: [{kind: "screenshot", label, t, src: data URI}] for the report."""


@dataclass(slots=True)
class RunRecord:
    scenario: dict[str, Any]
    client: str
    seed: int
    time_scale: float
    backend: dict[str, Any] = field(default_factory=dict)
    t0: float = 0.0
    t_end: float = 0.0
    ledger: dict[str, Any] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)
    fault_log: list[dict[str, Any]] = field(default_factory=list)
    scheduled: list[int] = field(default_factory=list)
    fired: list[int] = field(default_factory=list)
    adapter: dict[str, Any] = field(default_factory=dict)
    client_stats: dict[str, Any] = field(default_factory=dict)
    task_ids: list[str] = field(default_factory=list)
    healed_at: float | None = None
    error: str | None = None
    scenario_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"RunRecord: unknown keys {unknown}")
        return cls(**data)
