"""Built-in adapters around the project's own reference client (`client`, Contract 6)."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from comfy_chaos.harness.adapters.base import AdapterSession, Task

if TYPE_CHECKING:
    from comfy_chaos.client import ClientConfig, ComfyClient

log = structlog.get_logger(__name__)

DEADLINE_SHARE = 0.9  # of the run's deadline, by which every task must have an outcome
MIN_TASK_DEADLINE_S = 0.5


class ReferenceAdapter:
    """The reference client with `ClientConfig.reference()`, scaled to the run's time scale."""

    name = "reference"
    scalable = True

    def config(self) -> ClientConfig:
        from comfy_chaos.client import ClientConfig

        return ClientConfig.reference()

    async def run(self, session: AdapterSession) -> None:
        from comfy_chaos.client import ComfyClient

        config = self.config().scaled(session.time_scale)
        session.ready(self.name, _client_version(), caps=["reconnect", "poll", "reconcile"])
        running: set[asyncio.Task[None]] = set()
        # Tasks must settle a little before the run's judgement so the client's own final
        # check (history + queue) happens while the harness still listens.
        settle_by = session.clock() + DEADLINE_SHARE * session.deadline_s
        slots = asyncio.Semaphore(max(1, session.max_concurrency))
        async with ComfyClient(session.base_url, config=config) as comfy:
            try:
                async for task in session.tasks():
                    await slots.acquire()
                    job = asyncio.create_task(self._one(comfy, task, session, settle_by))
                    job.add_done_callback(lambda _job: slots.release())
                    running.add(job)
                    job.add_done_callback(running.discard)
                if running:
                    await asyncio.gather(*running)
            finally:
                for job in running:
                    job.cancel()
                await asyncio.gather(*running, return_exceptions=True)
                session.stats(comfy.stats.to_dict())
        session.done()

    async def _one(self, comfy: ComfyClient, task: Task, session: AdapterSession, settle_by: float) -> None:
        prompt_id: str | None = None
        try:
            handle = await comfy.submit(task.workflow, deadline=max(MIN_TASK_DEADLINE_S, settle_by - session.clock()))
            prompt_id = handle.prompt_id
            if prompt_id is not None:
                session.submitted(task.task_id, prompt_id)
            outcome = await handle.result()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the adapter only translates: an exception is an error result
            session.result(task.task_id, "error", detail=f"{type(exc).__name__}: {exc}", prompt_id=prompt_id)
            return
        detail = None if outcome.error is None else str(outcome.error)[:1000]
        status = outcome.status
        if status == "unknown":
            status, detail = "error", f"unknown: {detail or 'client could not confirm the outcome'}"
        session.result(task.task_id, status, outputs=outcome.outputs, detail=detail, prompt_id=outcome.prompt_id)


class SeedAdapter(ReferenceAdapter):
    """The reference client with `ClientConfig.seed()` (the original fix's settings)."""

    name = "seed"

    def config(self) -> ClientConfig:
        from comfy_chaos.client import ClientConfig

        return ClientConfig.seed()


def _client_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("comfy-chaos")
    except PackageNotFoundError:
        return "dev"
