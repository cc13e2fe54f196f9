"""Conformance suite fixtures: runs against whichever Toxiproxy the backend resolves to
(set TOXIPROXY_URL to check a real Toxiproxy; see docs/toxiproxy.md)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import pytest

from comfy_chaos.harness.toxiproxy import ToxiproxyControl
from comfy_chaos.harness.toxiproxy.backend import Backend
from comfy_chaos.harness.toxiproxy.network import ProxyNetwork

from . import toxiproxy_helpers
from .toxiproxy_helpers import Api

FIXTURES = "comfy_chaos.harness.toxiproxy.fixtures"


def pytest_configure(config: pytest.Config) -> None:
    # pytest_plugins is refused outside the top-level conftest; the comfy_chaos plugin
    # normally registers these fixtures already.
    if not config.pluginmanager.has_plugin(FIXTURES):
        config.pluginmanager.import_plugin(FIXTURES)


@pytest.fixture(autouse=True, scope="session")
def proxy_network(toxiproxy_backend: Backend) -> ProxyNetwork:
    """Loopback unless TOXIPROXY_UPSTREAM_HOST / TOXIPROXY_LISTEN_HOST say otherwise."""
    toxiproxy_helpers.NET = ProxyNetwork.from_env(toxiproxy_backend.url)
    return toxiproxy_helpers.NET


@pytest.fixture
async def api(toxiproxy_backend: Backend) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(headers={"User-Agent": "comfy-chaos-tests"}) as session:
        client = Api(toxiproxy_backend.url, session)
        try:
            yield client
        finally:
            for name in client.created:
                await client.call("DELETE", f"/proxies/{quote(name, safe='')}")


@pytest.fixture
async def ctl(toxiproxy_backend: Backend) -> AsyncIterator[ToxiproxyControl]:
    async with ToxiproxyControl(toxiproxy_backend.url, timeout=10.0) as control:
        yield control


@pytest.fixture
def bundled_only(toxiproxy_backend: Backend) -> None:
    if toxiproxy_backend.kind != "bundled":
        pytest.skip("checks a documented deviation of the bundled server")
