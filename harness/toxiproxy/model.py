"""Proxy and toxic definitions, request-body parsing and the API's errors (sans-IO).

Everything here mirrors Toxiproxy 2.12 (docs/toxiproxy-spec.md §3-§4, §6): the
error texts and status codes, the order in which a toxic body is checked, the
attribute names, types and JSON key order of each toxic type.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from comfy_chaos.harness.toxiproxy.gojson import Float32, GoJSONError, json_kind, loads, to_float32


class ApiError(Exception):
    """An answer of the form ``{"error": message, "status": status}``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def bad_body(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(what: str) -> ApiError:
    return ApiError(f"missing required field: {what}", 400)


PROXY_NOT_FOUND = ("proxy not found", 404)
PROXY_EXISTS = ("proxy already exists", 409)
INVALID_STREAM = ("stream was invalid, can be either upstream or downstream", 400)
INVALID_TYPE = ("invalid toxic type", 400)
TOXIC_EXISTS = ("toxic already exists", 409)
TOXIC_NOT_FOUND = ("toxic not found", 404)

UPSTREAM, DOWNSTREAM = "upstream", "downstream"


@dataclass(frozen=True)
class ToxicType:
    """One toxic type: Go struct name, attributes in JSON order, Go integer type."""

    name: str
    struct: str
    attributes: tuple[str, ...]
    int_type: str = "int64"


TOXIC_TYPES: dict[str, ToxicType] = {
    t.name: t
    for t in (
        ToxicType("noop", "NoopToxic", ()),
        ToxicType("latency", "LatencyToxic", ("latency", "jitter")),
        ToxicType("bandwidth", "BandwidthToxic", ("rate",)),
        ToxicType("slow_close", "SlowCloseToxic", ("delay",)),
        ToxicType("timeout", "TimeoutToxic", ("timeout",)),
        ToxicType("reset_peer", "ResetToxic", ("timeout",)),
        ToxicType("slicer", "SlicerToxic", ("average_size", "size_variation", "delay"), "int"),
        ToxicType("limit_data", "LimitDataToxic", ("bytes",)),
    )
}

_INT_LIMIT = 2**63


@dataclass
class ToxicDef:
    """A toxic as stored on a proxy (the API's toxic object)."""

    name: str
    type: str
    stream: str
    toxicity: Float32
    attributes: dict[str, int]

    @property
    def direction(self) -> str:
        return self.stream.lower()

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


def _unmarshal_error(value: Any, where: str, go_type: str) -> ApiError:
    kind = json_kind(value)
    if kind == "number":
        kind = f"number {value!r}" if not isinstance(value, float) else f"number {_number_text(value)}"
    return bad_body(f"json: cannot unmarshal {kind} into Go struct field {where} of type {go_type}")


def _number_text(value: float) -> str:
    return repr(value).replace("e+", "e")


def _decode_int(value: Any, where: str, go_type: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _unmarshal_error(value, where, go_type)
    if isinstance(value, float) and (not value.is_integer() or not math.isfinite(value)):
        raise _unmarshal_error(value, where, go_type)
    number = int(value)
    if not -_INT_LIMIT <= number < _INT_LIMIT:
        raise _unmarshal_error(value, where, go_type)
    return number


def _decode_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _unmarshal_error(value, where, "string")
    return value


def _decode_float32(value: Any, where: str) -> Float32:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _unmarshal_error(value, where, "float32")
    if isinstance(value, float) and not math.isfinite(value):  # 1e999 parses as inf here; Go refuses it
        raise _unmarshal_error(value, where, "float32")
    try:
        return to_float32(float(value))
    except OverflowError:  # beyond float32: Go's decoder reports the number as unmarshalable
        raise _unmarshal_error(value, where, "float32") from None


def _object(body: bytes, go_type: str) -> dict[str, Any]:
    try:
        value = loads(body)
    except GoJSONError as exc:
        raise bad_body(str(exc)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_body(f"json: cannot unmarshal {json_kind(value)} into Go value of type {go_type}")
    return value


def decode_attributes(toxic_type: ToxicType, raw: Any, current: dict[str, int]) -> dict[str, int]:
    """Merge a JSON ``attributes`` value into ``current`` as Go's decoder would."""
    merged = dict(current)
    if raw is None:
        return merged
    if not isinstance(raw, dict):
        raise _unmarshal_error(raw, "attributes", f"toxics.{toxic_type.struct}")
    for key in toxic_type.attributes:
        if key in raw and raw[key] is not None:
            where = f"{toxic_type.struct}.attributes.{key}"
            merged[key] = _decode_int(raw[key], where, toxic_type.int_type)
    return merged


def check_attributes(toxic_type: ToxicType, attributes: dict[str, int]) -> None:
    """Refuse values that crash real Toxiproxy (documented deviation: 400 instead)."""
    if toxic_type.name == "bandwidth" and attributes["rate"] < 0:
        raise bad_body("attributes.rate must not be negative")
    if toxic_type.name == "slicer":
        if attributes["average_size"] <= 0:
            raise bad_body("attributes.average_size must be greater than 0")
        if attributes["size_variation"] < 0:
            raise bad_body("attributes.size_variation must not be negative")


def parse_new_toxic(body: bytes, exists: Any) -> ToxicDef:
    """Parse a create-toxic body; ``exists(name)`` tells whether the name is taken."""
    data = _object(body, "toxics.ToxicWrapper")
    name = data.get("name")
    name = "" if name is None else _decode_str(name, "ToxicWrapper.name")
    type_name = data.get("type")
    type_name = "" if type_name is None else _decode_str(type_name, "ToxicWrapper.type")
    stream = data.get("stream", DOWNSTREAM)
    stream = DOWNSTREAM if stream is None else _decode_str(stream, "ToxicWrapper.stream")
    toxicity = data.get("toxicity")
    toxicity = to_float32(1.0) if toxicity is None else _decode_float32(toxicity, "ToxicWrapper.toxicity")
    if stream.lower() not in (UPSTREAM, DOWNSTREAM):
        raise ApiError(*INVALID_STREAM)
    if not name:
        name = f"{type_name}_{stream}"
    toxic_type = TOXIC_TYPES.get(type_name)
    if toxic_type is None:
        raise ApiError(*INVALID_TYPE)
    if exists(name):
        raise ApiError(*TOXIC_EXISTS)
    zero = {key: 0 for key in toxic_type.attributes}
    attributes = decode_attributes(toxic_type, data.get("attributes"), zero)
    check_attributes(toxic_type, attributes)
    return ToxicDef(name, type_name, stream, toxicity, attributes)


def parse_toxic_update(body: bytes, toxic: ToxicDef) -> tuple[dict[str, int], Float32]:
    """Parse an update body: attributes merged into the current ones, toxicity kept if absent."""
    data = _object(body, "struct { Attributes interface {} \"json:\\\"attributes\\\"\"; Toxicity float32 \"json:\\\"toxicity\\\"\" }")
    toxic_type = TOXIC_TYPES[toxic.type]
    attributes = decode_attributes(toxic_type, data.get("attributes"), toxic.attributes)
    toxicity = data.get("toxicity")
    toxicity = toxic.toxicity if toxicity is None else _decode_float32(toxicity, ".toxicity")
    check_attributes(toxic_type, attributes)
    return attributes, toxicity


@dataclass
class ProxyInput:
    """The fields of a proxy create/update/populate entry (absent → ``None``)."""

    name: str | None = None
    listen: str | None = None
    upstream: str | None = None
    enabled: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _proxy_fields(data: dict[str, Any]) -> ProxyInput:
    result = ProxyInput()
    for key in ("name", "listen", "upstream"):
        if data.get(key) is not None:
            setattr(result, key, _decode_str(data[key], f"Proxy.{key}"))
    if data.get("enabled") is not None:
        if not isinstance(data["enabled"], bool):
            raise _unmarshal_error(data["enabled"], "Proxy.enabled", "bool")
        result.enabled = data["enabled"]
    return result


def parse_proxy(body: bytes) -> ProxyInput:
    """Parse a create/update proxy body (type errors only; the caller checks required fields)."""
    return _proxy_fields(_object(body, "toxiproxy.Proxy"))


POPULATE_TYPE = '[]struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }'


def parse_populate(body: bytes) -> list[ProxyInput]:
    """Parse and validate a ``/populate`` body; nothing is applied if any entry is bad."""
    try:
        value = loads(body)
    except GoJSONError as exc:
        raise bad_body(str(exc)) from None
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_body(f"json: cannot unmarshal {json_kind(value)} into Go value of type {POPULATE_TYPE}")
    entries = []
    for item in value:
        if item is None:
            entries.append(ProxyInput())
            continue
        if not isinstance(item, dict):
            raise bad_body(f"json: cannot unmarshal {json_kind(item)} into Go value of type toxiproxy.Proxy")
        entries.append(_proxy_fields(item))
    for index, entry in enumerate(entries, start=1):
        if not entry.name:
            raise missing_field(f"name at proxy {index}")
        if not entry.upstream:
            raise missing_field(f"upstream at proxy {index}")
    return entries


def split_host_port(address: str) -> tuple[str, int]:
    """Split ``host:port`` like Go's ``net.SplitHostPort`` + port parse; errors name the address."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ValueError(f"address {address}: missing ']' in address")
        host, rest = address[1:end], address[end + 1 :]
        if not rest.startswith(":"):
            raise ValueError(f"address {address}: missing port in address")
        port_text = rest[1:]
    else:
        if ":" not in address:
            raise ValueError(f"address {address}: missing port in address")
        host, port_text = address.rsplit(":", 1)
        if ":" in host:
            raise ValueError(f"address {address}: too many colons in address")
    if port_text == "":
        port = 0
    elif port_text.isdigit() and int(port_text) < 65536:
        port = int(port_text)
    else:
        raise ValueError(f"address {address}: invalid port")
    return host, port


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
