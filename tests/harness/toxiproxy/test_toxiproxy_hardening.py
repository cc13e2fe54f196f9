"""Hostile or odd API bodies get Toxiproxy's answers, never a 500 or a stored value that
breaks later reads: NaN/Infinity toxicity, 100,000-level nesting, an empty `listen`.
Runs against a real Toxiproxy too (TOXIPROXY_URL)."""
from __future__ import annotations

import pytest

from .toxiproxy_helpers import Api, unique


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("NaN", "invalid character 'N' looking for beginning of value"),
        ("Infinity", "invalid character 'I' looking for beginning of value"),
        ("-Infinity", "invalid character 'I' in numeric literal"),
    ],
)
async def test_non_finite_toxicity_is_a_400_and_nothing_is_stored(api: Api, literal: str, message: str) -> None:
    proxy = await api.create("127.0.0.1:9")
    body = f'{{"name": "t", "type": "latency", "toxicity": {literal}, "attributes": {{"latency": 1}}}}'.encode()
    answer = await api.call("POST", f"/proxies/{proxy['name']}/toxics", raw=body)
    assert answer.status == 400, answer.body
    assert answer.json() == {"error": f"bad request body: {message}", "status": 400}
    await api.toxic(proxy["name"], name="ok", type="latency", attributes={"latency": 1})
    update = await api.call("POST", f"/proxies/{proxy['name']}/toxics/ok", raw=f'{{"toxicity": {literal}}}'.encode())
    assert update.status == 400, update.body
    listing = await api.call("GET", "/proxies")
    assert listing.status == 200, listing.body
    assert [t["toxicity"] for t in listing.json()[proxy["name"]]["toxics"]] == [1]


@pytest.mark.parametrize("path", ["/proxies", "/populate", "/proxies/x/toxics"])
async def test_a_body_nested_100000_levels_is_a_400(api: Api, path: str) -> None:
    answer = await api.call("POST", path, raw=b"[" * 100_000 + b"]" * 100_000)
    assert answer.status == 400 if path != "/proxies/x/toxics" else answer.status in (400, 404), answer.body
    assert answer.status != 500


async def test_an_empty_listen_binds_a_port_the_os_picks(api: Api) -> None:
    name = unique("empty-listen")
    answer = await api.call("POST", "/proxies", {"name": name, "listen": "", "upstream": "127.0.0.1:9"})
    assert answer.status == 201, answer.body
    api.created.append(name)
    host, port = answer.json()["listen"].rsplit(":", 1)
    assert int(port) > 0 and host in ("[::]", "0.0.0.0", "")
