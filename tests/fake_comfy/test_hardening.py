"""The fake server against hostile input: writes confined to its own folder, bad bodies and
upload names answered 400, slow readers and half-open connections costing only themselves.

Every wait is bounded; nothing here asserts on wall-clock speed.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
from comfy_chaos.fake_comfy.testing import finished, receive_json_until


def _latent(prefix: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "2": {"class_type": "SaveLatent", "inputs": {"samples": ["1", 0], "filename_prefix": prefix}},
    }


def _image(prefix: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


async def _run(http: aiohttp.ClientSession, server: FakeComfy, prompt: dict[str, Any]) -> dict[str, Any]:
    """Submit `prompt` with a socket open; return its history entry once it has finished."""
    async with http.ws_connect(f"{server.base_url}/ws?clientId=w") as ws:
        async with http.post(f"{server.base_url}/prompt", json={"prompt": prompt, "client_id": "w"}) as resp:
            assert resp.status == 200, await resp.text()
            prompt_id = (await resp.json())["prompt_id"]
        await receive_json_until(ws, finished(prompt_id))
    for _ in range(100):  # the history write follows the last frame by one tick
        async with http.get(f"{server.base_url}/history/{prompt_id}") as resp:
            history = await resp.json()
        if prompt_id in history:
            return history[prompt_id]
        await asyncio.sleep(0.01)
    raise AssertionError("no history entry")


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("node", [_latent, _image])
@pytest.mark.parametrize("where", ["absolute", "dotdot", "inner-dotdot"])
async def test_writing_nodes_never_write_outside_the_output_folder(
    server: FakeComfy, http: aiohttp.ClientSession, tmp_path: Path, node: Any, where: str
) -> None:
    target = tmp_path / "target"
    relative = os.path.relpath(target, os.path.join(server.root, "output"))
    prefix = {"absolute": f"{target}/x", "dotdot": f"{relative}/x", "inner-dotdot": f"a/../{relative}/x"}[where]
    entry = await _run(http, server, node(prefix))
    assert not target.exists(), f"{node.__name__} wrote outside the output folder: {sorted(_files_under(tmp_path))}"
    status = entry["status"]
    assert status["status_str"] == "error"
    error = status["messages"][-1][1]
    assert error["exception_type"] == "Exception"
    assert "Saving image outside the output folder is not allowed" in error["exception_message"]


async def test_save_latent_inside_the_output_folder_still_writes(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    entry = await _run(http, server, _latent("latents/a/../b/ComfyUI"))
    assert entry["status"]["status_str"] == "success"
    (latent,) = entry["outputs"]["2"]["latents"]
    assert latent["subfolder"] == "latents/b"  # normalised, as ComfyUI's get_save_image_path does
    assert os.path.isfile(os.path.join(server.root, "output", "latents", "b", latent["filename"]))


# ---------------------------------------------------------------------------- slow readers


async def _stalled_socket(server: FakeComfy, sid: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, (server.host, server.port))
    request = (f"GET /ws?clientId={sid} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    await loop.sock_sendall(sock, request.encode())
    reply = b""
    async with asyncio.timeout(10):
        while b"\r\n\r\n" not in reply:
            reply += await loop.sock_recv(sock, 1)
    assert reply.startswith(b"HTTP/1.1 101"), reply
    return sock


def _progress(steps: int) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 7}},
        "2": {"class_type": "ChaosProgress", "inputs": {"images": ["1", 0], "steps": steps, "seconds": 0.0, "previews": True}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }


async def test_a_client_that_never_reads_costs_only_itself(server: FakeComfy, http: aiohttp.ClientSession) -> None:
    server.ws_send_buffer_limit = 256 * 1024
    stalled = await _stalled_socket(server, "stalled")
    try:
        conn = next(c for c in server.conns.values() if c.sid == "stalled")
        transport = conn.ws._req.transport  # the kernel's send buffer made small: the test fills it fast
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        highest = 0

        def watch() -> None:
            nonlocal highest
            for c in list(server.conns.values()):
                t = c.ws._req.transport if c.ws._req is not None else None
                if t is not None:
                    highest = max(highest, t.get_write_buffer_size())

        assert server.activity is not None
        async with http.ws_connect(f"{server.base_url}/ws?clientId=normal") as normal:
            for _ in range(3):  # far more than the limit for the stalled client to read
                async with http.post(f"{server.base_url}/prompt", json={"prompt": _progress(3000), "client_id": "stalled"}) as resp:
                    assert resp.status == 200
            async with http.post(f"{server.base_url}/prompt", json={"prompt": _progress(50), "client_id": "normal"}) as resp:
                prompt_id = (await resp.json())["prompt_id"]
            async with asyncio.timeout(60):  # a hang detector: without the fix this never ends
                messages = []
                while True:
                    watch()
                    msg = await normal.receive()
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        data = json.loads(msg.data)
                        messages.append(data)
                        if finished(prompt_id)(data):
                            break
                    else:
                        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        progress = [m for m in messages if m["type"] == "progress" and m["data"]["prompt_id"] == prompt_id]
        assert len(progress) == 50, "the normal client missed frames"
        assert ("stalled", "dropped_slow_reader") in {(c.sid, c.event) for c in server.ledger.connections}
        assert highest <= server.ws_send_buffer_limit, f"a connection buffered {highest} bytes"
    finally:
        stalled.close()


# ---------------------------------------------------------------------------- connection limits

FD_LIMIT = 512  # the server's: 64 connections at most (fake_comfy/connlimit.py)


def _serve_with_fd_limit(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

    out = tmp_path / "serve.out"
    with open(out, "w") as stdout, open(tmp_path / "serve.err", "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "comfy_chaos.harness.cli", "serve", "--port", "0", "--time-scale", "0"],
            stdout=stdout, stderr=stderr, preexec_fn=limit, env=dict(os.environ, COMFY_CHAOS_SCRATCH_DIR=str(tmp_path)),
        )
    deadline = time.monotonic() + 60
    while "listening on" not in out.read_text():  # polling the child's output, bounded
        assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
        time.sleep(0.05)
    return proc, out.read_text().split("listening on ", 1)[1].split()[0]


async def _half_open(host: str, port: int) -> asyncio.StreamWriter | None:
    """A request that never finishes its headers."""
    try:
        async with asyncio.timeout(30):
            _, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /queue HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            await writer.drain()
            return writer
    except (OSError, TimeoutError):
        return None


@pytest.mark.load
async def test_half_open_requests_beyond_the_descriptor_limit_do_not_lock_out_clients(tmp_path: Path) -> None:
    proc, url = _serve_with_fd_limit(tmp_path)
    attackers: list[asyncio.StreamWriter | None] = []
    try:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        attackers = list(await asyncio.gather(*(_half_open(host, int(port)) for _ in range(2 * FD_LIMIT + 76))))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:  # generous: a loaded machine
            async with http.get(f"{url}/queue") as resp:
                assert resp.status == 200
            async with http.ws_connect(f"{url}/ws?clientId=ok") as ws:
                async with http.post(f"{url}/prompt", json={"prompt": _image("ok/x"), "client_id": "ok"}) as resp:
                    assert resp.status == 200, await resp.text()
                    prompt_id = (await resp.json())["prompt_id"]
                await receive_json_until(ws, finished(prompt_id), timeout=120)
    finally:
        for writer in attackers:
            if writer is not None:
                writer.close()
        proc.terminate()
        proc.wait(timeout=30)
    errors = (tmp_path / "serve.err").read_text() + (tmp_path / "serve.out").read_text()
    # Not one traceback per refused connection (126,000 in 40 s before); under load asyncio
    # may still hit the limit for a moment and log it once per second of accept pause.
    assert errors.count("Traceback") < 20 and len(errors.splitlines()) < 1000, errors[-3000:]


async def test_a_request_that_never_finishes_its_headers_is_closed_after_the_header_timeout() -> None:
    server = FakeComfy(FakeConfig(time_scale=0.0))
    server.header_timeout = 0.5
    await server.start()
    try:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"GET /queue HTTP/1.1\r\nHost: x\r\n")
        async with asyncio.timeout(30):  # without a header timeout: aiohttp's keep-alive, 75 s
            assert await reader.read() == b""
        writer.close()
        async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}/queue") as resp:
            assert resp.status == 200  # a complete request on a fresh connection is served
    finally:
        await server.stop()


# ---------------------------------------------------------------------------- bodies


@pytest.mark.parametrize("path", ["/prompt", "/queue", "/history", "/interrupt", "/free", "/api/prompt"])
@pytest.mark.parametrize("depth", [973, 100_000])
async def test_a_deeply_nested_body_is_a_clear_400(server: FakeComfy, http: aiohttp.ClientSession, path: str, depth: int) -> None:
    body = "[" * depth + "]" * depth
    async with http.post(server.base_url + path, data=body, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400, await resp.text()
        assert "nested too deeply" in (await resp.json())["error"]["message"]


async def test_an_input_nested_just_below_the_parser_limit_does_not_poison_history(
    server: FakeComfy, http: aiohttp.ClientSession
) -> None:
    deep = "[" * 960 + "]" * 960  # parses in a shallow stack; the encoder then fails deeper
    body = json.dumps({"prompt": _image("deep/x"), "extra_data": {"deep": "DEEP"}}).replace('"DEEP"', deep)
    async with http.post(f"{server.base_url}/prompt", data=body, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400, await resp.text()
    entry = await _run(http, server, _image("fine/x"))  # the server still works for everyone
    assert entry["status"]["status_str"] == "success"
    async with http.get(f"{server.base_url}/history") as resp:
        assert resp.status == 200


# ---------------------------------------------------------------------------- uploads and bounded state


async def _upload(http: aiohttp.ClientSession, server: FakeComfy, name: str, data: bytes, **fields: str) -> aiohttp.ClientResponse:
    """POST a multipart form built by hand: aiohttp's client refuses a NUL in a header."""
    boundary = "----chaosboundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
             "Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n"]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
              for key, value in fields.items()]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with http.post(f"{server.base_url}/upload/image", data=body, headers=headers) as resp:
        await resp.read()
        return resp


@pytest.mark.parametrize("name", [".", "..", "a\0b.png", "x" * 300 + ".png", "é" * 200 + ".png"])
async def test_upload_with_an_impossible_file_name_is_a_400(server: FakeComfy, http: aiohttp.ClientSession, name: str) -> None:
    resp = await _upload(http, server, name, b"png")
    assert resp.status == 400
    resp = await _upload(http, server, "fine.png", b"png", subfolder="a\0b")
    assert resp.status == 400
    resp = await _upload(http, server, "fine.png", b"png", subfolder="d" * 5000)
    assert resp.status == 400


async def test_uploads_have_a_quota(http: aiohttp.ClientSession) -> None:
    server = FakeComfy(FakeConfig(time_scale=0.0, upload_quota_mb=1))
    await server.start()
    try:
        half = b"\x01" * (600 * 1024)
        assert (await _upload(http, server, "a.png", half)).status == 200
        assert (await _upload(http, server, "a.png", half[:-1] + b"\x02", overwrite="true")).status == 200  # replaces
        resp = await _upload(http, server, "b.png", half)
        assert resp.status == 413
        assert not os.path.exists(os.path.join(server.root, "input", "b.png"))
    finally:
        await server.stop()


async def test_a_bounded_ledger_keeps_neither_every_request_nor_every_client_id(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comfy_chaos.fake_comfy import server as server_module

    monkeypatch.setattr(server_module, "CLIENT_IDS_KEPT", 20)
    server = FakeComfy(FakeConfig(time_scale=0.0, ledger_limit=50))
    await server.start()
    try:
        for i in range(120):
            async with http.get(f"{server.base_url}/queue?pad={'x' * 5000}{i}") as resp:
                assert resp.status == 200
        for i in range(60):
            async with http.ws_connect(f"{server.base_url}/ws?clientId=c{i}") as ws:
                await ws.receive()
        for _ in range(60):
            async with http.post(f"{server.base_url}/prompt", json={"prompt": _image("b/x")}) as resp:
                assert resp.status == 200
        assert len(server.ledger.http) == 50
        assert max(len(record.path) for record in server.ledger.http) <= 512
        assert len(server.ledger.connections) <= 50
        assert len(server.ledger.prompts) <= 50
        assert len(server._connects_per_sid) <= 20
    finally:
        await server.stop()
