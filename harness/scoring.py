"""The scorer: a pure function from a RunRecord to a ScenarioResult.

Ground truth is the fake server's ledger (Contract 2): which prompts ran, for which task
(Contract 1 tag), with which outcome and outputs, when. The client's reports say what it
told its caller. The control run (same workload, no faults) says what the client does
without faults: slow-burn bars are relative to it, and a failure is attributed to the
faults or to a clean-run bug. The rules are written down in `docs/scoring.md`; keep the
two in step.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.harness.coverage import connection_spans, count_reconnects, fault_reached
from comfy_chaos.harness.judgement import Failure, attribute, slow_burn_failures
from comfy_chaos.harness.record import (
    AppliedFault,
    ClientReport,
    ControlSummary,
    PromptSnapshot,
    RunRecord,
    ScheduledFault,
)
from comfy_chaos.harness.results import (
    Attribution,
    ConnSpan,
    FaultMark,
    ScenarioResult,
    TaskClass,
    TaskScore,
)

FINAL_OUTCOMES = ("success", "error", "interrupted")
"""Server outcomes that mean the prompt finished (the client must report it)."""

PRIMARY_ORDER = (
    TaskClass.PHANTOM,
    TaskClass.CONTRADICTORY,
    TaskClass.STUCK_UI,
    TaskClass.LOST,
    TaskClass.INDETERMINATE,
    TaskClass.WRONG_OUTCOME,
    TaskClass.WRONG_OUTPUTS,
    TaskClass.DUPLICATE_REPORT,
    TaskClass.DUPLICATE_EXECUTION,
)
"""When a task has several problems, its class is the first of these that applies."""

PROBLEM_BARS = {
    "lost": TaskClass.LOST,
    "phantom": TaskClass.PHANTOM,
    "duplicate": TaskClass.DUPLICATE_REPORT,
    "duplicate_execution": TaskClass.DUPLICATE_EXECUTION,
    "wrong_outcome": TaskClass.WRONG_OUTCOME,
    "wrong_outputs": TaskClass.WRONG_OUTPUTS,
    "indeterminate": TaskClass.INDETERMINATE,
    "contradictory": TaskClass.CONTRADICTORY,
    "stuck_ui": TaskClass.STUCK_UI,
}
"""`expect:` bar → the problem class it limits."""

MAX_TASK_REASONS = 20
AROUND_S = 0.5
AROUND_SCENARIO_S = 5.0
"""Faults within AROUND_S real seconds (or AROUND_SCENARIO_S scenario seconds if longer) of
a task's life are "around" it in the reasons."""
RECONNECT_SLACK_S = 0.05
RECONNECT_SLACK_SCENARIO_S = 0.5
"""How close (real seconds, or scenario seconds if longer) a reconnect must follow a fault
to be the fault's."""

def score(record: RunRecord) -> ScenarioResult:
    """Classify every task, compute metrics and the verdict of one run (no I/O, no clock)."""
    return _Scoring(record).result()


def score_json(data: Mapping[str, Any]) -> ScenarioResult:
    """`score` of a record in its JSON form (`RunRecord.to_json()`)."""
    return score(RunRecord.from_json(data))


def summarise_control(result: ScenarioResult) -> ControlSummary:
    """What a faulted run needs to know of its control run (scored without a control)."""
    problems = {str(c): int(result.metrics.get(str(c)) or 0) for c in PRIMARY_ORDER}
    keys = ("latency_p95", "latency_max", "http_per_task", "peak_requests_per_s", "cpu_per_wall", "reconnects",
            "hang", "crash", "completeness")
    return ControlSummary(
        verdict=result.verdict,
        failures=tuple(result.failures),
        problems={k: v for k, v in problems.items() if v},
        metrics={k: result.metrics.get(k) for k in keys},
        reasons=tuple(result.reasons),
    )


def task_sort_key(task_id: str) -> tuple[Any, ...]:
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
    by_spec: dict[tuple[int | None, str], list[FaultMark]] = {}
    for m in marks:
        if m.t_end is not None and m.t_end > m.t:
            by_spec.setdefault((m.spec_index, m.kind), []).append(m)
    merged: list[tuple[FaultMark, float, float, int]] = []
    for group in by_spec.values():
        group.sort(key=lambda m: m.t)
        first, start, end, count = group[0], group[0].t, _end(group[0]), 1
        for m in group[1:]:
            if m.t <= end:
                end, count = max(end, _end(m)), count + 1
            else:
                merged.append((first, start, end, count))
                first, start, end, count = m, m.t, _end(m), 1
        merged.append((first, start, end, count))
    return sorted(merged, key=lambda w: w[1])


def _end(mark: FaultMark) -> float:
    return mark.t if mark.t_end is None else mark.t_end


def group_faults(marks: list[FaultMark]) -> list[str]:
    """Describe faults for a reason line, folding repeats: the records of one window become
    one entry, and so do repeated instant faults of one spec with the same label."""
    lines: list[tuple[float, str]] = []
    for first, start, end, count in merge_windows(marks):
        label = first.kind if count > 1 else first.label
        times = f" (×{count})" if count > 1 else ""
        lines.append((start, f"{label} from {_fmt_t(start)} to {_fmt_t(end)}{times}"))
    instants: dict[tuple[int | None, str], list[FaultMark]] = {}
    for m in marks:
        if m.t_end is None or m.t_end <= m.t:
            instants.setdefault((m.spec_index, m.label), []).append(m)
    for group in instants.values():
        first = group[0]
        extra = f" (×{len(group)}, last at {_fmt_t(group[-1].t)})" if len(group) > 1 else ""
        lines.append((first.t, f"{first.label} at {_fmt_t(first.t)}{extra}"))
    return [text for _, text in sorted(lines, key=lambda pair: pair[0])]


def peak_rate(times: Sequence[float], window: float) -> int:
    """The most events in any window of `window` seconds (sliding)."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] < t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@dataclass
class _Task:
    task_id: str
    planned: bool = False
    prompts: list[PromptSnapshot] = field(default_factory=list)
    results: list[ClientReport] = field(default_factory=list)
    """Results that arrived before judgement, in arrival order (the task's answers)."""
    late: list[ClientReport] = field(default_factory=list)
    """Results after judgement: they count for duplicate/contradictory reports only."""
    submitted: list[ClientReport] = field(default_factory=list)


class _Scoring:
    def __init__(self, record: RunRecord) -> None:
        self.rec = record
        self.scenario: Mapping[str, Any] = record.scenario
        self.ledger = record.ledger
        self.t0 = record.t0
        self.t_end = record.t_end or record.t0
        # The run's one time scale, read from the record: real seconds ↔ scenario seconds.
        self.scale = TimeScale(record.time_scale or float(self.scenario.get("time_scale") or 1.0))
        self.around = max(AROUND_S, self.scale.real(AROUND_SCENARIO_S))
        self.seed = record.seed
        self.client = record.client
        expect = self.scenario.get("expect")
        self.expect: Mapping[str, Any] = expect if isinstance(expect, Mapping) else {}
        self.prompts = list(record.ledger.prompts.values())
        self.prompt_by_id = dict(record.ledger.prompts)
        self.sid_names = self._sid_names()
        self.instances = max(1, int(self.scenario.get("clients") or 1))

    # --- helpers -------------------------------------------------------------------------

    def rel(self, t: float | None) -> float | None:
        return None if t is None else round(float(t) - self.t0, 6)

    def rel0(self, t: float) -> float:
        return round(float(t) - self.t0, 6)

    def _sid_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for report in self.rec.reports:
            prompt = self.prompt_by_id.get(report.prompt_id) if report.prompt_id else None
            if prompt and prompt.client_id:
                names.setdefault(prompt.client_id, f"c{report.client_index}")
        return names

    def _client_label(self, client: Any) -> str:
        return self.sid_names.get(client, str(client)) if client is not None else ""

    def is_late(self, report: ClientReport) -> bool:
        return report.late or (self.rec.t_end > self.t0 and report.t > self.rec.t_end)

    # --- gathering -----------------------------------------------------------------------

    def tasks(self) -> dict[str, _Task]:
        tasks: dict[str, _Task] = {}

        def get(task_id: str) -> _Task:
            return tasks.setdefault(task_id, _Task(task_id))

        planned = list(self.rec.task_ids)
        if not planned:
            workload = self.scenario.get("workload") or {}
            planned = [f"t{i}" for i in range(int(workload.get("tasks") or 0))]
        for task_id in planned:
            get(task_id).planned = True
        for prompt in self.prompts:
            if prompt.task_id is not None:
                get(prompt.task_id).prompts.append(prompt)
        for report in self.rec.reports:
            if report.type not in ("result", "submitted"):
                continue
            known = self.prompt_by_id.get(report.prompt_id) if report.prompt_id else None
            task_id = report.task_id or (known.task_id if known else None) or f"?{report.prompt_id or 'unknown'}"
            target = get(task_id)
            if report.type == "submitted":
                target.submitted.append(report)
            elif self.is_late(report):
                target.late.append(report)
            else:
                target.results.append(report)
        return dict(sorted(tasks.items(), key=lambda kv: task_sort_key(kv[0])))

    def shown_running(self) -> dict[str, float]:
        """UI clients (docs/browser.md): the tasks the page still showed running in its last
        `ui` report at or before the judgement, each with the moment since when it had been
        shown running without a break."""
        since: dict[str, float] = {}
        for report in sorted((r for r in self.rec.reports if r.type == "ui"), key=lambda r: r.t):
            if report.t > self.t_end:
                break
            running = {str(task_id) for task_id in report.extra.get("running") or []}
            since = {task_id: since.get(task_id, report.t) for task_id in running}
        return since

    def mark_stuck_ui(self, scores: dict[str, TaskScore]) -> None:
        """A task the server finished that the page still showed running at the judgement is
        `stuck_ui` (instead of `lost` when it was never reported), with how long."""
        since = self.shown_running()
        end = self.rel0(self.t_end)
        for score in scores.values():
            started = since.get(score.task_id)
            if started is None or score.completed_at is None or score.server_outcome not in FINAL_OUTCOMES:
                continue
            stuck_from = max(self.rel0(started), score.completed_at)
            why = (
                f"stuck UI: the page still showed it running at the judgement, {end - score.completed_at:.1f} s "
                f"after the server finished it (shown running since {_fmt_t(self.rel0(started))}, "
                f"stuck from {_fmt_t(stuck_from)})"
            )
            problems = {*score.problems, TaskClass.STUCK_UI} - {TaskClass.LOST}
            score.problems = [c for c in PRIMARY_ORDER if c in problems]
            score.cls = score.problems[0]
            score.why = "; ".join(w for w in (why, score.why) if w and w != "never reported")

    # --- classification --------------------------------------------------------------------

    def reply_lost(self, task: _Task, marks: list[FaultMark]) -> bool:
        """A fault that could have lost the `POST /prompt` reply of this task hit around its
        acceptance: an HTTP fault on /prompt, a toxic, a server restart."""
        accepted = [self.rel0(p.accepted_at) for p in task.prompts]
        if not accepted:
            return False
        window = self.around
        for mark in marks:
            if mark.target_kind == "ws" or not mark.reached:
                continue
            if mark.target_kind == "http" and "/prompt" not in mark.label:
                continue
            start, end = mark.t - window, _end(mark) + window
            if any(start <= t <= end for t in accepted):
                return True
        return False

    def classify(self, task: _Task, marks: list[FaultMark]) -> TaskScore:
        ps = task.prompts
        executions = sum(p.executions or (1 if p.started_at is not None else 0) for p in ps)
        completed = sorted((p for p in ps if p.outcome in FINAL_OUTCOMES), key=lambda p: p.completed_at or 0.0)
        known_pids = {r.prompt_id for r in task.submitted + task.results + task.late if r.prompt_id}
        task_pids = {p.prompt_id for p in ps}
        # The client knew what it waited for when it named one of the task's prompt ids; a
        # client that never names prompt ids knew it too (the ledger ties each prompt to its
        # task by the workflow tag) unless a fault could have lost its POST /prompt reply.
        knew = bool(known_pids & task_pids) or (not known_pids and not self.reply_lost(task, marks))
        outcomes = [str(r.outcome) for r in task.results]
        all_outcomes = outcomes + [str(r.outcome) for r in task.late]
        problems: list[TaskClass] = []
        why: list[str] = []
        final = completed[-1] if completed else None
        matched = final
        latency = None
        outputs_compared = True

        if final is None:
            claims = [o for o in outcomes if o in ("success", "interrupted")]
            if claims:
                problems.append(TaskClass.PHANTOM)
                why.append(f"reported {claims[0]} but the server never completed it")
            elif task.results and not task.planned and not ps:
                problems.append(TaskClass.PHANTOM)
                why.append("reported a task that was never planned nor submitted")
        elif not task.results:
            late = f" (reported only after judgement, at {_fmt_t(self.rel(task.late[0].t))})" if task.late else ""
            if knew:
                problems.append(TaskClass.LOST)
                why.append("never reported" + late)
            else:
                problems.append(TaskClass.INDETERMINATE)
                why.append("never reported, and the client never learnt its prompt id (submission reply lost)" + late)
        else:
            first = task.results[0]
            by_pid = self.prompt_by_id.get(first.prompt_id) if first.prompt_id else None
            if by_pid is not None and by_pid in completed:
                matched = by_pid
            assert matched is not None
            if first.outcome != matched.outcome:
                if knew:
                    problems.append(TaskClass.WRONG_OUTCOME)
                    why.append(f"reported {first.outcome}")
                else:
                    problems.append(TaskClass.INDETERMINATE)
                    why.append(f"reported {first.outcome} after a fault that could have lost its prompt id")
            elif first.outcome == "success":
                if first.outputs is None:
                    outputs_compared = False
                else:
                    want, got = output_set(matched.outputs), output_set(first.outputs)
                    if want != got:
                        problems.append(TaskClass.WRONG_OUTPUTS)
                        missing, extra = sorted(want - got), sorted(got - want)
                        why.append(f"outputs differ: missing {missing[:3]}, unexpected {extra[:3]}")
            if matched.completed_at is not None:
                latency = self.scale.scenario(max(0.0, first.t - matched.completed_at))
        if len(set(all_outcomes)) > 1:
            problems.append(TaskClass.CONTRADICTORY)
            late = " (the last after judgement)" if task.late and len(set(outcomes)) <= 1 else ""
            why.append(f"reported {' and '.join(dict.fromkeys(all_outcomes))}{late}")
        elif len(all_outcomes) > 1 and task.results:
            problems.append(TaskClass.DUPLICATE_REPORT)
            late = f", {len(task.late)} after judgement" if task.late else ""
            why.append(f"reported {len(all_outcomes)} times{late}")
        if executions > 1:
            problems.append(TaskClass.DUPLICATE_EXECUTION)
            why.append(f"executed {executions} times on the server")

        primary = next((c for c in PRIMARY_ORDER if c in problems), None)
        cls = primary or (TaskClass.OK if completed else TaskClass.NOT_COMPLETED)
        submitted_t = min((r.t for r in task.submitted), default=None)
        client_index = next((r.client_index for r in task.submitted + task.results + task.late), None)
        anchor = matched or (ps[0] if ps else None)
        detail = next((r.detail for r in task.results + task.late if r.detail), None)
        return TaskScore(
            task_id=task.task_id,
            cls=cls,
            problems=[c for c in PRIMARY_ORDER if c in problems],
            client_index=client_index,
            prompt_ids=[p.prompt_id for p in ps],
            server_outcome=final.outcome if final else (ps[-1].outcome if ps else None),
            reported_outcomes=all_outcomes,
            executions=executions,
            submitted_at=self.rel(submitted_t),
            accepted_at=self.rel(anchor.accepted_at) if anchor else None,
            started_at=self.rel(anchor.started_at) if anchor else None,
            completed_at=self.rel(anchor.completed_at) if anchor else None,
            reported_at=[self.rel0(r.t) for r in task.results + task.late],
            latency=None if latency is None else round(latency, 6),
            why="; ".join(why),
            detail=detail,
            outputs_compared=outputs_compared,
        )

    # --- faults, connections ---------------------------------------------------------------

    def fault_label(self, fault: AppliedFault) -> str:
        if fault.reached is False:
            reason = fault.detail.get("reason")
            who = self._client_label(fault.target_client_id) or "a client"
            return f"{fault.kind} never reached {who}" + (f" ({reason})" if reason else "")
        kind = fault.kind
        target, detail = fault.target, fault.detail
        if kind == "toxic":
            nested = detail.get("toxic")
            toxic: Mapping[str, Any] = nested if isinstance(nested, Mapping) else detail
            stream = toxic.get("stream") or target.get("stream")
            return " ".join(str(x) for x in ("toxic", toxic.get("type"), stream) if x)
        label = kind
        if target.get("message"):
            label += f" {target['message']}"
        if target.get("client") is not None:
            label += f"→{self._client_label(target['client'])}"
        if target.get("task") and not target.get("message"):
            label += f" {target['task']}"
        if target.get("route"):
            label += f" {target['route']}"
        if target.get("path") and not target.get("route"):
            label += f" {target.get('method', '')} {target['path']}".rstrip()
        return label

    def fault_log(self) -> list[AppliedFault]:
        if self.rec.fault_log:
            return list(self.rec.fault_log)
        return [
            AppliedFault.from_json({**f, "spec_index": (f.get("detail") or {}).get("spec_index")})
            for f in self.ledger.faults
        ]

    def faults(self, last_activity: float, spans: list[ConnSpan]) -> list[FaultMark]:
        http_times = [self.rel0(h.t) for h in self.ledger.http]
        log = sorted(self.fault_log(), key=lambda f: f.t)
        unmet = {(f.spec_index, f.target_client_id) for f in log if f.reached is False}
        unmet_specs = {spec for spec, _ in unmet}
        marks = []
        for fault in log:
            t = self.rel0(fault.t)
            if (
                fault.reached is False
                or (fault.spec_index, fault.target_client_id) in unmet
                or (fault.spec_index in unmet_specs and fault.target_client_id is None)
            ):
                reached = False  # the engine says a client under test never met this fault
            else:
                reached = fault_reached(fault, t=t, t_end=self.rel(fault.t_end), spans=spans,
                                        http_times=http_times, slack=self.around)
            marks.append(
                FaultMark(
                    t=t,
                    t_end=self.rel(fault.t_end),
                    kind=fault.kind,
                    label=self.fault_label(fault),
                    source=fault.source,
                    spec_index=fault.spec_index,
                    effective=reached and t <= last_activity,
                    target_kind=fault.target_kind,
                    target_client_id=fault.target_client_id,
                    reached=reached,
                )
            )
        return marks

    def connections(self) -> list[ConnSpan]:
        return connection_spans(self.ledger.connections, self.t0, self.t_end)

    def reconnects(self, scores: Mapping[str, TaskScore], marks: list[FaultMark]) -> int:
        answered = {pid: min(s.reported_at) for s in scores.values() if s.reported_at for pid in s.prompt_ids}
        return count_reconnects(self.ledger.connections, self.prompts, answered, marks, t0=self.t0,
                                slack=max(RECONNECT_SLACK_S, self.scale.real(RECONNECT_SLACK_SCENARIO_S)))

    def bytes_total(self) -> int | None:
        sizes = [h.bytes for h in self.ledger.http if h.bytes is not None]
        return sum(sizes) if sizes else None

    def frames_around(self, task: _Task, score: TaskScore, marks: list[FaultMark]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for p in task.prompts:
            for m in p.messages:
                rows.append(
                    {
                        "t": self.rel(m.t),
                        "what": "frame",
                        "prompt_id": p.prompt_id,
                        "to": self._client_label(m.sid) if m.sid else "broadcast",
                        "type": m.message_type,
                        "delivered": m.delivered,
                        "fault": m.fault,
                    }
                )
        for mark in self.near(score, marks):
            rows.append({"t": mark.t, "what": "fault", "type": mark.label, "delivered": None, "fault": mark.kind})
        return sorted(rows, key=lambda r: r["t"] if r["t"] is not None else 0.0)

    def near(self, score: TaskScore, marks: list[FaultMark]) -> list[FaultMark]:
        window = self.around
        start = score.submitted_at if score.submitted_at is not None else score.accepted_at
        stop = score.completed_at
        lo_t = start if start is not None else stop
        hi_t = stop if stop is not None else start
        if lo_t is None or hi_t is None:
            return []
        lo, hi = lo_t - window, hi_t + window
        return [m for m in marks if m.t <= hi and _end(m) >= lo]

    # --- the client's own words ----------------------------------------------------------

    def client_words(self, scores: list[TaskScore]) -> dict[str, Any]:
        reports = self.rec.reports
        return {
            "errors": [
                {"task_id": s.task_id, "outcome": s.reported_outcomes[0] if s.reported_outcomes else None,
                 "detail": s.detail}
                for s in scores if s.detail
            ],
            "notes": [{"t": self.rel0(r.t), "client_index": r.client_index, "text": r.detail}
                      for r in reports if r.type == "note"],
            "crashes": [{"t": self.rel0(r.t), "client_index": r.client_index, "detail": r.detail}
                        for r in reports if r.type == "crash"],
            "ready": [{"client_index": r.client_index, **{k: r.extra[k] for k in ("client", "version", "caps")
                                                          if k in r.extra}}
                      for r in reports if r.type == "ready"],
            "counters": dict(self.rec.client_stats),
            "stderr_tail": self.rec.adapter.stderr_tail[-4096:],
        }

    def capabilities_missing(self, scores: list[TaskScore]) -> list[str]:
        missing = []
        if any(not s.outputs_compared for s in scores):
            missing.append("outputs")
        if not any(r.prompt_id for r in self.rec.reports if r.type in ("submitted", "result")):
            missing.append("prompt_ids")
        return missing

    # --- the result ----------------------------------------------------------------------

    def result(self) -> ScenarioResult:
        gathered = self.tasks()
        end = self.rel0(self.t_end)
        spans = self.connections()
        # Work is outstanding until the last completion or report (see docs/scoring.md).
        last_activity = 0.0
        for task in gathered.values():
            for p in task.prompts:
                if p.completed_at is not None:
                    last_activity = max(last_activity, self.rel0(p.completed_at))
            for r in task.results:
                last_activity = max(last_activity, self.rel0(r.t))
            completed = any(p.outcome in FINAL_OUTCOMES for p in task.prompts)
            if completed and not task.results:
                last_activity = end
        marks = self.faults(last_activity, spans)
        scores = {tid: self.classify(t, marks) for tid, t in gathered.items()}
        self.mark_stuck_ui(scores)
        values = list(scores.values())

        completed_scores = [s for s in values if s.server_outcome in FINAL_OUTCOMES]
        reported = [s for s in completed_scores if any(o for o in s.reported_outcomes)
                    and gathered[s.task_id].results]

        def count(cls: TaskClass) -> int:
            return sum(1 for s in values if cls in s.problems or s.cls == cls)

        latencies = [s.latency for s in values if s.latency is not None]
        adapter = self.rec.adapter
        crash_reports = [r for r in self.rec.reports if r.type == "crash"]
        planned = sum(1 for t in gathered.values() if t.planned) or len(values)
        http_times = [h.t for h in self.ledger.http]
        total_bytes = self.bytes_total()
        scheduled = list(self.rec.scheduled)
        fired = set(self.rec.fired)
        wall = max(self.t_end - self.t0, 1e-9)
        cpu_s = adapter.cpu_s
        metrics: dict[str, Any] = {
            "tasks": planned,
            "server_completed": len(completed_scores),
            "reported": len(reported),
            "completeness": round(len(reported) / len(completed_scores), 6) if completed_scores else 1.0,
            **{str(cls): count(cls) for cls in (TaskClass.OK, *PRIMARY_ORDER, TaskClass.NOT_COMPLETED)},
            "outputs_not_compared": sum(1 for s in values if not s.outputs_compared),
            "latency_p50": percentile(latencies, 50),
            "latency_p95": percentile(latencies, 95),
            "latency_max": max(latencies, default=None),
            "http_requests": len(http_times),
            "http_per_task": round(len(http_times) / planned, 3) if planned else None,
            "pending_task_s": round(self.pending_task_seconds(scores), 3),
            "peak_requests_per_s": round(peak_rate(http_times, self.scale.real(1.0)) / self.instances, 3),
            "reconnects": self.reconnects(scores, marks),
            "bytes_per_task": round(total_bytes / planned, 1) if total_bytes is not None and planned else None,
            "hang": adapter.hung or any(a.hung for a in adapter.instances),
            "crash": adapter.crashed or any(a.crashed for a in adapter.instances) or bool(crash_reports),
            "faults_scheduled": len(scheduled),
            "faults_fired": len(fired & set(scheduled)) if scheduled else len(fired),
            "faults_applied": sum(1 for m in marks if "never reached" not in m.label),
            "faults_unmet": sum(1 for m in marks if "never reached" in m.label),
            "faults_reached": sum(1 for m in marks if m.reached),
            "faults_effective": sum(1 for m in marks if m.effective),
            "untagged_prompts": sum(1 for p in self.prompts if p.task_id is None),
            "cpu_s": cpu_s,
            "cpu_per_wall": round(cpu_s / (wall * self.instances), 4) if cpu_s is not None else None,
        }

        failures = self.bar_failures(metrics, crash_reports)
        failures += self.slow_burn_failures(metrics, marks)
        inconclusive = self.inconclusive_reasons(metrics, marks, scheduled, fired, last_activity)
        doubts = self.harness_doubts(failures)
        if doubts:
            inconclusive = doubts + [f"it would have failed: {f.line}" for f in failures] + inconclusive
            failures = []
        elif inconclusive and (self.rec.starvation or {}).get("too_slow"):
            # e.g. a fault that never fired because the starved client was between sockets
            inconclusive.append(str(self.rec.starvation["reason"]))
        verdict = "fail" if failures else ("inconclusive" if inconclusive else "pass")
        attribution, detail, clean_run_bug = self.attribute(verdict, failures, metrics, inconclusive)

        source = self.rec.scenario_path or self.scenario.get("source") or self.scenario.get("name") or "?"
        replay = f"comfy-chaos replay {source} --client {self.client} --seed {self.seed}"
        if self.scenario.get("comfyui_version"):  # set in the file or by --comfyui-version
            replay += f" --comfyui-version {self.scenario['comfyui_version']}"
        name = str(self.scenario.get("name") or "?")
        reasons: list[str] = []
        if verdict != "pass":
            header = "Falsifying run" if verdict == "fail" else "Inconclusive run"
            reasons.append(
                f"{header}: scenario {name}, client {self.client}, seed {self.seed}, time scale {self.scale.factor:g}"
            )
            reasons.extend(f.line for f in failures)
            if verdict == "fail" and detail:
                reasons.append(f"cause: {detail}")
            if verdict == "inconclusive":
                reasons.extend(inconclusive)
            bad = [s for s in values if s.problems]
            for s in bad[:MAX_TASK_REASONS]:
                reasons.append(self.task_reason(s, marks))
            if len(bad) > MAX_TASK_REASONS:
                reasons.append(f"… and {len(bad) - MAX_TASK_REASONS} more tasks with problems")
            if self.rec.error:
                reasons.append(f"harness error: {self.rec.error}")
            reasons.append(f"seed: {self.seed}")
            reasons.append(f"replay: {replay}")

        frames = {tid: self.frames_around(gathered[tid], s, marks) for tid, s in scores.items() if s.problems}
        control = self.rec.control
        return ScenarioResult(
            scenario=name,
            client=self.client,
            seed=self.seed,
            time_scale=self.scale.factor,
            verdict=verdict,
            reasons=reasons,
            replay=replay,
            metrics=metrics,
            tasks=values,
            faults=marks,
            connections=spans,
            frames=frames,
            duration=end,
            source=str(source) if source != "?" else None,
            description=str(self.scenario.get("description") or ""),
            tags=list(self.scenario.get("tags") or []),
            client_ids=dict(self.sid_names),
            evidence=self.evidence(),
            attribution=attribution.value,
            attribution_detail=detail,
            clean_run_bug=clean_run_bug,
            control=None if control is None else {
                "verdict": control.verdict, "failures": list(control.failures), "problems": dict(control.problems),
                "metrics": dict(control.metrics), "reasons": list(control.reasons),
            },
            failures=[f.line for f in failures],
            capabilities_missing=self.capabilities_missing(values),
            client_words=self.client_words(values),
            comfyui_version=self.rec.comfyui_version,
            warnings=list(self.rec.warnings),
            starvation=dict(self.rec.starvation) if self.rec.starvation else None,
        )

    def evidence(self) -> list[dict[str, Any]]:
        """Screenshots a browser client took (docs/browser.md), times made relative to t0."""
        shots = []
        for info in self.rec.adapter.instances:
            for item in getattr(info, "evidence", None) or []:
                if isinstance(item, Mapping) and item.get("src"):
                    shots.append({**item, "t": self.rel(item.get("t")), "client_index": info.client_index})
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
        if s.detail:
            head += f"; the client said: {s.detail[:200]!r}"
        near = group_faults(self.near(s, marks))
        if near:
            listed = ", ".join(near[:5])
            more = f", … ({len(near) - 5} more)" if len(near) > 5 else ""
            head += f"; faults around it: {listed}{more}"
        else:
            head += "; no fault around it"
        return head

    def hang_line(self) -> str:
        """A hung adapter is one still running when the harness stopped it: at the deadline,
        or (more often) a margin after judgement, which comes earlier when every task was
        reported or the run healed."""
        judged = self.rel0(self.t_end)
        deadline = self.scale.real(float(self.scenario.get("deadline") or 0.0))
        if deadline and judged < deadline - 1e-3:
            return (f"hang: the client did not stop after the run was judged at {_fmt_t(judged)} "
                    f"(before the deadline at {_fmt_t(deadline)}); it was cancelled")
        return "hang: the client did not finish by the deadline"

    def bar_failures(self, metrics: Mapping[str, Any], crashes: list[ClientReport]) -> list[Failure]:
        e = self.expect
        adapter = self.rec.adapter
        out: list[Failure] = []
        if metrics["hang"] and not e.get("hang", False):
            ended = next((a.ended for a in adapter.instances if a.hung and a.ended), None)
            out.append(Failure("hang", f"hang: {ended}" if ended else self.hang_line()))
        if metrics["crash"] and not e.get("crash", False):
            detail = next((c.detail for c in crashes if c.detail), None)
            tail = adapter.stderr_tail or next((a.stderr_tail for a in adapter.instances if a.stderr_tail), None)
            codes = [a.exit_code for a in adapter.instances if a.crashed and a.exit_code is not None]
            if not codes and adapter.crashed and adapter.exit_code is not None:
                codes = [adapter.exit_code]
            text = "crash: the client crashed" + (f" (exit code {', '.join(map(str, codes))})" if codes else "")
            out.append(Failure("crash", text + (f": {str(detail or tail)[-300:]}" if detail or tail else "")))
        want = float(e.get("completeness", 1.0))
        if metrics["completeness"] < want:
            out.append(Failure("completeness",
                f"completeness {metrics['completeness']:.3f} < expect.completeness {want:g} "
                f"({metrics['reported']} of {metrics['server_completed']} server-completed tasks reported)"
            ))
        for bar, cls in PROBLEM_BARS.items():
            limit = int(e.get(bar, 0))
            if metrics[str(cls)] > limit:
                out.append(Failure(str(cls), f"{cls}: {metrics[str(cls)]} > expect.{bar} {limit}"))
        p95_bar = e.get("p95_latency")
        if p95_bar is not None and metrics["latency_p95"] is not None and metrics["latency_p95"] > float(p95_bar):
            out.append(Failure("p95_latency",
                f"latency p95 {metrics['latency_p95']:.2f} s > expect.p95_latency {float(p95_bar):g} s"))
        return out

    def pending_task_seconds(self, scores: Mapping[str, TaskScore]) -> float:
        """Scenario seconds the client's prompts spent accepted and not yet answered, summed
        (a prompt never answered counts until the end of the run): what a client that polls
        once per pending prompt may spend requests on."""
        answered = {pid: min(s.reported_at) for s in scores.values() if s.reported_at for pid in s.prompt_ids}
        end = self.t_end - self.t0
        total = 0.0
        for p in self.prompts:
            if p.task_id is None or p.outcome == "cancelled":
                continue
            start = p.accepted_at - self.t0
            total += max(0.0, min(answered.get(p.prompt_id, end), end) - start)
        return self.scale.scenario(total)

    def harness_doubts(self, failures: list[Failure]) -> list[str]:
        """Why the harness cannot vouch for this run: the runner's own reasons (a heal it
        could not verify), and a machine too slow for the time scale when the run failed."""
        doubts = list(self.rec.inconclusive)
        starvation = self.rec.starvation or {}
        if failures and starvation.get("too_slow"):
            doubts.append(str(starvation.get("reason")))
        return doubts

    def slow_burn_failures(self, metrics: Mapping[str, Any], marks: list[FaultMark]) -> list[Failure]:
        return slow_burn_failures(
            metrics, expect=self.expect, control=self.rec.control, marks=marks, scale=self.scale,
            wall_s=self.t_end - self.t0, instances=self.instances,
        )

    def attribute(
        self, verdict: str, failures: list[Failure], metrics: Mapping[str, Any], inconclusive: list[str]
    ) -> tuple[Attribution, str, bool]:
        has_faults = bool(self.rec.scheduled or self.rec.schedule or self.rec.fault_log)
        return attribute(verdict, failures, metrics, control=self.rec.control, has_faults=has_faults,
                         inconclusive=inconclusive)

    def inconclusive_reasons(
        self,
        metrics: Mapping[str, Any],
        marks: list[FaultMark],
        scheduled: list[int],
        fired: set[int],
        last_activity: float,
    ) -> list[str]:
        out: list[str] = []
        specs = {s.index: s for s in self.schedule()}
        for index in scheduled:
            if index not in fired:
                spec = specs.get(index)
                out.append(f"faults[{index}] ({spec.kind if spec else '?'}, when {spec.when if spec else '?'}) "
                           "never fired")
        reached = [m for m in marks if m.reached]
        if scheduled and marks and not reached:
            kinds = ", ".join(dict.fromkeys(m.kind for m in marks))
            no_ws = not any(e.event == "open" for e in self.ledger.connections)
            why = " (it never opened a WebSocket)" if no_ws and all(m.target_kind == "ws" for m in marks) else ""
            said = "; ".join(dict.fromkeys(m.label for m in marks if "never reached" in m.label))
            out.append(f"the faults never reached this client{why}: {kinds} applied, none to its socket, "
                       "its requests or while it was connected" + (f" — {said}" if said else ""))
        elif scheduled and marks and not any(m.effective for m in marks):
            out.append(
                f"no fault hit outstanding work: the first fault came at {_fmt_t(reached[0].t)}, "
                f"after the last task was done at {_fmt_t(last_activity)}"
            )
        elif scheduled and not marks and not out:
            out.append("faults were scheduled but none was applied")
        if metrics["tasks"] and not metrics["server_completed"]:
            out.append("no task completed on the server: nothing was tested")
        if self.rec.error:
            out.append(f"the run did not complete normally: {self.rec.error}")
        return out

    def schedule(self) -> list[ScheduledFault]:
        """The expanded schedule: stored by the runner; older records re-expand random chaos."""
        if self.rec.schedule and len(self.rec.schedule) >= len(self.rec.scheduled):
            return list(self.rec.schedule)
        return ScheduledFault.of(_expand_schedule(self.scenario))


def _expand_schedule(scenario: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The scenario's fault specs as dicts, random-chaos faults expanded (harness.chaos)."""
    faults = [f for f in scenario.get("faults") or [] if isinstance(f, Mapping)]
    chaos = scenario.get("chaos")
    if not isinstance(chaos, Mapping):
        return faults
    from comfy_chaos.harness.chaos import Chaos, expand

    try:
        workload = scenario.get("workload") or {}
        specs = expand(Chaos.model_validate(chaos), seed=int(scenario.get("seed") or 0),
                       tasks=int(workload.get("tasks") or 1))
    except (ValueError, TypeError):
        return faults
    return faults + [spec.model_dump(mode="json", exclude_unset=True) for spec in specs]
