"""HTTP API conformance (docs/toxiproxy-spec.md §3-§4): status codes, bodies, quirks."""
from __future__ import annotations

import asyncio
import socket

import pytest

from . import toxiproxy_helpers
from .toxiproxy_helpers import Api, Upstream, connect, read_until_end, unique

ERROR_TYPE = "text/plain; charset=utf-8"


def assert_api_error(answer, status: int, message: str) -> None:
    assert answer.status == status
    assert answer.headers["Content-Type"] == ERROR_TYPE
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    expected = '{"error":%s,"status":%d}\n' % (_quoted(message), status)
    assert answer.body.decode() == expected


def net():
    return toxiproxy_helpers.NET


def _quoted(text: str) -> str:
    import json

    return json.dumps(text)


async def test_version_is_hand_written_json_with_newline(api: Api) -> None:
    answer = await api.call("GET", "/version")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json;charset=utf-8"
    assert answer.body.startswith(b'{"version": "') and answer.body.endswith(b'"}\n')
    assert answer.headers.get("X-Toxiproxy-Request-Id")


async def test_create_proxy_rewrites_port_zero_and_uses_compact_json(api: Api) -> None:
    name = unique("create")
    answer = await api.call("POST", "/proxies", {"name": name, "listen": net().listen(0), "upstream": "127.0.0.1:9"})
    api.created.append(name)
    assert answer.status == 201
    assert answer.headers["Content-Type"] == "application/json"
    assert not answer.body.endswith(b"\n") and b": " not in answer.body
    proxy = answer.json()
    keys = [k for k in proxy if k != "Logger"]
    assert keys == ["name", "listen", "upstream", "enabled", "toxics"]
    host, port = proxy["listen"].rsplit(":", 1)
    assert host == net().listen_host and int(port) > 0
    assert proxy["enabled"] is True and proxy["toxics"] == [] and proxy["upstream"] == "127.0.0.1:9"
    shown = await api.call("GET", f"/proxies/{name}")
    assert shown.json()["listen"] == proxy["listen"]
    second = (await api.create("127.0.0.1:9", name="a" + name))["name"]
    index = await api.call("GET", "/proxies")
    assert index.json()[name]["listen"] == proxy["listen"]
    names = list(index.json())
    assert names == sorted(names) and second in names  # a Go map: keys sorted


async def test_proxy_errors(api: Api) -> None:
    proxy = await api.create("127.0.0.1:9")
    dup = await api.call("POST", "/proxies", {"name": proxy["name"], "listen": "127.0.0.1:0", "upstream": "x:1"})
    assert_api_error(dup, 409, "proxy already exists")
    assert_api_error(await api.call("POST", "/proxies", {"upstream": "127.0.0.1:9"}), 400, "missing required field: name")
    assert_api_error(await api.call("POST", "/proxies", {"name": unique("n")}), 400, "missing required field: upstream")
    assert_api_error(await api.call("POST", "/proxies", raw=b""), 400, "bad request body: EOF")
    assert_api_error(await api.call("POST", "/proxies", raw=b'{"name": "x", "upstr'), 400, "bad request body: unexpected EOF")
    bad = await api.call("POST", "/proxies", raw=b"{nope}")
    assert bad.status == 400 and bad.json()["error"].startswith("bad request body: invalid character")
    assert_api_error(await api.call("GET", f"/proxies/{unique('missing')}"), 404, "proxy not found")
    assert_api_error(await api.call("DELETE", f"/proxies/{unique('missing')}"), 404, "proxy not found")
    assert (await api.call("GET", "/version")).status == 200  # still running


async def test_listen_port_in_use_is_500_with_os_error(api: Api) -> None:
    holder = await api.create("127.0.0.1:9")
    name = unique("busy")
    answer = await api.call("POST", "/proxies", {"name": name, "listen": holder["listen"], "upstream": "127.0.0.1:9"})
    assert answer.status == 500
    assert answer.headers["Content-Type"] == ERROR_TYPE
    assert answer.json() == {"error": f"listen tcp {holder['listen']}: bind: address already in use", "status": 500}
    assert (await api.call("GET", f"/proxies/{name}")).status == 404
    assert (await api.call("GET", "/version")).status == 200


async def test_router_errors_and_browser_block(api: Api) -> None:
    missing = await api.call("GET", "/nope")
    assert missing.status == 404 and missing.body == b"404 page not found\n"
    assert (await api.call("GET", "/proxies/")).status == 404
    for method, path in (("GET", "/reset"), ("DELETE", "/proxies"), ("PUT", "/proxies/x")):
        answer = await api.call(method, path)
        assert answer.status == 405 and answer.body == b""
    browser = await api.call("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert browser.status == 403 and browser.body == b"User agent not allowed\n"
    assert browser.headers["Content-Type"] == ERROR_TYPE


async def test_toxic_create_defaults_and_shape(api: Api) -> None:
    proxy = (await api.create("127.0.0.1:9"))["name"]
    answer = await api.call("POST", f"/proxies/{proxy}/toxics", {"type": "latency", "attributes": {"latency": 100}})
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/json"
    assert answer.body == (b'{"attributes":{"latency":100,"jitter":0},"name":"latency_downstream",'
                           b'"type":"latency","stream":"downstream","toxicity":1}')
    odd = await api.toxic(proxy, type="slicer", stream="UpStream", toxicity=0.3,
                          attributes={"average_size": 10, "size_variation": 2, "delay": 5})
    assert odd == {"attributes": {"average_size": 10, "size_variation": 2, "delay": 5}, "name": "slicer_UpStream",
                   "type": "slicer", "stream": "UpStream", "toxicity": 0.3}
    every = {
        "bandwidth": {"rate": 0}, "slow_close": {"delay": 0}, "timeout": {"timeout": 0},
        "reset_peer": {"timeout": 0}, "limit_data": {"bytes": 0}, "noop": {},
    }
    for type_name, zero in every.items():
        toxic = await api.toxic(proxy, type=type_name, stream="upstream", toxicity=0)
        assert toxic["attributes"] == zero and toxic["toxicity"] == 0
    listed = (await api.call("GET", f"/proxies/{proxy}/toxics")).json()
    assert [t["name"] for t in listed] == ["slicer_UpStream"] + [f"{t}_upstream" for t in every] + ["latency_downstream"]
    shown = await api.call("GET", f"/proxies/{proxy}/toxics/latency_downstream")
    assert shown.json()["attributes"] == {"latency": 100, "jitter": 0}


async def test_toxic_errors_in_spec_order(api: Api) -> None:
    proxy = (await api.create("127.0.0.1:9"))["name"]
    path = f"/proxies/{proxy}/toxics"
    assert_api_error(await api.call("POST", f"/proxies/{unique('x')}/toxics", {"type": "nope"}), 404, "proxy not found")
    assert_api_error(await api.call("POST", path, raw=b""), 400, "bad request body: EOF")
    assert_api_error(await api.call("POST", path, {"type": "nope", "stream": "sideways"}), 400,
                     "stream was invalid, can be either upstream or downstream")
    assert_api_error(await api.call("POST", path, {"type": "latency", "stream": ""}), 400,
                     "stream was invalid, can be either upstream or downstream")
    assert_api_error(await api.call("POST", path, {"type": "nope"}), 400, "invalid toxic type")
    assert_api_error(await api.call("POST", path, {}), 400, "invalid toxic type")
    await api.toxic(proxy, name="shared", type="latency", stream="upstream")
    assert_api_error(await api.call("POST", path, {"name": "shared", "type": "noop", "stream": "downstream"}), 409,
                     "toxic already exists")
    assert_api_error(await api.call("POST", path, {"type": "bandwidth", "attributes": {"rate": "fast"}}), 400,
                     "bad request body: json: cannot unmarshal string into Go struct field "
                     "BandwidthToxic.attributes.rate of type int64")
    floaty = await api.call("POST", path, {"type": "latency", "attributes": {"latency": 1.5}})
    assert floaty.status == 400 and "LatencyToxic.attributes.latency of type int64" in floaty.json()["error"]
    huge = await api.call("POST", path, {"type": "latency", "toxicity": 3.5e38})  # beyond float32 (found by fuzzing)
    assert huge.status == 400 and "ToxicWrapper.toxicity of type float32" in huge.json()["error"]
    assert_api_error(await api.call("GET", f"{path}/nope"), 404, "toxic not found")
    assert_api_error(await api.call("DELETE", f"{path}/nope"), 404, "toxic not found")
    assert_api_error(await api.call("PATCH", f"{path}/nope", {"toxicity": 1}), 404, "toxic not found")


async def test_toxic_attribute_quirks(api: Api) -> None:
    proxy = (await api.create("127.0.0.1:9"))["name"]
    top_level = await api.toxic(proxy, type="latency", latency=300)  # #119: must be nested
    assert top_level["attributes"] == {"latency": 0, "jitter": 0}
    wild = await api.toxic(proxy, name="wild", type="noop", toxicity=2.5)
    assert wild["toxicity"] == 2.5
    nulls = await api.toxic(proxy, name="nulls", type="limit_data", attributes=None)
    assert nulls["attributes"] == {"bytes": 0}


async def test_toxic_update_merges_and_ignores_identity(api: Api) -> None:
    proxy = (await api.create("127.0.0.1:9"))["name"]
    await api.toxic(proxy, name="lat", type="latency", toxicity=0.5, attributes={"latency": 100, "jitter": 10})
    path = f"/proxies/{proxy}/toxics/lat"
    patched = await api.call("PATCH", path, {"attributes": {"jitter": 20}, "name": "other", "type": "noop",
                                             "stream": "upstream"})
    assert patched.status == 200
    assert patched.json() == {"attributes": {"latency": 100, "jitter": 20}, "name": "lat", "type": "latency",
                              "stream": "downstream", "toxicity": 0.5}
    posted = await api.call("POST", path, {"toxicity": 1})
    assert posted.status == 200 and posted.json()["toxicity"] == 1 and posted.json()["attributes"]["jitter"] == 20
    assert_api_error(await api.call("PATCH", path, raw=b""), 400, "bad request body: EOF")
    assert (await api.call("DELETE", path)).status == 204
    assert_api_error(await api.call("DELETE", path), 404, "toxic not found")


async def test_disabled_proxy_keeps_port_zero_until_enabled(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address, enabled=False)
        assert proxy["listen"] == net().listen(0) and proxy["enabled"] is False
        enabled = (await api.call("PATCH", f"/proxies/{proxy['name']}", {"enabled": True})).json()
        port = int(enabled["listen"].rsplit(":", 1)[1])
        assert port > 0 and enabled["enabled"] is True
        disabled = (await api.call("POST", f"/proxies/{proxy['name']}", {"enabled": False})).json()
        assert disabled["listen"] == enabled["listen"] and disabled["enabled"] is False
        with pytest.raises(ConnectionRefusedError):
            await connect(port)
        again = (await api.call("PATCH", f"/proxies/{proxy['name']}", {"enabled": True})).json()
        assert again["listen"] == enabled["listen"]
        reader, writer = await connect(port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        writer.close()


async def test_update_with_port_zero_moves_the_proxy(api: Api) -> None:
    proxy = await api.create("127.0.0.1:9")
    assert_api_error(await api.call("PATCH", f"/proxies/{proxy['name']}", raw=b""), 400, "bad request body: EOF")
    moved = (await api.call("PATCH", f"/proxies/{proxy['name']}", {"listen": net().listen(0)})).json()
    assert moved["listen"] != proxy["listen"] and moved["enabled"] is True
    kept = (await api.call("PATCH", f"/proxies/{proxy['name']}", {"upstream": "127.0.0.1:9"})).json()
    assert kept["listen"] == moved["listen"]
    bad = await api.call("PATCH", f"/proxies/{proxy['name']}", {"listen": "notahost"})
    assert bad.status == 500 and bad.json()["error"] == "address notahost: missing port in address"


async def test_disable_closes_live_connections(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        port = int(proxy["listen"].rsplit(":", 1)[1])
        reader, writer = await connect(port)
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"hello"
        await api.call("PATCH", f"/proxies/{proxy['name']}", {"enabled": False})
        data, end = await read_until_end(reader)
        assert data == b"" and end in ("eof", "reset")
        server_side = await upstream.wait_conn(0)
        async with asyncio.timeout(10):
            await server_side.ended.wait()
        writer.close()


async def test_delete_proxy_closes_connections_and_forgets_it(api: Api) -> None:
    async with Upstream() as upstream:
        proxy = await api.create(upstream.address)
        port = int(proxy["listen"].rsplit(":", 1)[1])
        await api.toxic(proxy["name"], type="latency", attributes={"latency": 1})
        reader, writer = await connect(port)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        answer = await api.call("DELETE", f"/proxies/{proxy['name']}")
        assert answer.status == 204 and answer.body == b""
        api.created.remove(proxy["name"])
        _, end = await read_until_end(reader)
        assert end in ("eof", "reset")
        with pytest.raises(ConnectionRefusedError):
            await connect(port)
        assert (await api.call("GET", f"/proxies/{proxy['name']}")).status == 404
        writer.close()


async def test_populate(api: Api) -> None:
    fixed = socket.socket()
    fixed.bind(("127.0.0.1", 0))
    port = fixed.getsockname()[1]
    fixed.close()
    first, second = unique("pop"), unique("pop")
    api.created += [first, second]
    body = [{"name": first, "listen": net().listen(port), "upstream": "127.0.0.1:9"},
            {"name": second, "listen": net().listen(0), "upstream": "127.0.0.1:9"}]
    created = await api.call("POST", "/populate", body)
    assert created.status == 201 and created.headers["Content-Type"] == "application/json"
    proxies = created.json()["proxies"]
    assert [p["name"] for p in proxies] == [first, second]
    await api.toxic(first, name="keep", type="noop")
    await api.toxic(second, name="lost", type="noop")
    again = (await api.call("POST", "/populate", body)).json()["proxies"]
    assert again[0]["listen"] == net().listen(port) and [t["name"] for t in again[0]["toxics"]] == ["keep"]
    assert again[1]["listen"] != proxies[1]["listen"] and again[1]["toxics"] == []
    empty = await api.call("POST", "/populate", [])
    assert empty.status == 201 and empty.body == b'{"proxies":null}'
    third = unique("pop")
    invalid = await api.call("POST", "/populate", [{"name": third, "upstream": "127.0.0.1:9"}, {"name": unique("x")}])
    assert invalid.status == 400
    assert invalid.json()["error"] == "missing required field: upstream at proxy 2"
    assert (await api.call("GET", f"/proxies/{third}")).status == 404
    not_list = await api.call("POST", "/populate", {"name": third})
    assert not_list.status == 400
    assert not_list.json()["error"].startswith("bad request body: json: cannot unmarshal object into Go value of type []")


async def test_reset_enables_proxies_and_removes_toxics(api: Api) -> None:
    proxy = await api.create("127.0.0.1:9", enabled=False)
    await api.toxic(proxy["name"], type="latency", attributes={"latency": 5})
    answer = await api.call("POST", "/reset")
    assert answer.status == 204 and answer.body == b""
    after = (await api.call("GET", f"/proxies/{proxy['name']}")).json()
    assert after["enabled"] is True and after["toxics"] == [] and after["listen"] != net().listen(0)


async def test_percent_encoded_names(api: Api) -> None:
    name = unique("q") + "?x"
    await api.create("127.0.0.1:9", name=name)
    assert (await api.call("GET", "/proxies/" + name.replace("?", "%3F"))).json()["name"] == name


async def test_bundled_refuses_values_that_crash_real_toxiproxy(api: Api, bundled_only: None) -> None:
    proxy = (await api.create("127.0.0.1:9"))["name"]
    path = f"/proxies/{proxy}/toxics"
    for body in ({"type": "bandwidth", "attributes": {"rate": -1}},
                 {"type": "slicer", "attributes": {"average_size": 0}},
                 {"type": "slicer", "attributes": {"average_size": 10, "size_variation": -1}}):
        answer = await api.call("POST", path, body)
        assert answer.status == 400 and answer.json()["error"].startswith("bad request body: attributes.")
    await api.toxic(proxy, name="bw", type="bandwidth", attributes={"rate": 10})
    answer = await api.call("PATCH", f"{path}/bw", {"attributes": {"rate": -5}})
    assert answer.status == 400
    assert (await api.call("GET", f"{path}/bw")).json()["attributes"]["rate"] == 10
