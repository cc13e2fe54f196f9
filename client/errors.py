"""Exceptions the client raises to its caller."""
from __future__ import annotations

from typing import Any


class ComfyError(Exception):
    """Base class of every error this client raises."""


class PromptRejected(ComfyError):
    """ComfyUI refused the workflow (HTTP 400); `.body` is the server's reply (usually JSON)."""

    def __init__(self, body: Any, status: int = 400) -> None:
        self.body = body
        self.status = status
        message = body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = body["error"].get("message", body)
        super().__init__(f"ComfyUI rejected the prompt (HTTP {status}): {message}")


class ComfyUnavailable(ComfyError):
    """The server could not be reached within the configured bounded retries."""
