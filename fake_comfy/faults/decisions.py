"""What the fault planner is fed and what it decides: plain data, no I/O.

The planner (`faults.planner`) takes these inputs (a connection, a frame, a request, a
server event, the time) and returns these decisions; the driver (`faults.engine`)
performs them on a socket or an HTTP request and owns the timers. Nothing here imports
aiohttp.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from comfy_chaos.fake_comfy.wire import OutFrame

if TYPE_CHECKING:
    from comfy_chaos.fake_comfy.faults.spec import FaultSpec

#: Whom an applied fault reached: a WebSocket, an HTTP request, the network, the server.
TargetKind = Literal["ws", "http", "toxic", "server"]

SENT_LIMIT = 2048


# ---- frame payloads --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    """A normal text frame."""

    text: str


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary frame."""

    data: bytes


@dataclass(frozen=True, slots=True)
class RawText:
    """A text frame whose payload bytes go out as is (may be invalid UTF-8)."""

    payload: bytes


Send = Text | Binary | RawText


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What a frame transform decided: the frames to send and what to log about it."""

    sends: tuple[Send, ...]
    detail: dict[str, Any] = field(default_factory=dict)


def original(frame: OutFrame) -> tuple[Send, ...]:
    """The frame as the server meant to send it."""
    return (Text(frame.text),) if frame.text is not None else (Binary(frame.data or b""),)


def sends_payload(sends: tuple[Send, ...]) -> bytes | str | None:
    """The bytes the client receives for these sends (text frames as str when all text)."""
    if not sends:
        return None
    if all(isinstance(s, Text) for s in sends):
        return "".join(s.text for s in sends if isinstance(s, Text))
    out = bytearray()
    for s in sends:
        if isinstance(s, Text):
            out += s.text.encode("utf-8")
        elif isinstance(s, Binary):
            out += s.data
        else:
            out += s.payload
    return bytes(out)


# ---- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnInfo:
    """A WebSocket as the planner knows it (the driver keeps the socket itself)."""

    conn_id: int
    sid: str
    reconnect_index: int = 0


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """An HTTP request as the planner sees it.

    `client_id`: what the request says about its client (a `clientId` query parameter, the
    `client_id` of a POST /prompt body); `peer`: an opaque key of its TCP connection, so an
    identity learnt on a keep-alive connection carries over to its later requests.
    """

    method: str
    path: str  # normalised: no /api prefix, no trailing slash
    raw_path: str
    client_id: str | None = None
    peer: int | None = None


# ---- decisions (the driver performs them in order) -------------------------------------


@dataclass(frozen=True, slots=True)
class SendFrames:
    conn_id: int
    sends: tuple[Send, ...]


@dataclass(frozen=True, slots=True)
class Sleep:
    """Hold the frame stream (the caller's send loop) this long: `delay`."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Close:
    """Close the socket with `code` (aside: aiohttp waits for the client's reply)."""

    conn_id: int
    code: int


@dataclass(frozen=True, slots=True)
class Abort:
    """Drop the TCP connection, no close frame."""

    conn_id: int


@dataclass(frozen=True, slots=True)
class Silence:
    """Stop (True) or resume (False) answering the client's PINGs."""

    conn_id: int
    silent: bool


@dataclass(frozen=True, slots=True)
class Restart:
    """Restart the server; the driver calls `planner.restarted(index)` when it is done."""

    index: int
    keep_history: bool


@dataclass(frozen=True, slots=True)
class ToxicOn:
    """Hand a toxic to the harness; frames wait (bounded) until it is in place."""

    index: int
    spec: FaultSpec


@dataclass(frozen=True, slots=True)
class ToxicOff:
    """The toxic's duration is over: ask the harness to remove it."""

    index: int
    spec: FaultSpec


@dataclass(frozen=True, slots=True)
class Mark:
    """Say what happened to message `index` of a prompt in the ledger."""

    prompt_id: str
    index: int
    delivered: bool | None = None
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class Wake:
    """Call `planner.tick(now)` at monotonic time `at` (a timer the driver owns)."""

    at: float


@dataclass(frozen=True, slots=True)
class WindowEnd:
    """A fault window closed (informational: the planner already wrote `t_end`)."""

    index: int
    t: float


Decision = SendFrames | Sleep | Close | Abort | Silence | Restart | ToxicOn | ToxicOff | Mark | Wake | WindowEnd


@dataclass(frozen=True, slots=True)
class FrameFate:
    """What happened to one frame: `delivered` False when the client never gets its bytes."""

    delivered: bool
    fault: str | None = None


DELIVERED = FrameFate(True)


@dataclass(frozen=True, slots=True)
class FramePlan:
    """The planner's answer for one outgoing frame."""

    actions: tuple[Decision, ...]
    fate: FrameFate


# ---- HTTP plans: primitives the HTTP driver composes ------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A 5xx reply: `comfy` (aiohttp's text/plain), `html` (nginx page) or `empty`."""

    status: int
    body: str


@dataclass(frozen=True, slots=True)
class HttpPlan:
    """What to do with one request; the driver performs and reports back.

    `delay` seconds first; then either `reply` instead of the handler, or the handler and
    then `after`: `"abort"` (response lost), `"truncate"` (`truncate_at` bytes of the body,
    None = half), an `ErrorReply` (the handler ran — e.g. the prompt was queued — and
    the client gets the 5xx instead; only when the handler answered 2xx), or `"hide"`
    (`hidden` prompt ids removed from a /history answer)."""

    index: int
    kind: str
    client_id: str | None
    delay: float = 0.0
    reply: ErrorReply | None = None
    after: Literal["abort", "truncate", "hide"] | ErrorReply | None = None
    truncate_at: int | None = None
    hidden: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


# ---- the log ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppliedFault:
    """One applied fault, as written to the ledger and the run record's fault log.

    `target_client_id`/`target_kind` say whom it reached; `reached` False marks a client
    the fault was meant for but never met (no socket to silence, no request in the window).
    `window`: the entry opens a window that `t_end` closes (silent, refuse, toxic)."""

    t: float
    kind: str
    spec_index: int
    target: dict[str, Any]
    detail: dict[str, Any]
    sent: bytes | str | None
    t_end: float | None = None
    target_client_id: str | None = None
    target_kind: TargetKind = "ws"
    reached: bool = True
    window: bool = False

    def ended(self, t_end: float) -> AppliedFault:
        return replace(self, t_end=t_end)

    def to_dict(self) -> dict[str, Any]:
        sent: Any = self.sent
        if isinstance(sent, bytes):
            sent = sent.decode("latin-1")
        return {
            "t": self.t,
            "t_end": self.t_end,
            "kind": self.kind,
            "spec_index": self.spec_index,
            "target": self.target,
            "target_client_id": self.target_client_id,
            "target_kind": self.target_kind,
            "reached": self.reached,
            "window": self.window,
            "detail": self.detail,
            "sent": sent,
            "source": "server",
        }


def clip(sent: bytes | str | None) -> bytes | str | None:
    return None if sent is None else sent[:SENT_LIMIT]
