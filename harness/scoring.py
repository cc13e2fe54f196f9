"""The scorer: a pure function from a RunRecord to a ScenarioResult.

Ground truth is the fake server's ledger (Contract 2): which prompts ran, for which task
(Contract 1 tag), with which outcome and outputs, when. The client's reports say what it
told its caller. The rules are written down in `docs/scoring.md`; keep the two in step.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from comfy_chaos.harness.results import ConnSpan, FaultMark, ScenarioResult, TaskScore

FINAL_OUTCOMES = ("success", "error", "interrupted")
"""Server outcomes that mean the prompt finished (the client must report it)."""

PRIMARY_ORDER = (
    "phantom",
    "contradictory",
    "stuck_ui",
    "lost",
    "indeterminate",
    "wrong_outcome",
    "wrong_outputs",
    "duplicate_report",
    "duplicate_execution",
)
"""When a task has several problems, its class is the first of these that applies."""

MAX_TASK_REASONS = 20
AROUND_S = 0.5
"""Faults within this many real seconds (or 5 × time_scale if larger) of a task's life are
"around" it in the reasons."""


def score(record: Any) -> ScenarioResult:
    """Classify every task, compute metrics and the verdict of one run (no I/O, no clock)."""
    return _Scoring(_as_dict(record)).result()


def _as_dict(record: Any) -> Mapping[str, Any]:
    if isinstance(record, Mapping):
        return record
    if hasattr(record, "to_dict"):
        return record.to_dict()
    raise TypeError(f"score(): expected a RunRecord or a dict, got {type(record).__name__}")


def task_sort_key(task_id: str) -> tuple:
    """Natural order: t2 before t10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", task_id))


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile (p in (0, 100]); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def output_set(outputs: Any) -> set[tuple[str, ...]]:
    """History-style outputs as a set of (node, filename, subfolder, type).

    Items that are not files (e.g. text) become (node, key, repr) so they still compare.
    """
    found: set[tuple[str, ...]] = set()
    if not isinstance(outputs, Mapping):
        return found
    for node, per_node in outputs.items():
        if not isinstance(per_node, Mapping):
            continue
        for key, items in per_node.items():
            for item in items if isinstance(items, list) else [items]:
                if isinstance(item, Mapping) and "filename" in item:
                    found.add(
                        (str(node), str(item["filename"]), str(item.get("subfolder", "")), str(item.get("type", "")))
                    )
                else:
                    found.add((str(node), str(key), repr(item)))
    return found


def _prompts(ledger: Mapping[str, Any]) -> list[dict[str, Any]]:
    prompts = ledger.get("prompts") or {}
    items = prompts.values() if isinstance(prompts, Mapping) else prompts
    return [dict(p) for p in items]


def _adapter_entries(adapter: Any) -> list[Mapping[str, Any]]:
    if isinstance(adapter, list):
        return [a for a in adapter if isinstance(a, Mapping)]
    if isinstance(adapter, Mapping):
        for key in ("clients", "instances"):
            if isinstance(adapter.get(key), list):
                return [a for a in adapter[key] if isinstance(a, Mapping)]
        return [adapter]
    return []


def _fmt_t(t: float | None) -> str:
    """A moment of the run: real seconds since it started (latencies are scenario seconds)."""
    return "?" if t is None else f"+{t:.3f} s"


def _short(prompt_id: str | None) -> str:
    if not prompt_id:
        return "no prompt id"
    return f"prompt {prompt_id[:8]}…" if len(prompt_id) > 9 else f"prompt {prompt_id}"


def merge_windows(marks: Iterable[FaultMark]) -> list[tuple[FaultMark, float, float, int]]:
    """Fault windows (t_end > t) of the same spec and kind, overlapping or touching, merged:
    (first mark, start, end, number of records). A `silent` window records every frame it
    withholds; this turns them back into the one window it was."""
    by_spec: dict[tuple, list[FaultMark]] = {}
    for m in marks:
        if m.t_end is not None and m.t_end > m.t:
            by_spec.setdefault((m.spec_index, m.kind), []).append(m)
    merged: list[tuple[FaultMark, float, float, int]] = []
    for group in by_spec.values():
        group.sort(key=lambda m: m.t)
        first, start, end, count = group[0], group[0].t, group[0].t_end, 1
        for m in group[1:]:
            if m.t <= end:
                end, count = max(end, m.t_end), count + 1
            else:
                merged.append((first, start, end, count))
                first, start, end, count = m, m.t, m.t_end, 1
        merged.append((first, start, end, count))
    return sorted(merged, key=lambda w: w[1])


def group_faults(marks: list[FaultMark]) -> list[str]:
    """Describe faults for a reason line, folding repeats: the records of one window become
    one entry, and so do repeated instant faults of one spec with the same label."""
    lines: list[tuple[float, str]] = []
    for first, start, end, count in merge_windows(marks):
        label = first.kind if count > 1 else first.label
        times = f" (×{count})" if count > 1 else ""
        lines.append((start, f"{label} from {_fmt_t(start)} to {_fmt_t(end)}{times}"))
    instants: dict[tuple, list[FaultMark]] = {}
    for m in marks:
        if m.t_end is None or m.t_end <= m.t:
            instants.setdefault((m.spec_index, m.label), []).append(m)
    for group in instants.values():
        first = group[0]
        extra = f" (×{len(group)}, last at {_fmt_t(group[-1].t)})" if len(group) > 1 else ""
        lines.append((first.t, f"{first.label} at {_fmt_t(first.t)}{extra}"))
    return [text for _, text in sorted(lines, key=lambda pair: pair[0])]


@dataclass
class _Task:
    task_id: str
    planned: bool = False
    prompts: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    submitted: list[dict[str, Any]] = field(default_factory=list)


class _Scoring:
    def __init__(self, record: Mapping[str, Any]) -> None:
        self.rec = record
        self.scenario: Mapping[str, Any] = record.get("scenario") or {}
        self.ledger: Mapping[str, Any] = record.get("ledger") or {}
        self.t0 = float(record.get("t0") or 0.0)
        self.t_end = float(record.get("t_end") or self.t0)
        self.time_scale = float(record.get("time_scale") or self.scenario.get("time_scale") or 1.0)
        self.seed = record.get("seed", self.scenario.get("seed", 0))
        self.client = str(record.get("client") or "?")
        self.expect: Mapping[str, Any] = self.scenario.get("expect") or {}
        self.prompts = _prompts(self.ledger)
        self.prompt_by_id = {p.get("prompt_id"): p for p in self.prompts}
        self.sid_names = self._sid_names()

    # --- helpers -------------------------------------------------------------------------

    def rel(self, t: float | None) -> float | None:
        return None if t is None else round(float(t) - self.t0, 6)

    def _sid_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for report in self.rec.get("reports") or []:
            prompt = self.prompt_by_id.get(report.get("prompt_id"))
            if prompt and prompt.get("client_id") and report.get("client_index") is not None:
                names.setdefault(prompt["client_id"], f"c{report['client_index']}")
        return names

    def _client_label(self, client: Any) -> str:
        return self.sid_names.get(client, str(client)) if client is not None else ""

    # --- gathering -----------------------------------------------------------------------

    def tasks(self) -> dict[str, _Task]:
        tasks: dict[str, _Task] = {}

        def get(task_id: str) -> _Task:
            return tasks.setdefault(task_id, _Task(task_id))

        planned = list(self.rec.get("task_ids") or [])
        if not planned:
            count = int((self.scenario.get("workload") or {}).get("tasks") or 0)
            planned = [f"t{i}" for i in range(count)]
        for task_id in planned:
            get(task_id).planned = True
        for prompt in self.prompts:
            if prompt.get("task_id") is not None:
                get(str(prompt["task_id"])).prompts.append(prompt)
        for report in self.rec.get("reports") or []:
            kind = report.get("type")
            if kind not in ("result", "submitted"):
                continue
            task_id = report.get("task_id")
            if task_id is None:
                prompt = self.prompt_by_id.get(report.get("prompt_id"))
                task_id = prompt.get("task_id") if prompt else None
            if task_id is None:
                task_id = f"?{report.get('prompt_id') or 'unknown'}"
            target = get(str(task_id))
            (target.results if kind == "result" else target.submitted).append(report)
        return dict(sorted(tasks.items(), key=lambda kv: task_sort_key(kv[0])))

    def shown_running(self) -> tuple[float | None, dict[str, float]]:
        """UI clients (docs/browser.md): the tasks the page still showed running at the
        judgement, each with the moment since when it had been shown running without a break;
        and the time of the last `ui` report (None: the client sends none)."""
        since: dict[str, float] = {}
        last: float | None = None
        for report in sorted(
            (r for r in self.rec.get("reports") or [] if r.get("type") == "ui" and r.get("t") is not None),
            key=lambda r: float(r["t"]),
        ):
            t = float(report["t"])
            if t > self.t_end:
                break
            last = t
            running = {str(task_id) for task_id in report.get("running") or []}
            since = {task_id: since.get(task_id, t) for task_id in running}
        return last, since

    def stuck_ui(self, score: TaskScore, since: dict[str, float]) -> str | None:
        """Why the task counts as stuck UI: finished on the server, still shown running."""
        started = since.get(score.task_id)
        if started is None or score.completed_at is None:
            return None
        end = self.rel(self.t_end) or 0.0
        stuck_from = max(self.rel(started) or 0.0, score.completed_at)
        return (
            f"stuck UI: the page still showed it running at the judgement, {end - score.completed_at:.1f} s after "
            f"the server finished it (shown running since {_fmt_t(self.rel(started))}, stuck from {_fmt_t(stuck_from)})"
        )

    # --- classification --------------------------------------------------------------------

    def classify(self, task: _Task) -> TaskScore:
        ps = task.prompts
        executions = sum(int(p.get("executions") or (1 if p.get("started_at") is not None else 0)) for p in ps)
        completed = sorted(
            (p for p in ps if p.get("outcome") in FINAL_OUTCOMES), key=lambda p: p.get("completed_at") or 0.0
        )
        known_pids = {r.get("prompt_id") for r in task.submitted + task.results if r.get("prompt_id")}
        task_pids = {p.get("prompt_id") for p in ps}
        outcomes = [str(r.get("outcome")) for r in task.results]
        problems: list[str] = []
        why: list[str] = []
        final = completed[-1] if completed else None
        matched = final
        latency = None

        if not completed:
            claims = [o for o in outcomes if o in ("success", "interrupted")]
            if claims:
                problems.append("phantom")
                why.append(f"reported {claims[0]} but the server never completed it")
            elif task.results and not task.planned and not ps:
                problems.append("phantom")
                why.append("reported a task that was never planned nor submitted")
        elif not task.results:
            if known_pids & task_pids:
                problems.append("lost")
                why.append("never reported")
            else:
                problems.append("indeterminate")
                why.append("never reported, and the client never learnt its prompt id (submission reply lost?)")
        else:
            first = task.results[0]
            by_pid = self.prompt_by_id.get(first.get("prompt_id"))
            if by_pid is not None and by_pid in completed:
                matched = by_pid
            if first.get("outcome") != matched.get("outcome"):
                if known_pids & task_pids:
                    problems.append("wrong_outcome")
                    why.append(f"reported {first.get('outcome')}")
                else:
                    problems.append("indeterminate")
                    why.append(f"reported {first.get('outcome')} without ever learning its prompt id")
            elif first.get("outcome") == "success":
                want, got = output_set(matched.get("outputs")), output_set(first.get("outputs"))
                if want != got:
                    problems.append("wrong_outputs")
                    missing, extra = sorted(want - got), sorted(got - want)
                    why.append(f"outputs differ: missing {missing[:3]}, unexpected {extra[:3]}")
            if matched.get("completed_at") is not None and first.get("t") is not None:
                latency = max(0.0, float(first["t"]) - float(matched["completed_at"])) / self.time_scale
        if len(set(outcomes)) > 1:
            problems.append("contradictory")
            why.append(f"reported {' and '.join(dict.fromkeys(outcomes))}")
        elif len(outcomes) > 1:
            problems.append("duplicate_report")
            why.append(f"reported {len(outcomes)} times")
        if executions > 1:
            problems.append("duplicate_execution")
            why.append(f"executed {executions} times on the server")

        primary = next((c for c in PRIMARY_ORDER if c in problems), None)
        cls = primary or ("ok" if completed else "not_completed")
        submitted_t = min((r.get("t") for r in task.submitted if r.get("t") is not None), default=None)
        client_index = next(
            (r.get("client_index") for r in task.submitted + task.results if r.get("client_index") is not None), None
        )
        anchor = matched or (ps[0] if ps else {})
        return TaskScore(
            task_id=task.task_id,
            cls=cls,
            problems=[c for c in PRIMARY_ORDER if c in problems],
            client_index=client_index,
            prompt_ids=[p.get("prompt_id") for p in ps],
            server_outcome=final.get("outcome") if final else (ps[-1].get("outcome") if ps else None),
            reported_outcomes=outcomes,
            executions=executions,
            submitted_at=self.rel(submitted_t),
            accepted_at=self.rel(anchor.get("accepted_at")),
            started_at=self.rel(anchor.get("started_at")),
            completed_at=self.rel(anchor.get("completed_at")),
            reported_at=[self.rel(r["t"]) for r in task.results if r.get("t") is not None],
            latency=None if latency is None else round(latency, 6),
            why="; ".join(why),
        )

    # --- faults, connections ---------------------------------------------------------------

    def fault_label(self, fault: Mapping[str, Any]) -> str:
        kind = str(fault.get("kind") or "?")
        target = fault.get("target") or {}
        detail = fault.get("detail") or {}
        if kind == "toxic":
            toxic = detail.get("toxic") if isinstance(detail.get("toxic"), Mapping) else detail
            stream = toxic.get("stream") or (target.get("stream") if isinstance(target, Mapping) else None)
            return " ".join(str(x) for x in ("toxic", toxic.get("type"), stream) if x)
        label = kind
        if isinstance(target, Mapping):
            if target.get("message"):
                label += f" {target['message']}"
            if target.get("client") is not None:
                label += f"→{self._client_label(target['client'])}"
            if target.get("task") and not target.get("message"):
                label += f" {target['task']}"
            if target.get("route"):
                label += f" {target['route']}"
        return label

    def faults(self, last_activity: float) -> list[FaultMark]:
        log = self.rec.get("fault_log") or []
        if not log:
            log = [dict(f, source="server") for f in self.ledger.get("faults") or []]
        marks = []
        for fault in sorted(log, key=lambda f: f.get("t") or 0.0):
            t = self.rel(fault.get("t")) or 0.0
            marks.append(
                FaultMark(
                    t=t,
                    t_end=self.rel(fault.get("t_end")),
                    kind=str(fault.get("kind") or "?"),
                    label=self.fault_label(fault),
                    source=str(fault.get("source") or "server"),
                    spec_index=fault.get("spec_index"),
                    effective=t <= last_activity,
                )
            )
        return marks

    def connections(self) -> list[ConnSpan]:
        spans: dict[Any, ConnSpan] = {}
        done: list[ConnSpan] = []
        end = self.rel(self.t_end) or 0.0
        events = sorted(self.ledger.get("connections") or [], key=lambda c: c.get("t") or 0.0)
        for ev in events:
            t = self.rel(ev.get("t")) or 0.0
            key = ev.get("conn_id")
            sid = str(ev.get("sid"))
            kind = ev.get("event")
            current = spans.get(key)
            if kind == "open":
                spans[key] = ConnSpan(sid=sid, conn_id=key, start=t, end=end)
            elif kind == "refused":
                done.append(ConnSpan(sid=sid, conn_id=key, start=t, end=t, state="refused", end_event="refused"))
            elif current is None:
                continue
            elif kind in ("replaced", "orphaned"):
                current.end, current.end_event = t, kind
                done.append(current)
                spans[key] = ConnSpan(sid=sid, conn_id=key, start=t, end=end, state=kind)
            else:
                current.end, current.end_event = t, kind
                done.append(spans.pop(key))
        done.extend(spans.values())
        return sorted(done, key=lambda s: (s.sid, s.start))

    def reconnects(self) -> int:
        """WebSocket opens beyond one per client instance (whether or not the client keeps
        its clientId when it reconnects)."""
        opens = sum(1 for ev in self.ledger.get("connections") or [] if ev.get("event") == "open")
        return max(0, opens - int(self.scenario.get("clients") or 1))

    def bytes_total(self) -> int | None:
        total, seen = 0, False
        for rec in list(self.ledger.get("http") or []) + [m for p in self.prompts for m in p.get("messages") or []]:
            for key in ("bytes", "size"):
                if isinstance(rec.get(key), int):
                    total += rec[key]
                    seen = True
                    break
        return total if seen else None

    def frames_around(self, task: _Task, score: TaskScore, marks: list[FaultMark]) -> list[dict[str, Any]]:
        rows = []
        for p in task.prompts:
            for m in p.get("messages") or []:
                rows.append(
                    {
                        "t": self.rel(m.get("t")),
                        "what": "frame",
                        "prompt_id": p.get("prompt_id"),
                        "to": self._client_label(m.get("sid")) if m.get("sid") else "broadcast",
                        "type": m.get("message_type"),
                        "delivered": m.get("delivered"),
                        "fault": m.get("fault"),
                    }
                )
        for mark in self.near(score, marks):
            rows.append({"t": mark.t, "what": "fault", "type": mark.label, "delivered": None, "fault": mark.kind})
        return sorted(rows, key=lambda r: r["t"] if r["t"] is not None else 0.0)

    def near(self, score: TaskScore, marks: list[FaultMark]) -> list[FaultMark]:
        window = max(AROUND_S, 5 * self.time_scale)
        start = score.submitted_at if score.submitted_at is not None else score.accepted_at
        stop = score.completed_at
        if start is None and stop is None:
            return []
        lo = (start if start is not None else stop) - window
        hi = (stop if stop is not None else start) + window
        hits = [m for m in marks if m.t <= hi and (m.t_end if m.t_end is not None else m.t) >= lo]
        return hits

    # --- the result ----------------------------------------------------------------------

    def result(self) -> ScenarioResult:
        gathered = self.tasks()
        scores = {tid: self.classify(t) for tid, t in gathered.items()}
        _, since = self.shown_running()
        for task_score in scores.values():
            stuck = self.stuck_ui(task_score, since) if task_score.server_outcome in FINAL_OUTCOMES else None
            if stuck is not None:
                task_score.problems = [c for c in PRIMARY_ORDER if c in {*task_score.problems, "stuck_ui"} and c != "lost"]
                task_score.cls = task_score.problems[0]
                task_score.why = "; ".join(w for w in (stuck, task_score.why) if w and w != "never reported")
        values = list(scores.values())
        end = self.rel(self.t_end) or 0.0

        completed = [s for s in values if s.server_outcome in FINAL_OUTCOMES]
        reported = [s for s in completed if s.reported_outcomes]
        last_activity = 0.0
        for s in values:
            for t in [s.completed_at, *s.reported_at]:
                if t is not None:
                    last_activity = max(last_activity, t)
            if s.cls in ("lost", "indeterminate", "stuck_ui"):
                last_activity = end
        marks = self.faults(last_activity)

        def count(cls: str) -> int:
            return sum(1 for s in values if cls in s.problems or s.cls == cls)

        latencies = [s.latency for s in values if s.latency is not None]
        adapters = _adapter_entries(self.rec.get("adapter"))
        crash_reports = [r for r in self.rec.get("reports") or [] if r.get("type") == "crash"]
        hung = any(a.get("hung") for a in adapters)
        crashed = any(a.get("crashed") for a in adapters) or bool(crash_reports)
        planned = sum(1 for t in gathered.values() if t.planned) or len(values)
        http = list(self.ledger.get("http") or [])
        total_bytes = self.bytes_total()
        scheduled = list(self.rec.get("scheduled") or [])
        fired = set(self.rec.get("fired") or [])
        p95 = percentile(latencies, 95)
        metrics: dict[str, Any] = {
            "tasks": planned,
            "server_completed": len(completed),
            "reported": len(reported),
            "completeness": round(len(reported) / len(completed), 6) if completed else 1.0,
            **{cls: count(cls) for cls in ("ok", *PRIMARY_ORDER, "not_completed")},
            "latency_p50": percentile(latencies, 50),
            "latency_p95": p95,
            "latency_max": max(latencies, default=None),
            "http_requests": len(http),
            "http_per_task": round(len(http) / planned, 3) if planned else None,
            "reconnects": self.reconnects(),
            "bytes_per_task": round(total_bytes / planned, 1) if total_bytes is not None and planned else None,
            "hang": hung,
            "crash": crashed,
            "faults_scheduled": len(scheduled),
            "faults_fired": len(fired & set(scheduled)) if scheduled else len(fired),
            "faults_applied": len(marks),
            "faults_effective": sum(1 for m in marks if m.effective),
            "untagged_prompts": sum(1 for p in self.prompts if p.get("task_id") is None),
            "cpu_s": sum(a.get("cpu_s") or 0.0 for a in adapters) if any(a.get("cpu_s") for a in adapters) else None,
        }

        failures = self.bar_failures(metrics, adapters, crash_reports)
        inconclusive = self.inconclusive_reasons(metrics, marks, scheduled, fired, last_activity)
        verdict = "fail" if failures else ("inconclusive" if inconclusive else "pass")

        source = self.rec.get("scenario_path") or self.scenario.get("source") or self.scenario.get("name") or "?"
        replay = f"comfy-chaos replay {source} --client {self.client} --seed {self.seed}"
        name = str(self.scenario.get("name") or "?")
        reasons: list[str] = []
        if verdict != "pass":
            header = "Falsifying run" if verdict == "fail" else "Inconclusive run"
            reasons.append(f"{header}: scenario {name}, client {self.client}, seed {self.seed}, time scale {self.time_scale:g}")
            reasons.extend(failures)
            if verdict == "inconclusive":
                reasons.extend(inconclusive)
            bad = [s for s in values if s.problems]
            for s in bad[:MAX_TASK_REASONS]:
                reasons.append(self.task_reason(s, marks))
            if len(bad) > MAX_TASK_REASONS:
                reasons.append(f"… and {len(bad) - MAX_TASK_REASONS} more tasks with problems")
            if self.rec.get("error"):
                reasons.append(f"harness error: {self.rec['error']}")
            reasons.append(f"seed: {self.seed}")
            reasons.append(f"replay: {replay}")

        frames = {
            tid: self.frames_around(gathered[tid], s, marks) for tid, s in scores.items() if s.problems
        }
        return ScenarioResult(
            scenario=name,
            client=self.client,
            seed=int(self.seed) if isinstance(self.seed, int) else self.seed,
            time_scale=self.time_scale,
            verdict=verdict,
            reasons=reasons,
            replay=replay,
            metrics=metrics,
            tasks=values,
            faults=marks,
            connections=self.connections(),
            frames=frames,
            duration=end,
            source=str(source) if source != "?" else None,
            description=str(self.scenario.get("description") or ""),
            tags=list(self.scenario.get("tags") or []),
            client_ids=dict(self.sid_names),
            evidence=self.evidence(adapters),
        )

    def evidence(self, adapters: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Screenshots a browser client took (docs/browser.md), times made relative to t0."""
        shots = []
        for entry in adapters:
            for item in entry.get("evidence") or []:
                if isinstance(item, Mapping) and item.get("src"):
                    shots.append({**item, "t": self.rel(item.get("t")), "client_index": entry.get("client_index")})
        return shots

    def task_reason(self, s: TaskScore, marks: list[FaultMark]) -> str:
        pid = s.prompt_ids[-1] if s.prompt_ids else None
        head = f"{s.task_id} ({_short(pid)}) {s.cls.replace('_', ' ')}: "
        if s.completed_at is not None:
            head += f"completed {s.server_outcome} on the server at {_fmt_t(s.completed_at)}, "
        elif s.server_outcome:
            head += f"ended {s.server_outcome} on the server, "
        else:
            head += "never completed on the server, "
        if s.reported_at:
            head += f"first reported {s.reported_outcomes[0]} at {_fmt_t(s.reported_at[0])}, "
        head += s.why
        near = group_faults(self.near(s, marks))
        if near:
            listed = ", ".join(near[:5])
            more = f", … ({len(near) - 5} more)" if len(near) > 5 else ""
            head += f"; faults around it: {listed}{more}"
        else:
            head += "; no fault around it"
        return head

    def bar_failures(
        self, metrics: Mapping[str, Any], adapters: list[Mapping[str, Any]], crashes: list[Mapping[str, Any]]
    ) -> list[str]:
        e = self.expect
        out: list[str] = []
        if metrics["hang"] and not e.get("hang", False):
            out.append("hang: the client did not finish by the deadline")
        if metrics["crash"] and not e.get("crash", False):
            detail = next((c.get("detail") for c in crashes if c.get("detail")), None)
            tail = next((a.get("stderr_tail") for a in adapters if a.get("stderr_tail")), None)
            codes = [a.get("exit_code") for a in adapters if a.get("crashed") and a.get("exit_code") is not None]
            text = "crash: the client crashed" + (f" (exit code {', '.join(map(str, codes))})" if codes else "")
            out.append(text + (f": {str(detail or tail)[-300:]}" if detail or tail else ""))
        want = float(e.get("completeness", 1.0))
        if metrics["completeness"] < want:
            out.append(
                f"completeness {metrics['completeness']:.3f} < expect.completeness {want:g} "
                f"({metrics['reported']} of {metrics['server_completed']} server-completed tasks reported)"
            )
        bars = {
            "stuck_ui": "stuck_ui",
            "lost": "lost",
            "phantom": "phantom",
            "duplicate": "duplicate_report",
            "duplicate_execution": "duplicate_execution",
            "wrong_outcome": "wrong_outcome",
            "wrong_outputs": "wrong_outputs",
            "indeterminate": "indeterminate",
            "contradictory": "contradictory",
        }
        for bar, metric in bars.items():
            limit = int(e.get(bar, 0))
            if metrics[metric] > limit:
                out.append(f"{metric}: {metrics[metric]} > expect.{bar} {limit}")
        p95_bar = e.get("p95_latency")
        if p95_bar is not None and metrics["latency_p95"] is not None and metrics["latency_p95"] > float(p95_bar):
            out.append(f"latency p95 {metrics['latency_p95']:.2f} s > expect.p95_latency {float(p95_bar):g} s")
        return out

    def inconclusive_reasons(
        self,
        metrics: Mapping[str, Any],
        marks: list[FaultMark],
        scheduled: list[int],
        fired: set[int],
        last_activity: float,
    ) -> list[str]:
        out: list[str] = []
        specs = _schedule(self.scenario)
        for index in scheduled:
            if index not in fired:
                spec = specs[index] if 0 <= index < len(specs) and isinstance(specs[index], Mapping) else {}
                out.append(f"faults[{index}] ({spec.get('kind', '?')}, when {spec.get('when', '?')}) never fired")
        if scheduled and marks and not any(m.effective for m in marks):
            out.append(
                f"no fault hit outstanding work: the first fault came at {_fmt_t(marks[0].t)}, "
                f"after the last task was done at {_fmt_t(last_activity)}"
            )
        elif scheduled and not marks and not out:
            out.append("faults were scheduled but none was applied")
        if metrics["tasks"] and not metrics["server_completed"]:
            out.append("no task completed on the server: nothing was tested")
        if self.rec.get("error"):
            out.append(f"the run did not complete normally: {self.rec['error']}")
        return out


def _schedule(scenario: Mapping[str, Any]) -> list[Any]:
    """The scenario's fault specs as dicts, random-chaos faults expanded (harness.chaos)."""
    faults = list(scenario.get("faults") or [])
    chaos = scenario.get("chaos")
    if not isinstance(chaos, Mapping):
        return faults
    from comfy_chaos.harness.chaos import Chaos, expand

    try:
        workload = scenario.get("workload") or {}
        specs = expand(Chaos.model_validate(chaos), seed=int(scenario.get("seed") or 0), tasks=int(workload.get("tasks") or 1))
    except (ValueError, TypeError):
        return faults
    return faults + [spec.model_dump(mode="json", exclude_unset=True) for spec in specs]
