"""Replay the client side of a recorded ComfyUI trace against the fake and collect both sides.

Generic: every client event of the `.jsonl` (HTTP requests, WebSocket upgrades, text /
binary frames, pings, closes, TCP aborts) is re-sent with the recorded client ids, in the
recorded order. Timing is replaced by the fake's deterministic controls: before each client
event the replayer waits until every WebSocket has received as many frames as the
recording shows before that event, releasing the fake's executor one timer at a time
(`FakeComfy.set_manual_time`). So an interrupt recorded "after `executing 2`" lands after
the fake's `executing 2`, while that node is still running, on any machine speed.

Both sides are normalised (`shape`) before comparison: ids, timestamps and file names
become their JSON types; node ids, message types, counts and states stay exact.
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from comfy_chaos.fake_comfy import FakeComfy
from comfy_chaos.fake_comfy.png import solid_png

DATA = Path(__file__).resolve().parents[1] / "data"
TRACES = DATA / "comfyui-traces"
#: Recording set per protocol profile (fake_comfy.profiles): ComfyUI 0.3.64 and 0.33.0.
TRACE_SETS = {"0.3.64": TRACES, "0.33": DATA / "comfyui-traces-current"}

#: Keys whose values are compared exactly (everything else: by JSON type).
EXACT = {
    "type", "node", "display_node", "node_id", "display_node_id", "real_node_id", "parent_node_id",
    "parent_node", "node_type", "queue_remaining", "state", "status_str", "completed", "class_type",
    "dependent_outputs", "input_name", "subfolder", "image_type", "supports_preview_metadata",
    "max_upload_size", "exception_type", "received_type", "input_config", "details_kind",
    "status", "cancelled", "error", "invalid_ids", "total", "has_more", "offset", "limit", "outputs_count",
    "previewable_outputs_count", "nodeId", "mediaType", "comfyui_version", "required_frontend_version", "os",
    "supports_model_type_tags", "node_replacements", "assets", "supports_v4",
}  # fmt: skip
#: Lists of node ids whose order comes from a Python set in ComfyUI: compared sorted.
SET_ORDER = {"executed", "nodes", "current_outputs"}
UUID_KEY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$|^[0-9a-f]{32}$")
#: Frames of features the fake does not implement (docs/fake_comfy.md): left out of the comparison.
UNSUPPORTED_TYPES: set[str] = set()
UNSUPPORTED_PATHS: tuple[str, ...] = ()


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return type(value).__name__


def shape(value: Any, key: str | None = None) -> Any:
    """Normalised form of a JSON value for comparison."""
    if isinstance(value, dict):
        ids = iter(range(len(value)))
        return {(f"<id{next(ids)}>" if UUID_KEY.match(k) else k): shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        if key in SET_ORDER and all(isinstance(x, str) for x in value):
            return sorted(value)
        if key in EXACT:
            return value
        items = [shape(x) for x in value]
        collapsed: list[Any] = []
        for item in items:
            if not collapsed or collapsed[-1] != item:
                collapsed.append(item)
        return collapsed
    if key in EXACT:
        return value
    return _type_name(value)


def frame_shape(text: str) -> Any:
    message = json.loads(text)
    return shape(message)


def collapse_runs(items: list[Any], max_block: int = 4) -> list[Any]:
    """Collapse immediately repeated blocks (progress ticks: ps, progress, preview, ...)."""
    out = list(items)
    changed = True
    while changed:
        changed = False
        for size in range(1, max_block + 1):
            i = 0
            result: list[Any] = []
            while i < len(out):
                block = out[i : i + size]
                result.extend(block)
                j = i + size
                while len(block) == size and out[j : j + size] == block:
                    j += size
                    changed = True
                i = j
            out = result
    return out


def _binary_shape(event_type: int, data: dict[str, Any]) -> Any:
    item: dict[str, Any] = {"binary": event_type}
    if event_type == 1:
        item["image_format"] = data.get("image_format")
    elif event_type == 4:
        item["metadata"] = shape(data.get("metadata"))
    elif event_type == 3:
        item["node_id"] = data.get("node_id")
    return item


def binary_shape_actual(payload: bytes) -> Any:
    event_type = int.from_bytes(payload[:4], "big")
    if event_type == 1:
        return _binary_shape(1, {"image_format": int.from_bytes(payload[4:8], "big")})
    if event_type == 4:
        length = int.from_bytes(payload[4:8], "big")
        return _binary_shape(4, {"metadata": json.loads(payload[8 : 8 + length])})
    if event_type == 3:
        length = int.from_bytes(payload[4:8], "big")
        return _binary_shape(3, {"node_id": payload[8 : 8 + length].decode()})
    return {"binary": event_type}


@dataclass
class HttpExchange:
    method: str
    path: str
    status: int
    content_type: str | None
    body: Any  # shape, or None when not compared

    def key(self) -> tuple[Any, ...]:
        return (self.method, self.path, self.status, self.content_type, json.dumps(self.body, sort_keys=True))


@dataclass
class ClientConn:
    label: str
    ws: aiohttp.ClientWebSocketResponse | None = None
    conn_id: int | None = None
    frames: list[Any] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # raw JSON text frames, in order
    received: int = 0
    sent: int = 0  # text/binary frames sent by the client
    aborted: bool = False
    reader: asyncio.Task[None] | None = None


@dataclass
class Replay:
    expected_frames: dict[str, list[Any]]
    actual_frames: dict[str, list[Any]]
    expected_texts: dict[str, list[str]]
    actual_texts: dict[str, list[str]]
    expected_http: list[HttpExchange]
    actual_http: list[HttpExchange]
    unsynced: list[str]


def load(name: str, version: str = "0.3.64") -> list[dict[str, Any]]:
    with open(TRACE_SETS[version] / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _is_ws_frame(event: dict[str, Any]) -> bool:
    return event["dir"] == "server->client" and event["kind"] in ("ws-text", "ws-binary", "ws-pong", "ws-close")


def recorded_frame(event: dict[str, Any]) -> Any | None:
    kind = event["kind"]
    if kind == "ws-text":
        message = json.loads(event["text"])
        if message.get("type") in UNSUPPORTED_TYPES:
            return None
        return shape(message)
    if kind == "ws-binary":
        return _binary_shape(event["event_type"], event)
    if kind == "ws-pong":
        return {"pong": event.get("payload_hex")}
    return {"close": event.get("code")}


def _filenames(message: dict[str, Any]) -> list[str]:
    output = message["data"].get("output") or {}
    return [f["filename"] for items in output.values() if isinstance(items, list) for f in items if isinstance(f, dict) and "filename" in f]


def _content_type(headers: Any) -> str | None:
    value = headers.get("Content-Type") if headers else None
    return value.split(";")[0].strip() if value else None


def _body_shape(body: Any, path: str) -> Any:
    return shape(body)


class Replayer:
    """Replays one trace file against a running FakeComfy (in manual time)."""

    def __init__(
        self,
        server: FakeComfy,
        session: aiohttp.ClientSession,
        events: list[dict[str, Any]],
        timeout: float = 10.0,
        late: dict[int, int] | None = None,
    ) -> None:
        """`late` maps a client event index to the event index at which the real server
        actually acted on it (its worker ran ahead of the frames on the wire); the replayer
        sends it at that point of the fake's frame stream instead."""
        self.late = late or {}
        self.server = server
        self.session = session
        self.events = events
        self.timeout = timeout
        self.conns: dict[str, ClientConn] = {}
        self.client_activity = asyncio.Event()
        raw = {e["conn"] for e in events if e["kind"] in ("raw-bytes", "ws-frame-raw")}
        self.skip_conns = raw
        self.expected_frames: dict[str, list[Any]] = {}
        self.expected_texts: dict[str, list[str]] = {}
        self.expected_counts: dict[str, int] = {}
        self.expected_http: list[HttpExchange] = []
        self.actual_http: list[HttpExchange] = []
        self.unsynced: list[str] = []
        self.id_map: dict[str, str] = {}
        self.expected_files: list[str] = []
        self.actual_files: list[str] = []

    def _map(self, value: Any) -> Any:
        """Recorded prompt ids and file names → the fake's, in request paths and bodies."""
        if isinstance(value, str):
            for recorded, actual in list(self.id_map.items()) + list(zip(self.expected_files, self.actual_files, strict=False)):
                if recorded in value:
                    value = value.replace(recorded, actual)
            return value
        if isinstance(value, dict):
            return {k: self._map(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._map(v) for v in value]
        return value

    # -------------------------------------------------------------- receiving
    async def _read(self, conn: ClientConn) -> None:
        assert conn.ws is not None
        while True:
            msg = await conn.ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                message = json.loads(msg.data)
                conn.received += 1
                if message.get("type") == "executed":
                    self.actual_files.extend(_filenames(message))
                if message.get("type") not in UNSUPPORTED_TYPES:
                    conn.frames.append(shape(message))
                    conn.texts.append(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                conn.received += 1
                conn.frames.append(binary_shape_actual(msg.data))
            elif msg.type == aiohttp.WSMsgType.PONG:
                conn.frames.append({"pong": msg.data.hex()})
            elif msg.type == aiohttp.WSMsgType.CLOSE:
                conn.frames.append({"close": msg.data})
            elif msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
            self.client_activity.set()
        self.client_activity.set()

    def _caught_up(self) -> bool:
        for conn in self.conns.values():
            if conn.aborted or conn.ws is None or conn.ws.closed:
                continue
            server_conn = self.server.conns.get(conn.conn_id) if conn.conn_id is not None else None
            if server_conn is not None and (conn.received < server_conn.frames_sent or server_conn.frames_received < conn.sent):
                return False
        return True

    def _reached(self) -> bool:
        for label, count in self.expected_counts.items():
            conn = self.conns.get(label)
            if conn is None or conn.aborted or conn.ws is None or conn.ws.closed:
                continue
            if conn.received < count:
                return False
        return True

    def _queue_target(self, index: int) -> int | None:
        """`queue_remaining` the real server had when WebSocket upgrade `index` was answered.

        Read from the new socket's first `status` (a snapshot taken by the server at that
        moment). Other events return None: the frame counts already pace the fake.
        """
        event = self.events[index]
        if not (event["kind"] == "http-request" and event.get("note") == "websocket upgrade"):
            return None
        for later in self.events[index + 1 :]:
            if later.get("conn") != event["conn"] or later["dir"] != "server->client":
                continue
            if later["kind"] == "http-response" and later["status"] != 101:
                return None
            if later["kind"] == "ws-text":
                return json.loads(later["text"])["data"]["status"]["exec_info"]["queue_remaining"]
        return None

    async def sync(self, where: str, queue_target: int | None = None) -> None:
        """Wait (bounded) until every socket got its recorded number of frames so far,
        and the fake's queue is down to `queue_target` (work the real server had finished)."""
        assert self.server.activity is not None
        async with asyncio.timeout(self.timeout):
            while True:
                self.server.activity.clear()
                self.client_activity.clear()
                behind = queue_target is not None and self.server.core.queue_remaining() > queue_target
                if self._reached() and not behind:
                    return
                if self._caught_up() and self.server.timer_waiting:
                    self.server.release_timer()  # the executor sets `activity` once it moved on
                elif self._caught_up() and self.server.is_quiescent():
                    missing = {
                        label: (self.conns[label].received if label in self.conns else None, count)
                        for label, count in self.expected_counts.items()
                        if label not in self.conns or self.conns[label].received < count
                    }
                    self.unsynced.append(f"{where}: received/expected {missing}")
                    return
                waiters = [asyncio.ensure_future(self.server.activity.wait()), asyncio.ensure_future(self.client_activity.wait())]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()

    def _headers(self, request: dict[str, Any]) -> dict[str, str]:
        """Recorded headers, with the recording server's port (8188) replaced by the fake's."""
        return {k: v.replace(":8188", f":{self.server.port}") for k, v in (request.get("headers") or {}).items()}

    async def _sync_late(self, index: int, where: str) -> None:
        position = self.late[index]
        counts = dict(self.expected_counts)
        for event in self.events[index:position]:
            if _is_ws_frame(event) and event["kind"] in ("ws-text", "ws-binary") and event["conn"] not in self.skip_conns:
                counts[event["conn"]] = counts.get(event["conn"], 0) + 1
        saved, self.expected_counts = self.expected_counts, counts
        try:
            await self.sync(where + " (late)")
        finally:
            self.expected_counts = saved

    # -------------------------------------------------------------- sending
    def _find_response(self, index: int, request: dict[str, Any]) -> dict[str, Any] | None:
        for event in self.events[index + 1 :]:
            if (
                event["dir"] == "server->client"
                and event["kind"] == "http-response"
                and event["conn"] == request["conn"]
                and event.get("path") == request["path"]
                and event.get("method", request["method"]) == request["method"]
            ):
                return event
        return None

    def _expected_exchange(self, request: dict[str, Any], response: dict[str, Any] | None) -> HttpExchange:
        if response is None:
            return HttpExchange(request["method"], request["path"], -1, None, None)
        body = None
        if "body" in response:
            body = _body_shape(response["body"], request["path"])
        elif "body_text" in response:
            body = {"text": response["body_text"]} if response["status"] >= 400 else None
        return HttpExchange(request["method"], request["path"], response["status"], _content_type(response.get("headers")), body)

    async def _http(self, index: int, request: dict[str, Any]) -> None:
        response = self._find_response(index, request)
        expected = self._expected_exchange(request, response)
        compare_body = expected.body is not None
        headers = self._headers(request)
        kwargs: dict[str, Any] = {"headers": headers}
        request = {**request, "path": self._map(request["path"]), "body": self._map(request["body"])} if "body" in request else {**request, "path": self._map(request["path"])}
        if "upload" in request["path"]:
            form = aiohttp.FormData()
            form.add_field("image", solid_png(4, 4, 0xFF0000), filename="chaos_upload.png", content_type="image/png")
            form.add_field("overwrite", "true")
            kwargs["data"] = form
        elif "body" in request:
            kwargs["data"] = json.dumps(request["body"])
        elif "body_text" in request:
            kwargs["data"] = request["body_text"]
        async with self.session.request(request["method"], self.server.base_url + request["path"], **kwargs) as resp:
            raw = await resp.read()
            body: Any = None
            if compare_body:
                if expected.body is not None and "text" in expected.body and not isinstance(expected.body.get("text"), dict):
                    body = {"text": raw.decode("utf-8", "replace")}
                else:
                    try:
                        body = shape(json.loads(raw)) if raw else None
                    except ValueError:
                        body = {"text": raw.decode("utf-8", "replace")}
            actual = HttpExchange(expected.method, expected.path, resp.status, _content_type(resp.headers), body)
            if request["path"].startswith(("/prompt", "/api/prompt")) and request["method"] == "POST" and response is not None:
                recorded_id = (response.get("body") or {}).get("prompt_id")
                if recorded_id is not None and resp.status == 200:
                    self.id_map[str(recorded_id)] = json.loads(raw)["prompt_id"]
        self.expected_http.append(expected)
        self.actual_http.append(actual)

    async def _upgrade(self, index: int, request: dict[str, Any]) -> None:
        label = request["conn"]
        response = self._find_response(index, request)
        expected = self._expected_exchange(request, response)
        conn = ClientConn(label)
        self.conns[label] = conn
        status = 101
        try:
            conn.ws = await self.session.ws_connect(
                self.server.base_url + request["path"],
                headers=self._headers(request),
                autoping=False,
                compress=0,
                max_msg_size=0,
            )
            conn.conn_id = self.server._next_conn_id  # noqa: SLF001 - sequential replay: the newest connection
            conn.reader = asyncio.create_task(self._read(conn))
        except aiohttp.WSServerHandshakeError as exc:
            status = exc.status
        self.expected_http.append(HttpExchange(expected.method, expected.path, expected.status, None, None))
        self.actual_http.append(HttpExchange(request["method"], request["path"], status, None, None))

    def _close_reply_recorded(self, index: int, label: str) -> bool:
        """Whether the recording has the server's close reply for this client close (17 does
        not: its recorder closed without waiting for it)."""
        return any(
            e.get("conn") == label and e["dir"] == "server->client" and e["kind"] == "ws-close"
            for e in self.events[index + 1 :]
        )

    async def _client_frame(self, index: int, event: dict[str, Any]) -> None:
        conn = self.conns[event["conn"]]
        assert conn.ws is not None
        kind = event["kind"]
        if kind == "ws-text":
            text = event["text"]
            if event.get("text_truncated"):
                text = '{"type":"x","data":"' + "a" * (event["len"] - 22) + '"}'
            conn.sent += 1
            try:
                await conn.ws.send_str(text)
            except ConnectionError:
                # over 4 MiB: the server may close with 1009 before the last bytes are written;
                # the close itself is compared with the recording
                conn.sent -= 1
        elif kind == "ws-binary":
            conn.sent += 1
            await conn.ws.send_bytes(base64.b64decode(event.get("b64_prefix", "")))
        elif kind == "ws-ping":
            await conn.ws.ping(bytes.fromhex(event.get("payload_hex", "")))
        elif kind == "ws-close":
            await conn.ws.close(code=event.get("code", 1000))
            if self._close_reply_recorded(index, event["conn"]):
                conn.frames.append({"close": conn.ws.close_code})
        elif kind == "tcp-abort":
            conn.aborted = True
            transport = conn.ws._conn.transport if conn.ws._conn is not None else None  # noqa: SLF001
            if transport is not None:
                transport.abort()

    # -------------------------------------------------------------- driver
    async def run(self) -> Replay:
        self.server.set_manual_time(True)
        try:
            for index, event in enumerate(self.events):
                if event.get("conn") in self.skip_conns:
                    continue
                if _is_ws_frame(event):
                    label = event["conn"]
                    if event["kind"] in ("ws-text", "ws-binary"):
                        self.expected_counts[label] = self.expected_counts.get(label, 0) + 1
                    if event["kind"] == "ws-text" and event.get("type") == "executed":
                        self.expected_files.extend(_filenames(json.loads(event["text"])))
                    frame = recorded_frame(event)
                    if frame is not None:
                        self.expected_frames.setdefault(label, []).append(frame)
                        if event["kind"] == "ws-text":
                            self.expected_texts.setdefault(label, []).append(event["text"])
                    continue
                if event["dir"] != "client->server":
                    continue
                if event["kind"] == "http-request" and event["path"].startswith(UNSUPPORTED_PATHS):
                    continue
                where = f"before event {index} ({event['kind']} {event.get('path', '')})"
                if index in self.late:
                    await self._sync_late(index, where)
                else:
                    await self.sync(where, self._queue_target(index))
                if event["kind"] == "http-request" and event.get("note") == "websocket upgrade":
                    await self._upgrade(index, event)
                elif event["kind"] == "http-request":
                    await self._http(index, event)
                else:
                    await self._client_frame(index, event)
            await self.sync("end of trace")
        finally:
            for conn in self.conns.values():
                if conn.ws is not None and not conn.ws.closed and not conn.aborted:
                    await conn.ws.close()
                if conn.reader is not None:
                    conn.reader.cancel()
            self.server.set_manual_time(False)
        actual = {label: conn.frames for label, conn in self.conns.items()}
        texts = {label: conn.texts for label, conn in self.conns.items()}
        return Replay(
            self.expected_frames, actual, self.expected_texts, texts, self.expected_http, self.actual_http, self.unsynced
        )
