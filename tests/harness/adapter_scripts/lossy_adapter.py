"""A deliberately faulty in-process adapter for tests: the naive client, except that the
result of t1 is never passed on and the result of t2 is passed on twice."""
import asyncio
from typing import Any

from comfy_chaos.harness.adapters.base import AdapterSession
from comfy_chaos.harness.adapters.naive import NaiveAdapter


class _LossySession:
    def __init__(self, session: AdapterSession) -> None:
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def result(self, task_id: str, *args: Any, **kwargs: Any) -> None:
        if task_id == "t1":
            return
        self._session.result(task_id, *args, **kwargs)
        if task_id == "t2":
            self._session.result(task_id, *args, **kwargs)


class LossyAdapter:
    name = "lossy"
    scalable = True

    async def run(self, session: AdapterSession) -> None:
        await NaiveAdapter().run(_LossySession(session))  # type: ignore[arg-type]


class UnscalableEchoAdapter:
    """Reports every task as a success without a server; declares itself unscalable."""

    name = "unscalable-echo"
    scalable = False

    async def run(self, session: AdapterSession) -> None:
        async for task in session.tasks():
            session.result(task.task_id, "success", outputs={})
        session.done()


class LateDuplicateAdapter:
    """The naive client, plus a second report of t0 half a scenario second after the last
    first report — a second delivery path (a poller, say) that answers late."""

    name = "late-duplicate"
    scalable = True

    async def run(self, session: AdapterSession) -> None:
        last: dict[str, Any] = {}

        class _Remember(_LossySession):
            def result(self, task_id: str, *args: Any, **kwargs: Any) -> None:
                last.setdefault(task_id, (args, kwargs))
                self._session.result(task_id, *args, **kwargs)

        await NaiveAdapter().run(_Remember(session))  # type: ignore[arg-type]
        await asyncio.sleep(0.5 * session.time_scale)  # the late path's own delay, not a sync
        args, kwargs = last["t0"]
        session.result("t0", *args, **kwargs)
        session.done()


class ContradictsAfterJudgementAdapter:
    """The naive client, except that t0 is first reported failed ("ended expired") and,
    a second after the run was judged, finished: a second, contradictory callback."""

    name = "contradicts-late"
    scalable = True

    async def run(self, session: AdapterSession) -> None:
        real: dict[str, Any] = {}

        class _FailFirst(_LossySession):
            def result(self, task_id: str, *args: Any, **kwargs: Any) -> None:
                if task_id == "t0":
                    real["t0"] = (args, kwargs)
                    self._session.result("t0", "error", detail="ended expired")
                    return
                self._session.result(task_id, *args, **kwargs)

        await NaiveAdapter().run(_FailFirst(session))  # type: ignore[arg-type]
        await asyncio.sleep(1.0)  # the late callback is the behaviour under test, not a sync
        args, kwargs = real["t0"]
        session.result("t0", *args, **kwargs)
        session.done()
