"""Types shared by the fake server's transport and its fault layer.

`OutFrame` is one frame the protocol core wants to send to one socket; `WsConn` is
what the fault layer may do with that socket. Keeping both here (and free of aiohttp)
lets the fault layer be tested with an in-memory connection.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutFrame:
    """One outgoing WebSocket frame, before any fault is applied.

    Exactly one of `text` (a JSON text frame, already serialised the way ComfyUI
    serialises it) and `data` (a binary frame) is set. `message_type` is the JSON
    `type` field, or `"binary:<event>"` for binary frames.
    """

    sid: str | None
    message_type: str
    text: str | None = None
    data: bytes | None = None
    prompt_id: str | None = None
    task_id: str | None = None
    node: str | None = None


class WsConn(Protocol):
    """One live WebSocket connection as the fault layer sees it."""

    conn_id: int
    sid: str
    frames_sent: int
    reconnect_index: int

    async def send_text(self, text: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def send_raw_text_frame(self, payload: bytes) -> None:
        """Send a text frame whose payload bytes are sent as is (may be invalid UTF-8)."""

    async def close(self, code: int = 1000) -> None: ...

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""

    def set_silent(self, silent: bool) -> None:
        """Optional: while silent, the transport must not answer client PINGs (no autoping).

        The fault layer calls it for the `silent` fault (socket open, nothing sent, pings
        unanswered) and calls it again with False when the window ends. Transports that do
        not implement it leave pings answered; the fault layer checks with `hasattr`.
        """
