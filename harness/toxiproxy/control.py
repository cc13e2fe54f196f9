"""Async control of any Toxiproxy (real or bundled) over its HTTP API.

Every call is bounded by ``timeout``: the harness must never hang on a control call.
Failures raise :class:`ToxiproxyError` naming the call, the HTTP status and
Toxiproxy's message. Toxiproxy's own randomness cannot be seeded, so the harness
applies toxics at toxicity 1.0 and makes its random choices itself.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

log = structlog.get_logger(__name__)


class ToxiproxyError(Exception):
    """A control call failed: ``call`` names it, ``status`` is the HTTP status (None if no answer)."""

    def __init__(self, call: str, message: str, status: int | None = None) -> None:
        super().__init__(f"toxiproxy {call}: {message}" + (f" (HTTP {status})" if status is not None else ""))
        self.call = call
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ToxicInfo:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ToxicInfo:
        return cls(data["name"], data["type"], data["stream"], float(data["toxicity"]), dict(data.get("attributes") or {}))


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[ToxicInfo] = field(default_factory=list)

    @property
    def listen_host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProxyInfo:
        return cls(
            data["name"], data["listen"], data["upstream"], bool(data["enabled"]),
            [ToxicInfo.from_json(t) for t in data.get("toxics") or []],
        )


class ToxiproxyControl:
    """Toxiproxy API client; one aiohttp session, every call bounded by ``timeout`` seconds."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ToxiproxyControl:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, call: str, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,)) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "comfy-chaos"})
        data = None if body is None else json.dumps(body).encode()
        try:
            async with asyncio.timeout(self.timeout):
                async with self._session.request(method, self.url + path, data=data) as response:
                    raw = await response.read()
                    status = response.status
        except TimeoutError:
            raise ToxiproxyError(call, f"no answer from {self.url} within {self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise ToxiproxyError(call, f"cannot reach {self.url}: {exc}") from None
        if status not in expect:
            message = raw.decode(errors="replace").strip()
            try:
                message = json.loads(message)["error"]
            except (ValueError, KeyError, TypeError):
                pass
            raise ToxiproxyError(call, message or "empty answer", status)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ToxiproxyError(call, f"answer is not JSON: {raw[:200]!r}", status) from None

    async def version(self) -> str:
        data = await self._call("version", "GET", "/version")
        return data["version"] if isinstance(data, dict) else str(data)

    async def list_proxies(self) -> dict[str, ProxyInfo]:
        data = await self._call("list_proxies", "GET", "/proxies")
        return {name: ProxyInfo.from_json(p) for name, p in data.items()}

    async def get_proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(await self._call(f"get_proxy({name})", "GET", f"/proxies/{_seg(name)}"))

    async def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True) -> ProxyInfo:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        proxy = ProxyInfo.from_json(await self._call(f"create_proxy({name})", "POST", "/proxies", body, (201,)))
        log.info("toxiproxy.proxy.create", proxy=name, listen=proxy.listen, upstream=upstream)
        return proxy

    async def update_proxy(self, name: str, *, listen: str | None = None, upstream: str | None = None,
                           enabled: bool | None = None) -> ProxyInfo:
        body = {k: v for k, v in (("listen", listen), ("upstream", upstream), ("enabled", enabled)) if v is not None}
        return ProxyInfo.from_json(await self._call(f"update_proxy({name})", "PATCH", f"/proxies/{_seg(name)}", body))

    async def set_enabled(self, name: str, enabled: bool) -> ProxyInfo:
        proxy = await self.update_proxy(name, enabled=enabled)
        log.info("toxiproxy.proxy.enabled" if enabled else "toxiproxy.proxy.disabled", proxy=name)
        return proxy

    async def delete_proxy(self, name: str) -> None:
        await self._call(f"delete_proxy({name})", "DELETE", f"/proxies/{_seg(name)}", expect=(204,))

    async def populate(self, proxies: list[dict[str, Any]]) -> list[ProxyInfo]:
        data = await self._call("populate", "POST", "/populate", proxies, (201,))
        return [ProxyInfo.from_json(p) for p in data.get("proxies") or []]

    async def list_toxics(self, name: str) -> list[ToxicInfo]:
        data = await self._call(f"list_toxics({name})", "GET", f"/proxies/{_seg(name)}/toxics")
        return [ToxicInfo.from_json(t) for t in data]

    async def add_toxic(self, name: str, toxic_name: str, type: str, stream: str = "downstream",
                        attributes: dict[str, Any] | None = None, toxicity: float = 1.0) -> ToxicInfo:
        body = {"name": toxic_name, "type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes or {}}
        call = f"add_toxic({name}/{toxic_name})"
        toxic = ToxicInfo.from_json(await self._call(call, "POST", f"/proxies/{_seg(name)}/toxics", body))
        log.info("toxiproxy.toxic.add", proxy=name, toxic=toxic_name, type=type, stream=stream,
                 attributes=toxic.attributes, toxicity=toxicity)
        return toxic

    async def update_toxic(self, name: str, toxic_name: str, attributes: dict[str, Any] | None = None,
                           toxicity: float | None = None) -> ToxicInfo:
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = attributes
        if toxicity is not None:
            body["toxicity"] = toxicity
        call = f"update_toxic({name}/{toxic_name})"
        return ToxicInfo.from_json(
            await self._call(call, "PATCH", f"/proxies/{_seg(name)}/toxics/{_seg(toxic_name)}", body))

    async def remove_toxic(self, name: str, toxic_name: str) -> None:
        await self._call(f"remove_toxic({name}/{toxic_name})", "DELETE",
                         f"/proxies/{_seg(name)}/toxics/{_seg(toxic_name)}", expect=(204,))
        log.info("toxiproxy.toxic.remove", proxy=name, toxic=toxic_name)

    async def reset(self) -> None:
        await self._call("reset", "POST", "/reset", expect=(204,))


def _seg(name: str) -> str:
    return quote(name, safe="")
