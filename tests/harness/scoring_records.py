"""Hand-written RunRecords for the scorer, report and baseline tests.

Ledger dicts follow `Ledger.to_dict()` of Contract 2 (docs/architecture.md); times are
absolute monotonic seconds, the run starts at T0.
"""
from __future__ import annotations

from typing import Any

T0 = 1000.0
SID = "sid-c0"


def outputs_for(pid: str) -> dict[str, Any]:
    return {
        "3": {"images": [{"filename": f"{pid}_00001_.png", "subfolder": "chaos", "type": "output"}]},
        "4": {"images": [{"filename": f"{pid}_temp_.png", "subfolder": "", "type": "temp"}]},
    }


def prompt(
    pid: str,
    task: str | None,
    *,
    outcome: str | None = "success",
    accepted: float = 0.1,
    started: float | None = 0.2,
    completed: float | None = 1.0,
    executions: int = 1,
    outputs: dict[str, Any] | None = None,
    sid: str = SID,
    messages: list[tuple[float, str, bool, str | None]] = (),
) -> dict[str, Any]:
    return {
        "prompt_id": pid,
        "task_id": task,
        "client_id": sid,
        "number": 0,
        "accepted_at": T0 + accepted,
        "started_at": None if started is None else T0 + started,
        "completed_at": None if completed is None else T0 + completed,
        "outcome": outcome,
        "outputs": outputs_for(pid) if outputs is None and outcome == "success" else (outputs or {}),
        "error": {"exception_message": "boom"} if outcome == "error" else None,
        "executions": executions,
        "messages": [
            {"t": T0 + t, "sid": sid, "message_type": mt, "delivered": delivered, "fault": fault}
            for t, mt, delivered, fault in messages
        ],
    }


def submitted(task: str, pid: str | None, t: float = 0.15, client_index: int = 0) -> dict[str, Any]:
    return {"t": T0 + t, "client_index": client_index, "type": "submitted", "task_id": task, "prompt_id": pid,
            "outcome": None, "outputs": None, "detail": None}


def result(
    task: str | None,
    pid: str | None,
    outcome: str = "success",
    t: float = 1.2,
    outputs: dict[str, Any] | None = None,
    client_index: int = 0,
) -> dict[str, Any]:
    if outputs is None and outcome == "success" and pid is not None:
        outputs = outputs_for(pid)
    return {"t": T0 + t, "client_index": client_index, "type": "result", "task_id": task, "prompt_id": pid,
            "outcome": outcome, "outputs": outputs, "detail": None}


def ok_task(task: str, pid: str, at: float = 0.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A task that ran and was reported correctly, shifted by `at` seconds."""
    return (
        prompt(pid, task, accepted=at + 0.1, started=at + 0.2, completed=at + 1.0),
        [submitted(task, pid, t=at + 0.15), result(task, pid, t=at + 1.2)],
    )


def record(
    prompts: list[dict[str, Any]],
    reports: list[dict[str, Any]],
    *,
    tasks: int | None = None,
    name: str = "unit",
    seed: int = 1234,
    time_scale: float = 0.1,
    fault_specs: list[dict[str, Any]] = (),
    fault_log: list[dict[str, Any]] = (),
    scheduled: list[int] | None = None,
    fired: list[int] | None = None,
    adapter: dict[str, Any] | None = None,
    connections: list[dict[str, Any]] = (),
    http: list[dict[str, Any]] = (),
    expect: dict[str, Any] | None = None,
    t_end: float = 5.0,
) -> dict[str, Any]:
    count = tasks if tasks is not None else len({p["task_id"] for p in prompts if p["task_id"]})
    return {
        "scenario": {
            "name": name,
            "description": "unit-test scenario",
            "seed": seed,
            "time_scale": time_scale,
            "tags": [],
            "workload": {"tasks": count, "workflow": "basic"},
            "faults": list(fault_specs),
            "expect": dict(expect or {}),
            "source": f"scenarios/{name}.yaml",
        },
        "client": "reference",
        "seed": seed,
        "time_scale": time_scale,
        "backend": {"kind": "bundled"},
        "t0": T0,
        "t_end": T0 + t_end,
        "ledger": {
            "prompts": {p["prompt_id"]: p for p in prompts},
            "faults": [],
            "connections": list(connections),
            "http": list(http),
        },
        "reports": sorted(reports, key=lambda r: r["t"]),
        "fault_log": list(fault_log),
        "scheduled": list(range(len(fault_specs))) if scheduled is None else scheduled,
        "fired": list(range(len(fault_specs))) if fired is None else fired,
        "adapter": adapter or {"exit_code": 0, "crashed": False, "hung": False, "cpu_s": 0.5, "stderr_tail": ""},
        "client_stats": {},
    }


def fault(t: float, kind: str = "drop", *, message: str | None = "execution_success", client: str | None = SID,
          task: str | None = None, t_end: float | None = None, spec_index: int = 0,
          source: str = "server") -> dict[str, Any]:
    return {"t": T0 + t, "t_end": None if t_end is None else T0 + t_end, "kind": kind, "spec_index": spec_index,
            "target": {"client": client, "task": task, "message": message}, "detail": {}, "source": source}


# --- "real client" behaviours (issue 13): records as published clients produce them -------


def http_log(times: list[float], path: str = "/history", method: str = "GET") -> list[dict[str, Any]]:
    return [{"t": T0 + t, "method": method, "path": path, "status": 200, "fault": None} for t in times]


def null_outputs_client(n: int = 3) -> dict[str, Any]:
    """A client that does not expose outputs: every success comes with `outputs: null`."""
    prompts, reports = [], []
    for i in range(n):
        p, (sub, res) = ok_task(f"t{i}", f"p{i}", at=i * 0.5)
        res["outputs"] = None
        prompts.append(p)
        reports += [sub, res]
    return record(prompts, reports)


def no_submitted_client(n: int = 3) -> dict[str, Any]:
    """A client that never says `submitted` nor names prompt ids (results carry the task only)."""
    prompts, reports = [], []
    for i in range(n):
        p, (_, res) = ok_task(f"t{i}", f"p{i}", at=i * 0.5)
        res["prompt_id"] = None
        prompts.append(p)
        reports.append(res)
    return record(prompts, reports)


def storm_client(per_task: int, *, rate: float, faulted: bool = True) -> dict[str, Any]:
    """One slow task; the client polls /history `per_task` times at `rate` requests per
    real second after a drop (a request storm when rate is high)."""
    p = prompt("p0", "t0", accepted=0.1, started=0.2, completed=3.0)
    reports = [submitted("t0", "p0"), result("t0", "p0", t=3.1)]
    http = http_log([0.1]) + http_log([1.0 + k / rate for k in range(per_task - 1)])
    specs = [{"kind": "abort", "when": {"at": 1.0}}] if faulted else []
    log = [fault(1.0, "abort", message=None)] if faulted else []
    return record([p], reports, http=http, fault_specs=specs, fault_log=log, time_scale=1.0, t_end=4.0)


def spinning_client(cpu_s: float, *, faulted: bool = True) -> dict[str, Any]:
    """A client process whose CPU time over a 4 s run is `cpu_s` (a busy loop after a close
    spends most of the run on a core)."""
    prompts, reports = [], []
    for i in range(2):
        p, r = ok_task(f"t{i}", f"p{i}", at=i * 0.5)
        prompts.append(p)
        reports += r
    specs = [{"kind": "close", "when": {"at": 0.3}}] if faulted else []
    log = [fault(0.3, "close", message=None)] if faulted else []
    adapter = {"exit_code": 0, "crashed": False, "hung": False, "cpu_s": cpu_s, "stderr_tail": ""}
    return record(prompts, reports, fault_specs=specs, fault_log=log, adapter=adapter, t_end=4.0)


def batching_client(n: int = 4, *, hold_until: float | None = None, time_scale: float = 1.0) -> dict[str, Any]:
    """Tasks that complete one after another; the client reports each at `hold_until`
    (holds every result until the queue is empty) or right away when None."""
    prompts, reports = [], []
    for i in range(n):
        done = 2.0 * (i + 1)
        prompts.append(prompt(f"p{i}", f"t{i}", accepted=0.1, started=done - 2.0, completed=done))
        reports += [submitted(f"t{i}", f"p{i}"), result(f"t{i}", f"p{i}", t=(hold_until or done) + 0.05)]
    return record(prompts, reports, time_scale=time_scale, t_end=2.0 * n + 3.0)


def late_reporter(first: str, second: str) -> dict[str, Any]:
    """A client that reports `first`, then after judgement a second callback `second`."""
    p = prompt("p0", "t0", outcome="success")
    late = result("t0", "p0", outcome=second, t=5.5)
    late["late"] = True
    return record([p], [submitted("t0", "p0"), result("t0", "p0", outcome=first), late], t_end=5.0)
