"""An in-memory `WsConn`, fault ledger and server, and recorded ComfyUI frame streams: drive
`FaultEngine` without sockets."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comfy_chaos.fake_comfy.wire import OutFrame


@dataclass
class MemConn:
    """Records every action the fault layer takes on the socket, in order."""

    sid: str = "c0"
    conn_id: int = 1
    reconnect_index: int = 0
    frames_sent: int = 0
    wire: list[tuple[Any, ...]] = field(default_factory=list)
    silent: list[bool] = field(default_factory=list)

    async def send_text(self, text: str) -> None:
        self.frames_sent += 1
        self.wire.append(("text", text))

    async def send_bytes(self, data: bytes) -> None:
        self.frames_sent += 1
        self.wire.append(("bytes", data))

    async def send_raw_text_frame(self, payload: bytes) -> None:
        self.frames_sent += 1
        self.wire.append(("raw", payload))

    async def close(self, code: int = 1000) -> None:
        self.wire.append(("close", code))

    def abort(self) -> None:
        self.wire.append(("abort",))

    def set_silent(self, silent: bool) -> None:
        self.silent.append(silent)

    def texts(self) -> list[str]:
        return [w[1] for w in self.wire if w[0] == "text"]


@dataclass
class MemFault:
    t: float
    kind: str
    target: dict[str, Any]
    detail: dict[str, Any]
    sent: bytes | str | None


class MemLedger:
    """What `FaultEngine` writes to (the `FaultLedger` protocol): faults and message marks."""

    def __init__(self) -> None:
        self.faults: list[MemFault] = []
        self.marks: list[tuple[str, int, bool | None, str | None]] = []

    def record_fault(self, t: float, kind: str, target: dict[str, Any], detail: dict[str, Any] | None = None,
                     sent: bytes | str | None = None) -> MemFault:
        record = MemFault(t, kind, target, detail or {}, sent)
        self.faults.append(record)
        return record

    def mark_message(self, prompt_id: str, index: int, *, delivered: bool | None = None,
                     fault: str | None = None) -> None:
        self.marks.append((prompt_id, index, delivered, fault))


class MemServer:
    """What `FaultEngine.bind` needs from FakeComfy: a ledger and restart()."""

    def __init__(self) -> None:
        self.ledger = MemLedger()
        self.restarts: list[bool] = []
        self.restarted = asyncio.Event()

    async def restart(self, keep_history: bool = False) -> None:
        self.restarts.append(keep_history)
        self.restarted.set()


async def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Yield to the loop until `condition()` holds (bounded)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0)


def recorded_frames(trace: Path, conn: str = "A", task_id: str = "t0") -> list[OutFrame]:
    """The server→client text frames of one connection of a recorded real-ComfyUI trace
    (a JSON-lines file in the format of tests/data/comfyui-traces)."""
    frames = []
    for line in trace.read_text().splitlines():
        event = json.loads(line)
        if event["kind"] != "ws-text" or event["dir"] != "server->client" or event["conn"] != conn:
            continue
        data = json.loads(event["text"])["data"]
        prompt_id = data.get("prompt_id")
        frames.append(
            OutFrame(
                sid=None if event["type"] == "status" else "c0",
                message_type=event["type"],
                text=event["text"],
                prompt_id=prompt_id,
                task_id=task_id if prompt_id else None,
                node=data.get("node"),
            )
        )
    return frames


def binary_frame(event: int = 1, payload: bytes = b"\x00\x00\x00\x02\x89PNG") -> OutFrame:
    return OutFrame(sid="c0", message_type=f"binary:{event}", data=event.to_bytes(4, "big") + payload,
                    task_id="t0")
