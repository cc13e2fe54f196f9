"""Run one scenario with one client and record everything (Contract 7).

Per run: start the fake server (ephemeral port) with the scenario's fault engine, put a
Toxiproxy proxy in front of it, start one adapter per client instance pointed at the
proxy, feed tasks when due (tagged per Contract 1). Every fault fires in the engine, by
time or by event; toxics come back to the runner (`engine.external` / `external_heal`),
which puts them in place through Toxiproxy. Then "heal, then judge": once the
time-triggered faults are over, no fault window is open and the server has finished
all work (at the latest `grace` before the deadline), lift every fault, give the client
`grace` to catch up, and stop at the judgement time or as soon as every task is
reported. Teardown always runs, every step bounded, also on errors and cancellation
(Ctrl-C).
"""
from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.harness.adapters import load_adapter
from comfy_chaos.harness.adapters.base import (
    AdapterSession,
    ClientAdapter,
    Task,
    Unscalable,
)
from comfy_chaos.harness.control_runs import (
    control_key,
    control_scenario,
    fixed_timer_hints,
    needs_control,
    unreported,
)
from comfy_chaos.harness.eventlog import RunLog, log_path
from comfy_chaos.harness.record import (
    AdapterInfo,
    AdapterSummary,
    AppliedFault,
    ClientReport,
    ControlSummary,
    LedgerSnapshot,
    RunRecord,
    ScheduledFault,
)
from comfy_chaos.harness.scenario import Scenario
from comfy_chaos.harness.schedule import plan_heal, toxic_name
from comfy_chaos.harness.starvation import LagSampler, StarvationMonitor
from comfy_chaos.harness.toxiproxy.control import ToxiproxyError

__all__ = ["Harness", "RunError", "RunRecord", "run_scenario"]

log = structlog.get_logger(__name__)

STDERR_TAIL = 4096  # the documented stderr tail (docs/adapters.md)
STEP_TIMEOUT_S = 10.0  # start/stop of one part (server, proxy, toxic call)
DONE_MARGIN_S = 3.0  # after judgement: time an adapter gets to finish on its own
CANCEL_TIMEOUT_S = 10.0  # after cancelling an adapter: time to unwind (kills its process)
WAKE_S = 0.1  # the judge loop re-checks at least this often (ledger state is polled)
# Loop iterations the judge lets pass between deciding and judging. A report already on
# its way (a client's future resolved, a line in the adapter's pipe) needs a few hops to
# reach the sink; under starvation the judge's own timer can overtake it (issue 18).
DRAIN_HOPS = 16


class RunError(Exception):
    """The harness itself failed (not the client); `record` holds what was captured."""

    def __init__(self, message: str, record: RunRecord) -> None:
        super().__init__(message)
        self.record = record


class Harness:
    """One Toxiproxy backend shared by many runs: `async with Harness() as h: await h.run(...)`."""

    def __init__(
        self,
        toxiproxy_url: str | None = None,
        *,
        done_margin: float = DONE_MARGIN_S,
        log_dir: Path | None = None,
        control: bool | Literal["always"] = True,
        unscalable: Iterable[str] = (),
    ) -> None:
        self._url = toxiproxy_url
        self.done_margin = done_margin
        self.log_dir = log_dir  # each run's events → <log_dir>/<scenario>--<client>--seed<N>.jsonl
        self._backend: Any = None
        self.backend_info: dict[str, Any] = {}
        # Control runs: the same workload without faults, once per key (`control_key`), for
        # the runs that fail (True), for every run ("always"), or never (False).
        self.control = control
        self._controls: dict[str, asyncio.Future[_Control]] = {}
        # Clients that run at time scale 1.0 whatever they say: the user's --unscalable,
        # plus every client whose `ready` line said `"scalable": false` in this process.
        self.unscalable: set[str] = set(unscalable)
        self._declared_unscalable: set[str] = set()
        # Client → did its control run at time scale 1.0 report what the scaled one lost?
        self._fixed_timers: dict[str, bool] = {}

    async def __aenter__(self) -> Harness:
        # Imported now, not inside the first runs: an import blocks the event loop, and
        # with -j 2 the run beside it would measure that as starvation.
        import comfy_chaos.client
        import comfy_chaos.fake_comfy
        import comfy_chaos.fake_comfy.faults
        import comfy_chaos.harness.scoring  # noqa: F401
        from comfy_chaos.harness.toxiproxy import resolve_backend

        if self._url is None:
            self._backend = await resolve_backend()
            self._url = self._backend.url
            self.backend_info = _describe_backend(self._backend)
        else:
            self.backend_info = {"url": self._url, "kind": "given"}
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._backend is None:
            return
        try:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await self._backend.stop()
        except Exception as error:  # the runs are over; a failed stop must not hide their results
            log.error("runner.backend.stop_failed", error=repr(error))

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("Harness used outside `async with`")
        return self._url

    async def run(
        self, scenario: Scenario, client: str, *, seed: int | None = None, time_scale: float | None = None
    ) -> RunRecord:
        """Run `scenario` with `client`; when it needs one, attach the summary of its
        control run (`record.control`): the same workload without faults, run once per
        client, seed and time scale and reused, so the verdict can say whether the faults
        caused a failure. A scenario without faults is its own control. A run needs one
        when it fails, or when a bar only a control can judge is in question
        (`control_runs.needs_control`); for the others a control could only loosen bars, so
        none is made (`control="always"` makes one anyway). With `control=False`
        attribution is unknown."""
        from comfy_chaos.harness.scoring import score

        seed = scenario.seed if seed is None else seed
        record = await self._logged(scenario, client, seed, time_scale, scenario.name)
        if not self.control:
            return record
        key = control_key(scenario, client, seed, record.time_scale)
        if not scenario.fault_schedule():
            if key not in self._controls:
                own: asyncio.Future[_Control] = asyncio.get_running_loop().create_future()
                self._controls[key] = own
                own.set_result(await self._summarise(control_scenario(scenario), client, seed, record))
        elif self.control != "always" and key not in self._controls:
            if not needs_control(await asyncio.to_thread(score, record), record.scenario.get("expect") or {}):
                return record
        control = await self.control_run(scenario, client, seed=seed, time_scale=record.time_scale)
        record.control = control.summary
        record.warnings.extend(w for w in control.warnings if w not in record.warnings)
        return record

    async def control_run(self, scenario: Scenario, client: str, *, seed: int, time_scale: float) -> _Control:
        """The control run for this workload × client × seed × time scale (cached): its
        summary (None when the harness failed to run it) and its warnings."""
        key = control_key(scenario, client, seed, time_scale)
        future = self._controls.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._controls[key] = future
            try:
                control = await self._run_control(scenario, client, seed, time_scale)
            except BaseException as exc:
                self._controls.pop(key, None)
                future.set_exception(exc)
                future.exception()  # retrieved: other waiters re-raise it themselves
                raise
            future.set_result(control)
        return await asyncio.shield(future)

    async def _run_control(self, scenario: Scenario, client: str, seed: int, time_scale: float) -> _Control:
        clean = control_scenario(scenario)
        try:
            record = await self._logged(clean, client, seed, time_scale, f"{scenario.name}.control")
        except RunError as exc:
            log.error("runner.control.failed", scenario=scenario.name, client=client, error=str(exc))
            return _Control(None, ())
        return await self._summarise(clean, client, seed, record)

    async def _summarise(self, clean: Scenario, client: str, seed: int, record: RunRecord) -> _Control:
        from comfy_chaos.harness.scoring import score, summarise_control

        warnings: list[str] = []
        if client not in self.unscalable and not _declared(record):
            warnings = await self._fixed_timer_warnings(clean, client, seed, record)
        summary = summarise_control(await asyncio.to_thread(score, record))  # off the loop: a neighbour runs
        return _Control(summary, (*record.warnings, *warnings))

    async def _fixed_timer_warnings(
        self, clean: Scenario, client: str, seed: int, control: RunRecord
    ) -> list[str]:
        """A client that said nothing about its timers: does its fault-free run show fixed
        ones? Request intervals that look fixed, or tasks lost at this time scale that a
        run at 1.0 does not lose (then that second control run is made, once)."""
        warnings = fixed_timer_hints(control.ledger.http, TimeScale(control.time_scale), client)
        lost = unreported(control)
        if not lost or control.time_scale >= 1.0:
            return warnings
        fixed = self._fixed_timers.get(client)
        if fixed is None:  # probed once per client: a scenario's run at 1.0 can last its deadline
            try:
                slow = await self._logged(clean, client, seed, 1.0, f"{clean.name}.scale1")
            except RunError:
                return warnings
            fixed = self._fixed_timers[client] = not unreported(slow)
        if fixed:
            shown = ", ".join(lost[:10]) + (f" and {len(lost) - 10} more" if len(lost) > 10 else "")
            warnings.append(
                f"fixed timers? {client} did not report {shown} on the fault-free control run at time scale "
                f"{control.time_scale:g} but reported every task of a control run at 1.0: its timers probably do "
                f"not scale; declare it unscalable (--unscalable {client}, or \"scalable\": false in its ready line)"
            )
        return warnings

    async def _logged(
        self, scenario: Scenario, client: str, seed: int, time_scale: float | None, log_name: str
    ) -> RunRecord:
        forced = 1.0 if client in self.unscalable else None
        run = run_scenario(
            scenario,
            client,
            toxiproxy_url=self.url,
            backend_info=self.backend_info,
            seed=seed,
            time_scale=forced or time_scale,
            done_margin=self.done_margin,
            scalable=False if forced else None,
            on_unscalable=self._declared_unscalable.add,
        )
        if self.log_dir is None:
            record = await run
        else:
            with RunLog(log_path(self.log_dir, log_name, client, seed)):
                record = await run
        if client in self._declared_unscalable:
            self.unscalable.add(client)
        if client in self.unscalable and record.time_scale == 1.0 and (time_scale or scenario.time_scale) != 1.0:
            note = (
                f"{client} runs at time scale 1.0: "
                + ("its ready line said it is not scalable" if client in self._declared_unscalable
                   else "declared unscalable (--unscalable)")
            )
            if note not in record.warnings:
                record.warnings.append(note)
        return record


@dataclass(frozen=True, slots=True)
class _Control:
    """A cached control run: what the scorer made of it, and what the runner noticed."""

    summary: ControlSummary | None
    warnings: tuple[str, ...]


def _declared(record: RunRecord) -> bool:
    """Did the client say whether its timers scale (its ready line, its adapter class)?"""
    return any(info.scalable is not None for info in record.adapter.instances)


def _describe_backend(backend: Any) -> dict[str, Any]:
    describe = getattr(backend, "describe", None)
    if callable(describe):
        return dict(describe())
    return {"url": backend.url, "kind": backend.kind}


async def run_scenario(
    scenario: Scenario,
    client: str,
    *,
    toxiproxy_url: str,
    backend_info: dict[str, Any] | None = None,
    seed: int | None = None,
    time_scale: float | None = None,
    done_margin: float = DONE_MARGIN_S,
    clock: Callable[[], float] = time.monotonic,
    scalable: bool | None = None,
    on_unscalable: Callable[[str], None] | None = None,
) -> RunRecord:
    """Run `scenario` with `client` (an adapter spec, see `harness.adapters.load_adapter`).

    `scalable=False` runs the client at time scale 1.0 (None: ask the adapter). A client
    whose `ready` line says `"scalable": false` while the run is scaled is stopped and the
    run starts again at 1.0; `on_unscalable(client)` is told so.
    Raises `AdapterError` for an unknown client, `RunError` when the harness fails.
    """
    for _ in range(2):
        adapters = [load_adapter(client) for _ in range(scenario.clients)]
        run = _Run(
            scenario, client, adapters, toxiproxy_url, backend_info or {}, seed, time_scale, clock, done_margin,
            scalable,
        )
        try:
            return await run.execute()
        except _Rescale:
            log.info("runner.rescale", client=client, reason="its ready line said it is not scalable")
            if on_unscalable is not None:
                on_unscalable(client)
            scalable = False
    raise AssertionError("unreachable: a run at time scale 1.0 is never restarted")


class _Rescale(Exception):
    """An adapter declared itself unscalable in a scaled run: start again at 1.0."""


class _Run:
    def __init__(
        self,
        scenario: Scenario,
        client: str,
        adapters: list[ClientAdapter],
        toxiproxy_url: str,
        backend_info: dict[str, Any],
        seed: int | None,
        time_scale: float | None,
        clock: Callable[[], float],
        done_margin: float,
        scalable: bool | None = None,
    ) -> None:
        self.done_margin = done_margin
        self.seed = scenario.seed if seed is None else seed
        self.scenario = scenario if seed is None else scenario.model_copy(update={"seed": seed})
        if scalable is None:
            scalable = all(adapter.scalable for adapter in adapters)
        self.adapters = adapters
        self.clock = clock
        self.toxiproxy_url = toxiproxy_url
        self.plan = self.scenario.plan()
        self.specs = self.scenario.fault_schedule()
        # The run's one time scale; from here on the runner thinks in real seconds only.
        self.times = self.scenario.scaled((time_scale or scenario.time_scale) if scalable else 1.0)
        self.record = RunRecord(
            scenario=self.scenario.to_dict(),
            client=client,
            seed=self.seed,
            time_scale=self.times.scale.factor,
            backend=dict(backend_info),
            scheduled=list(range(len(self.specs))),
            schedule=ScheduledFault.of([spec.model_dump(mode="json", exclude_unset=True) for spec in self.specs]),
            task_ids=[p.task_id for p in self.plan],
            scenario_path=self.scenario.source,
            comfyui_version=self.scenario.profile_version,
        )
        self.log = log.bind(scenario=self.scenario.name, client=client, seed=self.seed)
        self.changed = asyncio.Event()
        self.reported: set[str] = set()
        self.judged = False
        self.sessions: list[AdapterSession] = []
        self.adapter_tasks: list[asyncio.Task[None]] = []
        self.background: set[asyncio.Task[Any]] = set()
        self.active_toxics: dict[str, dict[str, Any]] = {}
        self.toxic_windows: list[float] = []  # planned end of every toxic handed to us
        self.toxic_lock = asyncio.Lock()
        self.feeding_done = False
        # Folded in from `prompt_accepted` events so the judge loop's checks cost O(open
        # prompts), not O(every prompt in the ledger) on every wake-up (10,000-task runs).
        self.unfinished: set[str] = set()
        self.accepted_tasks: set[str] = set()
        self.server: Any = None
        self.engine: Any = None
        self.ctl: Any = None
        self.proxy_name = f"chaos-{uuid.uuid4().hex[:12]}"
        self.proxy_created = False
        self.proxy_ready = asyncio.Event()  # the engine may fire a toxic (at: 0) before the proxy exists
        self.t0 = 0.0
        self.cancelled = False
        self.rescale = False  # an adapter's ready line said it is not scalable
        self.ready: set[int] = set()  # client indexes that sent ready
        self.judged_at: float | None = None
        self.starvation = StarvationMonitor(scale=self.times.scale)
        self.sampler = LagSampler(self.starvation, clock=clock)

    # --- lifecycle ----------------------------------------------------------------------

    async def execute(self) -> RunRecord:
        self.log.info("runner.start", time_scale=self.times.scale.factor, tasks=len(self.plan), faults=len(self.specs),
                      toxiproxy=self.record.backend)
        failure: BaseException | None = None
        try:
            base_url = await self._start()
            await self._drive(base_url)
        except asyncio.CancelledError:
            self.cancelled = True  # Ctrl-C or a caller's timeout: tear down without waiting
            raise
        except Exception as exc:
            failure = exc
            self.record.error = f"{type(exc).__name__}: {exc}"
            self.log.error("runner.failed", error=self.record.error, exc_info=True)
        finally:
            await self._teardown()
        self.log.info("runner.end", reported=len(self.reported), tasks=len(self.plan), error=self.record.error)
        if self.rescale:
            raise _Rescale(self.record.client)
        if failure is not None:
            raise RunError(f"{self.scenario.name} / {self.record.client} (seed {self.seed}): {failure}", self.record) from failure
        return self.record

    async def _start(self) -> str:
        from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
        from comfy_chaos.harness.toxiproxy import ToxiproxyControl

        if self.specs:
            from comfy_chaos.fake_comfy.faults import FaultEngine, FaultSchedule

            self.engine = FaultEngine(
                FaultSchedule.of(self.specs), seed=self.seed, clock=self.clock, time_scale=self.times.scale,
                task_clients={p.task_id: str(p.client_index) for p in self.plan},
            )
            self.engine.external = self._external_toxic
            self.engine.external_heal = self._external_heal
        config = FakeConfig(time_scale=self.times.scale.factor, seed=self.seed, comfyui_version=self.scenario.profile_version)
        warm_up = any(callable(getattr(adapter, "warm_up", None)) for adapter in self.adapters)
        engine = None if warm_up else self.engine  # after a warm-up, attached at t0
        self.server = FakeComfy(config, faults=engine)
        self.server.events.subscribe(self._on_server_event)
        self.t0 = self.record.t0 = self.clock()  # the engine's `at:` triggers count from server start
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await self.server.start(host="127.0.0.1", port=0)
        self.ctl = ToxiproxyControl(self.toxiproxy_url, timeout=5.0)
        upstream = self.server.base_url.removeprefix("http://")
        async with asyncio.timeout(STEP_TIMEOUT_S):
            proxy = await self.ctl.create_proxy(self.proxy_name, upstream=upstream)
        self.proxy_created = True
        self.proxy_ready.set()
        base_url = f"http://127.0.0.1:{proxy.listen_port}"
        if warm_up:
            await self._warm_up(base_url)
        return base_url

    async def _warm_up(self, base_url: str) -> None:
        """Browser clients load their page before the run clock and the fault schedule start:
        t0 is taken, and the fault engine attached, once every page is ready. Requests made
        while warming up are dropped from the ledger (not the run's)."""
        warm_start = self.clock()
        self._make_sessions(base_url)
        limit = max(float(getattr(adapter, "warm_up_timeout", STEP_TIMEOUT_S)) for adapter in self.adapters)
        warming = [
            adapter.warm_up(session, self.server)  # type: ignore[attr-defined]
            for adapter, session in zip(self.adapters, self.sessions, strict=True)
            if callable(getattr(adapter, "warm_up", None))
        ]
        async with asyncio.timeout(limit):
            await asyncio.gather(*warming)
        self.server.ledger.http.clear()
        self.t0 = self.record.t0 = self.clock()
        if self.engine is not None:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await self.server.attach_faults(self.engine)
        self.log.info("runner.warmed_up", seconds=round(self.t0 - warm_start, 3))

    async def _drive(self, base_url: str) -> None:
        deadline = self.times.deadline_s
        grace = self.times.grace_s
        faults_over_at = self.times.faults_over_s
        self._make_sessions(base_url)
        for adapter, session in zip(self.adapters, self.sessions, strict=True):
            self.adapter_tasks.append(asyncio.create_task(self._run_adapter(adapter, session)))
        self._spawn(self._feed())
        judge_at: float | None = None
        settle_until: float | None = None
        while True:
            now = self.clock() - self.t0
            if self.rescale:
                break
            if self._all_reported():
                # Keep listening a moment after the last first report: a duplicate or
                # contradictory report that a second delivery path sends late must count.
                if settle_until is None:
                    settle_until = min(now + self.times.settle_s, deadline)
                if now >= settle_until:
                    break
            if all(task.done() for task in self.adapter_tasks) and (self._server_idle() or now >= deadline):
                break  # every client has finished: nothing more will be reported
            if judge_at is None:
                heal = plan_heal(
                    now=now,
                    faults_over_at=faults_over_at,
                    active_until=self._active_until(),
                    server_quiet=self._server_quiet(),
                    deadline=deadline,
                    grace=grace,
                )
                if heal:
                    healed = await self._heal() - self.t0
                    judge_at = max(healed, min(healed + grace, deadline))
                    continue
                wake = min(WAKE_S, max(0.0, deadline - grace - now))
            else:
                if now >= judge_at:
                    break
                wake = min(WAKE_S, judge_at - now)
            if settle_until is not None:
                wake = min(wake, max(0.0, settle_until - now))
            self.changed.clear()
            try:
                async with asyncio.timeout(wake):
                    await self.changed.wait()
            except TimeoutError:
                pass
        decided = self.clock()
        for _ in range(DRAIN_HOPS):
            await asyncio.sleep(0)  # one loop iteration each: reports already on their way arrive
        self.judged = True
        self.record.t_end = self.judged_at = self.clock()
        self.log.info(
            "runner.judge",
            t=round(self.record.t_end - self.t0, 3),
            decided=round(decided - self.t0, 3),
            all_reported=self._all_reported(),
        )
        for session in self.sessions:
            session.judged.set()

    async def _teardown(self) -> None:
        if not self.record.t_end:
            self.record.t_end = self.clock()
        self.judged = True
        for session in self.sessions:
            session.end()
            session.judged.set()
        if self.adapter_tasks:
            margin = 0.0 if self.cancelled or self.rescale else self.done_margin
            _, pending = await asyncio.wait(self.adapter_tasks, timeout=margin)
            for task, session in zip(self.adapter_tasks, self.sessions, strict=True):
                if task in pending:
                    self._stopped(session, margin)
                    task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CANCEL_TIMEOUT_S)
        await self.sampler.stop()
        starvation = self.starvation.judgement()
        self.record.starvation = starvation.to_dict()
        self.log.info(
            "runner.starvation", lag_p50_ms=starvation.lag_p50_ms, lag_p99_ms=starvation.lag_p99_ms,
            lag_max_ms=starvation.lag_max_ms, slip_max_ms=starvation.slip_max_ms, samples=starvation.samples,
            too_slow=starvation.too_slow,
        )
        for task in list(self.background):
            task.cancel()
        if self.background:
            await asyncio.wait(self.background, timeout=CANCEL_TIMEOUT_S)
        await self._step("proxy.delete", self._delete_proxy())
        if self.server is not None:
            await self._step("server.stop", self.server.stop())
            self.record.ledger = LedgerSnapshot.from_json(self.server.ledger.to_dict())
        self._finish_record()

    def _stopped(self, session: AdapterSession, margin: float) -> None:
        """An adapter still running at teardown: say what happened, in the record's words.

        A hang is a client that had not reported all its tasks, or had not finished by its
        deadline; one that reported everything and was stopped early just lingered."""
        info = session.info
        info.ended_at = self.clock()
        if self.cancelled or self.rescale:
            info.ended = "cancelled: the run was stopped" + (" to start again at time scale 1.0" if self.rescale else "")
            return
        deadline = self.times.deadline_s
        judged = (self.judged_at or self.record.t_end) - self.t0
        mine = [p.task_id for p in self.plan if p.client_index == session.client_index]
        missing = [task_id for task_id in mine if task_id not in self.reported]
        before = judged + margin < deadline
        when = (
            f"killed {margin:g} s after the judgement at +{judged:.2f} s"
            + (f", before its deadline +{deadline:.2f} s" if before else f" (deadline +{deadline:.2f} s)")
        )
        if missing:
            info.hung = True
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            info.ended = f"{when}: still waiting for {shown}, never reported (its caller would wait forever)"
        elif not before:
            info.hung = True
            info.ended = f"{when}: it reported every task but had not finished by its deadline"
        else:
            info.ended = f"{when}: it had reported every task but not sent done and exited; not counted as a hang"

    async def _step(self, what: str, awaitable: Any) -> None:
        try:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await awaitable
        except Exception as exc:  # teardown goes on; the failure is logged and noted
            self.log.error("runner.teardown.failed", step=what, error=repr(exc))
            self.record.error = self.record.error or f"teardown {what}: {exc!r}"

    async def _delete_proxy(self) -> None:
        if self.ctl is None:
            return
        try:
            if self.proxy_created:
                await self.ctl.delete_proxy(self.proxy_name)
        finally:
            await self.ctl.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("runner.background.failed", error=repr(task.exception()))
            self.record.error = self.record.error or f"harness task failed: {task.exception()!r}"

    # --- adapters and tasks ----------------------------------------------------------------

    async def _run_adapter(self, adapter: ClientAdapter, session: AdapterSession) -> None:
        try:
            await adapter.run(session)
            if session.info.ended is None:
                session.info.ended, session.info.ended_at = "finished", self.clock()
        except asyncio.CancelledError:
            raise
        except Unscalable:
            self.rescale = True
            session.info.ended, session.info.ended_at = "stopped: not scalable (ready line)", self.clock()
        except Exception as exc:
            session.info.stderr_tail = "".join(traceback.format_exception(exc))[-STDERR_TAIL:]
            session.crash(f"{type(exc).__name__}: {exc}")
            session.info.ended, session.info.ended_at = f"crashed: {type(exc).__name__}: {exc}", self.clock()
        self.changed.set()

    def _make_sessions(self, base_url: str) -> None:
        if self.sessions:
            return  # made for the warm-up
        for index, adapter in enumerate(self.adapters):
            self.sessions.append(
                AdapterSession(
                    base_url=base_url,
                    time_scale=self.times.scale.factor,
                    deadline_s=self.times.deadline_s,
                    max_concurrency=max(1, len(self.plan)),
                    client_index=index,
                    sink=self._sink,
                    clock=self.clock,
                    info=AdapterInfo(
                        client_index=index,
                        # In-process adapters and registry entries say it; a `cmd:` client only in its ready line.
                        scalable=adapter.scalable if getattr(adapter, "scalable_declared", True) else None,
                    ),
                )
            )

    def _sink(self, report: dict[str, Any]) -> None:
        kind = report["type"]
        if kind == "stats":
            self._merge_stats(report["client_index"], report["counters"])
            self.log.info("client.stats", client_index=report["client_index"], counters=report["counters"])
            return
        # After the judgement nothing counts as reported, but what the client says is kept,
        # marked late: a second, contradicting callback is its behaviour too (issue 13 item 6).
        self.record.reports.append(ClientReport.from_json({**report, "late": self.judged}))
        if kind == "ready":
            self.ready.add(report["client_index"])
            if len(self.ready) == len(self.adapters):
                # Measured from here: before, a client is not running yet (and its first
                # import, once per process, stalls the loop on an idle machine too).
                self.sampler.start()
        if kind == "result" and report["task_id"] is not None and not self.judged:
            self.reported.add(report["task_id"])
        self._log_report(report)
        self.changed.set()

    def _log_report(self, report: dict[str, Any]) -> None:
        """The client's own words (errors, notes, crashes) in the run's event log."""
        kind = report["type"]
        if kind == "note":
            self.log.info("client.note", client_index=report["client_index"], text=report.get("detail"))
        elif kind == "crash":
            self.log.warning("client.crash", client_index=report["client_index"], detail=report.get("detail"))
        elif kind == "result" and report.get("outcome") != "success":
            self.log.info(
                "client.result", client_index=report["client_index"], task_id=report.get("task_id"),
                outcome=report.get("outcome"), detail=report.get("detail"), late=self.judged,
            )
        elif kind == "result" and self.judged:
            self.log.info("client.result", client_index=report["client_index"], task_id=report.get("task_id"),
                          outcome=report.get("outcome"), late=True)

    def _merge_stats(self, client_index: int, counters: dict[str, Any]) -> None:
        stats = self.record.client_stats
        per_client = stats.setdefault("per_client", {})
        per_client.setdefault(str(client_index), {}).update(counters)
        totals: dict[str, Any] = {}
        for values in per_client.values():
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    totals[key] = totals.get(key, 0) + value
        stats.update(totals)

    async def _feed(self) -> None:
        from comfy_chaos.fake_comfy.ledger import tag_workflow

        for planned in sorted(self.plan, key=lambda p: (p.due, p.index)):
            due = self.t0 + self.times.due_s[planned.index]
            if due > self.clock():
                await asyncio.sleep(due - self.clock())  # a schedule, not synchronisation
                self.starvation.feed_slip(due, self.clock())
            workflow = tag_workflow(planned.workflow, planned.task_id)
            self.sessions[planned.client_index].feed(Task(planned.task_id, workflow))
        for session in self.sessions:
            session.end()
        self.feeding_done = True
        self.changed.set()

    def _all_reported(self) -> bool:
        return len(self.reported) >= len(self.plan) and all(p.task_id in self.reported for p in self.plan)

    def _server_idle(self) -> bool:
        """Nothing queued or running on the server."""
        if self.server is None:
            return False
        prompts = self.server.ledger.prompts
        self.unfinished = {pid for pid in self.unfinished if prompts[pid].outcome is None}
        return not self.unfinished

    def _server_quiet(self) -> bool:
        """Every task fed, accepted by the server and finished there; nothing running."""
        if not self.feeding_done or not self._server_idle():
            return False
        return all(p.task_id in self.accepted_tasks for p in self.plan)

    def _on_server_event(self, event: Any) -> None:
        if event.kind == "prompt_accepted":
            self.unfinished.add(event.prompt_id)
            if event.task_id is not None:
                self.accepted_tasks.add(event.task_id)
            self.changed.set()
        elif event.kind == "prompt_completed":
            self.changed.set()

    # --- faults ----------------------------------------------------------------------------

    def _active_until(self) -> float:
        """Relative time when the last fired fault window ends (0 if none is open)."""
        if self.engine is None:
            return 0.0
        until = max(self.toxic_windows, default=self.t0) - self.t0
        until = max(until, (self.engine.open_until() or self.t0) - self.t0)  # inf: a client has yet to meet a fault
        # A fault with a duration is open for that long from its *first* application: a
        # window fault (silent, a drop with no count) records every frame it swallows, and
        # counting the duration from each would stretch the window, and the judgement after
        # it, by up to the window's length again.
        first: dict[int, float] = {}
        for applied in self.engine.applied():
            if applied.t_end is None:
                first.setdefault(applied.spec_index, applied.t)
        for index, t in first.items():
            duration_s = self.times.fault_durations_s[index]
            if duration_s is not None:
                until = max(until, t + duration_s - self.t0)
        return until

    def _spec_index(self, spec: Any) -> int | None:
        for index, candidate in enumerate(self.engine.schedule.faults):
            if candidate is spec:
                return index
        return None

    async def _external_toxic(self, spec: Any) -> None:
        """`engine.external`: put a toxic in place (the engine fires it, by time or event).

        Its window counts from now, before the Toxiproxy call: the engine records the
        fault only when this returns, and the heal must not slip in between."""
        index = self._spec_index(spec)
        duration_s = self.times.fault_durations_s[index] if index is not None else None
        self.toxic_windows.append(self.clock() + (duration_s or 0.0))
        await self._apply_toxic(index, spec)

    async def _external_heal(self, spec: Any) -> None:
        """`engine.external_heal`: the toxic's duration is over."""
        index = self._spec_index(spec)
        await self._remove_toxic(toxic_name(index if index is not None else -1, spec))

    async def _apply_toxic(self, index: int | None, spec: Any) -> None:
        toxic = spec.toxic
        name = toxic_name(index if index is not None else -1, spec)
        await self.proxy_ready.wait()  # bounded by the engine's external timeout
        async with self.toxic_lock:
            if self.judged or self.record.healed_at is not None or name in self.active_toxics:
                return
            try:
                async with asyncio.timeout(STEP_TIMEOUT_S):
                    await self.ctl.add_toxic(
                        self.proxy_name, name, toxic.type, toxic.stream, dict(toxic.attributes), toxicity=toxic.toxicity
                    )
            except Exception as exc:  # the run did not do what the scenario says: inconclusive
                self.record.error = self.record.error or f"toxic {name} (faults[{index}]) not applied: {exc!r}"
                raise
            self.active_toxics[name] = {"t": self.clock(), "spec_index": index}
        self.log.info("fault.applied", kind="toxic", name=name, spec_index=index)
        self.changed.set()

    async def _remove_toxic(self, name: str) -> None:
        async with self.toxic_lock:
            await self._remove_toxic_locked(name)

    async def _remove_toxic_locked(self, name: str) -> None:
        """Remove one toxic; it leaves `active_toxics` only once Toxiproxy has let go of it.

        The engine's heal cancels its own timers, and with them a duration-end removal in
        flight: dropping the name first left the toxic in Toxiproxy for good (issue 13
        item 5). Now a cancelled removal keeps the name, and the heal removes it again."""
        if name not in self.active_toxics:
            return
        try:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await self.ctl.remove_toxic(self.proxy_name, name)
        except ToxiproxyError as exc:
            if exc.status != 404:  # 404: a cancelled call got through after all
                raise
        self.active_toxics.pop(name, None)
        self.log.info("fault.removed", kind="toxic", name=name)
        self.changed.set()

    async def _heal(self) -> float:
        """Lift every fault: the engine's, every toxic, and a disabled proxy; then check that
        nothing is left (Toxiproxy, the fault engine). Returns the time of the heal."""
        self.log.info("runner.heal", t=round(self.clock() - self.t0, 3))
        problems: list[str] = []
        if self.engine is not None:
            try:
                async with asyncio.timeout(STEP_TIMEOUT_S):
                    await self.engine.heal_all()
            except TimeoutError:
                problems.append(f"the fault engine did not heal within {STEP_TIMEOUT_S:g} s")
        async with self.toxic_lock:  # waits for a toxic being added; none is added after this
            self.record.healed_at = self.clock()
            try:
                for name in list(self.active_toxics):
                    await self._remove_toxic_locked(name)
                async with asyncio.timeout(STEP_TIMEOUT_S):
                    await self.ctl.set_enabled(self.proxy_name, True)
            except (ToxiproxyError, TimeoutError) as exc:
                problems.append(f"lifting the toxics failed: {exc!r}")
            problems += await self._verify_heal()
        if problems:
            reason = "the heal could not be verified, so the verdict cannot blame the client: " + "; ".join(problems)
            self.record.inconclusive.append(reason)
            self.log.error("runner.heal.unverified", problems=problems)
        return self.record.healed_at

    async def _verify_heal(self) -> list[str]:
        """Ask Toxiproxy and the fault engine whether anything is left; clean up once."""
        problems: list[str] = []
        for attempt in range(2):
            problems = self._engine_leftovers()
            try:
                async with asyncio.timeout(STEP_TIMEOUT_S):
                    proxy = await self.ctl.get_proxy(self.proxy_name)
            except (ToxiproxyError, TimeoutError) as exc:
                return [*problems, f"Toxiproxy could not be asked about proxy {self.proxy_name}: {exc!r}"]
            left = [toxic.name for toxic in proxy.toxics]
            if left:
                problems.append(f"toxics still in Toxiproxy after the heal: {', '.join(left)}")
            if not proxy.enabled:
                problems.append(f"proxy {self.proxy_name} still disabled after the heal")
            if not problems or attempt:
                break
            self.log.warning("runner.heal.leftovers", problems=problems)
            try:
                async with asyncio.timeout(STEP_TIMEOUT_S):
                    for name in left:
                        await self.ctl.remove_toxic(self.proxy_name, name)
                    await self.ctl.set_enabled(self.proxy_name, True)
            except (ToxiproxyError, TimeoutError) as exc:
                return [*problems, f"removing them failed: {exc!r}"]
            self.active_toxics.clear()
        return problems

    def _engine_leftovers(self) -> list[str]:
        if self.engine is None or self.engine.open_until() is None:
            return []
        states = getattr(getattr(self.engine, "planner", None), "states", [])
        open_ = [s.index for s in states if s.status in ("active", "overtime")]
        if not open_:
            return ["a fault window is still open in the fault engine"]
        return [f"faults[{i}] ({self.specs[i].kind}) still active in the fault engine" for i in open_]

    # --- the record ------------------------------------------------------------------------

    def _finish_record(self) -> None:
        record = self.record
        if self.engine is not None:
            fault_log = self.engine.fault_log()
            record.fired = sorted(self.engine.fired_specs())
        else:
            fault_log, record.fired = [], []
        for entry in fault_log:
            if entry["kind"] == "toxic":
                entry["source"] = "toxiproxy"
                entry["target"] = {"proxy": self.proxy_name, **(entry.get("target") or {})}
            if entry.get("t_end") is None and entry.get("window"):
                entry["t_end"] = record.healed_at or record.t_end  # lifted by the heal (or teardown)
        record.fault_log = [AppliedFault.from_json(entry) for entry in fault_log]
        record.adapter = AdapterSummary.of([session.info for session in self.sessions])
