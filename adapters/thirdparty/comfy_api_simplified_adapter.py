"""comfy-chaos subprocess adapter for the PyPI library `comfy-api-simplified` (1.6.0).

Usage: python adapters/thirdparty/comfy_api_simplified_adapter.py   (JSON lines on stdio)

Each task goes through the library the way its own `queue_and_wait_images` does it:
`asyncio.run(api.queue_prompt_and_wait(workflow))` (POST /prompt, then a fresh WebSocket
with a new clientId, wait for `executing` null / `status` queue 0 / `execution_error`),
then `api.get_history(prompt_id)` unless the library already returned WebSocket images.
The per-image `GET /view` downloads are left out (bytes the scorer does not use), and
outputs are taken for every node instead of one node chosen by title. What the library
cannot express is stated in notes and in docs/adapters-thirdparty.md.
"""
from __future__ import annotations

import asyncio
import sys
import threading
from importlib import metadata
from typing import Any

from jsonlines_driver import Start, TaskContext, TaskResult, main

try:
    from comfy_api_simplified import ComfyApiWrapper
except ImportError as exc:
    sys.stderr.write(
        f"comfy_api_simplified_adapter.py: the library is not installed ({exc}); "
        "install it with: pip install -e '.[thirdparty]'\n"
    )
    sys.exit(2)

DISTRIBUTION = "comfy-api-simplified"


class ComfyApiSimplifiedAdapter:
    name = "comfy-api-simplified"
    version = metadata.version(DISTRIBUTION)
    # No "submitted" before the result: the library only reveals the prompt_id when it
    # returns. No "interrupted": the library reports an interrupted prompt as finished.
    caps = ["outputs"]

    def __init__(self) -> None:
        self._api: ComfyApiWrapper | None = None
        self._lock = threading.Lock()
        self._counters = {"returned": 0, "raised": 0, "ws_images": 0, "history_disagrees": 0}

    def open(self, start: Start) -> None:
        self._api = ComfyApiWrapper(start.base_url)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counters[key] += n

    def run_task(self, workflow: dict[str, Any], ctx: TaskContext) -> TaskResult:
        assert self._api is not None, "open() first"
        try:
            prompt_id, images = asyncio.run(self._api.queue_prompt_and_wait(workflow))
        except Exception:
            self._count("raised")
            raise
        self._count("returned")
        ctx.submitted(prompt_id)
        if images:
            # queue_and_wait_images returns these bytes and never looks at history.
            self._count("ws_images", len(images))
            return TaskResult(
                "success",
                outputs={},
                detail=f"library returned {len(images)} websocket image(s) instead of history outputs",
                prompt_id=prompt_id,
            )
        entry = self._api.get_history(prompt_id)[prompt_id]
        status = entry.get("status") or {}
        if status.get("status_str") != "success":
            self._count("history_disagrees")
            ctx.note(
                f"library returned normally but history says status_str={status.get('status_str')!r} "
                "(it stops at executing null or at any status with queue_remaining 0, "
                "and ignores execution_interrupted)"
            )
        return TaskResult("success", outputs=entry.get("outputs") or {}, prompt_id=prompt_id)

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._counters)


if __name__ == "__main__":
    main(ComfyApiSimplifiedAdapter())
