"""A deliberately faulty in-process adapter for tests: the naive client, except that the
result of t1 is never passed on and the result of t2 is passed on twice."""
import asyncio
import time
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


class _Hold(_LossySession):
    """Passes results on, except the one of `held_task`, which it keeps."""

    def __init__(self, session: AdapterSession, held_task: str) -> None:
        super().__init__(session)
        self.held_task = held_task
        self.held: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    def result(self, task_id: str, *args: Any, **kwargs: Any) -> None:
        if task_id == self.held_task:
            self.held = (args, kwargs)
            return
        self._session.result(task_id, *args, **kwargs)


class ReportDuringStallAdapter:
    """The naive client, but t3's result comes through a callback chain (three loop hops,
    as in a real client: future → shield → task) that starts right before the machine
    stalls across the judgement time (deadline 2 s, stall from 1.5 s to 2.3 s after start).
    The client reported t3 before the judgement; the harness must count it."""

    name = "report-during-stall"
    scalable = True

    async def run(self, session: AdapterSession) -> None:
        started = session.clock()
        hold = _Hold(session, "t3")
        await NaiveAdapter().run(hold)  # type: ignore[arg-type]
        assert hold.held is not None
        await asyncio.sleep(max(0.0, started + session.deadline_s - 0.5 - session.clock()))  # a schedule
        reported: asyncio.Future[tuple[tuple[Any, ...], dict[str, Any]]] = asyncio.get_running_loop().create_future()

        async def callback() -> None:
            args, kwargs = await reported
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            session.result("t3", *args, **kwargs)

        chain = asyncio.create_task(callback())
        await asyncio.sleep(0)  # the chain waits on the future now
        reported.set_result(hold.held)
        time.sleep(0.8)  # the machine stalls (CPU starvation), blocking the loop across the judgement
        await chain


class ContradictAfterJudgementAdapter:
    """The naive client, but t0 is first reported as an error; when the harness stops the
    adapter (after the judgement) a second callback reports t0's real success."""

    name = "contradict-after-judgement"
    scalable = True

    async def run(self, session: AdapterSession) -> None:
        hold = _Hold(session, "t0")
        await NaiveAdapter().run(hold)  # type: ignore[arg-type]
        assert hold.held is not None
        args, kwargs = hold.held
        session.result("t0", "error", detail="first callback: failed")
        try:
            await asyncio.Event().wait()  # lingers; the harness cancels it after the judgement
        finally:
            session.result("t0", *args, **kwargs)


class StallingLossyAdapter:
    """The lossy client (t1 never reported) on a machine that stalls 1.5 s mid-run."""

    name = "stalling-lossy"
    scalable = True

    async def run(self, session: AdapterSession) -> None:
        class _Stall(_LossySession):
            def result(self, task_id: str, *args: Any, **kwargs: Any) -> None:
                if task_id == "t0":
                    time.sleep(1.5)  # CPU starvation: the loop does not run for 1.5 s
                _LossySession.result(self, task_id, *args, **kwargs)

        await NaiveAdapter().run(_Stall(session))  # type: ignore[arg-type]


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
