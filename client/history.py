"""Reading a `/history/{id}` entry into an `Outcome` (pure).

ComfyUI writes the entry when the prompt finished (success, error or interrupt).
`status.messages` holds the `execution_*` events; its last terminal one says how the
run ended (more reliable than `status_str`, which can be stale, protocol.md §8).
"""
from __future__ import annotations

from typing import Any

from comfy_chaos.client.types import Outcome


def history_entry(reply: Any, prompt_id: str) -> dict[str, Any] | None:
    """The entry for `prompt_id` in a `/history/{id}` reply, or None (`{}` = not there yet)."""
    if not isinstance(reply, dict):
        return None
    entry = reply.get(prompt_id)
    return entry if isinstance(entry, dict) else None


def outcome_from_history(
    prompt_id: str, entry: dict[str, Any], source: str, requires_completed: bool = False
) -> Outcome | None:
    """The outcome an entry records, or None when it does not settle it.

    `requires_completed` reproduces the seed, which only trusted `status.completed`
    (true for successes only, so it never saw errors or interrupts through history).
    """
    status = entry.get("status")
    if not isinstance(status, dict):
        return None
    outputs = entry.get("outputs")
    if not isinstance(outputs, dict):
        outputs = {}
    completed = status.get("completed") is True
    if requires_completed:
        return Outcome("success", prompt_id, outputs, None, None, source) if completed else None
    terminal = _last_terminal_message(status.get("messages"))
    if terminal is not None:
        kind, payload = terminal
        if kind == "execution_success":
            return Outcome("success", prompt_id, outputs, None, None, source)
        if kind == "execution_error":
            return Outcome("error", prompt_id, outputs, payload, _error_detail(payload), source)
        return Outcome("interrupted", prompt_id, outputs, payload, "interrupted", source)
    status_str = status.get("status_str")
    if completed or status_str == "success":
        return Outcome("success", prompt_id, outputs, None, None, source)
    if status_str == "error":
        return Outcome("error", prompt_id, outputs, None, "history status_str=error", source)
    return None


def _last_terminal_message(messages: Any) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(messages, list):
        return None
    for item in reversed(messages):
        if (
            isinstance(item, (list, tuple))
            and len(item) == 2
            and item[0] in ("execution_success", "execution_error", "execution_interrupted")
        ):
            payload = item[1] if isinstance(item[1], dict) else {}
            return item[0], payload
    return None


def _error_detail(payload: dict[str, Any]) -> str:
    parts = [str(payload.get(k)) for k in ("node_type", "exception_type", "exception_message") if payload.get(k)]
    return ": ".join(parts).strip() or "execution_error"


def outcome_from_ws_error(prompt_id: str, kind: str, payload: dict[str, Any], outputs: dict[str, Any]) -> Outcome:
    """An outcome built from a WebSocket `execution_error`/`execution_interrupted` alone."""
    if kind == "execution_error":
        return Outcome("error", prompt_id, outputs, payload, _error_detail(payload), "ws")
    return Outcome("interrupted", prompt_id, outputs, payload, "interrupted", "ws")
