"""Per-task state machines and every completion decision, sans-IO.

The `Tracker` is fed what happened (a sanitized WebSocket message, an HTTP answer, a
connect/disconnect, the passage of time via `tick(now)`) and returns `Action`s for the
driver to perform (fetch `/history/{id}`, fetch `/queue`, report an outcome, force a
reconnect, deliver a progress event). It never does IO and never reads a clock.

Why each mechanism exists (protocol.md references):
* completion: `executing` with `node: null` comes after the history write (§8), so the
  history fetch it triggers succeeds; `execution_success` comes *before* the write, so it
  only arms a short fallback fetch. An empty history answer means "not yet".
* reconcile: frames sent while the socket was down are gone for good (§3.4), so every
  (re)connect asks `/queue` and then `/history/{id}` about each pending task.
* polling: while the socket is down, the same check runs every `poll_interval`.
* probe: ComfyUI is silent while idle and during long nodes, so silence is not a fault;
  while tasks are pending and the socket is quiet, `/queue` is asked instead. A task found
  finished that the socket never announced means the socket is deaf (e.g. orphaned by a
  late close of an older same-id socket, §3.4) → force a reconnect.
* hints: a `status` whose queue count is below our outstanding tasks, an
  `execution_start` of our next prompt while the previous one never finished, and
  terminal frames without `prompt_id` all trigger an early check.
* final check: before reporting "unknown" at a task's deadline, ask once more.
* exactly-once: a task finalises once; later signals for it are ignored.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import structlog

from comfy_chaos.client.config import ClientConfig
from comfy_chaos.client.history import history_entry, outcome_from_history, outcome_from_ws_error
from comfy_chaos.client.sanitize import BinaryMessage, Message
from comfy_chaos.client.stats import ClientStats
from comfy_chaos.client.submit import queue_prompt_ids
from comfy_chaos.client.types import Outcome, ProgressEvent

log = structlog.get_logger(__name__)

_TERMINAL_WITHOUT_ID = ("execution_success", "execution_error", "execution_interrupted")
_REASON_PRIORITY = ("reconcile", "probe", "poll", "hint", "final_check")


@dataclass(frozen=True)
class FetchHistory:
    prompt_id: str
    reason: str


@dataclass(frozen=True)
class FetchQueue:
    reason: str


@dataclass(frozen=True)
class Report:
    prompt_id: str
    outcome: Outcome
    elapsed: float = 0.0  # seconds from `add` to the report, by the tracker's clock


@dataclass(frozen=True)
class ForceReconnect:
    reason: str


@dataclass(frozen=True)
class Progress:
    prompt_id: str
    event: ProgressEvent


Action = FetchHistory | FetchQueue | Report | ForceReconnect | Progress


class Phase(enum.Enum):
    SUBMITTING = "submitting"  # POST /prompt not confirmed yet
    WAITING = "waiting"  # accepted, no terminal signal yet
    FINISHING = "finishing"  # a terminal signal seen; fetching history for the outcome
    FINAL_CHECK = "final_check"  # deadline reached; one last /history + /queue
    DONE = "done"  # reported (exactly once)


@dataclass
class TaskState:
    prompt_id: str
    created_at: float
    deadline: float
    phase: Phase = Phase.SUBMITTING
    seen_on_ws: bool = False
    ws_success: bool = False
    ws_terminal: str | None = None  # "executing_null" | "execution_error" | "execution_interrupted"
    ws_null: bool = False  # the final `executing` with node null arrived
    null_connect: int | None = None  # the connection (Tracker.connects) it arrived on
    ws_error: tuple[str, dict[str, Any]] | None = None
    ws_outputs: dict[str, Any] = field(default_factory=dict)
    history_due: float | None = None
    history_retries: int = 0
    check_after: float = 0.0  # no probe/poll history check before this (backoff for vanished tasks)
    empty_checks: int = 0
    final_stage: str | None = None  # "history" | "queue"
    final_deadline: float | None = None
    outcome: Outcome | None = None

    @property
    def accepted(self) -> bool:
        return self.phase is not Phase.SUBMITTING

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def finalize(self, outcome: Outcome) -> bool:
        """Record the outcome; True only the first time (exactly-once reporting)."""
        if self.phase is Phase.DONE:
            return False
        self.phase = Phase.DONE
        self.outcome = outcome
        self.history_due = None
        return True


class Tracker:
    """All pending tasks of one client and the logic that finishes them."""

    def __init__(self, config: ClientConfig, stats: ClientStats | None = None) -> None:
        self.cfg = config
        self.stats = stats if stats is not None else ClientStats()
        self.tasks: dict[str, TaskState] = {}
        self.ws_connected = False
        self.connected_at: float | None = None
        self.last_message_at: float | None = None
        self.running: str | None = None
        self._history_inflight: dict[str, str] = {}
        self._history_again: dict[str, str] = {}
        self._queue_inflight = False
        self._queue_reasons: set[str] = set()
        self._queue_next_reasons: set[str] = set()
        self._next_poll: float | None = None
        self._next_probe: float = 0.0
        self._next_silence_check: float | None = None
        self._reconnect_requested = False
        self._echo_due: float | None = None
        self._echo_strikes = 0  # consecutive connections that never greeted: wait longer each time
        self.connects = 0  # WebSocket connections so far (a later one can follow a server restart)

    # ---- task lifecycle -------------------------------------------------------------

    def add(self, prompt_id: str, now: float, deadline_s: float | None = None) -> TaskState:
        """Register a task before its POST is sent, so early WebSocket frames are not missed."""
        if prompt_id in self.tasks and not self.tasks[prompt_id].done:
            raise ValueError(f"Tracker.add: prompt_id {prompt_id!r} is already pending")
        limit = self.cfg.task_deadline if deadline_s is None else deadline_s
        task = TaskState(prompt_id=prompt_id, created_at=now, deadline=now + limit)
        self.tasks[prompt_id] = task
        return task

    def rename(self, old: str, new: str) -> None:
        """The server chose the id (seed profile: no client-chosen prompt_id)."""
        task = self.tasks.pop(old)
        task.prompt_id = new
        self.tasks[new] = task

    def accepted(self, prompt_id: str, now: float) -> list[Action]:
        task = self.tasks.get(prompt_id)
        if task is None or task.phase is not Phase.SUBMITTING:
            return []
        task.phase = Phase.FINISHING if task.ws_terminal else Phase.WAITING
        task.deadline = max(task.deadline, now)
        if self.last_message_at is None or self.last_message_at < task.created_at:
            # every accepted prompt makes ComfyUI broadcast a `status` (§5)
            self._arm_echo(now, backoff=False)
        # frames can beat the POST reply: act on a finish that arrived while submitting
        if task.ws_null:
            return self._request_history(prompt_id, "ws")
        if task.ws_error is not None and not self.cfg.empty_history_is_pending:
            kind, payload = task.ws_error
            return self._finalize(task, outcome_from_ws_error(prompt_id, kind, payload, task.ws_outputs), now)
        if task.ws_terminal or task.ws_success:
            self._schedule_history(task, now + self.cfg.success_grace)
        return []

    def discard(self, prompt_id: str) -> None:
        """Forget a task whose submission failed (the caller got an exception instead)."""
        self.tasks.pop(prompt_id, None)

    def seen_on_ws(self, prompt_id: str) -> bool:
        task = self.tasks.get(prompt_id)
        return bool(task and task.seen_on_ws)

    def pending(self) -> list[TaskState]:
        return [t for t in self.tasks.values() if t.accepted and not t.done]

    def _checkable_from(self) -> float:
        """When the earliest waiting task may be checked again: probes and polls of /queue are
        pointless while every waiting task is in its absent-from-/queue-and-/history backoff."""
        return min((t.check_after for t in self.tasks.values() if t.phase is Phase.WAITING), default=0.0)

    def _has_waiting(self) -> bool:
        """Tasks no terminal signal has been seen for: what polling and probing are for."""
        return any(t.phase is Phase.WAITING for t in self.tasks.values())

    def has_pending(self) -> bool:
        return any(t.accepted and not t.done for t in self.tasks.values())

    # ---- connection -----------------------------------------------------------------

    def on_connected(self, now: float) -> list[Action]:
        self.connects += 1
        self.ws_connected = True
        self.connected_at = now
        self._reconnect_requested = False
        self._arm_echo(now)  # ComfyUI greets every new socket with a `status` frame (§3.1)
        self._next_poll = None
        self._next_probe = now + self.cfg.probe_quiet
        self._next_silence_check = None
        if self.cfg.reconcile_on_reconnect and self.has_pending():
            self.stats.reconciles += 1
            log.info("reconcile.start", pending=len(self.pending()))
            actions = self._request_queue("reconcile")
            # tasks whose history fetch is in flight from before the reconnect need a fresh one
            for task in self.pending():
                if task.prompt_id in self._history_inflight:
                    self._history_again[task.prompt_id] = "reconcile"
            return actions
        return []

    def on_disconnected(self, now: float) -> list[Action]:
        self.ws_connected = False
        self._echo_due = None
        self._next_poll = now + self.cfg.poll_interval
        return []

    # ---- WebSocket messages ---------------------------------------------------------

    def on_message(self, msg: Message | BinaryMessage, now: float) -> list[Action]:
        self.last_message_at = now
        self._echo_due = None
        self._echo_strikes = 0
        if isinstance(msg, BinaryMessage):
            return self._on_binary(msg)
        data = msg.data
        pid = data.get("prompt_id")
        if msg.type == "status":
            return self._on_status(data)
        if not isinstance(pid, str):
            return self._on_message_without_id(msg, now)
        task = self.tasks.get(pid)
        if task is None or task.done:
            return []
        task.seen_on_ws = True
        kind = msg.type
        if kind == "execution_start":
            actions = self._note_running(pid)
            return actions + [Progress(pid, ProgressEvent("started", pid, data=data))]
        if kind == "execution_cached":
            return [Progress(pid, ProgressEvent("cached", pid, data=data.get("nodes")))]
        if kind == "executing":
            node = data.get("node")
            if node is None:
                return self._on_terminal(task, "executing_null", data, now)
            actions = self._note_running(pid)
            return actions + [Progress(pid, ProgressEvent("executing", pid, node=str(node)))]
        if kind == "progress":
            return [
                Progress(
                    pid,
                    ProgressEvent(
                        "progress", pid, node=_str_or_none(data.get("node")),
                        value=_num(data.get("value")), max=_num(data.get("max")),
                    ),
                )
            ]
        if kind == "executed":
            node = _str_or_none(data.get("node"))
            output = data.get("output")
            if node is not None and isinstance(output, dict):
                task.ws_outputs[node] = output
            return [Progress(pid, ProgressEvent("executed", pid, node=node, data=output))]
        if kind == "execution_success":
            task.ws_success = True
            if self.running == pid:
                self.running = None
            if self.cfg.use_hints and task.phase is Phase.WAITING:
                self._schedule_history(task, now + self.cfg.success_grace)
            return []
        if kind in ("execution_error", "execution_interrupted"):
            task.ws_error = (kind, data)
            return self._on_terminal(task, kind, data, now)
        return []

    def _note_running(self, pid: str) -> list[Action]:
        prev = self.running
        self.running = pid
        if not self.cfg.use_hints or prev is None or prev == pid:
            return []
        prev_task = self.tasks.get(prev)
        if prev_task is None or prev_task.phase is not Phase.WAITING or prev_task.ws_success:
            return []
        # one prompt runs at a time: ours started, so the previous one ended unannounced
        log.info("hint.previous_finished", prompt_id=prev, next_prompt_id=pid)
        return self._request_history(prev, "hint")

    def _on_status(self, data: dict[str, Any]) -> list[Action]:
        if not self.cfg.use_hints:
            return []
        status = data.get("status")
        exec_info = status.get("exec_info") if isinstance(status, dict) else None
        remaining = exec_info.get("queue_remaining") if isinstance(exec_info, dict) else None
        if not isinstance(remaining, int) or isinstance(remaining, bool):
            return []
        outstanding = sum(
            1 for t in self.tasks.values() if t.phase is Phase.WAITING and not t.ws_success
        )
        if remaining < outstanding:
            log.info("hint.queue_shrank", queue_remaining=remaining, outstanding=outstanding)
            return self._request_queue("hint")
        return []

    def _on_message_without_id(self, msg: Message, now: float) -> list[Action]:
        terminal = msg.type in _TERMINAL_WITHOUT_ID or (
            msg.type == "executing" and "node" in msg.data and msg.data.get("node") is None
        )
        if not terminal:
            if msg.type == "executing" and self.running in self.tasks:
                # the bare reconnect replay {"node": id} (protocol.md §3.1)
                node = _str_or_none(msg.data.get("node"))
                pid = self.running
                return [Progress(pid, ProgressEvent("executing", pid, node=node))]
            return []
        if not self.cfg.use_hints:
            return []
        log.info("hint.terminal_without_prompt_id", message_type=msg.type, running=self.running)
        running = self.tasks.get(self.running) if self.running else None
        if running is not None and not running.done:
            return self._request_history(running.prompt_id, "hint")
        return self._request_queue("hint")

    def _on_binary(self, msg: BinaryMessage) -> list[Action]:
        pid: str | None = None
        if msg.event == 4 and msg.metadata is not None:
            meta_pid = msg.metadata.get("prompt_id")
            pid = meta_pid if isinstance(meta_pid, str) else None
        elif msg.event in (1, 3):
            pid = self.running
        task = self.tasks.get(pid) if pid else None
        if task is None or task.done or pid is None:
            return []
        kind = "text" if msg.event == 3 else "preview"
        node = msg.node_id if msg.event == 3 else _str_or_none((msg.metadata or {}).get("node_id"))
        return [Progress(pid, ProgressEvent(kind, pid, node=node, data=msg))]

    def _on_terminal(self, task: TaskState, kind: str, data: dict[str, Any], now: float) -> list[Action]:
        task.ws_terminal = task.ws_terminal or kind
        if kind == "executing_null" and not task.ws_null:
            task.ws_null = True
            task.null_connect = self.connects
        if self.running == task.prompt_id:
            self.running = None
        if task.phase is Phase.WAITING:
            task.phase = Phase.FINISHING
        if task.phase is Phase.SUBMITTING:
            return []
        if task.phase is Phase.FINAL_CHECK:
            return []
        if not self.cfg.empty_history_is_pending and kind != "executing_null":
            # seed: an error/interrupt frame settles the task on its own
            return self._finalize(task, outcome_from_ws_error(task.prompt_id, kind, data, task.ws_outputs), now)
        if kind == "executing_null":
            # history is written before this frame (protocol.md §8): fetch now
            return self._request_history(task.prompt_id, "ws")
        # error/interrupt frames precede the history write: give it a moment
        self._schedule_history(task, now + self.cfg.success_grace)
        return []

    # ---- HTTP answers ---------------------------------------------------------------

    def on_history(self, prompt_id: str, reply: Any, ok: bool, now: float) -> list[Action]:
        """An answer to FetchHistory: `ok` False when the request failed (then `reply` is ignored)."""
        reason = self._history_inflight.pop(prompt_id, "ws")
        actions: list[Action] = []
        again = self._history_again.pop(prompt_id, None)
        task = self.tasks.get(prompt_id)
        if task is None or task.done:
            return actions
        entry = history_entry(reply, prompt_id) if ok else None
        if entry is not None:
            requires_completed = self.cfg.history_requires_completed and reason != "ws"
            outcome = outcome_from_history(prompt_id, entry, reason, requires_completed)
            if outcome is None and reason == "ws" and not self.cfg.empty_history_is_pending:
                outcome = outcome_from_history(prompt_id, entry, "ws", False)
            if outcome is not None:
                return self._found(task, outcome, reason, now)
        if task.phase is Phase.FINAL_CHECK:
            task.final_stage = "queue"
            return self._request_queue("final_check")
        if entry is None and self._history_lost(task, reason, ok):
            log.info("history.lost", prompt_id=prompt_id, detail="gone after a reconnect; reporting the socket's outcome")
            outcome = Outcome("success", prompt_id, dict(task.ws_outputs), None,
                              "from WebSocket frames; history lost (server restarted?)", "ws")
            return self._finalize(task, outcome, now)
        if reason == "ws" and not self.cfg.empty_history_is_pending and task.ws_terminal:
            # seed: an empty history after the finish frame is taken as done, with what the socket saw
            outcome = Outcome("success", prompt_id, dict(task.ws_outputs), None, "history empty", "ws")
            return self._finalize(task, outcome, now)
        if again is not None:
            return self._request_history(prompt_id, again)
        if (
            self.cfg.poll_backoff
            and reason in ("probe", "poll", "hint", "reconcile")
            and not (task.ws_terminal or task.ws_success)
        ):
            # not in /queue and not in /history: history lag, or gone (restart). Back off per
            # task so that many vanished tasks do not become a request storm.
            task.empty_checks += 1
            wait = min(self.cfg.poll_interval * 2 ** (task.empty_checks - 1), self.cfg.reconnect_cap)
            task.check_after = now + wait
        if (task.ws_terminal or task.ws_success) and self.cfg.empty_history_is_pending:
            delays = self.cfg.history_retry_delays
            delay = delays[task.history_retries] if task.history_retries < len(delays) else self.cfg.poll_interval
            task.history_retries += 1
            log.info("history.not_yet", prompt_id=prompt_id, ok=ok, retry_in=delay)
            self._schedule_history(task, now + delay)
        return actions

    def _history_lost(self, task: TaskState, reason: str, ok: bool) -> bool:
        """An empty history is "not yet" (lag), except for a success whose `executing` null
        arrived before a reconnect: ComfyUI writes history before that frame (§8), so empty
        now, with the task gone from the queue (a reconcile/probe/poll read it first), means
        the server lost it, as a restart does; waiting for the deadline would gain nothing."""
        return (
            ok
            and self.cfg.empty_history_is_pending
            and task.ws_success
            and task.ws_error is None
            and task.null_connect is not None
            and self.connects > task.null_connect
            and reason in ("reconcile", "probe", "poll")
        )

    def _found(self, task: TaskState, outcome: Outcome, reason: str, now: float) -> list[Action]:
        actions: list[Action] = []
        if reason == "probe" and self.ws_connected and task.ws_terminal is None and not task.ws_success:
            log.warning("health.unresponsive", prompt_id=task.prompt_id, detail="finished without a frame")
            if not self._reconnect_requested:
                self._reconnect_requested = True
                self.stats.unresponsive += 1
                actions.append(ForceReconnect("health.unresponsive"))
        if reason != "ws":
            log.info(f"{reason}.found_completed", prompt_id=task.prompt_id, status=outcome.status)
        return self._finalize(task, outcome, now) + actions

    def on_queue(self, reply: Any, ok: bool, now: float) -> list[Action]:
        """An answer to FetchQueue (`ok` False when the request failed)."""
        reasons = self._queue_reasons
        self._queue_reasons = set()
        self._queue_inflight = False
        actions: list[Action] = []
        ids = queue_prompt_ids(reply) if ok else set()
        reason = next((r for r in _REASON_PRIORITY if r in reasons), "hint")
        for task in list(self.tasks.values()):
            if task.done or not task.accepted:
                continue
            if task.phase is Phase.FINAL_CHECK:
                if task.final_stage != "queue":
                    continue
                if not ok:
                    detail = "deadline passed; /queue and /history unavailable"
                elif task.prompt_id in ids:
                    detail = "deadline passed; still queued or running"
                else:
                    detail = "deadline passed; not in /queue nor /history"
                actions += self._give_up(task, detail, now)
                continue
            if not ok or task.prompt_id in ids:
                continue
            if reason == "final_check" or (reason != "reconcile" and now < task.check_after):
                continue
            actions += self._request_history(task.prompt_id, reason)
        if self._queue_next_reasons:
            next_reasons = self._queue_next_reasons
            self._queue_next_reasons = set()
            for r in next_reasons:
                actions += self._request_queue(r)
        return actions

    # ---- time -----------------------------------------------------------------------

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for task in list(self.tasks.values()):
            if task.done or not task.accepted:
                continue
            if task.phase is Phase.FINAL_CHECK:
                if task.final_deadline is not None and now >= task.final_deadline:
                    actions += self._give_up(task, "deadline passed; final check got no answer", now)
                continue
            if now >= task.deadline:
                actions += self._start_final_check(task, now)
                continue
            if task.history_due is not None and now >= task.history_due:
                task.history_due = None
                actions += self._request_history(task.prompt_id, "ws")
        pending = self._has_waiting()
        checkable = self._checkable_from()
        if not self.ws_connected and pending:
            if self._next_poll is None:
                self._next_poll = now + self.cfg.poll_interval
            elif now >= max(self._next_poll, checkable):
                self._next_poll = now + self.cfg.poll_interval
                self.stats.polls += 1
                log.info("poll.tick", pending=len(self.pending()))
                if self.cfg.poll_via_queue:
                    actions += self._request_queue("poll")
                else:
                    for task in self.pending():
                        if task.phase is not Phase.FINAL_CHECK and now >= task.check_after:
                            actions += self._request_history(task.prompt_id, "poll")
        if self.ws_connected and self._echo_due is not None and now >= self._echo_due:
            self._echo_due = None
            self._echo_strikes += 1
            log.warning("health.no_echo", detail="no frame after connect/submit", strikes=self._echo_strikes)
            if not self._reconnect_requested:
                self._reconnect_requested = True
                self.stats.unresponsive += 1
                actions.append(ForceReconnect("health.no_echo"))
        if self.ws_connected and self.cfg.health == "probe" and pending:
            quiet_since = max(self.last_message_at or 0.0, self.connected_at or 0.0)
            if now - quiet_since >= self.cfg.probe_quiet and now >= max(self._next_probe, checkable):
                self._next_probe = now + self.cfg.probe_interval
                self.stats.probes += 1
                log.info("health.probe", quiet_for=round(now - quiet_since, 3))
                actions += self._request_queue("probe")
        if self.ws_connected and self.cfg.health == "silence":
            if self._next_silence_check is None:
                self._next_silence_check = now + self.cfg.silence_check_interval
            elif now >= self._next_silence_check:
                self._next_silence_check = now + self.cfg.silence_check_interval
                quiet_since = max(self.last_message_at or 0.0, self.connected_at or 0.0)
                if now - quiet_since > self.cfg.silence_timeout:
                    self.stats.unresponsive += 1
                    log.warning("health.silence", quiet_for=round(now - quiet_since, 3))
                    actions.append(ForceReconnect("health.silence"))
        return actions

    def next_wakeup(self, now: float) -> float | None:
        """The earliest time `tick` has something to do (None = nothing scheduled)."""
        times: list[float] = []
        for task in self.tasks.values():
            if task.done or not task.accepted:
                continue
            if task.phase is Phase.FINAL_CHECK:
                if task.final_deadline is not None:
                    times.append(task.final_deadline)
                continue
            times.append(task.deadline)
            if task.history_due is not None:
                times.append(task.history_due)
        pending = self._has_waiting()
        checkable = self._checkable_from()
        if not self.ws_connected and pending:
            times.append(max(self._next_poll if self._next_poll is not None else now, checkable))
        if self.ws_connected and self.cfg.health == "probe" and pending:
            quiet_since = max(self.last_message_at or 0.0, self.connected_at or 0.0)
            times.append(max(quiet_since + self.cfg.probe_quiet, self._next_probe, checkable))
        if self.ws_connected and self._echo_due is not None:
            times.append(self._echo_due)
        if self.ws_connected and self.cfg.health == "silence":
            times.append(self._next_silence_check if self._next_silence_check is not None else now)
        return min(times) if times else None

    # ---- internals ------------------------------------------------------------------

    def _start_final_check(self, task: TaskState, now: float) -> list[Action]:
        if not self.cfg.final_check:
            return self._give_up(task, "deadline passed", now)
        task.phase = Phase.FINAL_CHECK
        task.final_stage = "history"
        task.history_due = None
        task.final_deadline = now + 2 * self.cfg.request_timeout + self.cfg.success_grace
        self.stats.final_checks += 1
        log.info("final_check.start", prompt_id=task.prompt_id)
        if task.prompt_id in self._history_inflight:
            self._history_inflight[task.prompt_id] = "final_check"
            return []
        return self._request_history(task.prompt_id, "final_check")

    def _give_up(self, task: TaskState, detail: str, now: float) -> list[Action]:
        if task.ws_error is not None:
            kind, payload = task.ws_error
            outcome = outcome_from_ws_error(task.prompt_id, kind, payload, dict(task.ws_outputs))
            outcome = Outcome(outcome.status, outcome.prompt_id, outcome.outputs, outcome.error,
                              f"{outcome.detail}; history unavailable", "final_check")
        elif task.ws_success:
            # the server said so; history was wiped (restart) or stayed unreachable
            outcome = Outcome("success", task.prompt_id, dict(task.ws_outputs), None,
                              "from WebSocket frames; history unavailable", "final_check")
        else:
            outcome = Outcome("unknown", task.prompt_id, {}, None, detail, "deadline")
        return self._finalize(task, outcome, now)

    def _finalize(self, task: TaskState, outcome: Outcome, now: float) -> list[Action]:
        if not task.finalize(outcome):
            return []
        self.stats.reported += 1
        self._history_again.pop(task.prompt_id, None)
        if self.running == task.prompt_id:
            self.running = None
        # forget it: later frames or answers about an unknown prompt are ignored anyway
        if self.tasks.get(task.prompt_id) is task:
            del self.tasks[task.prompt_id]
        elapsed = max(0.0, now - task.created_at)
        return [Report(task.prompt_id, outcome, elapsed)]

    def _arm_echo(self, now: float, backoff: bool = True) -> None:
        """Expect a frame within `echo_timeout`; none means the socket is deaf (silent or orphaned).

        After a connect the wait doubles with each consecutive deaf connection (no reconnect
        storm through a long silent window); after a submission it does not (submissions are
        paced by the caller, and a new task deserves a prompt check).
        """
        if self.cfg.echo_timeout is None or not self.ws_connected:
            return
        wait = self.cfg.echo_timeout
        if backoff:
            wait = min(wait * 2**self._echo_strikes, max(self.cfg.reconnect_cap, wait))
        due = now + wait
        if self._echo_due is None or due < self._echo_due:
            self._echo_due = due

    def _schedule_history(self, task: TaskState, when: float) -> None:
        if task.history_due is None or when < task.history_due:
            task.history_due = when

    def _request_history(self, prompt_id: str, reason: str) -> list[Action]:
        if prompt_id in self._history_inflight:
            return []
        self._history_inflight[prompt_id] = reason
        return [FetchHistory(prompt_id, reason)]

    def _request_queue(self, reason: str) -> list[Action]:
        if self._queue_inflight:
            # the answer in flight may predate what prompted this request: ask again after it
            self._queue_next_reasons.add(reason)
            return []
        self._queue_inflight = True
        self._queue_reasons = {reason}
        return [FetchQueue(reason)]


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _num(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
