"""Fuzz the bundled Toxiproxy's API: proxy and toxic JSON bodies, raw bodies, names.

Properties (docs/toxiproxy-spec.md section 3): every answer within a bound; an error is
Toxiproxy's — status = the body's `status`, body `{"error": ..., "status": N}` plus a
newline — or a router error (404 text / 405 empty); a 500 only for what Toxiproxy itself
answers 500 (a listen/resolve failure of the address it was given); afterwards the API
answers and a proxy still carries bytes end to end.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfy_chaos.harness.toxiproxy.server import ToxiproxyServer

from .relhelp import PrivateLoop

pytestmark = pytest.mark.slow  # hundreds of hypothesis examples against a server

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
names = st.text(min_size=0, max_size=10) | st.sampled_from(["p", "fz", "a b", "x?y", "é"])
addresses = st.sampled_from(["127.0.0.1:0", "127.0.0.1:1", "localhost:0", "", ":0", "notahost", "127.0.0.1:99999"]) | st.text(max_size=12)
proxy_bodies = st.fixed_dictionaries(
    {},
    optional={"name": names | json_values, "listen": addresses | json_values, "upstream": addresses | json_values,
              "enabled": json_values},
)
toxic_types = st.sampled_from(["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "nope"])
toxic_attributes = st.dictionaries(
    st.sampled_from(["latency", "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes"]) | st.text(max_size=6),
    json_values,
    max_size=4,
)
toxic_bodies = st.fixed_dictionaries(
    {},
    optional={"name": names | json_values, "type": toxic_types | json_values,
              "stream": st.sampled_from(["upstream", "downstream", "UPSTREAM", "sideways"]) | json_values,
              "toxicity": json_values | st.floats(-1, 2), "attributes": toxic_attributes | json_values},
)

NET_ERRORS = ("listen", "address", "dial", "lookup", "port")


class Toxi:
    def __init__(self) -> None:
        self.loop = PrivateLoop()
        self.server = ToxiproxyServer(seed=3)
        self.url = self.loop.run(self.server.start("127.0.0.1", 0))
        self.session = self.loop.run(_session())
        self.upstream: asyncio.Server = self.loop.run(asyncio.start_server(_echo, "127.0.0.1", 0))
        self.upstream_addr = "127.0.0.1:%d" % self.upstream.sockets[0].getsockname()[1]
        self.loop.run(self.call("POST", "/proxies", json={"name": "base", "listen": "127.0.0.1:0", "upstream": self.upstream_addr}))

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, str, bytes]:
        async with self.session.request(method, self.url + path, **kw) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.read()

    def request(self, method: str, path: str, **kw: Any) -> tuple[int, str, bytes]:
        return self.loop.run(self.call(method, path, **kw))

    def delete_all_but_base(self) -> None:
        status, _, raw = self.request("GET", "/proxies")
        assert status == 200, raw
        for name in json.loads(raw):
            # A name with "/" is accepted at creation but can never be addressed (Toxiproxy
            # matches the decoded path, one segment per name): it stays until the server stops.
            if name != "base" and "/" not in name:
                status, _, raw = self.request("DELETE", "/proxies/" + quote(name, safe=""))
                assert status == 204, (name, status, raw)
        self.request("POST", "/reset")

    def close(self) -> None:
        self.upstream.close()
        self.loop.run(self.upstream.wait_closed())
        self.loop.run(self.session.close())
        self.loop.run(self.server.stop())
        self.loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


@pytest.fixture(scope="module")
def toxi() -> Iterator[Toxi]:
    server = Toxi()
    try:
        yield server
    finally:
        server.close()


def _assert_toxiproxy_answer(status: int, ctype: str, raw: bytes, where: str, populate: bool = False) -> None:
    """`populate`: POST /populate marshals its error together with `proxies` as
    application/json without the newline (Toxiproxy's api.go)."""
    if status < 400:
        return
    if status == 405:
        assert raw == b"", f"{where}: 405 with a body {raw!r}"
        return
    if raw == b"404 page not found\n":
        return
    body = json.loads(raw)
    assert isinstance(body, dict) and isinstance(body.get("error"), str), f"{where}: {raw!r}"
    assert body["status"] == status, f"{where}: status {status} but body says {body['status']}"
    if populate and "proxies" in body:
        assert ctype.startswith("application/json") and not raw.endswith(b"\n"), f"{where}: {ctype!r} {raw!r}"
    else:
        assert raw.endswith(b"\n"), f"{where}: error body without Toxiproxy's trailing newline: {raw!r}"
        assert ctype.startswith("text/plain"), f"{where}: error Content-Type {ctype!r}"
    if status == 500:
        assert any(word in body["error"] for word in NET_ERRORS), f"{where}: 500 that Toxiproxy would not give: {raw!r}"


@FUZZ
@given(body=proxy_bodies, method=st.sampled_from(["create", "update", "populate"]))
def test_proxy_json_answers_like_toxiproxy(toxi: Toxi, body: dict, method: str) -> None:
    try:
        if method == "create":
            answer = toxi.request("POST", "/proxies", json=body)
        elif method == "update":
            answer = toxi.request("POST", "/proxies/base", json={k: v for k, v in body.items() if k != "name"})
        else:
            answer = toxi.request("POST", "/populate", json=[body])
        _assert_toxiproxy_answer(*answer, f"{method} {body!r}", populate=method == "populate")
    finally:
        toxi.delete_all_but_base()
        toxi.request("POST", "/proxies/base", json={"listen": "127.0.0.1:0", "upstream": toxi.upstream_addr, "enabled": True})


@FUZZ
@given(body=toxic_bodies, update=st.booleans())
def test_toxic_json_answers_like_toxiproxy(toxi: Toxi, body: dict, update: bool) -> None:
    try:
        answer = toxi.request("POST", "/proxies/base/toxics", json=body)
        _assert_toxiproxy_answer(*answer, f"create toxic {body!r}")
        if update and answer[0] == 200:
            name = json.loads(answer[2])["name"]
            again = toxi.request("POST", f"/proxies/base/toxics/{quote(name, safe='')}", json=body)
            _assert_toxiproxy_answer(*again, f"update toxic {body!r}")
    finally:
        toxi.request("POST", "/reset")


@FUZZ
@given(
    path=st.sampled_from(["/proxies", "/populate", "/proxies/base", "/proxies/base/toxics", "/reset", "/proxies/base/toxics/x"]),
    method=st.sampled_from(["POST", "PATCH", "PUT"]),
    body=st.binary(max_size=120) | st.text(max_size=120).map(str.encode),
)
def test_raw_bodies_answer_like_toxiproxy(toxi: Toxi, path: str, method: str, body: bytes) -> None:
    try:
        answer = toxi.request(method, path, data=body)
        _assert_toxiproxy_answer(*answer, f"{method} {path} {body!r}", populate=path == "/populate")
    finally:
        toxi.delete_all_but_base()


@FUZZ
@given(name=st.text(min_size=1, max_size=12), tail=st.sampled_from(["", "/toxics", "/toxics/t"]))
def test_unknown_names_answer_404_like_toxiproxy(toxi: Toxi, name: str, tail: str) -> None:
    answer = toxi.request("GET", "/proxies/" + quote(name, safe="") + tail)
    _assert_toxiproxy_answer(*answer, f"GET {name!r}{tail}")
    if name != "base":
        assert answer[0] == 404, answer


def test_zz_proxy_still_carries_bytes_after_fuzzing(toxi: Toxi) -> None:
    status, _, raw = toxi.request("GET", "/proxies/base")
    assert status == 200, raw
    listen = json.loads(raw)["listen"]
    host, port = listen.rsplit(":", 1)

    async def round_trip() -> bytes:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(b"still here")
            return await reader.readexactly(10)
        finally:
            writer.close()
            await writer.wait_closed()

    assert toxi.loop.run(round_trip()) == b"still here"
    status, _, raw = toxi.request("GET", "/version")
    assert status == 200
