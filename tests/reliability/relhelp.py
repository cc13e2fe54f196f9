"""A private event loop for the reliability tests' hypothesis properties.

Hypothesis drives plain (sync) test functions, so a property test cannot be an `async
def`. These tests start the server once per module on a loop of their own and run each
example's coroutine on it with `run(coro)`, bounded by `EXAMPLE_TIMEOUT_S` so a hang in
the server fails the example instead of stalling CI.
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

EXAMPLE_TIMEOUT_S = 10.0


class PrivateLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = EXAMPLE_TIMEOUT_S) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(timeout):
                return await coro

        return self.loop.run_until_complete(bounded())

    def close(self) -> None:
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending, timeout=EXAMPLE_TIMEOUT_S))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
