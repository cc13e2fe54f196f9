"""Pure matching of triggers and targets against frames, events and connections."""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from comfy_chaos.fake_comfy.events import ServerEvent
from comfy_chaos.fake_comfy.faults.spec import Target, Trigger
from comfy_chaos.fake_comfy.wire import OutFrame

FINAL_EXECUTING = "executing:null"
#: Selector for a prompt's last frames: its completion message and the final executing.
FINAL = "final"
COMPLETIONS = frozenset({"execution_success", "execution_error", "execution_interrupted"})

# ServerEvent kinds that feed each event trigger (frame-based triggers are fed by frames).
EVENT_TRIGGERS = {
    "node_started": "node_start",
    "prompt_started": "task_start",
    "prompt_completed": "task_complete",
}


@dataclass(frozen=True, slots=True)
class Filter:
    """The resolved frame filter of an active fault (None = any)."""

    types: tuple[str, ...] | None = None
    task: str | None = None
    client: str | None = None

    def matches(self, frame: OutFrame, sid: str) -> bool:
        return (
            (self.types is None or type_matches(self.types, frame))
            and (self.task is None or frame.task_id == self.task)
            and client_matches(self.client, sid)
        )

    def matches_client(self, sid: str | None) -> bool:
        return client_matches(self.client, sid)


def client_matches(pattern: str | None, sid: str | None) -> bool:
    """`pattern` None matches anything; `*`/`?` wildcards allowed."""
    if pattern is None:
        return True
    if sid is None:
        return False
    return fnmatchcase(sid, pattern)


def is_final_executing(frame: OutFrame) -> bool:
    """The `executing` message with `node: null` that ends a prompt."""
    return frame.message_type == "executing" and frame.text is not None and '"node": null' in frame.text


def type_matches(types: tuple[str, ...], frame: OutFrame) -> bool:
    for name in types:
        if name == FINAL_EXECUTING:
            if is_final_executing(frame):
                return True
        elif name == FINAL:
            if frame.message_type in COMPLETIONS or is_final_executing(frame):
                return True
        elif name == frame.message_type:
            return True
    return False


def frame_matches_trigger(trigger: Trigger, frame: OutFrame, sid: str) -> bool:
    """Does this frame count towards an `on: message` / `on: frame` trigger?"""
    if trigger.on == "frame":
        return client_matches(trigger.client, sid)
    if trigger.on != "message":
        return False
    types = trigger.types
    return (
        (types is None or type_matches(types, frame))
        and (trigger.task is None or frame.task_id == trigger.task)
        and client_matches(trigger.client, sid)
    )


def event_matches_trigger(trigger: Trigger, event: ServerEvent) -> bool:
    """Does this server event count towards a node_start / task_start / task_complete trigger?"""
    if trigger.on != EVENT_TRIGGERS.get(event.kind):
        return False
    if trigger.task is not None and event.task_id != trigger.task:
        return False
    if not client_matches(trigger.client, event.client_id):
        return False
    if trigger.node is not None and event.node != trigger.node:
        return False
    if trigger.node_index is not None and event.node_index != trigger.node_index:
        return False
    return True


def connect_matches_trigger(trigger: Trigger, sid: str, reconnect_index: int) -> bool:
    """Does this accepted connection count towards a connect / reconnect trigger?"""
    if trigger.on == "connect":
        return client_matches(trigger.client, sid)
    if trigger.on == "reconnect":
        return reconnect_index >= 1 and client_matches(trigger.client, sid)
    return False


def resolve_filter(
    target: Target | None, trigger: Trigger, event_client: str | None, event_task: str | None
) -> Filter:
    """The frames an activated fault affects.

    An explicit `target` wins. Otherwise: `on: message` affects frames matching its own
    filters; `on: frame`, connect and reconnect the client's frames; task and node
    triggers the task's frames to its client; `at` every frame.
    """
    if target is not None:
        return Filter(target.types, target.task, target.client)
    if trigger.on == "message":
        return Filter(trigger.types, trigger.task, trigger.client)
    if trigger.on in ("frame", "connect", "reconnect"):
        return Filter(client=trigger.client or event_client)
    if trigger.on in ("node_start", "task_start", "task_complete"):
        return Filter(task=trigger.task or event_task, client=trigger.client or event_client)
    return Filter()
