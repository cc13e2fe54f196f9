"""JSON the way Toxiproxy's Go server writes and reads it (sans-IO helpers).

Encoding: compact, HTML characters escaped like Go's ``encoding/json``, 32-bit
floats in their shortest round-tripping form (``toxicity``). Decoding: the first
JSON value of a body, with Go-style messages for the errors clients see in
``bad request body: ...`` answers.
"""
from __future__ import annotations

import json
import re
import struct
from decimal import Decimal
from typing import Any


class _NotJSON(ValueError):
    """`NaN`, `Infinity` or `-Infinity`: Python's decoder accepts them, JSON (and Go) do not."""

    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> Any:
    raise _NotJSON(constant)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


class Float32(float):
    """A float that Go stores as float32 (encoded in its shortest float32 form)."""


def to_float32(value: float) -> Float32:
    return Float32(struct.unpack("<f", struct.pack("<f", value))[0])


_F32_MIN_PLAIN = struct.unpack("<f", struct.pack("<f", 1e-6))[0]


def _format_float32(value: float) -> str:
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    target = struct.pack("<f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == target:
            break
    if _F32_MIN_PLAIN <= abs(value) < 1e21:
        return format(Decimal(text), "f")
    return re.sub(r"e-0(\d)$", r"e-\1", text)  # Go writes 1e-7, not 1e-07


def _encode(value: Any) -> str:
    if isinstance(value, Float32):
        return _format_float32(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_encode(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return (
            text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        )
    return json.dumps(value)


def dumps(value: Any) -> bytes:
    """Compact JSON bytes as Go's ``json.Marshal`` writes them (no trailing newline)."""
    return _encode(value).encode()


class GoJSONError(ValueError):
    """A body that Go's decoder would reject; ``str()`` is Go's message."""


def loads(body: bytes) -> Any:
    """Decode the first JSON value of ``body`` like ``json.NewDecoder(body).Decode``."""
    text = body.decode("utf-8", errors="replace")
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise GoJSONError("EOF")
    try:
        value, _ = _DECODER.raw_decode(stripped)
    except _NotJSON as exc:  # Go: `NaN` and `Infinity` are bad values, `-Infinity` a bad number
        if exc.constant == "-Infinity":
            raise GoJSONError("invalid character 'I' in numeric literal") from None
        raise GoJSONError(f"invalid character {exc.constant[0]!r} looking for beginning of value") from None
    except RecursionError:  # Go's decoder stops at 10,000 levels; Python's parser sooner
        raise GoJSONError("exceeded max depth") from None
    except json.JSONDecodeError as exc:
        if exc.pos >= len(stripped.rstrip(" \t\r\n")) or exc.msg.startswith("Unterminated string"):
            raise GoJSONError("unexpected EOF") from None
        bad = stripped[exc.pos]
        context = "looking for beginning of value"
        if exc.msg.startswith("Expecting ',' delimiter"):
            context = "after object key:value pair" if "{" in stripped[: exc.pos] else "after array element"
        elif exc.msg.startswith("Expecting ':' delimiter"):
            context = "after object key"
        elif exc.msg.startswith("Expecting property name"):
            context = "looking for beginning of object key string"
        raise GoJSONError(f"invalid character {bad!r} {context}") from None
    return value


def json_kind(value: Any) -> str:
    """Go's name for the JSON kind of ``value`` in unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
