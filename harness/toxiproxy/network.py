"""Addresses to use when Toxiproxy does not share the test's network namespace.

By default everything is loopback: proxies listen on 127.0.0.1, Toxiproxy dials
upstreams on 127.0.0.1, and clients connect to 127.0.0.1. When Toxiproxy runs in a
container on a Docker network (e.g. a GitHub Actions service container, see
docs/toxiproxy.md), set:

* ``TOXIPROXY_UPSTREAM_HOST``: the name/address under which Toxiproxy reaches the test's
  own servers (upstreams then bind to all interfaces);
* ``TOXIPROXY_LISTEN_HOST``: the address proxies listen on inside Toxiproxy (``0.0.0.0``);
* clients reach proxies on the host of ``TOXIPROXY_URL``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ProxyNetwork:
    listen_host: str = LOOPBACK     # where proxies listen (inside Toxiproxy)
    upstream_host: str = LOOPBACK   # how Toxiproxy reaches our servers
    connect_host: str = LOOPBACK    # how our clients reach the proxies
    bind_host: str = LOOPBACK       # where our servers (upstreams) bind

    @classmethod
    def from_env(cls, backend_url: str, env: Mapping[str, str] | None = None) -> ProxyNetwork:
        env = os.environ if env is None else env
        upstream = env.get("TOXIPROXY_UPSTREAM_HOST", "").strip() or LOOPBACK
        listen = env.get("TOXIPROXY_LISTEN_HOST", "").strip() or LOOPBACK
        connect = urlsplit(backend_url).hostname or LOOPBACK
        if connect in ("localhost", "::1"):
            connect = LOOPBACK
        return cls(listen, upstream, connect, LOOPBACK if upstream == LOOPBACK else "0.0.0.0")

    def listen(self, port: int = 0) -> str:
        return f"{self.listen_host}:{port}"

    def upstream(self, port: int) -> str:
        return f"{self.upstream_host}:{port}"
