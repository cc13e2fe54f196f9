"""comfy-chaos subprocess adapter for the PyPI library `comfyui-utils` (0.0.1).

Usage: python adapters/thirdparty/comfyui_utils_adapter.py   (JSON lines on stdio)

Each task is one `await ComfyAPI(address).submit(workflow, callbacks)`, the library's
only way to run a workflow (as in its README and examples/e2e.py), run with
`asyncio.run` in a worker thread. The library reports through `Callbacks`:
`completed(outputs, cached)` carries the UI output of ONE node (the first `executed`, or
the first history output when it decides the prompt was cached) without that node's id,
and it never tells the caller the prompt_id. So results carry no prompt_id, and the
outputs are reported under the node id `UNKNOWN_NODE`. What else the library cannot
express is listed in docs/adapters-thirdparty.md.
"""
from __future__ import annotations

import asyncio
import sys
import threading
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from jsonlines_driver import Start, TaskContext, TaskResult, main

try:
    from comfyui_utils import comfy
except ImportError as exc:
    sys.stderr.write(
        f"comfyui_utils_adapter.py: the library is not installed ({exc}); "
        "install it with: pip install -e '.[thirdparty]'\n"
    )
    sys.exit(2)

DISTRIBUTION = "comfyui-utils"
UNKNOWN_NODE = "?"


class _Recorder(comfy.Callbacks):
    """Keeps what the library hands to its callbacks."""

    def __init__(self) -> None:
        self.completions: list[tuple[Any, bool]] = []
        self.queue_positions = 0
        self.progress_updates = 0

    async def queue_position(self, position: str) -> None:
        self.queue_positions += 1

    async def in_progress(self, node_id: int, progress: int, total: int) -> None:
        self.progress_updates += 1

    async def completed(self, outputs: dict[str, Any], cached: bool) -> None:
        self.completions.append((outputs, cached))


class ComfyuiUtilsAdapter:
    name = "comfyui-utils"
    version = metadata.version(DISTRIBUTION)
    # Neither prompt ids nor error/interrupted outcomes reach the caller.
    caps: list[str] = []

    def __init__(self) -> None:
        self._api: comfy.ComfyAPI | None = None
        self._lock = threading.Lock()
        self._counters = {"completed": 0, "completed_cached": 0, "raised": 0, "returned_without_result": 0}

    def open(self, start: Start) -> None:
        parts = urlsplit(start.base_url)
        if parts.scheme != "http" or not parts.netloc:
            raise ValueError(f"comfyui-utils only speaks plain http://host:port, got base_url {start.base_url!r}")
        self._api = comfy.ComfyAPI(parts.netloc)

    def _count(self, key: str) -> None:
        with self._lock:
            self._counters[key] += 1

    def run_task(self, workflow: dict[str, Any], ctx: TaskContext) -> TaskResult:
        assert self._api is not None, "open() first"
        recorder = _Recorder()
        try:
            asyncio.run(self._api.submit(workflow, recorder))
        except Exception:
            self._count("raised")
            raise
        if not recorder.completions:
            self._count("returned_without_result")
            return TaskResult("error", detail="library returned without calling completed() (websocket closed?)")
        outputs, cached = recorder.completions[0]
        self._count("completed_cached" if cached else "completed")
        return TaskResult(
            "success",
            outputs={UNKNOWN_NODE: outputs} if outputs else {},
            detail=f"library gives one node's output without its node id (cached={cached})",
        )

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._counters)


if __name__ == "__main__":
    main(ComfyuiUtilsAdapter())
