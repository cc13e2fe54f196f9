"""A client that leaves during the WebSocket handshake is logged, not a traceback."""
from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig

UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


async def test_a_client_gone_before_the_handshake_is_no_error() -> None:
    server = FakeComfy(FakeConfig(time_scale=0.0, seed=1))
    request = make_mocked_request("GET", "/ws?clientId=gone", headers=UPGRADE)
    request.protocol.transport = None  # what aiohttp sees when the peer left mid-handshake
    response = await server._ws(request)  # noqa: SLF001 - the route handler itself
    assert not response.prepared
    assert all(c.sid != "gone" or c.event != "open" for c in server.ledger.connections)
