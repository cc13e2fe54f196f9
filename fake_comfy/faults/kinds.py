"""The fault kinds: a registry keyed by name, each with its params model, docs and behaviour.

A kind's entry is everything about it: its params (validated by `faults.spec`), its doc
line, and its `Behaviour` (`faults.behaviours`) that the sans-IO planner calls. Frame
kinds carry a pure transform `(frame, params, rng) -> FrameResult`: the frames to send
instead of the original one. A new kind is one entry here plus its tests. Nothing here
imports aiohttp.
"""
from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from comfy_chaos.fake_comfy.faults import draws
from comfy_chaos.fake_comfy.faults.behaviours import (
    Behaviour,
    ConnectionAction,
    Delay,
    FrameTransform,
    HistoryLag,
    Hold,
    HttpFault,
    Inject,
    RefuseWindow,
    RestartServer,
    SilentWindow,
    Toxic,
    Transform,
)
from comfy_chaos.fake_comfy.faults.decisions import Binary, FrameResult, RawText, Send, Text
from comfy_chaos.fake_comfy.wire import OutFrame

Category = Literal["frame", "message", "connection", "http", "server", "network"]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class JunkPrefixParams(Params):
    text: str = Field(default=")]}'", min_length=1, description="characters put before the JSON")


class TruncateParams(Params):
    at: int | None = Field(
        default=None, ge=1, description="characters kept; null = a random point inside the frame"
    )


class GarbleParams(Params):
    at: int | None = Field(default=None, ge=0, description="first garbled character; null = random")
    length: int = Field(default=8, ge=1, description="characters replaced by random ASCII")


class InvalidUtf8Params(Params):
    at: int | None = Field(
        default=None, ge=0, description="byte offset of the invalid sequence; null = random"
    )
    sequence: str = Field(default="ff", description="hex bytes inserted (must not be valid UTF-8)")

    @field_validator("sequence")
    @classmethod
    def _invalid_utf8(cls, value: str) -> str:
        try:
            raw = bytes.fromhex(value)
        except ValueError as exc:
            raise ValueError(f"expected hex bytes such as 'ff' or 'c328', got {value!r}") from exc
        if not raw:
            raise ValueError("expected at least one byte")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return value
        raise ValueError(f"bytes {value!r} are valid UTF-8; use e.g. 'ff' or 'c328'")


class HoldParams(Params):
    max_hold: float | None = Field(
        default=None, gt=0, description="seconds (scaled) after which a held frame is released anyway"
    )


class ConcatParams(HoldParams):
    separator: str = Field(default="", description="text put between the two messages")


class InjectParams(Params):
    interval: float | None = Field(
        default=None,
        gt=0,
        description="seconds (scaled): send periodically to every targeted connection while "
        "active instead of next to the targeted frames",
    )
    position: Literal["before", "after"] = Field(
        default="before", description="extra frame before or after the targeted frame"
    )


class HeartbeatParams(InjectParams):
    text: str = Field(default="ping", description="the extra text frame, e.g. ping, pong, heartbeat")


class NoiseParams(InjectParams):
    type: str = Field(default="crystools.monitor", min_length=1, description="message type")
    data: dict[str, Any] | None = Field(
        default=None, description="message data; null = a seeded crystools-like monitor reading"
    )


class NoiseBinaryParams(InjectParams):
    event: int = Field(default=99, ge=0, le=2**32 - 1, description="binary event type (big-endian u32)")
    size: int = Field(default=64, ge=0, description="payload bytes after the event type")


class OversizeParams(Params):
    size: int = Field(
        default=5 * 1024 * 1024, ge=1024, description="bytes of the padded frame (default 5 MiB)"
    )


class DuplicateParams(Params):
    times: int = Field(default=2, ge=2, le=100, description="copies sent in total")


class ReorderParams(HoldParams):
    after: int = Field(default=1, ge=1, description="release the held frame after this many frames")


class DelayParams(Params):
    seconds: float = Field(default=1.0, gt=0, description="seconds (scaled) the frame is late")


RESERVED_CLOSE_CODES = frozenset({1004, 1005, 1006, 1015})


class CloseParams(Params):
    code: int = Field(default=1001, ge=1000, le=4999, description="WebSocket close code")
    send_frame: bool = Field(
        default=False, description="when triggered by a frame: send it first (default: it is lost)"
    )

    @field_validator("code")
    @classmethod
    def _sendable(cls, value: int) -> int:
        if value in RESERVED_CLOSE_CODES:
            raise ValueError(f"close code {value} is reserved and cannot be sent")
        return value


class AbortParams(Params):
    send_frame: bool = Field(
        default=False, description="when triggered by a frame: send it first (default: it is lost)"
    )


class RouteParams(Params):
    route: str | None = Field(
        default=None,
        description="path (with or without /api); matches it and its sub-paths; null = every route",
    )
    method: str | None = Field(default=None, description="HTTP method; null = any")

    @field_validator("route")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"expected a path starting with '/', got {value!r}")
        return value

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value


class HttpErrorParams(RouteParams):
    status: int = Field(default=500, ge=500, le=599, description="5xx status")
    body: Literal["comfy", "html", "empty"] = Field(
        default="comfy",
        description="comfy: aiohttp's text/plain 'Server got itself in trouble'; "
        "html: an nginx-like error page; empty: no body",
    )


class HttpSlowParams(RouteParams):
    delay: float = Field(default=2.0, gt=0, description="seconds (scaled) before the handler runs")


class HttpTruncateParams(RouteParams):
    at: int | None = Field(default=None, ge=0, description="body bytes sent; null = half")


class ErrorReplyParams(Params):
    status: int = Field(default=500, ge=500, le=599, description="5xx status")
    body: Literal["comfy", "html", "empty"] = Field(default="comfy", description="as for http_error")


class HistoryLagParams(Params):
    delay: float = Field(
        default=1.0, gt=0, description="seconds (scaled) after completion before /history shows it"
    )


class RestartParams(Params):
    keep_history: bool = Field(default=False, description="keep history across the restart")


@dataclass(frozen=True, slots=True)
class Kind:
    """One fault kind: its name, category, params model, doc line and behaviour; how random
    chaos draws one (`draw`, None: never drawn) and whether it is in chaos's default set."""

    name: str
    category: Category
    params: type[Params]
    doc: str
    behaviour: Behaviour
    draw: draws.Draw | None = None
    chaos_default: bool = True

    @property
    def transform(self) -> Transform | None:
        """The pure frame transform of a frame kind (None for the others)."""
        return self.behaviour.transform if isinstance(self.behaviour, FrameTransform) else None


def _text(frame: OutFrame) -> str:
    if frame.text is None:
        raise TypeError(f"frame {frame.message_type!r} is binary; this fault needs a text frame")
    return frame.text


def python_repr_text(text: str) -> str:
    """The Python rendering of a JSON message: single quotes, True/False/None."""
    return repr(json.loads(text))


def _bom(frame: OutFrame, params: NoParams, rng: random.Random) -> FrameResult:
    return FrameResult((Text("\ufeff" + _text(frame)),))


def _junk_prefix(frame: OutFrame, params: JunkPrefixParams, rng: random.Random) -> FrameResult:
    return FrameResult((Text(params.text + _text(frame)),))


def _python_repr(frame: OutFrame, params: NoParams, rng: random.Random) -> FrameResult:
    return FrameResult((Text(python_repr_text(_text(frame))),))


def _truncate(frame: OutFrame, params: TruncateParams, rng: random.Random) -> FrameResult:
    text = _text(frame)
    at = params.at if params.at is not None else rng.randint(1, max(1, len(text) - 1))
    return FrameResult((Text(text[:at]),), {"at": at, "length": len(text)})


def _garble(frame: OutFrame, params: GarbleParams, rng: random.Random) -> FrameResult:
    text = _text(frame)
    length = min(params.length, len(text))
    at = params.at if params.at is not None else rng.randint(0, len(text) - length)
    at = min(at, len(text) - length)
    junk = "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(length))
    return FrameResult((Text(text[:at] + junk + text[at + length :]),), {"at": at, "junk": junk})


def _invalid_utf8(frame: OutFrame, params: InvalidUtf8Params, rng: random.Random) -> FrameResult:
    payload = _text(frame).encode("utf-8")
    at = params.at if params.at is not None else rng.randint(0, len(payload))
    at = min(at, len(payload))
    return FrameResult(
        (RawText(payload[:at] + bytes.fromhex(params.sequence) + payload[at:]),),
        {"at": at, "sequence": params.sequence},
    )


def _inject_position(extra: Send, frame: OutFrame, position: str) -> tuple[Send, ...]:
    original: Send = Text(frame.text) if frame.text is not None else Binary(frame.data or b"")
    return (extra, original) if position == "before" else (original, extra)


def heartbeat_frame(params: HeartbeatParams, rng: random.Random) -> Send:
    """The extra frame of `heartbeat`."""
    return Text(params.text)


def noise_frame(params: NoiseParams, rng: random.Random) -> Send:
    """A well-formed message of a type clients do not know (crystools-monitor-like)."""
    data = params.data
    if data is None:
        data = {
            "cpu_utilization": round(rng.uniform(0, 100), 1),
            "ram_total": 68719476736,
            "ram_used": rng.randint(4, 60) * 1073741824,
            "ram_used_percent": round(rng.uniform(5, 95), 1),
            "hdd_total": -1,
            "hdd_used": -1,
            "hdd_used_percent": -1,
            "device_type": "cuda",
            "gpus": [
                {
                    "gpu_utilization": rng.randint(0, 100),
                    "gpu_temperature": rng.randint(30, 85),
                    "vram_total": 25757220864,
                    "vram_used": rng.randint(1, 24) * 1073741824,
                    "vram_used_percent": round(rng.uniform(1, 99), 1),
                }
            ],
        }
    return Text(json.dumps({"type": params.type, "data": data}))


def noise_binary_frame(params: NoiseBinaryParams, rng: random.Random) -> Send:
    """A binary frame with an event type clients do not know."""
    return Binary(struct.pack(">I", params.event) + rng.randbytes(params.size))


def _heartbeat(frame: OutFrame, params: HeartbeatParams, rng: random.Random) -> FrameResult:
    return FrameResult(_inject_position(heartbeat_frame(params, rng), frame, params.position))


def _noise(frame: OutFrame, params: NoiseParams, rng: random.Random) -> FrameResult:
    return FrameResult(_inject_position(noise_frame(params, rng), frame, params.position))


def _noise_binary(frame: OutFrame, params: NoiseBinaryParams, rng: random.Random) -> FrameResult:
    return FrameResult(_inject_position(noise_binary_frame(params, rng), frame, params.position))


def _oversize(frame: OutFrame, params: OversizeParams, rng: random.Random) -> FrameResult:
    """Pad the message's data with a `chaos_padding` string so the frame is `size` bytes."""
    message = json.loads(_text(frame))
    data = message.get("data") if isinstance(message, dict) else None
    if not isinstance(data, dict):
        raise TypeError(f"frame {frame.message_type!r} has no data object to pad")
    data["chaos_padding"] = ""
    base = len(json.dumps(message).encode("utf-8"))
    data["chaos_padding"] = "x" * max(0, params.size - base)
    text = json.dumps(message)
    return FrameResult((Text(text),), {"size": len(text.encode("utf-8"))})


def strip_prompt_id_text(text: str) -> str:
    """The message without `data.prompt_id` (ComfyUI's json.dumps separators kept)."""
    message = json.loads(text)
    data = message.get("data") if isinstance(message, dict) else None
    if isinstance(data, dict):
        data.pop("prompt_id", None)
    return json.dumps(message)


def _strip_prompt_id(frame: OutFrame, params: NoParams, rng: random.Random) -> FrameResult:
    return FrameResult((Text(strip_prompt_id_text(_text(frame))),))


def _duplicate(frame: OutFrame, params: DuplicateParams, rng: random.Random) -> FrameResult:
    original: Send = Text(frame.text) if frame.text is not None else Binary(frame.data or b"")
    return FrameResult((original,) * params.times, {"times": params.times})


def _drop(frame: OutFrame, params: NoParams, rng: random.Random) -> FrameResult:
    return FrameResult(())


_ALL = [
    Kind("bom", "frame", NoParams, "U+FEFF before the JSON text.", FrameTransform(_bom), draw=draws.frame("bom")),
    Kind(
        "junk_prefix",
        "frame",
        JunkPrefixParams,
        "Non-JSON characters before the `{`.",
        FrameTransform(_junk_prefix),
        draw=draws.frame("junk_prefix"),
    ),
    Kind(
        "python_repr",
        "frame",
        NoParams,
        "The message rendered as a Python dict (single quotes, True/None): "
        "JSON.parse fails at line 1 column 2.",
        FrameTransform(_python_repr),
        draw=draws.frame("python_repr"),
    ),
    Kind(
        "truncate",
        "frame",
        TruncateParams,
        "The text cut after `at` characters.",
        FrameTransform(_truncate),
        draw=draws.frame("truncate"),
    ),
    Kind(
        "garble",
        "frame",
        GarbleParams,
        "`length` characters replaced by random ASCII.",
        FrameTransform(_garble),
        draw=draws.frame("garble"),
    ),
    Kind(
        "invalid_utf8",
        "frame",
        InvalidUtf8Params,
        "A text frame whose payload is not UTF-8 (sent raw, bypassing the encoder).",
        FrameTransform(_invalid_utf8),
        draw=draws.frame("invalid_utf8"),
    ),
    Kind(
        "concat",
        "frame",
        ConcatParams,
        "Two messages in one text frame: the targeted one is held and sent joined to the next "
        "text frame of the same connection.",
        Hold("concat"),
        draw=draws.frame("concat"),
    ),
    Kind(
        "heartbeat",
        "frame",
        HeartbeatParams,
        "An extra text frame such as `ping`.",
        Inject(_heartbeat, binary_ok=True, maker=heartbeat_frame),
        draw=draws.frame("heartbeat", lambda rng: {"text": rng.choice(["ping", "pong", "heartbeat"])}),
    ),
    Kind(
        "noise",
        "frame",
        NoiseParams,
        "An extra well-formed message of an unknown type.",
        Inject(_noise, binary_ok=True, maker=noise_frame),
        draw=draws.frame("noise"),
    ),
    Kind(
        "noise_binary",
        "frame",
        NoiseBinaryParams,
        "An extra binary frame of an unknown event type.",
        Inject(_noise_binary, binary_ok=True, maker=noise_binary_frame),
        draw=draws.frame("noise_binary", lambda rng: {"size": rng.randint(0, 4096)}),
    ),
    Kind(
        "oversize",
        "frame",
        OversizeParams,
        "The message padded to a very large valid frame.",
        FrameTransform(_oversize),
        draw=draws.frame("oversize", lambda rng: {"size": rng.randint(4, 6) * 1024 * 1024}),
        chaos_default=False,
    ),
    Kind(
        "drop",
        "message",
        NoParams,
        "The frame is not sent.",
        FrameTransform(_drop, binary_ok=True),
        draw=draws.frame("drop"),
    ),
    Kind(
        "duplicate",
        "message",
        DuplicateParams,
        "The frame is sent `times` times.",
        FrameTransform(_duplicate, binary_ok=True),
        draw=draws.frame("duplicate", lambda rng: {"times": rng.randint(2, 4)}),
    ),
    Kind(
        "reorder",
        "message",
        ReorderParams,
        "The frame is held and sent after the next `after` frames of the same connection.",
        Hold("reorder"),
        draw=draws.frame("reorder", lambda rng: {"after": rng.randint(1, 3)}),
    ),
    Kind(
        "delay",
        "message",
        DelayParams,
        "The frame is sent `seconds` late; later frames of the stream wait behind it "
        "(ComfyUI sends from one ordered queue).",
        Delay(),
        draw=draws.frame("delay", lambda rng: {"seconds": round(rng.uniform(0.2, 1.5), 1)}),
    ),
    Kind(
        "strip_prompt_id",
        "message",
        NoParams,
        "`data.prompt_id` removed from the message.",
        FrameTransform(_strip_prompt_id),
        draw=draws.frame("strip_prompt_id"),
    ),
    Kind(
        "close",
        "connection",
        CloseParams,
        "The server closes the WebSocket with `code`.",
        ConnectionAction("close"),
        draw=draws.connection("close",
        draws.close_code),
    ),
    Kind(
        "abort",
        "connection",
        AbortParams,
        "The server drops the TCP connection, no close frame.",
        ConnectionAction("abort"),
        draw=draws.connection("abort"),
    ),
    Kind(
        "silent",
        "connection",
        NoParams,
        "Sockets stay open but nothing is sent (frames dropped and recorded) and client "
        "PINGs go unanswered.",
        SilentWindow(),
        draw=draws.window("silent", 5, 40),
    ),
    Kind(
        "refuse",
        "connection",
        NoParams,
        "New WebSocket upgrades are refused (503).",
        RefuseWindow(),
        draw=draws.window("refuse", 2, 10),
    ),
    Kind(
        "http_error",
        "http",
        HttpErrorParams,
        "A 5xx reply instead of the handler's.",
        HttpFault(reply=True),
        draw=draws.http_error,
    ),
    Kind(
        "http_slow",
        "http",
        HttpSlowParams,
        "The reply is `delay` seconds late.",
        HttpFault(delay=True),
        draw=draws.http_slow,
    ),
    Kind(
        "http_truncate",
        "http",
        HttpTruncateParams,
        "Full Content-Length declared, `at` body bytes sent, then the connection is closed.",
        HttpFault(after="truncate"),
        draw=draws.http_truncate,
    ),
    Kind(
        "history_lag",
        "http",
        HistoryLagParams,
        "A finished prompt appears in /history only `delay` seconds after completion.",
        HistoryLag(),
        draw=draws.history_lag,
    ),
    Kind(
        "prompt_response_lost",
        "http",
        NoParams,
        "POST /prompt is accepted and queued, but the connection drops before the response.",
        HttpFault(after="abort", route=("POST", "/prompt")),
        draw=draws.prompt_response_lost,
    ),
    Kind(
        "prompt_queued_5xx",
        "http",
        ErrorReplyParams,
        "POST /prompt queues the prompt (it runs), but the client gets a 5xx instead of its "
        "prompt_id: a client that resubmits runs the workflow twice.",
        HttpFault(after="error", route=("POST", "/prompt")),
        draw=draws.prompt_queued_5xx,
        chaos_default=False,
    ),
    Kind(
        "restart",
        "server",
        RestartParams,
        "Simulated process restart: sockets closed, queue lost, history lost unless kept.",
        RestartServer(),
        draw=draws.restart,
        chaos_default=False,
    ),
    Kind(
        "toxic",
        "network",
        NoParams,
        "A Toxiproxy toxic (the `toxic:` block), handed to the harness via `engine.external`.",
        Toxic(),
    ),
]

KINDS: dict[str, Kind] = {kind.name: kind for kind in _ALL}
