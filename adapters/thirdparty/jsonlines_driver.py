"""JSON-lines driver shared by the adapters that wrap third-party Python ComfyUI libraries.

Speaks the subprocess side of Contract 5 (docs/architecture.md): reads `start`, `task`,
`end` on stdin; writes `ready`, `submitted`, `result`, `note`, `stats`, `done` on stdout.
Each task is one blocking call of the library adapter's `run_task`, made in a worker
thread because the libraries are synchronous or run their own event loop. At most
`max_concurrency` calls run at once. An exception from a call becomes `outcome: error`
with the exception as detail. At the deadline the driver notes what is still open,
writes `done` and exits without waiting for the library's threads, which cannot be
cancelled.

Standalone on purpose (stdlib only): the adapters run as plain scripts and must not need
the comfy-chaos package importable.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

OUTCOMES = ("success", "error", "interrupted")


@dataclass(frozen=True, slots=True)
class Start:
    base_url: str
    time_scale: float
    deadline_s: float
    max_concurrency: int


@dataclass(frozen=True, slots=True)
class TaskResult:
    outcome: str
    outputs: dict[str, Any] | None = None
    detail: str | None = None
    prompt_id: str | None = None


@dataclass(slots=True)
class TaskContext:
    """What a library call may report while it runs (thread-safe)."""

    task_id: str
    emit: Callable[[dict[str, Any]], None]
    prompt_id: str | None = field(default=None)

    def submitted(self, prompt_id: str) -> None:
        self.prompt_id = prompt_id
        self.emit({"type": "submitted", "task_id": self.task_id, "prompt_id": prompt_id})

    def note(self, text: str) -> None:
        self.emit({"type": "note", "text": f"{self.task_id}: {text}"})


class LibraryAdapter(Protocol):
    name: str
    version: str
    caps: list[str]

    def open(self, start: Start) -> None:
        """Create the library's client for `start.base_url`."""

    def run_task(self, workflow: dict[str, Any], ctx: TaskContext) -> TaskResult:
        """Run one workflow with the library, blocking until the library returns."""

    def counters(self) -> dict[str, Any]:
        """Free-form counters for the final `stats` message."""


class _Emitter:
    """Writes JSON lines from any thread; drops what library threads report after `done`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False

    def __call__(self, message: dict[str, Any]) -> None:
        line = json.dumps(message) + "\n"
        with self._lock:
            if self._done:
                return
            self._done = message["type"] == "done"
            sys.stdout.write(line)
            sys.stdout.flush()


_END = object()  # stdin closed


def _fail(where: str, what: str) -> NoReturn:
    sys.stderr.write(f"{os.path.basename(sys.argv[0])}: {where}: {what}\n")
    sys.stderr.flush()
    os._exit(2)


def _read_stdin(loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[Any]) -> None:
    for line_no, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        where = f"stdin line {line_no}"
        try:
            message = json.loads(line)
        except ValueError as exc:
            _fail(where, f"invalid JSON ({exc}): {line[:200]!r}")
        if not isinstance(message, dict):
            _fail(where, f"expected a JSON object, got {line[:200]!r}")
        loop.call_soon_threadsafe(inbox.put_nowait, (where, message))
    loop.call_soon_threadsafe(inbox.put_nowait, ("stdin end", _END))


def _field(message: dict[str, Any], name: str, types: type | tuple[type, ...], where: str) -> Any:
    value = message.get(name)
    if not isinstance(value, types) or isinstance(value, bool):
        wanted = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        _fail(where, f"{message.get('type')!r} needs field {name!r} of type {wanted}, got {value!r}"[:300])
    return value


def _parse_start(where: str, message: Any) -> Start:
    if message is _END or message.get("type") != "start":
        _fail(where, f"expected a 'start' message first, got {message!r}"[:300])
    return Start(
        base_url=_field(message, "base_url", str, where),
        time_scale=float(_field(message, "time_scale", (int, float), where)),
        deadline_s=float(_field(message, "deadline_s", (int, float), where)),
        max_concurrency=max(1, int(_field(message, "max_concurrency", int, where))),
    )


def _describe(exc: BaseException) -> str:
    """Exception type, message and where it was raised (library asserts have no message)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _call(adapter: LibraryAdapter, task_id: str, workflow: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> None:
    ctx = TaskContext(task_id=task_id, emit=emit)
    try:
        result = adapter.run_task(workflow, ctx)
    except Exception as exc:  # the contract: any failure of the library is an error result
        result = TaskResult("error", detail=_describe(exc), prompt_id=ctx.prompt_id)
    emit(
        {
            "type": "result",
            "task_id": task_id,
            "prompt_id": result.prompt_id or ctx.prompt_id,
            "outcome": result.outcome,
            "outputs": result.outputs,
            "detail": result.detail,
        }
    )


async def _serve(adapter: LibraryAdapter, emit: Callable[[dict[str, Any]], None]) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    threading.Thread(target=_read_stdin, args=(loop, inbox), daemon=True, name="stdin").start()
    where, message = await inbox.get()
    start = _parse_start(where, message)
    try:
        adapter.open(start)
    except Exception as exc:
        _fail(where, f"cannot create the {adapter.name} client: {type(exc).__name__}: {exc}")
    emit({"type": "ready", "client": adapter.name, "version": adapter.version, "caps": adapter.caps})
    executor = ThreadPoolExecutor(max_workers=start.max_concurrency, thread_name_prefix="task")
    running: set[asyncio.Future[None]] = set()
    deadline = loop.time() + start.deadline_s
    try:
        async with asyncio.timeout_at(deadline):
            while True:
                where, message = await inbox.get()
                if message is _END or message.get("type") == "end":
                    break
                if message.get("type") != "task":
                    _fail(where, f"expected 'task' or 'end', got type {message.get('type')!r}")
                task_id = _field(message, "task_id", str, where)
                workflow = _field(message, "workflow", dict, where)
                running.add(loop.run_in_executor(executor, _call, adapter, task_id, workflow, emit))
    except TimeoutError:
        pass
    if running:
        _, unfinished = await asyncio.wait(running, timeout=max(0.0, deadline - loop.time()))
    else:
        unfinished = set()
    if unfinished or loop.time() >= deadline:
        emit({"type": "note", "text": f"deadline reached with {len(unfinished)} task(s) unreported"})
    emit({"type": "stats", "counters": adapter.counters()})
    emit({"type": "done"})


def main(adapter: LibraryAdapter) -> NoReturn:
    """Serve the JSON-lines contract for `adapter` until `end` (or the deadline), then exit."""
    asyncio.run(_serve(adapter, _Emitter()))
    sys.stdout.flush()
    # os._exit: library calls still blocked in worker threads (after the deadline) must not
    # keep the process alive, and ThreadPoolExecutor joins its threads at normal exit.
    os._exit(0)
