"""Toxiproxy for the harness: backend resolution, an async controller, a bundled server.

Contract 4 in docs/architecture.md; how backends are chosen is in docs/toxiproxy.md.
"""
from harness.toxiproxy.backend import Backend, resolve_backend
from harness.toxiproxy.control import ProxyInfo, ToxicInfo, ToxiproxyControl, ToxiproxyError
from harness.toxiproxy.server import ToxiproxyServer

__all__ = [
    "Backend",
    "ProxyInfo",
    "ToxicInfo",
    "ToxiproxyControl",
    "ToxiproxyError",
    "ToxiproxyServer",
    "resolve_backend",
]
