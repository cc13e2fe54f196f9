"""Every WebSocket fault kind against the real FakeComfy, seen byte-exactly by a raw client,
and recorded in the ledger."""
from __future__ import annotations

import ast
import json

import pytest

from comfy_chaos.fake_comfy.testing import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    Refused,
    connect,
    run_prompt,
    serving,
    submit,
    text_types,
)

ON_SUCCESS = {"on": "message", "type": "execution_success"}


def success_frames(frames):
    """Frames whose payload mentions execution_success (however damaged)."""
    return [f for f in frames if b"execution_success" in f.payload]


def ledger_faults(server, kind):
    return [f for f in server.ledger.faults if f.kind == kind]


async def one(kind, params=None, when=ON_SUCCESS, **extra):
    spec = {"kind": kind, "when": when, "params": params or {}, **extra}
    async with serving([spec]) as (server, engine):
        ws = await connect(server)
        try:
            hello = await ws.recv()
            assert hello.json()["data"]["sid"] == "c0"
            prompt_id, frames = await run_prompt(server, ws)
        finally:
            await ws.close()
        return server, engine, prompt_id, frames


async def test_bom() -> None:
    server, _, _, frames = await one("bom")
    (frame,) = success_frames(frames)
    assert frame.opcode == TEXT and frame.payload[:3] == b"\xef\xbb\xbf"
    assert json.loads(frame.payload[3:])["type"] == "execution_success"
    (record,) = ledger_faults(server, "bom")
    assert record.sent.encode() == frame.payload and record.target["message"] == "execution_success"


async def test_junk_prefix() -> None:
    server, _, _, frames = await one("junk_prefix", {"text": "<<junk>>"})
    (frame,) = success_frames(frames)
    assert frame.payload.startswith(b"<<junk>>{") and json.loads(frame.payload[8:])["type"] == "execution_success"
    assert ledger_faults(server, "junk_prefix")[0].sent.encode() == frame.payload


async def test_python_repr_gives_line_1_column_2() -> None:
    server, _, prompt_id, frames = await one("python_repr")
    (frame,) = success_frames(frames)
    assert frame.payload.startswith(b"{'type': 'execution_success', 'data': {'prompt_id': '" + prompt_id.encode())
    assert ast.literal_eval(frame.payload.decode())["type"] == "execution_success"
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads(frame.payload)
    assert (info.value.lineno, info.value.colno) == (1, 2)
    assert ledger_faults(server, "python_repr")[0].sent.encode() == frame.payload


async def test_truncate() -> None:
    server, _, _, frames = await one("truncate", {"at": 20})
    cut = [f for f in frames if f.payload == b'{"type": "execution_success'[:20]]
    assert len(cut) == 1 and cut[0].opcode == TEXT
    assert "execution_success" not in text_types(frames)
    (record,) = ledger_faults(server, "truncate")
    assert record.sent == '{"type": "execution_' and record.detail["at"] == 20


async def test_garble() -> None:
    server, _, _, frames = await one("garble", {"at": 2, "length": 6})
    (record,) = ledger_faults(server, "garble")
    junk = record.detail["junk"].encode()
    garbled = [f for f in frames if f.opcode == TEXT and f.payload[2:8] == junk]
    assert len(garbled) == 1 and garbled[0].payload[:2] == b'{"' and record.sent.encode() == garbled[0].payload
    assert garbled[0].payload[8:].startswith(b' "')


async def test_invalid_utf8_text_frame() -> None:
    server, _, _, frames = await one("invalid_utf8", {"at": 0, "sequence": "ff"})
    (frame,) = success_frames(frames)
    assert frame.opcode == TEXT and frame.payload[:1] == b"\xff"
    with pytest.raises(UnicodeDecodeError):
        frame.payload.decode("utf-8")
    assert json.loads(frame.payload[1:])["type"] == "execution_success"
    assert ledger_faults(server, "invalid_utf8")[0].sent == frame.payload


async def test_concat_two_messages_in_one_frame() -> None:
    server, _, _, frames = await one("concat")
    (frame,) = success_frames(frames)
    first, end = json.JSONDecoder().raw_decode(frame.payload.decode())
    second = json.loads(frame.payload[end:])
    assert (first["type"], second["type"]) == ("execution_success", "status")
    assert ledger_faults(server, "concat")[0].sent.encode() == frame.payload


@pytest.mark.parametrize(("kind", "params"), [("heartbeat", {"text": "heartbeat"}), ("noise", {}), ("noise_binary", {"event": 99, "size": 8})])
async def test_extra_frames_before_target(kind, params) -> None:
    server, _, _, frames = await one(kind, params)
    index = text_types(frames).index("execution_success")
    extra = frames[index - 1]
    if kind == "heartbeat":
        assert (extra.opcode, extra.payload) == (TEXT, b"heartbeat")
    elif kind == "noise":
        assert extra.opcode == TEXT and extra.json()["type"] == "crystools.monitor"
    else:
        assert extra.opcode == BINARY and extra.payload[:4] == (99).to_bytes(4, "big") and len(extra.payload) == 12
    (record,) = ledger_faults(server, kind)
    sent = record.sent if isinstance(record.sent, bytes) else record.sent.encode()
    assert sent.startswith(extra.payload)


async def test_oversize() -> None:
    server, _, _, frames = await one("oversize", {"size": 1_000_000})
    (frame,) = success_frames(frames)
    assert len(frame.payload) == 1_000_000 and frame.json()["type"] == "execution_success"
    assert len(ledger_faults(server, "oversize")[0].sent) == 2048  # clipped to 2 KiB in the ledger


async def test_drop_completion_messages() -> None:
    when = {"on": "message", "type": ["execution_success", "executing:null"]}
    async with serving([{"kind": "drop", "when": when, "count": 2}]) as (server, _):
        ws = await connect(server)
        try:
            await ws.recv()
            await run_prompt_until_status_zero(server, ws)
        finally:
            await ws.close()
        types = [r.target["message"] for r in server.ledger.faults]
        assert types == ["execution_success", "executing"] and all(r.kind == "drop" for r in server.ledger.faults)
        record = next(iter(server.ledger.prompts.values()))
        lost = [(m.message_type, m.delivered, m.fault) for m in record.messages if m.fault]
        assert lost == [("execution_success", False, "drop"), ("executing", False, "drop")]


async def run_prompt_until_status_zero(server, ws):
    await submit(server)
    seen = []
    while True:
        frame = await ws.recv(timeout=10)
        seen.append(frame)
        if frame.opcode == TEXT and b'"queue_remaining": 0' in frame.payload:
            return seen


async def test_duplicate() -> None:
    server, _, _, frames = await one("duplicate", {"times": 2})
    where = [i for i, f in enumerate(frames) if b"execution_success" in f.payload]
    assert len(where) == 2 and where[1] == where[0] + 1 and frames[where[0]].payload == frames[where[1]].payload


async def test_reorder_success_after_status() -> None:
    server, _, _, frames = await one("reorder", {"after": 1})
    assert text_types(frames)[-3:] == ["status", "execution_success", "executing"]
    assert ledger_faults(server, "reorder")[0].detail["after"] == ["status"]


async def test_delay_keeps_order() -> None:
    server, _, _, frames = await one("delay", {"seconds": 0.01})
    assert text_types(frames)[-3:] == ["execution_success", "status", "executing"]
    assert ledger_faults(server, "delay")[0].detail["seconds"] == pytest.approx(0.01)


async def test_strip_prompt_id() -> None:
    server, _, _, frames = await one("strip_prompt_id")
    (frame,) = success_frames(frames)
    assert "prompt_id" not in frame.json()["data"] and "timestamp" in frame.json()["data"]


async def test_close_with_code_loses_the_frame() -> None:
    server, _, _, frames = await one("close", {"code": 4001}, when={"on": "message", "type": "execution_start"})
    assert frames[-1].opcode == CLOSE and frames[-1].close_code == 4001
    assert "execution_start" not in text_types(frames)
    assert [c.event for c in server.ledger.connections][-1] == "close"
    detail = ledger_faults(server, "close")[0].detail
    assert (detail["frame_lost"], detail["code"], detail["spec_index"]) == (True, 4001, 0)


async def test_abort_on_node_start_mid_task() -> None:
    server, _, _, frames = await one("abort", when={"on": "node_start", "task": "t0", "node_index": 1})
    assert frames[-1].opcode == 0  # EOF, no close frame
    executing = [f.json()["data"]["node"] for f in frames if f.opcode == TEXT and f.json()["type"] == "executing"]
    assert len(executing) == 1  # the first node's executing arrived, the second's did not
    (record,) = ledger_faults(server, "abort")
    assert record.target["message"] == "executing"


async def test_silent_window_sends_nothing() -> None:
    spec = {"kind": "silent", "when": {"on": "message", "type": "execution_start"}, "count": None}
    async with serving([spec]) as (server, engine):
        ws = await connect(server)
        try:
            await ws.recv()
            await submit(server)
            frames = []
            while True:
                frame = await ws.recv(timeout=10)
                frames.append(frame)
                if b'"queue_remaining": 1' in frame.payload and len(frames) >= 2:
                    break
            await wait_for_final_drop(server)
            drops = [r.target["message"] for r in ledger_faults(server, "silent") if "message" in r.target]
            assert "execution_success" in drops
            await engine.heal_all()
            await ws.send(PING, b"hi")
            frame = await ws.recv()
            assert frame.opcode == PONG and frame.payload == b"hi"
        finally:
            await ws.close()
        assert drops[0] == "execution_start"


async def wait_for_final_drop(server):
    import asyncio

    async with asyncio.timeout(10):
        # W_BASIC: four nodes' executing plus the final one (node null), all swallowed
        while sum(r.kind == "silent" and r.target.get("message") == "executing" for r in server.ledger.faults) < 5:
            await asyncio.sleep(0.01)


async def test_silent_leaves_pings_unanswered() -> None:
    spec = {"kind": "silent", "when": {"on": "frame", "nth": 1}, "count": None}
    async with serving([spec]) as (server, _):
        ws = await connect(server)
        try:
            await ws.send(PING, b"are you there")
            with pytest.raises(TimeoutError):
                await ws.recv(timeout=0.5)
        finally:
            await ws.close()


async def test_refuse_then_accept() -> None:
    async with serving([{"kind": "refuse", "when": {"at": 0}, "count": 1}]) as (server, engine):
        import asyncio

        async with asyncio.timeout(5):
            while engine.fired_specs() != [0]:
                await asyncio.sleep(0.01)
        with pytest.raises(Refused) as info:
            await connect(server)
        assert info.value.status == 503
        ws = await connect(server, api=True)
        try:
            assert (await ws.recv()).json()["type"] == "status"
        finally:
            await ws.close()
        assert [c.event for c in server.ledger.connections][:2] == ["refused", "open"]
        assert [r.kind for r in server.ledger.faults] == ["refuse", "refuse"]  # window start, the refusal


async def test_abort_on_reconnect_before_its_first_frame() -> None:
    async with serving([{"kind": "abort", "when": {"on": "reconnect", "client": "c0"}}]) as (server, _):
        first = await connect(server)
        try:
            assert (await first.recv()).json()["data"]["sid"] == "c0"
        finally:
            await first.close()
        second = await connect(server)
        try:
            assert (await second.recv()).opcode == 0  # dropped before the status frame
        finally:
            await second.close()
        (record,) = server.ledger.faults
        assert record.kind == "abort" and record.target["message"] == "status" and record.target["conn_id"] == 2


async def test_toxic_is_in_place_before_the_triggering_frame_goes_out() -> None:
    import asyncio

    spec = {"kind": "toxic", "when": {"on": "message", "type": "execution_start"},
            "toxic": {"type": "timeout", "attributes": {"timeout": 0}}}
    async with serving([spec]) as (server, engine):
        seen_at_call: list[list[str]] = []

        async def external(toxic_spec) -> None:
            (record,) = server.ledger.prompts.values()
            seen_at_call.append([m.message_type for m in record.messages if m.delivered])
            await asyncio.sleep(0.05)  # the harness talking to Toxiproxy

        engine.external = external
        ws = await connect(server)
        try:
            await ws.recv()
            _, frames = await run_prompt(server, ws)
        finally:
            await ws.close()
        assert seen_at_call == [[]]  # execution_start had not been sent when the toxic was applied
        assert "execution_start" in text_types(frames)  # held, then sent once the toxic was in place
        assert engine.fired_specs() == [0]
        assert not [r for r in server.ledger.faults if r.kind == "toxic"]  # the harness logs toxics
