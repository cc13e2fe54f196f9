"""Values the client hands to its caller: outcomes and progress events."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["success", "error", "interrupted", "unknown"]


@dataclass(frozen=True)
class Outcome:
    """How one prompt ended, as far as the client could establish.

    `error` is the `execution_error` payload for errors and the `execution_interrupted`
    payload for interrupts. `source` says which mechanism established it (`ws`, `poll`,
    `reconcile`, `probe`, `hint`, `final_check`, `deadline`, `closed`).
    """

    status: Status
    prompt_id: str
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    detail: str | None = None
    source: str = "ws"


@dataclass(frozen=True)
class ProgressEvent:
    """One progress signal for a prompt.

    `kind`: `started`, `cached`, `executing`, `progress`, `executed`, `preview`, `text`.
    """

    kind: str
    prompt_id: str
    node: str | None = None
    value: float | None = None
    max: float | None = None
    data: Any = None
