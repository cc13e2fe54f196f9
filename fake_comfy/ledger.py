"""Ground truth of what the fake server did (docs/architecture.md Contract 2) and task tagging (Contract 1)."""
from __future__ import annotations

import base64
import copy
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

TAG_KEY = "chaos_task"
SENT_LIMIT = 2048


def tag_workflow(workflow: dict[str, Any], task_id: str) -> dict[str, Any]:
    """A deep copy of `workflow` whose smallest node id (string sort) carries `_meta.chaos_task`."""
    if not isinstance(workflow, dict) or not workflow:
        raise ValueError(f"tag_workflow: workflow must be a non-empty dict of nodes, got {type(workflow).__name__}")
    tagged = copy.deepcopy(workflow)
    first = min(tagged)
    node = tagged[first]
    if not isinstance(node, dict):
        raise ValueError(f"tag_workflow: node {first!r} is not an object")
    meta = node.setdefault("_meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"tag_workflow: node {first!r} has a non-object _meta")
    meta[TAG_KEY] = task_id
    return tagged


def task_tag(workflow: Any) -> str | None:
    """The task id a workflow was tagged with (any node), or None."""
    if not isinstance(workflow, dict):
        return None
    for node_id in sorted(workflow):
        node = workflow[node_id]
        if isinstance(node, dict) and isinstance(node.get("_meta"), dict):
            tag = node["_meta"].get(TAG_KEY)
            if tag is not None:
                return str(tag)
    return None


@dataclass(slots=True)
class MessageRecord:
    t: float
    sid: str | None  # the socket's sid it was addressed to; None = no socket existed for a broadcast
    message_type: str
    delivered: bool
    fault: str | None = None


@dataclass(slots=True)
class PromptRecord:
    prompt_id: str
    task_id: str | None
    client_id: str | None
    number: float | int
    accepted_at: float
    started_at: float | None = None
    completed_at: float | None = None
    outcome: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    executions: int = 0
    messages: list[MessageRecord] = field(default_factory=list)


@dataclass(slots=True)
class FaultRecord:
    t: float
    kind: str
    target: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)
    sent: bytes | str | None = None


@dataclass(slots=True)
class ConnRecord:
    t: float
    sid: str
    event: str  # open | close | replaced | orphaned | refused | abort
    conn_id: int


@dataclass(slots=True)
class HttpRecord:
    t: float
    method: str
    path: str
    status: int
    fault: str | None = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    return value


#: Longest request path (with query) kept in an HttpRecord; the rest is cut off.
PATH_LIMIT = 512


class Ledger:
    """Append-only record of prompts, messages, connections, HTTP requests and faults.

    With `limit` (a long-running `comfy-chaos serve`), only the last `limit` prompts,
    connection events and HTTP requests are kept, so memory stays bounded; a harness run
    keeps everything (it is bounded by its deadline, and the scorer needs it all)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.prompts: dict[str, PromptRecord] = {}
        self.faults: list[FaultRecord] = []
        self.connections: list[ConnRecord] | deque[ConnRecord] = [] if limit is None else deque(maxlen=limit)
        self.http: list[HttpRecord] | deque[HttpRecord] = [] if limit is None else deque(maxlen=limit)

    def accept(self, prompt_id: str, task_id: str | None, client_id: str | None, number: float, t: float) -> PromptRecord:
        record = self.prompts.get(prompt_id)
        if record is None:
            record = PromptRecord(prompt_id, task_id, client_id, number, t)
            self.prompts[prompt_id] = record
            if self.limit is not None and len(self.prompts) > self.limit:
                del self.prompts[next(iter(self.prompts))]
        else:  # a reused prompt_id: one record, a second execution
            record.task_id, record.client_id, record.number = task_id, client_id, number
            record.accepted_at = t
            record.started_at = record.completed_at = record.outcome = None
            record.error = None
            record.outputs = {}
        return record

    def record_message(
        self, prompt_id: str, t: float, sid: str | None, message_type: str, delivered: bool, fault: str | None = None
    ) -> int | None:
        """Append a message record; returns its index in the prompt's `messages` (None: unknown prompt)."""
        record = self.prompts.get(prompt_id)
        if record is None:
            return None
        record.messages.append(MessageRecord(t, sid, message_type, delivered, fault))
        return len(record.messages) - 1

    def mark_message(self, prompt_id: str, index: int, *, delivered: bool | None = None, fault: str | None = None) -> None:
        """Used by the fault layer to say what happened to message `index` of a prompt."""
        record = self.prompts.get(prompt_id)
        if record is None or index >= len(record.messages):
            return  # forgotten (a bounded ledger) or re-accepted meanwhile
        message = record.messages[index]
        if delivered is not None:
            message.delivered = delivered
        if fault is not None:
            message.fault = fault

    def record_fault(
        self, t: float, kind: str, target: dict[str, Any], detail: dict[str, Any] | None = None, sent: bytes | str | None = None
    ) -> FaultRecord:
        if sent is not None:
            sent = sent[:SENT_LIMIT]
        record = FaultRecord(t, kind, target, detail or {}, sent)
        self.faults.append(record)
        return record

    def record_connection(self, t: float, sid: str, event: str, conn_id: int) -> None:
        self.connections.append(ConnRecord(t, sid, event, conn_id))

    def record_http(self, t: float, method: str, path: str, status: int, fault: str | None = None) -> None:
        self.http.append(HttpRecord(t, method, path[:PATH_LIMIT], status, fault))

    def to_dict(self) -> dict[str, Any]:
        faults = []
        for f in self.faults:
            item = asdict(f)
            item["sent"] = _jsonable(f.sent)
            faults.append(item)
        return {
            "prompts": {pid: asdict(p) for pid, p in self.prompts.items()},
            "faults": faults,
            "connections": [asdict(c) for c in self.connections],
            "http": [asdict(h) for h in self.http],
        }
