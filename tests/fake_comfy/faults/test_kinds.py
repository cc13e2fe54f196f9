"""Frame transforms: the exact text/bytes each frame kind produces."""
from __future__ import annotations

import json
import random
import struct

import pytest

from comfy_chaos.fake_comfy.faults import KINDS
from comfy_chaos.fake_comfy.faults.kinds import Binary, RawText, Text
from comfy_chaos.fake_comfy.wire import OutFrame

SUCCESS = '{"type": "execution_success", "data": {"prompt_id": "p-1", "timestamp": 1795807724400}}'
FRAME = OutFrame(sid="c0", message_type="execution_success", text=SUCCESS, prompt_id="p-1", task_id="t0")


def apply(kind: str, seed: int = 7, **params):
    k = KINDS[kind]
    return k.transform(FRAME, k.params.model_validate(params), random.Random(seed))


def only_text(result) -> str:
    (send,) = result.sends
    assert isinstance(send, Text)
    return send.text


def test_bom() -> None:
    text = only_text(apply("bom"))
    assert text.encode("utf-8") == b"\xef\xbb\xbf" + SUCCESS.encode()


def test_junk_prefix() -> None:
    assert only_text(apply("junk_prefix", text="garbage")) == "garbage" + SUCCESS
    with pytest.raises(json.JSONDecodeError):
        json.loads(only_text(apply("junk_prefix")))


def test_python_repr_is_the_line_1_column_2_error() -> None:
    frame = OutFrame(sid=None, message_type="executing",
                     text='{"type": "executing", "data": {"node": null, "prompt_id": "p", "ok": true}}')
    k = KINDS["python_repr"]
    (send,) = k.transform(frame, k.params(), random.Random(0)).sends
    assert send.text == "{'type': 'executing', 'data': {'node': None, 'prompt_id': 'p', 'ok': True}}"
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads(send.text)
    assert (info.value.lineno, info.value.colno) == (1, 2)


def test_truncate_at_and_random_point_is_seeded() -> None:
    assert only_text(apply("truncate", at=20)) == SUCCESS[:20]
    a = apply("truncate", seed=1)
    assert only_text(a) == SUCCESS[: a.detail["at"]] and 1 <= a.detail["at"] < len(SUCCESS)
    assert apply("truncate", seed=1) == a
    points = {apply("truncate", seed=s).detail["at"] for s in range(20)}
    assert len(points) > 1


def test_garble_replaces_length_chars_with_ascii() -> None:
    result = apply("garble", at=10, length=5)
    text = only_text(result)
    assert len(text) == len(SUCCESS)
    assert text[:10] == SUCCESS[:10] and text[15:] == SUCCESS[15:]
    assert text[10:15] == result.detail["junk"] and all(0x20 <= ord(c) <= 0x7E for c in text[10:15])
    assert apply("garble", seed=3) == apply("garble", seed=3)


def test_invalid_utf8_is_a_raw_text_frame_that_does_not_decode() -> None:
    result = apply("invalid_utf8", at=0)
    (send,) = result.sends
    assert isinstance(send, RawText)
    assert send.payload == b"\xff" + SUCCESS.encode()
    with pytest.raises(UnicodeDecodeError):
        send.payload.decode("utf-8")
    assert apply("invalid_utf8", at=5, sequence="c328").sends[0].payload == SUCCESS.encode()[:5] + b"\xc3\x28" + SUCCESS.encode()[5:]


def test_heartbeat_noise_and_noise_binary_add_a_frame() -> None:
    assert apply("heartbeat", text="pong").sends == (Text("pong"), Text(SUCCESS))
    assert apply("heartbeat", position="after").sends == (Text(SUCCESS), Text("ping"))
    extra, original = apply("noise").sends
    assert original == Text(SUCCESS)
    message = json.loads(extra.text)
    assert message["type"] == "crystools.monitor" and "cpu_utilization" in message["data"]
    extra, _ = apply("noise_binary", event=77, size=10).sends
    assert isinstance(extra, Binary) and len(extra.data) == 14
    assert struct.unpack(">I", extra.data[:4]) == (77,)


def test_oversize_is_large_valid_json_with_the_original_fields() -> None:
    text = only_text(apply("oversize", size=100_000))
    assert len(text.encode()) == 100_000
    message = json.loads(text)
    assert message["type"] == "execution_success" and message["data"]["prompt_id"] == "p-1"


def test_strip_prompt_id_keeps_comfy_serialisation() -> None:
    assert only_text(apply("strip_prompt_id")) == '{"type": "execution_success", "data": {"timestamp": 1795807724400}}'


def test_duplicate_and_drop() -> None:
    assert apply("duplicate", times=3).sends == (Text(SUCCESS),) * 3
    assert apply("drop").sends == ()


def test_prompt_queued_5xx_entry() -> None:
    kind = KINDS["prompt_queued_5xx"]
    assert kind.category == "http" and kind.transform is None
    assert kind.params.model_validate({}).status == 500
    with pytest.raises(ValueError):
        kind.params.model_validate({"status": 404})
