"""The in-process adapter contract (Contract 5): `ClientAdapter`, `AdapterSession`, `Task`.

An adapter translates between the harness and one client library: it pulls tasks from
the session when they are due, submits them with its client, and tells the session what
the client reported. The session timestamps every report (monotonic) and hands it to
the runner's sink; it never blocks the adapter.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from comfy_chaos.harness.record import AdapterInfo

Clock = Callable[[], float]
Sink = Callable[[dict[str, Any]], None]

OUTCOMES = ("success", "error", "interrupted")
# A client that floods notes (one per log line, say) must not grow the run record without
# bound: a stdout flood added ~250 MiB to the harness in 3 s (tests/reliability/test_bounded.py).
MAX_NOTES = 1000  # per client instance; later notes are counted, not kept
MAX_NOTE_CHARS = 4096


class Unscalable(Exception):
    """Raised by an adapter whose client said its timers do not scale while the run is
    scaled (a `ready` line with `"scalable": false`): the runner starts again at 1.0."""


@dataclass(frozen=True, slots=True)
class Task:
    task_id: str
    workflow: dict[str, Any]


@runtime_checkable
class ClientAdapter(Protocol):
    name: str
    scalable: bool

    async def run(self, session: AdapterSession) -> None: ...


@dataclass(slots=True)
class AdapterSession:
    """One client instance's view of a run.

    The runner calls `feed()` when a task is due and `end()` when there are no more;
    the adapter iterates `tasks()` and calls `submitted` / `result` / `note` / `stats`.
    """

    base_url: str
    time_scale: float
    deadline_s: float
    max_concurrency: int
    client_index: int = 0
    sink: Sink = field(default=lambda report: None)
    clock: Clock = time.monotonic
    info: AdapterInfo = field(default_factory=AdapterInfo)
    counters: dict[str, Any] = field(default_factory=dict)
    _queue: asyncio.Queue[Task | None] = field(default_factory=asyncio.Queue)
    judged: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by the runner at the judgement: later reports do not count (browser clients take
    their last screenshot then)."""
    _ended: bool = False
    notes_dropped: int = 0
    _notes: int = 0

    def feed(self, task: Task) -> None:
        if self._ended:
            raise RuntimeError(f"client {self.client_index}: task {task.task_id} fed after end()")
        self._queue.put_nowait(task)

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(None)

    async def tasks(self) -> AsyncIterator[Task]:
        """Yield each task when it is due; return after `end()`."""
        while True:
            task = await self._queue.get()
            if task is None:
                self._queue.put_nowait(None)  # later iterators end too
                return
            yield task

    def _report(self, type_: str, **values: Any) -> None:
        report = {
            "t": self.clock(),
            "client_index": self.client_index,
            "type": type_,
            "task_id": None,
            "prompt_id": None,
            "outcome": None,
            "outputs": None,
            "detail": None,
        }
        report.update(values)
        self.sink(report)

    def ready(self, client: str, version: str | None = None, caps: list[str] | None = None) -> None:
        self._report(
            "ready", detail=f"{client} {version or ''}".strip(), client=client, version=version, caps=caps or []
        )

    def submitted(self, task_id: str, prompt_id: str) -> None:
        self._report("submitted", task_id=task_id, prompt_id=prompt_id)

    def result(
        self,
        task_id: str,
        outcome: str,
        outputs: dict[str, Any] | None = None,
        detail: str | None = None,
        prompt_id: str | None = None,
    ) -> None:
        if outcome not in OUTCOMES:
            detail = f"adapter sent outcome {outcome!r}: {detail or ''}".strip()
            outcome = "error"
        self._report(
            "result", task_id=task_id, prompt_id=prompt_id, outcome=outcome, outputs=outputs, detail=detail
        )

    def note(self, text: str) -> None:
        """Kept up to `MAX_NOTES` per instance (each cut to `MAX_NOTE_CHARS`); then one note
        says so and the rest are only counted in `notes_dropped`."""
        self._notes += 1
        if self._notes <= MAX_NOTES:
            self._report("note", detail=text[:MAX_NOTE_CHARS])
        else:
            if self.notes_dropped == 0:
                self._report("note", detail=f"more than {MAX_NOTES} notes from this client: the rest are dropped")
            self.notes_dropped += 1

    def ui(self, running: list[str], detail: str) -> None:
        """What a UI client's page shows as running now (task ids), when that changes. A task
        the server finished that is still in the last such list at the judgement is scored
        "stuck UI" (docs/browser.md)."""
        self._report("ui", running=list(running), detail=detail[:MAX_NOTE_CHARS])

    def stats(self, counters: dict[str, Any]) -> None:
        """Free-form client counters (reconnects, polls, ...); later values replace earlier ones."""
        self.counters.update(counters)
        self._report("stats", counters=dict(counters))

    def done(self) -> None:
        self._report("done")

    def crash(self, detail: str) -> None:
        self.info.crashed = True
        self._report("crash", detail=detail)
