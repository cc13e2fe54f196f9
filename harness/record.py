"""`RunRecord`: everything one scenario × client run produced (Contract 7).

The runner fills it; the scorer reads it. Its parts are typed, frozen values (the ledger
snapshot, the client's reports, the applied faults, the expanded fault schedule, the
summary of the control run); `RunRecord.to_json` / `RunRecord.from_json` are the one
place where it meets JSON, so a record can be written next to a report and scored again
later.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, cast

ReportType = Literal["ready", "submitted", "result", "note", "crash", "done", "stats", "ui"]
TargetKind = Literal["ws", "http", "toxic", "server"]

_HTTP_KINDS = frozenset({"http_error", "http_slow", "http_truncate", "prompt_response_lost", "history_lag"})
_SERVER_KINDS = frozenset({"restart"})


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class MessageSnapshot:
    """One frame the fake sent (or withheld) for a prompt (Contract 2 MessageRecord)."""

    t: float
    sid: str | None
    message_type: str
    delivered: bool
    fault: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MessageSnapshot:
        return cls(float(data["t"]), _opt_str(data.get("sid")), str(data.get("message_type")),
                   bool(data.get("delivered")), _opt_str(data.get("fault")))


@dataclass(frozen=True, slots=True)
class PromptSnapshot:
    """One prompt the fake accepted: its task (workflow tag), times, outcome and outputs."""

    prompt_id: str
    task_id: str | None
    client_id: str | None = None
    number: float = 0
    accepted_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    outcome: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    error: Mapping[str, Any] | None = None
    executions: int = 0
    messages: tuple[MessageSnapshot, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PromptSnapshot:
        error = data.get("error")
        return cls(
            prompt_id=str(data["prompt_id"]),
            task_id=_opt_str(data.get("task_id")),
            client_id=_opt_str(data.get("client_id")),
            number=data.get("number") or 0,
            accepted_at=float(data.get("accepted_at") or 0.0),
            started_at=_opt_float(data.get("started_at")),
            completed_at=_opt_float(data.get("completed_at")),
            outcome=_opt_str(data.get("outcome")),
            outputs=_mapping(data.get("outputs")),
            error=dict(error) if isinstance(error, Mapping) else None,
            executions=int(data.get("executions") or 0),
            messages=tuple(MessageSnapshot.from_json(m) for m in data.get("messages") or ()),
        )


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """A WebSocket event of the fake: open | close | replaced | orphaned | refused | abort."""

    t: float
    sid: str
    event: str
    conn_id: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConnectionEvent:
        conn_id = data.get("conn_id")
        return cls(float(data["t"]), str(data.get("sid")), str(data.get("event")),
                   None if conn_id is None else int(conn_id))


@dataclass(frozen=True, slots=True)
class HttpEvent:
    """One HTTP request the fake answered."""

    t: float
    method: str
    path: str
    status: int
    fault: str | None = None
    bytes: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HttpEvent:
        size = data.get("bytes", data.get("size"))
        return cls(float(data["t"]), str(data.get("method")), str(data.get("path")), int(data.get("status") or 0),
                   _opt_str(data.get("fault")), int(size) if isinstance(size, int) else None)


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """The fake server's ledger at the end of a run (`Ledger.to_dict()`, Contract 2): ground truth."""

    prompts: Mapping[str, PromptSnapshot] = field(default_factory=dict)
    faults: tuple[Mapping[str, Any], ...] = ()
    connections: tuple[ConnectionEvent, ...] = ()
    http: tuple[HttpEvent, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LedgerSnapshot:
        raw = data.get("prompts") or {}
        items = raw.values() if isinstance(raw, Mapping) else raw
        prompts = [PromptSnapshot.from_json(p) for p in items]
        return cls(
            prompts={p.prompt_id: p for p in prompts},
            faults=tuple(dict(f) for f in data.get("faults") or ()),
            connections=tuple(ConnectionEvent.from_json(c) for c in data.get("connections") or ()),
            http=tuple(HttpEvent.from_json(h) for h in data.get("http") or ()),
        )


@dataclass(frozen=True, slots=True)
class ClientReport:
    """One line the client's adapter sent (docs/adapters.md), stamped with the harness clock.

    `outputs` None on a result means the client does not expose outputs (not compared).
    `late` is True for a report that arrived after judgement (it still counts for
    duplicate and contradictory reports, never as the task's answer)."""

    t: float
    type: ReportType
    client_index: int = 0
    task_id: str | None = None
    prompt_id: str | None = None
    outcome: str | None = None
    outputs: Mapping[str, Any] | None = None
    detail: str | None = None
    late: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Anything else the line carried (`client`, `version`, `caps` of `ready`, `counters` of `stats`)."""

    _KNOWN = ("t", "type", "client_index", "task_id", "prompt_id", "outcome", "outputs", "detail", "late", "extra")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClientReport:
        outputs = data.get("outputs")
        extra = {k: v for k, v in data.items() if k not in cls._KNOWN}
        extra.update(_mapping(data.get("extra")))
        return cls(
            t=float(data.get("t") or 0.0),
            type=cast(ReportType, str(data.get("type"))),
            client_index=int(data.get("client_index") or 0),
            task_id=_opt_str(data.get("task_id")),
            prompt_id=_opt_str(data.get("prompt_id")),
            outcome=_opt_str(data.get("outcome")),
            outputs=dict(outputs) if isinstance(outputs, Mapping) else None,
            detail=_opt_str(data.get("detail")),
            late=bool(data.get("late", False)),
            extra=extra,
        )


def derive_target(kind: str, target: Mapping[str, Any]) -> tuple[TargetKind, str | None]:
    """Best-effort (target_kind, target_client_id) for a fault-log entry that lacks them."""
    if kind == "toxic":
        return "toxic", None
    if kind in _SERVER_KINDS:
        return "server", None
    if kind in _HTTP_KINDS or "path" in target or "route" in target:
        client = target.get("client_id")
        return "http", None if client is None else str(client)
    client = target.get("client")
    return "ws", None if client is None else str(client)


@dataclass(frozen=True, slots=True)
class AppliedFault:
    """One applied fault (the engine's fault log, toxics added by the runner).

    `target_kind` says what it hit: a WebSocket (`ws`, a frame or connection of
    `target_client_id`; None = a window over every socket), an HTTP request (`http`), the
    Toxiproxy connection (`toxic`) or the whole server (`server`, e.g. a restart)."""

    t: float
    kind: str
    spec_index: int | None = None
    t_end: float | None = None
    target: Mapping[str, Any] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)
    sent: str | None = None
    source: str = "server"
    target_kind: TargetKind = "ws"
    target_client_id: str | None = None
    reached: bool | None = None
    """The engine's word: False for an entry that records a client the fault was meant for
    but never met (`detail.reason` says why); None when the log does not say."""
    window: bool = False
    """The entry opens a window that `t_end` closes (silent, refuse, toxic)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AppliedFault:
        kind = str(data.get("kind") or "?")
        target = _mapping(data.get("target"))
        derived_kind, derived_client = derive_target(kind, target)
        given_kind = data.get("target_kind")
        spec_index = data.get("spec_index")
        sent = data.get("sent")
        return cls(
            t=float(data.get("t") or 0.0),
            kind=kind,
            spec_index=None if spec_index is None else int(spec_index),
            t_end=_opt_float(data.get("t_end")),
            target=target,
            detail=_mapping(data.get("detail")),
            sent=sent if isinstance(sent, str) or sent is None else str(sent),
            source=str(data.get("source") or "server"),
            target_kind=cast(TargetKind, given_kind) if given_kind in ("ws", "http", "toxic", "server") else derived_kind,
            target_client_id=_opt_str(data["target_client_id"]) if "target_client_id" in data else derived_client,
            reached=None if data.get("reached") is None else bool(data["reached"]),
            window=bool(data.get("window", False)),
        )


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    """One entry of the expanded fault schedule (`Scenario.fault_schedule()`, random chaos
    included), as written: `spec` is the FaultSpec's JSON."""

    index: int
    kind: str
    spec: Mapping[str, Any] = field(default_factory=dict)

    @property
    def when(self) -> Any:
        return self.spec.get("when", "?")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScheduledFault:
        spec = _mapping(data.get("spec"))
        return cls(int(data.get("index") or 0), str(data.get("kind") or spec.get("kind") or "?"), spec)

    @classmethod
    def of(cls, specs: list[Mapping[str, Any]]) -> list[ScheduledFault]:
        return [cls(i, str(spec.get("kind") or "?"), dict(spec)) for i, spec in enumerate(specs)]


@dataclass(slots=True)
class AdapterInfo:
    """How the client process itself behaved (one per client instance); the adapter session
    fills it while the run goes."""

    client_index: int = 0
    exit_code: int | None = None
    crashed: bool = False
    hung: bool = False
    cpu_s: float | None = None
    stderr_tail: str = ""
    # How the instance ended, in words the report can show as they are ("sent done and
    # exited", "killed 0.5 s after the judgement at +2.10 s, before its deadline +6.00 s").
    ended: str | None = None
    ended_at: float | None = None  # clock time it ended (or was killed)
    scalable: bool | None = None  # what its `ready` line said (None: nothing)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    """Browser clients: [{kind: "screenshot", label, t, src: data URI}] for the report."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AdapterInfo:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class AdapterSummary:
    """The adapter instances of a run, folded: any crashed/hung, total CPU, stderr tails."""

    exit_code: int | None = None
    crashed: bool = False
    hung: bool = False
    cpu_s: float | None = None
    stderr_tail: str = ""
    instances: tuple[AdapterInfo, ...] = ()

    @classmethod
    def of(cls, infos: list[AdapterInfo]) -> AdapterSummary:
        cpu = [info.cpu_s for info in infos if info.cpu_s is not None]
        codes = [info.exit_code for info in infos if info.exit_code is not None]
        return cls(
            exit_code=next((code for code in codes if code != 0), codes[0] if codes else None),
            crashed=any(info.crashed for info in infos),
            hung=any(info.hung for info in infos),
            cpu_s=sum(cpu) if cpu else None,
            stderr_tail="\n".join(info.stderr_tail for info in infos if info.stderr_tail)[-4096:],
            instances=tuple(AdapterInfo(**asdict(info)) for info in infos),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AdapterSummary:
        instances = tuple(AdapterInfo.from_json(i) for i in data.get("instances") or () if isinstance(i, Mapping))
        code = data.get("exit_code")
        return cls(
            exit_code=None if code is None else int(code),
            crashed=bool(data.get("crashed")),
            hung=bool(data.get("hung")),
            cpu_s=_opt_float(data.get("cpu_s")),
            stderr_tail=str(data.get("stderr_tail") or ""),
            instances=instances,
        )


@dataclass(frozen=True, slots=True)
class ControlSummary:
    """What the control run (same scenario, client, seed and workload, no faults) showed;
    the faulted run is judged relative to it (`scoring.summarise_control`)."""

    verdict: str
    failures: tuple[str, ...] = ()
    """The bars the control run broke (`lost: 1 > expect.lost 0`, …)."""
    problems: Mapping[str, int] = field(default_factory=dict)
    """Tasks per problem class in the control run (only the non-zero ones)."""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    """The control's slow-burn figures: latency_p95, latency_max, http_per_task,
    peak_requests_per_s, cpu_per_wall, reconnects."""
    reasons: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ControlSummary:
        return cls(
            verdict=str(data.get("verdict") or "inconclusive"),
            failures=tuple(str(x) for x in data.get("failures") or ()),
            problems={str(k): int(v) for k, v in _mapping(data.get("problems")).items()},
            metrics=_mapping(data.get("metrics")),
            reasons=tuple(str(x) for x in data.get("reasons") or ()),
        )


@dataclass(slots=True)
class RunRecord:
    """One run; mutable while the runner fills it, its parts are frozen values."""

    scenario: dict[str, Any]
    client: str
    seed: int
    time_scale: float
    backend: dict[str, Any] = field(default_factory=dict)
    t0: float = 0.0
    t_end: float = 0.0
    ledger: LedgerSnapshot = field(default_factory=LedgerSnapshot)
    reports: list[ClientReport] = field(default_factory=list)
    fault_log: list[AppliedFault] = field(default_factory=list)
    schedule: list[ScheduledFault] = field(default_factory=list)
    """The expanded fault schedule (random chaos included): index → spec."""
    scheduled: list[int] = field(default_factory=list)
    fired: list[int] = field(default_factory=list)
    adapter: AdapterSummary = field(default_factory=AdapterSummary)
    client_stats: dict[str, Any] = field(default_factory=dict)
    task_ids: list[str] = field(default_factory=list)
    healed_at: float | None = None
    error: str | None = None
    scenario_path: str | None = None
    control: ControlSummary | None = None
    """The control run of this scenario × client × seed (None: not run, or this is one)."""
    inconclusive: list[str] = field(default_factory=list)
    """Why the runner cannot vouch for this run (a heal it could not verify): inconclusive."""
    starvation: dict[str, Any] | None = None
    """`harness.starvation.Starvation.to_dict()`: how late the event loop ran during the run."""
    warnings: list[str] = field(default_factory=list)
    """What the report should say without changing the verdict (fixed timers, …)."""
    comfyui_version: str = ""  # the protocol profile the fake server ran (fake_comfy.profiles)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"RunRecord: unknown keys {unknown}")
        scenario = _mapping(data.get("scenario"))
        schedule = [ScheduledFault.from_json(s) for s in data.get("schedule") or ()]
        if not schedule:
            schedule = ScheduledFault.of([f for f in scenario.get("faults") or () if isinstance(f, Mapping)])
        control = data.get("control")
        return cls(
            scenario=scenario,
            client=str(data.get("client") or "?"),
            seed=int(data.get("seed") or 0),
            time_scale=float(data.get("time_scale") or scenario.get("time_scale") or 1.0),
            backend=_mapping(data.get("backend")),
            t0=float(data.get("t0") or 0.0),
            t_end=float(data.get("t_end") or data.get("t0") or 0.0),
            ledger=LedgerSnapshot.from_json(_mapping(data.get("ledger"))),
            reports=[ClientReport.from_json(r) for r in data.get("reports") or ()],
            fault_log=[AppliedFault.from_json(f) for f in data.get("fault_log") or ()],
            schedule=schedule,
            scheduled=[int(i) for i in data.get("scheduled") or ()],
            fired=[int(i) for i in data.get("fired") or ()],
            adapter=AdapterSummary.from_json(_mapping(data.get("adapter"))),
            client_stats=_mapping(data.get("client_stats")),
            task_ids=[str(t) for t in data.get("task_ids") or ()],
            healed_at=_opt_float(data.get("healed_at")),
            error=_opt_str(data.get("error")),
            scenario_path=_opt_str(data.get("scenario_path")),
            control=ControlSummary.from_json(control) if isinstance(control, Mapping) else None,
            inconclusive=[str(x) for x in data.get("inconclusive") or ()],
            starvation=_mapping(data["starvation"]) if isinstance(data.get("starvation"), Mapping) else None,
            warnings=[str(x) for x in data.get("warnings") or ()],
            comfyui_version=str(data.get("comfyui_version") or ""),
        )
