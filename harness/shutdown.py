"""Run a command's event loop so that SIGINT, SIGTERM and fatal errors all clean up.

`run_guarded(coro)` runs `coro` on a fresh loop. The first SIGINT or SIGTERM (what
`timeout`, a CI cancel and `docker stop` send) cancels it, so every run's teardown stops
its server, proxy and client processes, exactly as for Ctrl-C. Afterwards, whatever
happened (a result, a signal, a MemoryError), it kills every process left in this
process's subtree, also those that escaped with setsid() (see `harness.proctree`), and
removes fake-server scratch folders that were not removed. It then reports honestly
what could not be stopped.

`gather_all` replaces `asyncio.gather` for runs that own resources: cancelled, it waits
for every child to finish its teardown instead of returning at the first cancelled one.
"""
from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from comfy_chaos.harness import proctree

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: After cancelling the runs: how long their teardowns may take in all (each step is bounded too).
TEARDOWN_TIMEOUT_S = 60.0


class Interrupted(Exception):
    """The command was stopped by a signal; `cleanup` says whether everything was stopped."""

    def __init__(self, signame: str, cleanup: Cleanup) -> None:
        super().__init__(signame)
        self.signame = signame
        self.cleanup = cleanup


@dataclass
class Cleanup:
    """What the final sweep found and whether it got rid of it."""

    killed: list[int] = field(default_factory=list)  # processes left behind, killed now
    survivors: list[int] = field(default_factory=list)  # processes that would not die
    removed: list[str] = field(default_factory=list)  # scratch folders removed now
    kept: list[str] = field(default_factory=list)  # scratch folders that could not be removed

    @property
    def complete(self) -> bool:
        return not self.survivors and not self.kept

    def describe(self) -> str:
        parts = []
        if self.survivors:
            parts.append(f"processes still running: {', '.join(map(str, self.survivors))}")
        if self.kept:
            parts.append(f"folders not removed: {', '.join(self.kept)}")
        return "; ".join(parts)


def run_guarded(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion; on SIGINT/SIGTERM cancel it and raise `Interrupted`.

    The final sweep runs in every case; a failed sweep after a normal end is logged."""
    proctree.become_subreaper()
    received: list[int] = []

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signum: int) -> None:
            if not received:
                log.warning("harness.signal", signal=signal.Signals(signum).name, action="stopping")
                task.cancel()
            received.append(signum)

        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await main
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    try:
        result = asyncio.run(guarded())
    except asyncio.CancelledError:
        cleanup = sweep()
        if received:
            raise Interrupted(signal.Signals(received[0]).name, cleanup) from None
        raise
    except BaseException:
        sweep()
        raise
    cleanup = sweep()
    if not cleanup.complete:
        log.error("harness.cleanup.incomplete", problems=cleanup.describe())
    return result


def sweep() -> Cleanup:
    """Kill what is left of this process's subtree; remove scratch folders still present."""
    from comfy_chaos.fake_comfy.server import remove_scratch_roots

    cleanup = Cleanup()
    left = proctree.kill_descendants(os.getpid())
    cleanup.killed = [pid for pid, _ in left]
    cleanup.survivors = proctree.alive(left)
    cleanup.removed, cleanup.kept = remove_scratch_roots()
    if cleanup.killed or cleanup.removed:
        log.warning("harness.cleanup", killed=cleanup.killed, removed=cleanup.removed)
    return cleanup


async def gather_all(awaitables: Iterable[Awaitable[Any]]) -> list[Any]:
    """Like `asyncio.gather`, but never returns while a child is still running: on an error
    or cancellation the other children are cancelled and awaited (bounded) first."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        await _cancel_and_wait(tasks)
        raise
    failed = next((t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None), None)
    if failed is not None:
        await _cancel_and_wait(tasks)
        raise failed.exception()  # type: ignore[misc]
    return [t.result() for t in tasks]


async def _cancel_and_wait(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel every task and wait until all have finished their teardown; a repeated
    cancellation of the caller does not cut that wait short (it stays bounded)."""
    for task in tasks:
        task.cancel()
    waiting = asyncio.ensure_future(asyncio.wait(tasks, timeout=TEARDOWN_TIMEOUT_S))
    while not waiting.done():
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            continue
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the first failure is the one raised
    pending = [t for t in tasks if not t.done()]
    if pending:
        log.error("harness.teardown.timeout", pending=len(pending), timeout_s=TEARDOWN_TIMEOUT_S)
