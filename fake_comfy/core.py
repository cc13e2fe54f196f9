"""The fake ComfyUI's protocol core: queue, executor, cache, history and WS routing.

Sans-IO: no sockets, no asyncio, no sleeping. Time comes in through the injected clocks
and every method returns what the transport must do (`OutFrame`s to send, files to
write, and for the executor the delay until it wants to be advanced again). One `ComfyCore`
is one simulated ComfyUI process; `FakeComfy` drives it.
"""
from __future__ import annotations

import heapq
import json
import random
import struct
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from comfy_chaos.fake_comfy.events import EventBus, ServerEvent
from comfy_chaos.fake_comfy.execution_order import execution_order
from comfy_chaos.fake_comfy.ledger import Ledger, task_tag
from comfy_chaos.fake_comfy.nodes import NODE_CLASSES, NodeClass, NodeFailure, NodePlan, OutputFile
from comfy_chaos.fake_comfy.profiles import Profile, get_profile
from comfy_chaos.fake_comfy.validation import coerce_inputs, is_link, validate_prompt
from comfy_chaos.fake_comfy.wire import OutFrame

Clock = Callable[[], float]
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")

#: Binary event types (ComfyUI protocol.py `BinaryEventTypes`).
PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4
#: Seconds (at time_scale 1) between a prompt's ending message and its history write: in
#: ComfyUI the message is queued first and the worker writes history afterwards, so a
#: client reacting to `execution_success` can see `/history/{id}` still empty.
HISTORY_LAG = 0.002
#: Log lines kept for `/internal/logs` (ComfyUI's `app.logger` ring buffer).
LOG_BUFFER = 300
_INFO = "\x1b[32m[INFO]\x1b[0m "
_ERROR = "\x1b[1m\x1b[31m[ERROR]\x1b[0m "


def is_canonical_uuid(value: Any) -> bool:
    """ComfyUI >= 0.25's prompt_id rule: `str(uuid.UUID(v)) == v` (lowercase, hyphenated)."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def dumps(value: Any) -> str:
    """JSON exactly as ComfyUI writes it (Python `json.dumps` defaults)."""
    return json.dumps(value)


@dataclass(slots=True)
class QueueItem:
    number: float | int
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]
    task_id: str | None = None
    _wire_json: str | None = None

    def wire(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]

    def wire_json(self) -> str:
        """`wire()` as ComfyUI's JSON text, encoded once: a queued item never changes, and
        clients that poll `/queue` with a deep queue would otherwise re-encode every graph."""
        if self._wire_json is None:
            self._wire_json = json.dumps(self.wire())
        return self._wire_json

    @property
    def client_id(self) -> str | None:
        cid = self.extra_data.get("client_id")
        return cid if isinstance(cid, str) else None


@dataclass(slots=True)
class CacheEntry:
    outputs: tuple[Any, ...]
    ui: dict[str, Any] | None


@dataclass(slots=True)
class Step:
    """What one `advance` produced: frames to send (in order), files to write, next wake-up."""

    frames: list[OutFrame] = field(default_factory=list)
    files: list[OutputFile] = field(default_factory=list)
    delay: float | None = None  # seconds at time_scale 1 until the next advance; None = idle


@dataclass(slots=True)
class SubmitResult:
    status: int
    body: dict[str, Any]
    frames: list[OutFrame] = field(default_factory=list)


@dataclass(slots=True)
class _Run:
    item: QueueItem
    order: list[str]
    cached: set[str]
    sigs: dict[str, Any]
    pos: int = 0
    phase: str = "start"  # start | step | finish
    step_index: int = 0
    plan: NodePlan | None = None
    plan_inputs: dict[str, Any] = field(default_factory=dict)
    results: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    ps: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    messages: list[list[Any]] = field(default_factory=list)
    node_index: int = 0
    started_ms: int = 0
    outcome: str = ""
    error: dict[str, Any] | None = None

    @property
    def node(self) -> str:
        return self.order[self.pos]


def _format_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value) if not isinstance(value, (list, tuple)) else repr(value)


class ComfyCore:
    """One simulated ComfyUI process (queue + worker + history + socket table)."""

    def __init__(
        self,
        *,
        clock: Clock,
        wall_ms: Callable[[], int],
        ledger: Ledger,
        events: EventBus,
        seed: int = 0,
        output_dir: str = "/fake_comfy/output",
        max_upload_size: int = 104857600,
        history_size: int = 10000,
        classes: dict[str, NodeClass] | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.profile = profile if profile is not None else get_profile(None)
        self.clock = clock
        self.wall_ms = wall_ms
        self.ledger = ledger
        self.events = events
        self.rng = random.Random(seed)
        self.output_dir = output_dir
        self.max_upload_size = max_upload_size
        self.history_size = history_size
        self.classes = classes if classes is not None else NODE_CLASSES
        self.counters: dict[tuple[str, str, str], int] = {}
        self._reset_process(keep_history=False)

    # ------------------------------------------------------------------ process state
    def _reset_process(self, keep_history: bool) -> None:
        self.number = 0
        self.queue: list[tuple[float | int, str, int, QueueItem]] = []
        self._seq = 0
        self.running: _Run | None = None
        if not keep_history:
            self.history: dict[str, dict[str, Any]] = {}
        self.cache: dict[Any, CacheEntry] = {}
        self.free_requested = False
        self.interrupt_requested = False
        self.last_node_id: str | None = None
        self.sockets: dict[str, int] = {}
        self.flags: dict[str, dict[str, Any]] = {}
        self.temp_prefix = "_temp_" + "".join(self.rng.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
        self._always_changed = 0
        self.counters = {k: v for k, v in self.counters.items() if k[0] != "temp"}
        self.logs: deque[dict[str, str]] = deque(maxlen=LOG_BUFFER)  # a new process starts a new log
        self.log_subscribers: set[str] = set()

    def reset(self, keep_history: bool = False) -> None:
        """Simulated process restart: queue, running prompt, sockets, cache and counter are lost."""
        self._reset_process(keep_history)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_sid(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4).hex

    # ------------------------------------------------------------------ SaveContext
    def next_counter(self, folder: str, subfolder: str, name: str, count: int) -> int:
        key = (folder, subfolder, name)
        first = self.counters.get(key, 0) + 1
        self.counters[key] = first + count - 1
        return first

    # ------------------------------------------------------------------ frames
    def queue_remaining(self) -> int:
        return len(self.queue) + (1 if self.running is not None else 0)

    def queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue_remaining()}}

    def _frames(
        self, message_type: str, data: Any, sid: str | None, item: QueueItem | None = None, node: str | None = None
    ) -> list[OutFrame]:
        """One JSON message to `sid`, or to every socket when `sid` is None."""
        text = dumps({"type": message_type, "data": data})
        prompt_id = item.prompt_id if item else None
        task_id = item.task_id if item else None
        targets = [sid] if sid is not None else list(self.sockets)
        return [OutFrame(t, message_type, text=text, prompt_id=prompt_id, task_id=task_id, node=node) for t in targets]

    def _binary(self, event: int, payload: bytes, sid: str | None, item: QueueItem, node: str) -> list[OutFrame]:
        data = struct.pack(">I", event) + payload
        targets = [sid] if sid is not None else list(self.sockets)
        return [
            OutFrame(t, f"binary:{event}", data=data, prompt_id=item.prompt_id, task_id=item.task_id, node=node)
            for t in targets
        ]

    def _status(self) -> list[OutFrame]:
        return self._frames("status", {"status": self.queue_info()}, None)

    def supports_preview_metadata(self, sid: str | None) -> bool:
        return sid is not None and self.flags.get(sid, {}).get("supports_preview_metadata") is True

    def _emit(self, kind: str, item: QueueItem | None = None, **kw: Any) -> None:
        self.events.emit(
            ServerEvent(
                kind,  # type: ignore[arg-type]
                self.clock(),
                prompt_id=item.prompt_id if item else None,
                task_id=item.task_id if item else None,
                client_id=item.client_id if item else None,
                **kw,
            )
        )

    # ------------------------------------------------------------------ websocket sessions
    def connect(self, conn_id: int, sid: str) -> list[OutFrame]:
        """A socket for `sid` was accepted: it replaces any earlier one (which stays open, unrouted)."""
        self.sockets[sid] = conn_id
        self.flags[sid] = {}
        frames = self._frames("status", {"status": self.queue_info(), "sid": sid}, sid)
        run = self.running
        if run is not None and run.item.client_id == sid and self.last_node_id is not None:
            frames += self._frames("executing", {"node": self.last_node_id}, sid)
        return frames

    def disconnect(self, sid: str) -> int | None:
        """A socket of `sid` ended; forgets `sid` by id (orphaning a newer socket). Returns the forgotten conn id."""
        self.flags.pop(sid, None)
        return self.sockets.pop(sid, None)

    def client_text(self, sid: str, text: str, first_message: bool) -> tuple[list[OutFrame], bool]:
        """A text frame from a client. Returns (frames to send, whether the first-message slot is still free)."""
        try:
            data = json.loads(text)
            if first_message and data.get("type") == "feature_flags":
                flags = data.get("data", {})
                self.flags[sid] = flags if isinstance(flags, dict) else {}
                return self._frames("feature_flags", self.server_features(), sid), False
            return [], False
        except Exception:  # noqa: BLE001 - as ComfyUI: anything unparsable is ignored and keeps the slot
            return [], first_message

    def server_features(self) -> dict[str, Any]:
        return self.profile.features(self.max_upload_size)

    # ------------------------------------------------------------------ logs (/internal/logs)
    def log(self, message: str, level: str = "info") -> list[OutFrame]:
        """One log line: kept for `/internal/logs`, pushed as `logs` to subscribed clients."""
        if self.profile.log_levels:
            message = (_ERROR if level == "error" else _INFO) + message
        stamp = datetime.fromtimestamp(self.wall_ms() / 1000).isoformat(timespec="microseconds")
        entry = {"t": stamp, "m": message}
        self.logs.append(entry)
        frames: list[OutFrame] = []
        for sid in sorted(self.log_subscribers):
            frames += self._frames("logs", {"entries": [entry], "size": None}, sid)
        return frames

    def subscribe_logs(self, client_id: str, enabled: bool) -> None:
        if enabled:
            self.log_subscribers.add(client_id)
        else:
            self.log_subscribers.discard(client_id)

    # ------------------------------------------------------------------ queue
    def submit(self, body: Any) -> SubmitResult:
        """POST /prompt with an already-parsed JSON body."""
        if not isinstance(body, dict):
            return SubmitResult(400, _bad_request("invalid_request", "Request body must be a JSON object", "body"))
        if "number" in body:
            try:
                number: float | int = float(body["number"])
            except (TypeError, ValueError):
                return SubmitResult(400, _bad_request("invalid_number", "'number' must be a number", "number"))
        else:
            number = self.number
            if body.get("front"):
                number = -number
            self.number += 1
        if "prompt" not in body:
            return SubmitResult(400, _bad_request("no_prompt", "No prompt provided", "No prompt provided"))
        prompt = body["prompt"]
        if not isinstance(prompt, dict):
            return SubmitResult(
                400, _bad_request("invalid_prompt", "'prompt' must be a JSON object of nodes", f"got {type(prompt).__name__}")
            )
        targets = body.get("partial_execution_targets")
        if targets is not None and not isinstance(targets, list):
            return SubmitResult(
                400, _bad_request("invalid_prompt", "'partial_execution_targets' must be a list", "partial_execution_targets")
            )
        if self.profile.uuid_prompt_ids:
            given = body.get("prompt_id")
            if given is not None and not is_canonical_uuid(given):
                return SubmitResult(400, _invalid_prompt_id())
            prompt_id = given if given is not None else self.new_id()
        else:
            prompt_id = str(body["prompt_id"]) if "prompt_id" in body else self.new_id()
        validation = validate_prompt(prompt, self.classes, targets, self.profile.missing_node_type)
        extra_data = body.get("extra_data", {})
        if not isinstance(extra_data, dict):
            return SubmitResult(400, _bad_request("invalid_request", "'extra_data' must be a JSON object", "extra_data"))
        if "client_id" in body and not isinstance(body["client_id"], str):
            return SubmitResult(400, _bad_request("invalid_request", "'client_id' must be a string", "client_id"))
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if not validation.ok:
            return SubmitResult(400, {"error": validation.error, "node_errors": validation.node_errors})
        if self.profile.queue_hides_secrets:  # ComfyUI moves them to a hidden 6th element no route shows
            for key in SENSITIVE_EXTRA_DATA_KEYS:
                extra_data.pop(key, None)
        if self.profile.create_time:
            extra_data["create_time"] = self.wall_ms()
        outputs = validation.outputs[::-1] if self.profile.reverse_output_order else validation.outputs
        item = QueueItem(number, prompt_id, prompt, extra_data, outputs, task_tag(prompt))
        self._seq += 1
        heapq.heappush(self.queue, (number, prompt_id, self._seq, item))
        self.ledger.accept(prompt_id, item.task_id, item.client_id, number, self.clock())
        self._emit("prompt_accepted", item)
        frames = self.log("got prompt\n") + self._status()
        return SubmitResult(200, {"prompt_id": prompt_id, "number": number, "node_errors": validation.node_errors}, frames)

    def queue_view(self) -> dict[str, Any]:
        running = [self.running.item.wire()] if self.running is not None else []
        return {"queue_running": running, "queue_pending": [entry[3].wire() for entry in self.queue]}

    def queue_view_json(self) -> str:
        """`queue_view()` as the JSON text `json.dumps` would give, from per-item caches."""
        running = self.running.item.wire_json() if self.running is not None else ""
        pending = ", ".join(entry[3].wire_json() for entry in self.queue)
        return f'{{"queue_running": [{running}], "queue_pending": [{pending}]}}'

    def _cancel(self, item: QueueItem) -> None:
        record = self.ledger.prompts.get(item.prompt_id)
        if record is not None and record.outcome is None:
            record.outcome = "cancelled"
            record.completed_at = self.clock()

    def delete_pending(self, prompt_id: str) -> list[OutFrame]:
        """Remove the first pending item with this id (ComfyUI `delete_queue_item`)."""
        for i, entry in enumerate(self.queue):
            if entry[3].prompt_id == prompt_id:
                self._cancel(entry[3])
                if len(self.queue) == 1:
                    self.queue.clear()
                    frames = self._status()  # wipe_queue's own queue_updated
                else:
                    self.queue.pop(i)
                    heapq.heapify(self.queue)
                    frames = []
                return frames + self._status()
        return []

    def clear_pending(self) -> list[OutFrame]:
        for entry in self.queue:
            self._cancel(entry[3])
        self.queue.clear()
        return self._status()

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Set the cooperative interrupt flag (only for the running prompt if an id is given).

        Returns whether the flag was set (ComfyUI's `interrupt_if_running` for job cancel)."""
        if prompt_id is not None and (self.running is None or self.running.item.prompt_id != prompt_id):
            return False
        self.interrupt_requested = True
        return True

    def cancel_job(self, prompt_id: str) -> tuple[bool, list[OutFrame]]:
        """Jobs API cancel: interrupt it if it is the running prompt, else dequeue it if pending."""
        if self.interrupt(prompt_id):
            return True, []
        if any(entry[3].prompt_id == prompt_id for entry in self.queue):
            return True, self.delete_pending(prompt_id)
        return False, []

    def request_free(self, free_memory: bool, unload_models: bool) -> None:
        if free_memory or unload_models:
            self.free_requested = True

    # ------------------------------------------------------------------ history
    def get_history(self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1) -> dict[str, Any]:
        if prompt_id is not None:
            entry = self.history.get(prompt_id)
            return {prompt_id: entry} if entry is not None else {}
        out: dict[str, Any] = {}
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        for i, (key, entry) in enumerate(self.history.items()):
            if i >= offset:
                out[key] = entry
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    def delete_history(self, prompt_id: str) -> None:
        self.history.pop(prompt_id, None)

    def clear_history(self) -> None:
        self.history.clear()

    # ------------------------------------------------------------------ executor
    @property
    def idle(self) -> bool:
        return self.running is None and not self.queue

    def advance(self) -> Step:
        """Run the executor until it needs time to pass (or has nothing to do).

        Stops after a prompt finishes, so the driver can yield between prompts.
        """
        step = Step()
        if self.running is None:
            if not self.queue:
                return step
            self._start_run(step)
        while self.running is not None:
            delay = self._tick(step)
            if delay is None:  # the run ended
                step.delay = 0.0
                return step
            if delay > 0:
                step.delay = delay
                return step
        return step

    def _signature(self, node_id: str, prompt: dict[str, Any], memo: dict[str, Any]) -> Any:
        if node_id in memo:
            return memo[node_id]
        node = prompt[node_id]
        cls = self.classes[node["class_type"]]
        memo[node_id] = ("cycle", node_id)
        parts: list[tuple[Any, ...]] = []
        for name, value in sorted(node.get("inputs", {}).items()):
            if is_link(value):
                if value[0] in prompt and prompt[value[0]].get("class_type") in self.classes:
                    parts.append((name, self._signature(value[0], prompt, memo), value[1]))
                else:
                    parts.append((name, "missing", value[0], value[1]))
            else:
                parts.append((name, dumps(value)))
        changed = None
        if cls.always_changed:
            self._always_changed += 1
            changed = self._always_changed
        sig = (node["class_type"], changed, tuple(parts))
        memo[node_id] = sig
        return sig

    def _start_run(self, step: Step) -> None:
        _, _, _, item = heapq.heappop(self.queue)
        self.interrupt_requested = False
        if self.free_requested:
            self.cache.clear()
            self.free_requested = False
        prompt = item.prompt
        memo: dict[str, Any] = {}
        sigs = {n: self._signature(n, prompt, memo) for n in prompt}
        wanted = set(sigs.values())
        self.cache = {k: v for k, v in self.cache.items() if k in wanted}
        cached = {n for n in prompt if sigs[n] in self.cache}
        order = execution_order(prompt, self.classes, cached, item.outputs)
        run = _Run(item, order, cached, sigs, started_ms=self.wall_ms())
        self.running = run
        record = self.ledger.prompts.get(item.prompt_id)
        if record is not None:
            record.started_at = self.clock()
            record.executions += 1
        self._emit("prompt_started", item)
        step.frames += self._status()
        self._add_message(step, run, "execution_start", {"prompt_id": item.prompt_id, "timestamp": self.wall_ms()})
        self._add_message(
            step,
            run,
            "execution_cached",
            {"nodes": [n for n in prompt if n in cached], "prompt_id": item.prompt_id, "timestamp": self.wall_ms()},
        )

    def _add_message(self, step: Step, run: _Run, event: str, data: dict[str, Any], broadcast: bool = False) -> None:
        """ComfyUI `PromptExecutor.add_message`: recorded for history, sent to the client (or all if `broadcast`)."""
        run.messages.append([event, data])
        sid = run.item.client_id
        if sid is not None or broadcast:
            step.frames += self._frames(event, data, sid, run.item)

    def _progress_state(self, step: Step, run: _Run, node: str) -> None:
        nodes = {
            n: {
                "value": s["value"],
                "max": s["max"],
                "state": s["state"],
                "node_id": n,
                "prompt_id": run.item.prompt_id,
                "display_node_id": n,
                "parent_node_id": None,
                "real_node_id": n,
            }
            for n, s in run.ps.items()
        }
        data = {"prompt_id": run.item.prompt_id, "nodes": nodes}
        step.frames += self._frames("progress_state", data, run.item.client_id, run.item, node)

    def _tick(self, step: Step) -> float | None:
        run = self.running
        assert run is not None
        if run.phase == "done":
            self._write_history(step, run)
            return None
        if run.pos >= len(run.order):
            self._add_message(step, run, "execution_success", {"prompt_id": run.item.prompt_id, "timestamp": self.wall_ms()})
            return self._ended(run, "success")
        node = run.node
        if run.phase == "start":
            return self._node_start(step, run, node)
        if run.phase == "step":
            return self._node_step(step, run, node)
        return self._node_finish(step, run, node)

    def _resolve_inputs(self, run: _Run, node: str) -> dict[str, Any]:
        spec = run.item.prompt[node]
        cls = self.classes[spec["class_type"]]
        inputs = coerce_inputs(spec, cls)
        for name, value in list(inputs.items()):
            if is_link(value):
                source = value[0]
                outputs = run.results.get(source)
                if outputs is None:
                    outputs = self.cache[run.sigs[source]].outputs
                inputs[name] = outputs[value[1]]
        return inputs

    def _hidden(self, run: _Run, node: str) -> dict[str, Any]:
        values = {"prompt": run.item.prompt, "extra_pnginfo": run.item.extra_data.get("extra_pnginfo"), "unique_id": node}
        cls = self.classes[run.item.prompt[node]["class_type"]]
        return {name: values.get(name) for name in cls.hidden_inputs()}

    def _node_start(self, step: Step, run: _Run, node: str) -> float | None:
        item = run.item
        cls = self.classes[item.prompt[node]["class_type"]]
        if node in run.cached:
            entry = self.cache[run.sigs[node]]
            if item.client_id is not None:
                output = entry.ui
                step.frames += self._frames(
                    "executed",
                    {"node": node, "display_node": node, "output": output, "prompt_id": item.prompt_id},
                    item.client_id,
                    item,
                    node,
                )
            if entry.ui is not None:
                self._record_ui(run, node, entry.ui)
            run.ps[node] = {"value": 1, "max": 1, "state": "finished"}
            self._progress_state(step, run, node)
            run.pos += 1
            return 0.0
        run.ps[node] = {"value": 0.0, "max": 1.0, "state": "running"}
        self._progress_state(step, run, node)
        if item.client_id is not None:
            self.last_node_id = node
            step.frames += self._frames(
                "executing", {"node": node, "display_node": node, "prompt_id": item.prompt_id}, item.client_id, item, node
            )
        self._emit("node_started", item, node=node, node_index=run.node_index, detail={"class_type": cls.name})
        run.node_index += 1
        if self.interrupt_requested:
            return self._interrupted(step, run, node)
        inputs = self._resolve_inputs(run, node)
        run.plan = cls.run(inputs, self, self._hidden(run, node))
        run.plan_inputs = inputs
        run.step_index = 0
        segments = len(run.plan.steps) + 1
        run.phase = "step" if run.plan.steps else "finish"
        return run.plan.duration / segments

    def _node_step(self, step: Step, run: _Run, node: str) -> float | None:
        item = run.item
        plan = run.plan
        assert plan is not None
        if self.interrupt_requested:
            return self._interrupted(step, run, node)
        progress = plan.steps[run.step_index]
        sid = item.client_id
        run.ps[node] = {"value": progress.value, "max": progress.max, "state": "running"}
        self._progress_state(step, run, node)
        if progress.preview is not None and self.supports_preview_metadata(sid):
            metadata = dumps(
                {
                    "node_id": node,
                    "prompt_id": item.prompt_id,
                    "display_node_id": node,
                    "parent_node_id": None,
                    "real_node_id": node,
                    "image_type": "image/png",
                }
            ).encode()
            step.frames += self._binary(
                PREVIEW_IMAGE_WITH_METADATA, struct.pack(">I", len(metadata)) + metadata + progress.preview, sid, item, node
            )
        step.frames += self._frames(
            "progress", {"value": progress.value, "max": progress.max, "prompt_id": item.prompt_id, "node": node}, sid, item, node
        )
        if progress.preview is not None and not self.supports_preview_metadata(sid):
            step.frames += self._binary(PREVIEW_IMAGE, struct.pack(">I", 2) + progress.preview, sid, item, node)
        run.step_index += 1
        if run.step_index >= len(plan.steps):
            run.phase = "finish"
        return plan.duration / (len(plan.steps) + 1)

    def _node_finish(self, step: Step, run: _Run, node: str) -> float | None:
        item = run.item
        plan = run.plan
        assert plan is not None
        if plan.text is not None:
            node_bytes = node.encode()
            payload = struct.pack(">I", len(node_bytes)) + node_bytes + plan.text.encode()
            step.frames += self._binary(TEXT, payload, None, item, node)
        if plan.failure is not None:
            return self._failed(step, run, node, plan.failure)
        step.files += plan.files
        run.results[node] = plan.outputs
        self.cache[run.sigs[node]] = CacheEntry(plan.outputs, plan.ui)
        if plan.ui is not None:
            self._record_ui(run, node, plan.ui)
            if item.client_id is not None:
                step.frames += self._frames(
                    "executed",
                    {"node": node, "display_node": node, "output": plan.ui, "prompt_id": item.prompt_id},
                    item.client_id,
                    item,
                    node,
                )
        state = run.ps[node]
        run.ps[node] = {"value": state["max"], "max": state["max"], "state": "finished"}
        self._progress_state(step, run, node)
        run.executed.append(node)
        run.plan = None
        run.phase = "start"
        run.pos += 1
        return 0.0

    def _record_ui(self, run: _Run, node: str, ui: dict[str, Any]) -> None:
        run.outputs[node] = ui
        run.meta[node] = {"node_id": node, "display_node": node, "parent_node": None, "real_node_id": node}

    def _ended(self, run: _Run, outcome: str, error: dict[str, Any] | None = None) -> float:
        """The ending message is out; history is written one tick later (ComfyUI's worker does it after)."""
        run.phase = "done"
        run.outcome = outcome
        run.error = error
        return HISTORY_LAG

    def _interrupted(self, step: Step, run: _Run, node: str) -> float:
        self.interrupt_requested = False
        data = {
            "prompt_id": run.item.prompt_id,
            "node_id": node,
            "node_type": run.item.prompt[node]["class_type"],
            "executed": list(run.executed),
            "timestamp": self.wall_ms(),
        }
        self._add_message(step, run, "execution_interrupted", data, broadcast=True)
        return self._ended(run, "interrupted")

    def _failed(self, step: Step, run: _Run, node: str, failure: NodeFailure) -> float:
        inputs = run.plan_inputs
        current_inputs = {name: [_format_value(v)] for name, v in inputs.items()}
        for name, value in self._hidden(run, node).items():
            current_inputs[name] = [_format_value(value)]
        data = {
            "prompt_id": run.item.prompt_id,
            "node_id": node,
            "node_type": run.item.prompt[node]["class_type"],
            "executed": list(run.executed),
            "exception_message": failure.exception_message,
            "exception_type": failure.exception_type,
            "traceback": list(failure.traceback),
            "current_inputs": current_inputs,
            "current_outputs": list(run.item.prompt),
            "timestamp": self.wall_ms(),
        }
        message = failure.exception_message
        step.frames += self.log(message, "error")
        step.frames += self.log(f"!!! Exception during processing !!! {message}", "error")
        step.frames += self.log("Traceback (most recent call last):\n" + "".join(failure.traceback), "error")
        self._add_message(step, run, "execution_error", data)
        return self._ended(run, "error", data)

    def _write_history(self, step: Step, run: _Run) -> None:
        item = run.item
        outcome = run.outcome
        error = run.error
        self.last_node_id = None
        extra = {k: v for k, v in item.extra_data.items() if k not in SENSITIVE_EXTRA_DATA_KEYS}
        completed = outcome == "success"
        self.history[item.prompt_id] = {
            "prompt": [item.number, item.prompt_id, item.prompt, extra, item.outputs],
            "outputs": run.outputs,
            "status": {
                "status_str": "success" if completed else "error",
                "completed": completed,
                "messages": run.messages,
            },
            "meta": run.meta,
        }
        while len(self.history) > self.history_size:
            self.history.pop(next(iter(self.history)))
        record = self.ledger.prompts.get(item.prompt_id)
        if record is not None:
            record.completed_at = self.clock()
            record.outcome = outcome
            record.outputs = run.outputs
            record.error = error
        self.running = None
        self._emit("prompt_completed", item, detail={"outcome": outcome})
        step.frames += self._status()
        if item.client_id is not None:
            step.frames += self._frames("executing", {"node": None, "prompt_id": item.prompt_id}, item.client_id, item)
        if self.log_subscribers:
            seconds = (self.wall_ms() - run.started_ms) / 1000
            text = f"Prompt executed in {seconds:.2f} seconds"
            step.frames += self.log(f"\x1b[32m{text}\x1b[0m\n" if self.profile.log_levels else text + "\n")


def _invalid_prompt_id() -> dict[str, Any]:
    details = "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the server generate one"
    return _bad_request("invalid_prompt_id", "prompt_id must be a valid UUID", details)


def _bad_request(kind: str, message: str, details: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "details": details, "extra_info": {}}, "node_errors": {}}
