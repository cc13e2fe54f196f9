"""Which Toxiproxy the harness talks to, started and stopped as needed.

Order: ``TOXIPROXY_URL`` (an existing server, checked with ``GET /version``) → a
``toxiproxy-server`` binary on PATH (started on a free loopback port) → the bundled
server (in this process's event loop by default, or as a subprocess).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from comfy_chaos.harness.toxiproxy.cli import READY_PREFIX
from comfy_chaos.harness.toxiproxy.control import ToxiproxyControl, ToxiproxyError
from comfy_chaos.harness.toxiproxy.server import VERSION, ToxiproxyServer

log = structlog.get_logger(__name__)

Kind = Literal["env", "binary", "bundled"]
BundledMode = Literal["inprocess", "subprocess"]
ENV_URL = "TOXIPROXY_URL"
BINARY = "toxiproxy-server"


class BackendError(RuntimeError):
    """No usable Toxiproxy: the message says which one was tried and why it failed."""


@dataclass
class Backend:
    """A Toxiproxy API endpoint; ``stop()`` stops only what resolution started."""

    kind: Kind
    url: str
    version: str
    detail: dict[str, Any] = field(default_factory=dict)
    _stop: Callable[[], Awaitable[None]] | None = None

    def describe(self) -> dict[str, Any]:
        """Run metadata: kind, url, version (+ how the bundled server runs)."""
        return {"kind": self.kind, "url": self.url, "version": self.version, **self.detail}

    async def stop(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            await stop()

    async def __aenter__(self) -> Backend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _version(url: str, timeout: float) -> str:
    async with ToxiproxyControl(url, timeout=timeout) as ctl:
        return await ctl.version()


def free_port() -> int:
    """A currently free loopback port (for servers that cannot report an ephemeral one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _stop_process(proc: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _drain(stream: asyncio.StreamReader | None, sink: list[str]) -> None:
    if stream is None:
        return
    while line := await stream.readline():
        sink.append(line.decode(errors="replace").rstrip())
        del sink[:-50]


async def _start_binary(path: str, timeout: float) -> Backend:
    """Start ``toxiproxy-server`` on a free port; retry if the port was taken meanwhile
    (the real server keeps running without an API when it cannot bind, spec §2)."""
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = await asyncio.create_subprocess_exec(
            path, "-host", "127.0.0.1", "-port", str(port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output: list[str] = []
        reader = asyncio.get_running_loop().create_task(_drain(proc.stdout, output))
        try:
            version = await _wait_api(url, proc, output, timeout)
        except BackendError as exc:
            last_error = str(exc)
            await _stop_process(proc)
            reader.cancel()
            continue
        except BaseException:
            await _stop_process(proc)
            reader.cancel()
            raise

        async def stop(proc: asyncio.subprocess.Process = proc, reader: asyncio.Task[None] = reader) -> None:
            await _stop_process(proc)
            reader.cancel()

        return Backend("binary", url, version, {"path": path, "pid": proc.pid}, stop)
    raise BackendError(f"{path} did not serve its API: {last_error}")


async def _wait_api(url: str, proc: asyncio.subprocess.Process, output: list[str], timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            while True:
                if proc.returncode is not None:
                    raise BackendError(f"exited with {proc.returncode}: {' | '.join(output[-5:])}")
                if any("Server finished with error" in line for line in output):
                    raise BackendError(f"cannot bind {url}: {' | '.join(output[-5:])}")
                try:
                    return await _version(url, timeout=1.0)
                except ToxiproxyError:
                    await asyncio.sleep(0.05)
    except TimeoutError:
        raise BackendError(f"API at {url} did not answer within {timeout:g} s: {' | '.join(output[-5:])}") from None


async def _start_bundled_subprocess(seed: int | None, timeout: float) -> Backend:
    args = [sys.executable, "-m", "comfy_chaos.harness.toxiproxy.cli", "--host", "127.0.0.1", "--port", "0"]
    if seed is not None:
        args += ["--seed", str(seed)]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                line = (await proc.stdout.readline()).decode(errors="replace")
                if not line:
                    raise BackendError(f"bundled server exited early ({await proc.wait()}): {' | '.join(output[-5:])}")
                if line.startswith(READY_PREFIX):
                    url = line[len(READY_PREFIX):].strip()
                    break
                output.append(line.rstrip())
        version = await _version(url, timeout)
    except TimeoutError:
        await _stop_process(proc)
        raise BackendError(f"bundled server subprocess did not start within {timeout:g} s") from None
    except BaseException:
        await _stop_process(proc)
        raise
    reader = asyncio.get_running_loop().create_task(_drain(proc.stdout, output))

    async def stop() -> None:
        await _stop_process(proc)
        reader.cancel()

    return Backend("bundled", url, version, {"mode": "subprocess", "pid": proc.pid, "seed": seed}, stop)


async def _start_bundled_inprocess(seed: int | None) -> Backend:
    server = ToxiproxyServer(seed=seed)
    url = await server.start("127.0.0.1", 0)
    return Backend("bundled", url, VERSION, {"mode": "inprocess", "seed": seed}, server.stop)


async def resolve_backend(
    *,
    env: Mapping[str, str] | None = None,
    use_binary: bool = True,
    bundled: BundledMode = "inprocess",
    seed: int | None = None,
    timeout: float = 10.0,
) -> Backend:
    """Find or start a Toxiproxy. ``env`` defaults to ``os.environ``; every wait is bounded by ``timeout``."""
    env = os.environ if env is None else env
    url = env.get(ENV_URL, "").strip()
    if url:
        url = url.rstrip("/")
        if "://" not in url:
            url = "http://" + url
        try:
            version = await _version(url, timeout=min(timeout, 5.0))
        except ToxiproxyError as exc:
            raise BackendError(f"{ENV_URL}={url} is not a reachable Toxiproxy: {exc}") from None
        backend = Backend("env", url, version)
    elif use_binary and (path := shutil.which(BINARY, path=env.get("PATH"))):
        backend = await _start_binary(path, timeout)
    elif bundled == "subprocess":
        backend = await _start_bundled_subprocess(seed, timeout)
    elif bundled == "inprocess":
        backend = await _start_bundled_inprocess(seed)
    else:
        raise BackendError(f"unknown bundled mode {bundled!r} (expected 'inprocess' or 'subprocess')")
    log.info("toxiproxy.backend", **backend.describe())
    return backend
