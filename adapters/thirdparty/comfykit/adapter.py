"""comfy-chaos subprocess adapter for the PyPI library `comfykit` (0.1.12).

Usage: python adapters/thirdparty/comfykit/adapter.py   (JSON lines on stdio)
Install: pip install -r adapters/thirdparty/comfykit/requirements.txt
         (or the `thirdparty` extra: pip install -e '.[thirdparty]')

The glue its README shows: one `ComfyKit(comfyui_url=...)`, then per task
`await kit.execute_json(workflow)` (which writes the workflow to a temporary file and runs
`kit.execute(path)`), returning an `ExecuteResult` with `status` ("completed", "error",
"timeout"), `prompt_id`, `outputs` (history outputs) and `msg`. The default executor is
"http": POST /prompt, then GET /history/{id} every 1.0 s until the entry appears. All
tasks share one kit and one event loop (a thread of the adapter), as in an asyncio app.
What the library cannot express is in docs/adapters-thirdparty.md.
"""
from __future__ import annotations

import asyncio
import sys
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # jsonlines_driver.py

from jsonlines_driver import Start, TaskContext, TaskResult, main  # noqa: E402

try:
    from comfykit import ComfyKit
except ImportError as exc:
    sys.stderr.write(
        f"comfykit/adapter.py: the library is not installed ({exc}); "
        "install it with: pip install -r adapters/thirdparty/comfykit/requirements.txt\n"
    )
    sys.exit(2)

DISTRIBUTION = "comfykit"


class ComfyKitAdapter:
    name = "comfykit"
    version = metadata.version(DISTRIBUTION)
    # The prompt id comes only with the result; an interrupt is reported as an error.
    caps = ["outputs"]

    def __init__(self) -> None:
        self._kit: ComfyKit | None = None
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}

    def open(self, start: Start) -> None:
        threading.Thread(target=self._loop.run_forever, name="comfykit-loop", daemon=True).start()
        self._kit = ComfyKit(comfyui_url=start.base_url)

    def _count(self, key: str) -> None:
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + 1

    def run_task(self, workflow: dict[str, Any], ctx: TaskContext) -> TaskResult:
        assert self._kit is not None, "open() first"
        result = asyncio.run_coroutine_threadsafe(self._kit.execute_json(workflow), self._loop).result()
        self._count(f"status_{result.status}")
        if result.prompt_id:
            ctx.submitted(result.prompt_id)
        if result.status == "completed":
            return TaskResult("success", outputs=result.outputs or {}, prompt_id=result.prompt_id)
        return TaskResult("error", detail=f"status {result.status!r}: {result.msg}", prompt_id=result.prompt_id)

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._counters)


if __name__ == "__main__":
    main(ComfyKitAdapter())
