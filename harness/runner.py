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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from comfy_chaos.harness.adapters import load_adapter
from comfy_chaos.harness.adapters.base import AdapterSession, ClientAdapter, Task
from comfy_chaos.harness.eventlog import RunLog, log_path
from comfy_chaos.harness.record import (
    AdapterInfo,
    AdapterSummary,
    AppliedFault,
    ClientReport,
    LedgerSnapshot,
    RunRecord,
    ScheduledFault,
)
from comfy_chaos.harness.scenario import Scenario
from comfy_chaos.harness.schedule import plan_heal, time_triggered_end, toxic_name

__all__ = ["RunRecord", "RunError", "Harness", "run_scenario"]

log = structlog.get_logger(__name__)

STEP_TIMEOUT_S = 10.0  # start/stop of one part (server, proxy, toxic call)
DONE_MARGIN_S = 3.0  # after judgement: time an adapter gets to finish on its own
CANCEL_TIMEOUT_S = 10.0  # after cancelling an adapter: time to unwind (kills its process)
SETTLE_S = 2.0  # scenario seconds the judge keeps listening after every task was reported
WAKE_S = 0.1  # the judge loop re-checks at least this often (ledger state is polled)


class RunError(Exception):
    """The harness itself failed (not the client); `record` holds what was captured."""

    def __init__(self, message: str, record: RunRecord) -> None:
        super().__init__(message)
        self.record = record


class Harness:
    """One Toxiproxy backend shared by many runs: `async with Harness() as h: await h.run(...)`."""

    def __init__(
        self, toxiproxy_url: str | None = None, *, done_margin: float = DONE_MARGIN_S, log_dir: Path | None = None
    ) -> None:
        self._url = toxiproxy_url
        self.done_margin = done_margin
        self.log_dir = log_dir  # each run's events → <log_dir>/<scenario>--<client>--seed<N>.jsonl
        self._backend: Any = None
        self.backend_info: dict[str, Any] = {}

    async def __aenter__(self) -> Harness:
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
        run = run_scenario(
            scenario,
            client,
            toxiproxy_url=self.url,
            backend_info=self.backend_info,
            seed=seed,
            time_scale=time_scale,
            done_margin=self.done_margin,
        )
        if self.log_dir is None:
            return await run
        with RunLog(log_path(self.log_dir, scenario.name, client, scenario.seed if seed is None else seed)):
            return await run


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
) -> RunRecord:
    """Run `scenario` with `client` (an adapter spec, see `harness.adapters.load_adapter`).

    Raises `AdapterError` for an unknown client, `RunError` when the harness fails.
    """
    adapters = [load_adapter(client) for _ in range(scenario.clients)]
    run = _Run(scenario, client, adapters, toxiproxy_url, backend_info or {}, seed, time_scale, clock, done_margin)
    return await run.execute()


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
    ) -> None:
        self.done_margin = done_margin
        self.seed = scenario.seed if seed is None else seed
        self.scenario = scenario if seed is None else scenario.model_copy(update={"seed": seed})
        scalable = all(adapter.scalable for adapter in adapters)
        self.time_scale = (time_scale or scenario.time_scale) if scalable else 1.0
        self.adapters = adapters
        self.clock = clock
        self.toxiproxy_url = toxiproxy_url
        self.plan = self.scenario.plan()
        self.specs = self.scenario.fault_schedule()
        self.record = RunRecord(
            scenario=self.scenario.to_dict(),
            client=client,
            seed=self.seed,
            time_scale=self.time_scale,
            backend=dict(backend_info),
            scheduled=list(range(len(self.specs))),
            schedule=ScheduledFault.of([spec.model_dump(mode="json", exclude_unset=True) for spec in self.specs]),
            task_ids=[p.task_id for p in self.plan],
            scenario_path=self.scenario.source,
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

    # --- lifecycle ----------------------------------------------------------------------

    async def execute(self) -> RunRecord:
        self.log.info("runner.start", time_scale=self.time_scale, tasks=len(self.plan), faults=len(self.specs),
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
        if failure is not None:
            raise RunError(f"{self.scenario.name} / {self.record.client} (seed {self.seed}): {failure}", self.record) from failure
        return self.record

    async def _start(self) -> str:
        from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
        from comfy_chaos.harness.toxiproxy import ToxiproxyControl

        if self.specs:
            from comfy_chaos.fake_comfy.faults import FaultEngine, FaultSchedule

            self.engine = FaultEngine(
                FaultSchedule.of(self.specs), seed=self.seed, clock=self.clock, time_scale=self.time_scale,
                task_clients={p.task_id: str(p.client_index) for p in self.plan},
            )
            self.engine.external = self._external_toxic
            self.engine.external_heal = self._external_heal
        self.server = FakeComfy(FakeConfig(time_scale=self.time_scale, seed=self.seed), faults=self.engine)
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
        return f"http://127.0.0.1:{proxy.listen_port}"

    async def _drive(self, base_url: str) -> None:
        scale = self.time_scale
        deadline = self.scenario.deadline * scale
        grace = self.scenario.grace * scale
        faults_over_at = time_triggered_end(self.specs, scale)
        for index, adapter in enumerate(self.adapters):
            session = AdapterSession(
                base_url=base_url,
                time_scale=scale,
                deadline_s=deadline,
                max_concurrency=max(1, len(self.plan)),
                client_index=index,
                sink=self._sink,
                clock=self.clock,
                info=AdapterInfo(client_index=index),
            )
            self.sessions.append(session)
            self.adapter_tasks.append(asyncio.create_task(self._run_adapter(adapter, session)))
        self._spawn(self._feed())
        judge_at: float | None = None
        settle_until: float | None = None
        while True:
            now = self.clock() - self.t0
            if self._all_reported():
                # Keep listening a moment after the last first report: a duplicate or
                # contradictory report that a second delivery path sends late must count.
                if settle_until is None:
                    settle_until = min(now + SETTLE_S * scale, deadline)
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
        self.judged = True
        self.record.t_end = self.clock()
        self.log.info("runner.judge", t=round(self.record.t_end - self.t0, 3), all_reported=self._all_reported())

    async def _teardown(self) -> None:
        if not self.record.t_end:
            self.record.t_end = self.clock()
        self.judged = True
        for session in self.sessions:
            session.end()
        if self.adapter_tasks:
            margin = 0.0 if self.cancelled else self.done_margin
            _, pending = await asyncio.wait(self.adapter_tasks, timeout=margin)
            for task, session in zip(self.adapter_tasks, self.sessions, strict=True):
                if task in pending:
                    session.info.hung = True
                    task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CANCEL_TIMEOUT_S)
        for task in list(self.background):
            task.cancel()
        if self.background:
            await asyncio.wait(self.background, timeout=CANCEL_TIMEOUT_S)
        await self._step("proxy.delete", self._delete_proxy())
        if self.server is not None:
            await self._step("server.stop", self.server.stop())
            self.record.ledger = LedgerSnapshot.from_json(self.server.ledger.to_dict())
        self._finish_record()

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
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            session.info.stderr_tail = "".join(traceback.format_exception(exc))[-4096:]
            session.crash(f"{type(exc).__name__}: {exc}")
        self.changed.set()

    def _sink(self, report: dict[str, Any]) -> None:
        kind = report["type"]
        if kind == "stats":
            self._merge_stats(report["client_index"], report["counters"])
            return
        if self.judged and kind in ("submitted", "note"):
            return  # after judgement nothing the client says counts ...
        # ... except a second result: a duplicate or contradictory report is judged as such
        self.record.reports.append(ClientReport.from_json({**report, "late": self.judged}))
        if kind == "result" and report["task_id"] is not None:
            self.reported.add(report["task_id"])
        self.changed.set()

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
            delay = self.t0 + planned.due * self.time_scale - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)  # a schedule, not synchronisation
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
        for applied in self.engine.applied():
            spec = self.specs[applied.spec_index]
            if applied.t_end is None and spec.duration is not None:
                until = max(until, applied.t + spec.duration * self.time_scale - self.t0)
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
        self.toxic_windows.append(self.clock() + (spec.duration or 0.0) * self.time_scale)
        await self._apply_toxic(self._spec_index(spec), spec)

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
        if self.active_toxics.pop(name, None) is None:
            return
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await self.ctl.remove_toxic(self.proxy_name, name)
        self.log.info("fault.removed", kind="toxic", name=name)
        self.changed.set()

    async def _heal(self) -> float:
        """Lift every fault: the engine's, every toxic, and a disabled proxy; returns the time."""
        self.log.info("runner.heal", t=round(self.clock() - self.t0, 3))
        if self.engine is not None:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await self.engine.heal_all()
        async with self.toxic_lock:  # waits for a toxic being added; none is added after this
            for name in list(self.active_toxics):
                await self._remove_toxic_locked(name)
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await self.ctl.set_enabled(self.proxy_name, True)
            self.record.healed_at = self.clock()
        return self.record.healed_at

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
