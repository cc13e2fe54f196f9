"""Test tools for code that talks to ComfyUI, or to the fake (like `trio.testing`): public API.

- `fakeserve`: start a `FakeComfy` with a fault schedule (`serving`), submit a prompt, read its
  frames on a raw WebSocket (`connect`, `submit`, `run_prompt`), and the workflow `W_BASIC`;
- `rawws`: a raw WebSocket + HTTP client that shows the exact frame bytes (no UTF-8 check, no
  autoping), so a test sees what a fault put on the wire;
- `memconn`: an in-memory socket, ledger and server for driving `FaultEngine` without sockets,
  and the frames of a recorded ComfyUI trace;
- `wsjson`: read JSON frames from an aiohttp WebSocket until a condition holds.

Every wait here is bounded, generously (30–60 s by default): a loaded machine is slow, not
broken, and a passing test never waits for a bound. No pytest dependency.
"""
from comfy_chaos.fake_comfy.testing.fakeserve import (
    W_BASIC,
    connect,
    is_final,
    run_prompt,
    serving,
    submit,
    text_types,
    variant,
)
from comfy_chaos.fake_comfy.testing.memconn import (
    MemConn,
    MemFault,
    MemLedger,
    MemServer,
    binary_frame,
    recorded_frames,
    wait_until,
)
from comfy_chaos.fake_comfy.testing.rawws import BINARY, CLOSE, PING, PONG, TEXT, Frame, RawWs, Refused, raw_http_get
from comfy_chaos.fake_comfy.testing.wsjson import finished, receive_json_until

__all__ = [
    "BINARY", "CLOSE", "PING", "PONG", "TEXT", "W_BASIC", "Frame", "MemConn", "MemFault", "MemLedger", "MemServer",
    "RawWs", "Refused", "binary_frame", "connect", "finished", "is_final", "raw_http_get", "receive_json_until",
    "recorded_frames", "run_prompt", "serving", "submit", "text_types", "variant", "wait_until",
]
