"""Sanitizer: every supported corruption is recovered or counted as dropped; nothing raises."""
from __future__ import annotations

import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_chaos.client.sanitize import KNOWN_TYPES, BinaryMessage, Message, sanitize_binary, sanitize_text

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(
    allow_nan=False, allow_infinity=False
) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
messages = st.builds(
    lambda t, d: {"type": t, "data": d},
    st.sampled_from(sorted(KNOWN_TYPES)),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5),
)
junk = st.text(alphabet=st.characters(blacklist_characters="{", blacklist_categories=("Cs",)), min_size=1, max_size=12)


def recovered(result, original: dict) -> bool:
    return Message(original["type"], original["data"]) in result.messages


def accounted(result) -> bool:
    return bool(result.messages) or result.dropped > 0 or result.ignored > 0


@given(messages)
def test_plain_json_is_recovered_unchanged(msg):
    result = sanitize_text(json.dumps(msg))
    assert result.messages == (Message(msg["type"], msg["data"]),)
    assert result.dropped == 0


@given(messages)
def test_bom_is_stripped(msg):
    result = sanitize_text("\ufeff" + json.dumps(msg))
    assert recovered(result, msg) and "bom" in result.repairs


@given(messages, junk)
def test_junk_prefix_is_stripped(msg, prefix):
    result = sanitize_text(prefix + json.dumps(msg))
    if prefix.strip().lower() in ("ping", "pong", "heartbeat"):
        return
    assert recovered(result, msg)


@given(messages)
def test_python_repr_is_repaired(msg):
    result = sanitize_text(repr(msg))
    assert recovered(result, msg)
    assert result.dropped == 0


@given(messages, messages, st.sampled_from(["", "\n", " ", "\r\n"]))
def test_concatenated_messages_are_all_recovered(a, b, sep):
    result = sanitize_text(json.dumps(a) + sep + json.dumps(b))
    assert [m for m in result.messages] == [Message(a["type"], a["data"]), Message(b["type"], b["data"])]


@given(messages, st.data())
def test_truncation_is_counted_as_dropped(msg, data):
    text = json.dumps(msg)
    cut = data.draw(st.integers(1, len(text) - 1))
    result = sanitize_text(text[:cut])
    assert result.messages == ()
    assert result.dropped == 1 or (result.ignored == 1 and not text[:cut].strip("\ufeff \t\r\n"))


@given(messages, st.data())
def test_garbled_frame_is_accounted_for(msg, data):
    text = json.dumps(msg)
    pos = data.draw(st.integers(0, len(text) - 1))
    ch = data.draw(st.characters(blacklist_categories=("Cs",)))
    result = sanitize_text(text[:pos] + ch + text[pos + 1 :])
    assert accounted(result)


@given(messages, st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"]))
def test_invalid_utf8_prefix_is_repaired(msg, bad):
    result = sanitize_text(bad + json.dumps(msg).encode())
    assert recovered(result, msg) and "invalid_utf8" in result.repairs


@given(messages, st.sampled_from([b"\xff", b"\xc3\x28", b"\xfe\xfe"]), st.data())
def test_invalid_utf8_anywhere_is_accounted_for(msg, bad, data):
    raw = json.dumps(msg).encode()
    pos = data.draw(st.integers(0, len(raw)))
    result = sanitize_text(raw[:pos] + bad + raw[pos:])
    assert accounted(result)


@given(st.sampled_from(["ping", "pong", "heartbeat", " PING\n", "Heartbeat"]))
def test_heartbeat_texts_are_skipped_not_dropped(text):
    result = sanitize_text(text)
    assert result.messages == () and result.dropped == 0 and result.ignored == 1


@given(st.text(max_size=200) | st.binary(max_size=200))
@settings(max_examples=300)
def test_arbitrary_text_never_raises(raw):
    result = sanitize_text(raw)
    assert all(isinstance(m, Message) for m in result.messages)


def test_unknown_message_type_is_ignored():
    result = sanitize_text('{"type": "crystools.monitor", "data": {"cpu": 3}}')
    assert result.messages == () and result.ignored == 1 and result.dropped == 0


def test_repr_then_garbage_then_json():
    text = "{'type': 'status', 'data': {'x': True, 'y': None}}junk{\"type\": \"executing\", \"data\": {\"node\": null}}"
    result = sanitize_text(text)
    assert result.messages == (Message("status", {"x": True, "y": None}), Message("executing", {"node": None}))


def test_oversized_repair_input_is_dropped_not_evaluated():
    big = "{'type': 'status', 'data': {'x': '" + "a" * 5000 + "'}}"
    result = sanitize_text(big, max_repair_chars=1000)
    assert result.messages == () and result.dropped == 1


def test_deep_nesting_does_not_raise():
    result = sanitize_text("{" * 100000)
    assert result.dropped == 1


@given(st.sampled_from([1, 2]), st.binary(max_size=64))
def test_binary_preview_event_1(fmt, image):
    result = sanitize_binary(struct.pack(">II", 1, fmt) + image)
    assert result.messages == (BinaryMessage(event=1, image_format=fmt, image=image),)


@given(st.text(max_size=10), st.text(max_size=40))
def test_binary_text_event_3(node, text):
    node_b = node.encode()
    result = sanitize_binary(struct.pack(">II", 3, len(node_b)) + node_b + text.encode())
    assert result.messages == (BinaryMessage(event=3, node_id=node, text=text),)


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4), st.binary(max_size=32))
def test_binary_preview_with_metadata_event_4(meta, image):
    raw = json.dumps(meta).encode()
    result = sanitize_binary(struct.pack(">II", 4, len(raw)) + raw + image)
    assert result.messages == (BinaryMessage(event=4, metadata=meta, image=image),)


@given(st.integers(5, 2**32 - 1).filter(lambda e: e not in (1, 3, 4)), st.binary(max_size=16))
def test_unknown_binary_types_are_ignored_and_counted(event, rest):
    result = sanitize_binary(struct.pack(">I", event) + rest)
    assert result.messages == () and result.ignored == 1


@given(st.binary(max_size=64))
def test_arbitrary_binary_never_raises(raw):
    result = sanitize_binary(raw)
    assert accounted(result)


def test_recorded_frames_parse_cleanly():
    """Every text frame in the recorded real-ComfyUI traces comes out as exactly one message."""
    from pathlib import Path

    traces = Path(__file__).resolve().parents[1] / "data" / "comfyui-traces"
    count = 0
    for path in sorted(traces.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event.get("kind") != "ws-text" or event.get("dir") != "server->client" or event.get("text_truncated"):
                continue
            result = sanitize_text(event["text"])
            assert len(result.messages) == 1, (path.name, event["text"][:80])
            assert result.messages[0].type == event["type"]
            count += 1
    assert count > 100
