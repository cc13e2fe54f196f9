"""Turn raw WebSocket frames into ComfyUI messages, whatever state they arrive in.

Pure functions, no IO. `sanitize_text` takes a text frame (str, or bytes when the
socket does not decode text so that invalid UTF-8 cannot kill the connection);
`sanitize_binary` takes a binary frame. Both return a `SanitizeResult` and never raise.

Repairs: BOM and junk before the first `{`, Python-repr quoting (`ast.literal_eval` on
bounded input), several messages in one frame (`json.JSONDecoder.raw_decode` in a loop),
invalid UTF-8 (decoded with replacement). Heartbeat words (`ping`, `pong`, ...) are
skipped; truncated or otherwise unusable JSON is counted as dropped with a reason.
"""
from __future__ import annotations

import ast
import json
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any

KNOWN_TYPES = frozenset(
    {
        "status",
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "progress_state",
        "executed",
        "execution_success",
        "execution_error",
        "execution_interrupted",
        "feature_flags",
        "logs",
        "display_component",
    }
)
HEARTBEAT_TEXTS = frozenset({"ping", "pong", "heartbeat", "keepalive", "keep-alive"})
DEFAULT_MAX_REPAIR_CHARS = 1024 * 1024

_decoder = json.JSONDecoder()


@dataclass(frozen=True)
class Message:
    """A ComfyUI JSON message: `{"type": ..., "data": {...}}`."""

    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class BinaryMessage:
    """A ComfyUI binary frame.

    event 1: `image_format` (1 JPEG, 2 PNG), `image`; event 4: `metadata` (dict, has
    `prompt_id`), `image`; event 3: `node_id`, `text`.
    """

    event: int
    image: bytes = b""
    image_format: int | None = None
    metadata: dict[str, Any] | None = None
    node_id: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class SanitizeResult:
    """What one frame yielded.

    `dropped` counts frames/parts that looked like data but could not be used, with one
    reason each in `reasons`; `ignored` counts heartbeats, unknown message types and
    unknown binary events (`reasons` lists those too); `repairs` names what was fixed.
    """

    messages: tuple[Message | BinaryMessage, ...] = ()
    dropped: int = 0
    ignored: int = 0
    reasons: tuple[str, ...] = ()
    repairs: tuple[str, ...] = ()


@dataclass
class _Acc:
    messages: list[Message | BinaryMessage] = field(default_factory=list)
    dropped: int = 0
    ignored: int = 0
    reasons: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)

    def drop(self, reason: str) -> None:
        self.dropped += 1
        self.reasons.append(reason)

    def ignore(self, reason: str) -> None:
        self.ignored += 1
        self.reasons.append(reason)

    def result(self) -> SanitizeResult:
        return SanitizeResult(
            tuple(self.messages), self.dropped, self.ignored, tuple(self.reasons), tuple(self.repairs)
        )


def sanitize_text(raw: str | bytes, max_repair_chars: int = DEFAULT_MAX_REPAIR_CHARS) -> SanitizeResult:
    """Recover every ComfyUI message in one text frame. Never raises."""
    acc = _Acc()
    try:
        _sanitize_text(raw, acc, max_repair_chars)
    except Exception as exc:  # the contract is "never raises", whatever the input
        acc.drop(f"internal:{type(exc).__name__}")
    return acc.result()


def _sanitize_text(raw: str | bytes, acc: _Acc, max_repair_chars: int) -> None:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            acc.repairs.append("invalid_utf8")
    elif isinstance(raw, str):
        text = raw
    else:
        acc.drop("not_text")
        return
    stripped = text.strip().lstrip("\ufeff").strip()
    if stripped != text.strip():
        acc.repairs.append("bom")
    if not stripped:
        acc.ignore("empty")
        return
    if stripped.lower() in HEARTBEAT_TEXTS:
        acc.ignore("heartbeat")
        return
    start = stripped.find("{")
    if start < 0:
        acc.drop("not_json")
        return
    if start > 0:
        acc.repairs.append("junk_prefix")
    pos = start
    found_any = False
    while pos < len(stripped):
        obj, end, how = _decode_one(stripped, pos, max_repair_chars)
        if how == "truncated":
            acc.drop("truncated")
            return
        if how == "unparseable":
            acc.drop("unparseable")
            # resynchronise on the next object start after the unusable one, if any
            nxt = stripped.find("{", end)
            if nxt < 0:
                return
            pos = nxt
            continue
        if how == "python_repr":
            acc.repairs.append("python_repr")
        if found_any:
            acc.repairs.append("concat")
        found_any = True
        _accept(obj, acc)
        nxt = stripped.find("{", end)
        if nxt < 0:
            return
        pos = nxt


def _decode_one(text: str, pos: int, max_repair_chars: int) -> tuple[Any, int, str]:
    """Decode the object starting at `pos`: (obj, end, "json"|"python_repr"|"truncated"|"unparseable")."""
    try:
        obj, end = _decoder.raw_decode(text, pos)
        return obj, end, "json"
    except (ValueError, RecursionError):
        pass
    balanced = _balanced_end(text, pos)
    if balanced is None:
        return None, len(text), "truncated"
    end = balanced
    segment = text[pos:end]
    if len(segment) > max_repair_chars:
        return None, end, "unparseable"
    try:
        with warnings.catch_warnings():
            # odd escapes in junk would otherwise print SyntaxWarning/DeprecationWarning
            warnings.simplefilter("ignore")
            obj = ast.literal_eval(segment)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, end, "unparseable"
    return obj, end, "python_repr"


def _balanced_end(text: str, pos: int) -> int | None:
    """Index just past the `}` matching the `{` at `pos`, honouring '…' and "…" strings; None if cut off."""
    depth = 0
    quote: str | None = None
    i = pos
    n = len(text)
    while i < n:
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
            if depth < 0:
                return None
        i += 1
    return None


def _accept(obj: Any, acc: _Acc) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        acc.drop("not_a_message")
        return
    data = obj.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        acc.drop("bad_data")
        return
    if obj["type"] not in KNOWN_TYPES:
        acc.ignore(f"unknown_type:{obj['type'][:40]}")
        return
    acc.messages.append(Message(obj["type"], data))


def sanitize_binary(raw: bytes) -> SanitizeResult:
    """Parse one ComfyUI binary frame (big-endian 4-byte event type first). Never raises."""
    acc = _Acc()
    try:
        _sanitize_binary(bytes(raw), acc)
    except Exception as exc:
        acc.drop(f"internal:{type(exc).__name__}")
    return acc.result()


def _sanitize_binary(data: bytes, acc: _Acc) -> None:
    if len(data) < 4:
        acc.drop("binary_short")
        return
    (event,) = struct.unpack_from(">I", data, 0)
    if event == 1:
        if len(data) < 8:
            acc.drop("binary_short")
            return
        (fmt,) = struct.unpack_from(">I", data, 4)
        acc.messages.append(BinaryMessage(event=1, image_format=fmt, image=data[8:]))
    elif event == 3:
        if len(data) < 8:
            acc.drop("binary_short")
            return
        (n,) = struct.unpack_from(">I", data, 4)
        if len(data) < 8 + n:
            acc.drop("binary_short")
            return
        node_id = data[8 : 8 + n].decode("utf-8", errors="replace")
        text = data[8 + n :].decode("utf-8", errors="replace")
        acc.messages.append(BinaryMessage(event=3, node_id=node_id, text=text))
    elif event == 4:
        if len(data) < 8:
            acc.drop("binary_short")
            return
        (m,) = struct.unpack_from(">I", data, 4)
        if len(data) < 8 + m:
            acc.drop("binary_short")
            return
        try:
            metadata = json.loads(data[8 : 8 + m].decode("utf-8"))
        except (ValueError, RecursionError):
            acc.drop("binary_bad_metadata")
            return
        if not isinstance(metadata, dict):
            acc.drop("binary_bad_metadata")
            return
        acc.messages.append(BinaryMessage(event=4, metadata=metadata, image=data[8 + m :]))
    else:
        acc.ignore(f"unknown_binary:{event}")
