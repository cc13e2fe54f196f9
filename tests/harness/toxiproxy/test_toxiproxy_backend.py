"""Backend resolution (TOXIPROXY_URL → toxiproxy-server on PATH → bundled) and the controller."""
from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest

from comfy_chaos import harness
from comfy_chaos.harness.toxiproxy import ToxiproxyControl, ToxiproxyError, resolve_backend
from comfy_chaos.harness.toxiproxy.backend import Backend, BackendError
from comfy_chaos.harness.toxiproxy.network import ProxyNetwork

from . import toxiproxy_helpers
from .toxiproxy_helpers import Upstream, connect, round_trip, unique

REPO_ROOT = Path(harness.__file__).resolve().parent.parent
LOCAL = ProxyNetwork()  # servers started by these tests are on loopback, whatever TOXIPROXY_URL says


async def assert_serves(url: str) -> str:
    async with ToxiproxyControl(url, timeout=5) as ctl:
        return await ctl.version()


async def assert_gone(url: str) -> None:
    async with ToxiproxyControl(url, timeout=2) as ctl:
        with pytest.raises(ToxiproxyError) as info:
            await ctl.version()
    assert info.value.call == "version"


async def test_bundled_inprocess_is_the_default_without_env_or_binary() -> None:
    backend = await resolve_backend(env={"PATH": ""}, seed=7)
    try:
        assert backend.kind == "bundled"
        description = backend.describe()
        assert description["kind"] == "bundled" and description["mode"] == "inprocess" and description["seed"] == 7
        assert description["url"] == backend.url and backend.url.startswith("http://127.0.0.1:")
        assert await assert_serves(backend.url) == description["version"]
    finally:
        await backend.stop()
    await assert_gone(backend.url)


async def test_bundled_subprocess_mode() -> None:
    async with await resolve_backend(env={"PATH": ""}, bundled="subprocess", timeout=30) as backend:
        assert backend.kind == "bundled" and backend.describe()["mode"] == "subprocess"
        pid = backend.describe()["pid"]
        await assert_serves(backend.url)
    await assert_gone(backend.url)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_env_url_is_used_and_not_stopped() -> None:
    async with await resolve_backend(env={"PATH": ""}) as bundled:
        backend = await resolve_backend(env={"TOXIPROXY_URL": bundled.url + "/", "PATH": ""})
        assert backend.kind == "env" and backend.url == bundled.url
        await backend.stop()
        await assert_serves(bundled.url)


async def test_env_url_unreachable_is_a_clear_error() -> None:
    async with Upstream("sink", net=LOCAL) as silent:  # accepts, never answers
        with pytest.raises(BackendError, match="TOXIPROXY_URL=http://127.0.0.1:") as info:
            await resolve_backend(env={"TOXIPROXY_URL": f"127.0.0.1:{silent.port}"}, timeout=0.5)
    assert "no answer" in str(info.value)


async def test_toxiproxy_server_on_path_is_started_and_stopped(tmp_path: Path) -> None:
    script = tmp_path / "toxiproxy-server"
    script.write_text(
        f"#!/bin/sh\ncd {REPO_ROOT}\nexec {sys.executable} -m comfy_chaos.harness.toxiproxy.cli \"$@\"\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    backend: Backend = await resolve_backend(env={"PATH": str(tmp_path)}, timeout=30)
    try:
        assert backend.kind == "binary" and backend.describe()["path"] == str(script)
        pid = backend.describe()["pid"]
        await assert_serves(backend.url)
    finally:
        await backend.stop()
    await assert_gone(backend.url)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_control_call_timeout_names_the_call() -> None:
    async with Upstream("sink", net=LOCAL) as silent:
        async with ToxiproxyControl(f"http://127.0.0.1:{silent.port}", timeout=0.3) as ctl:
            with pytest.raises(ToxiproxyError) as info:
                await ctl.add_toxic("web", "lag", "latency", "downstream", {"latency": 1})
    assert info.value.call == "add_toxic(web/lag)" and info.value.status is None
    assert "within 0.3 s" in str(info.value)


async def test_control_round_trip(ctl: ToxiproxyControl) -> None:
    async with Upstream() as upstream:
        name = unique("ctl")
        proxy = await ctl.create_proxy(name, upstream=upstream.address, listen=toxiproxy_helpers.NET.listen(0))
        try:
            assert proxy.listen_host == toxiproxy_helpers.NET.listen_host and proxy.listen_port > 0
            toxic = await ctl.add_toxic(name, "lag", "latency", "downstream", {"latency": 100})
            assert toxic.attributes == {"latency": 100, "jitter": 0} and toxic.toxicity == 1.0
            reader, writer = await connect(proxy.listen_port)
            assert await round_trip(reader, writer, b"hi") >= 0.1
            updated = await ctl.update_toxic(name, "lag", {"jitter": 5}, toxicity=0.5)
            assert updated.attributes == {"latency": 100, "jitter": 5} and updated.toxicity == 0.5
            assert [t.name for t in await ctl.list_toxics(name)] == ["lag"]
            await ctl.remove_toxic(name, "lag")
            assert (await ctl.get_proxy(name)).toxics == []
            assert (await ctl.set_enabled(name, False)).enabled is False
            with pytest.raises(ConnectionRefusedError):
                await connect(proxy.listen_port)
            assert (await ctl.set_enabled(name, True)).listen == proxy.listen
            assert name in await ctl.list_proxies()
            with pytest.raises(ToxiproxyError) as info:
                await ctl.add_toxic(name, "bad", "no_such_type")
            assert info.value.status == 400 and info.value.message == "invalid toxic type"
            writer.close()
        finally:
            await ctl.delete_proxy(name)
        with pytest.raises(ToxiproxyError) as missing:
            await ctl.get_proxy(name)
        assert missing.value.status == 404 and missing.value.message == "proxy not found"


async def test_stop_is_idempotent_and_bounded() -> None:
    backend = await resolve_backend(env={"PATH": ""})
    await backend.stop()
    async with asyncio.timeout(5):
        await backend.stop()


async def _toxicity_pattern(seed: int) -> list[bool]:
    """Which of 16 sequential connections a 0.5-toxicity limit_data toxic cut off."""
    async with await resolve_backend(env={"PATH": ""}, seed=seed) as backend, Upstream(net=LOCAL) as upstream:
        async with ToxiproxyControl(backend.url, timeout=10) as ctl:
            proxy = await ctl.create_proxy("seeded", upstream=upstream.address)
            await ctl.add_toxic("seeded", "cut", "limit_data", "upstream", {"bytes": 0}, toxicity=0.5)
            cut = []
            for _ in range(16):
                reader, writer = await connect(proxy.listen_port, "127.0.0.1")
                writer.write(b"?")
                await writer.drain()
                async with asyncio.timeout(10):
                    data = await reader.read(1)
                cut.append(data == b"")
                writer.close()
            return cut


async def test_bundled_seed_makes_toxicity_draws_reproducible() -> None:
    first = await _toxicity_pattern(seed=1234)
    assert first == await _toxicity_pattern(seed=1234)
    assert any(first) and not all(first), first


async def test_cli_config_populates_at_start(tmp_path: Path) -> None:
    config = tmp_path / "proxies.json"
    config.write_text('[{"name": "from-config", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}]')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comfy_chaos.harness.toxiproxy.cli", "-host", "127.0.0.1", "-port", "0", "-config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while not (line := (await proc.stdout.readline()).decode()).startswith("comfy-chaos toxiproxy listening on "):
                assert line, "server exited before it was ready"
        url = line.rsplit(" ", 1)[1].strip()
        async with ToxiproxyControl(url, timeout=5) as ctl:
            proxies = await ctl.list_proxies()
        assert list(proxies) == ["from-config"] and proxies["from-config"].listen_port > 0
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
