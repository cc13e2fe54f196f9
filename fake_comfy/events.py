"""Server events: what happened inside the fake, for fault triggers and the harness."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal[
    "prompt_accepted",
    "prompt_started",
    "node_started",
    "message",
    "prompt_completed",
    "ws_connected",
    "ws_disconnected",
    "http_request",
]


@dataclass(frozen=True, slots=True)
class ServerEvent:
    kind: EventKind
    t: float
    prompt_id: str | None = None
    task_id: str | None = None
    client_id: str | None = None
    node: str | None = None
    node_index: int | None = None
    message_type: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class EventBus:
    """Synchronous fan-out of `ServerEvent`s; subscribers must be cheap and must not raise."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[ServerEvent], None]] = []

    def subscribe(self, callback: Callable[[ServerEvent], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    @property
    def active(self) -> bool:
        """Whether anyone listens (lets hot paths skip building events)."""
        return bool(self._subscribers)

    def emit(self, event: ServerEvent) -> None:
        for callback in list(self._subscribers):
            callback(event)
