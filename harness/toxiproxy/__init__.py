"""Toxiproxy for the harness: backend resolution, an async controller, a bundled server.

Contract 4 in docs/architecture.md; how backends are chosen is in docs/toxiproxy.md.
"""
from comfy_chaos.harness.toxiproxy.backend import Backend, resolve_backend
from comfy_chaos.harness.toxiproxy.control import ProxyInfo, ToxicInfo, ToxiproxyControl, ToxiproxyError
from comfy_chaos.harness.toxiproxy.server import ToxiproxyServer

__all__ = [
    "Backend",
    "ProxyInfo",
    "ToxicInfo",
    "ToxiproxyControl",
    "ToxiproxyError",
    "ToxiproxyServer",
    "resolve_backend",
]
