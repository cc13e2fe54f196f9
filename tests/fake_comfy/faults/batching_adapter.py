"""A test adapter with a slow-burn bug: the reference client, except that it holds every
result until all the tasks it was given have finished, then reports them at once."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from comfy_chaos.harness.adapters.base import AdapterSession, Task
from comfy_chaos.harness.adapters.builtin import ReferenceAdapter


class _BatchingSession:
    def __init__(self, session: AdapterSession) -> None:
        self._session = session
        self._given = 0
        self._fed_all = False
        self._held: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def tasks(self) -> AsyncIterator[Task]:
        async for task in self._session.tasks():
            self._given += 1
            yield task
        self._fed_all = True
        self._flush()

    def result(self, *args: Any, **kwargs: Any) -> None:
        self._held.append((args, kwargs))
        self._flush()

    def _flush(self) -> None:
        if self._fed_all and len(self._held) >= self._given:
            for args, kwargs in self._held:
                self._session.result(*args, **kwargs)
            self._held.clear()


class BatchingAdapter:
    name = "batching"
    scalable = True

    async def run(self, session: AdapterSession) -> None:
        await ReferenceAdapter().run(_BatchingSession(session))  # type: ignore[arg-type]
