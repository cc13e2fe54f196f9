"""toxiproxy-python 0.1.1, unchanged, against the session backend (spec §9)."""
from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from . import toxiproxy_helpers
from .toxiproxy_helpers import unique

WAIT = 10.0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_address() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer((toxiproxy_helpers.NET.bind_host, 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield toxiproxy_helpers.NET.upstream(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(WAIT)


def listen() -> str:
    return toxiproxy_helpers.NET.listen(0)


def round_trip(listen: str, payload: bytes = b"ping") -> float:
    port = int(listen.rsplit(":", 1)[1])
    with socket.create_connection((toxiproxy_helpers.NET.connect_host, port), timeout=WAIT) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the echo arrived"
            received += chunk
        assert received == payload
        return time.monotonic() - start


def test_create_toxics_destroy(toxiproxy_client, echo_address: str) -> None:
    name = unique("py")
    proxy = toxiproxy_client.create(upstream=echo_address, name=name, listen=listen())
    try:
        assert proxy.listen.startswith(toxiproxy_helpers.NET.listen_host + ":") and not proxy.listen.endswith(":0")
        assert proxy.enabled is True
        round_trip(proxy.listen)
        assert b'"version"' in toxiproxy_client.version()
        assert name in toxiproxy_client.proxies()
        assert toxiproxy_client.get_proxy(name).upstream == echo_address

        proxy.add_toxic(type="latency", attributes={"latency": 100})
        proxy.add_toxic(type="limit_data", stream="upstream", name="cap", toxicity=0.0, attributes={"bytes": 1})
        toxics = proxy.toxics()
        assert set(toxics) == {"latency_downstream", "cap"}
        assert toxics["latency_downstream"].attributes == {"latency": 100, "jitter": 0}
        assert proxy.get_toxic("cap").stream == "upstream"
        assert round_trip(proxy.listen) >= 0.1

        assert proxy.destroy_toxic("latency_downstream") is True
        assert proxy.destroy_toxic("cap") is True
        assert proxy.toxics() == {}
        assert toxiproxy_client.reset() is True
    finally:
        assert toxiproxy_client.destroy(toxiproxy_client.get_proxy(name)) is True
    assert toxiproxy_client.get_proxy(name) is None


def test_disable_enable_and_down(toxiproxy_client, echo_address: str) -> None:
    proxy = toxiproxy_client.create(upstream=echo_address, name=unique("py"), listen=listen())
    try:
        proxy.disable()
        assert proxy.enabled is False
        with pytest.raises(ConnectionRefusedError):
            round_trip(proxy.listen)
        proxy.enable()
        round_trip(proxy.listen)
        with proxy.down():
            with pytest.raises(ConnectionRefusedError):
                round_trip(proxy.listen)
        round_trip(proxy.listen)
    finally:
        proxy.destroy()


def test_error_mapping(toxiproxy_client, echo_address: str) -> None:
    proxy = toxiproxy_client.create(upstream=echo_address, name=unique("py"), listen=listen())
    try:
        with pytest.raises(ProxyExists):
            toxiproxy_client.create(upstream=echo_address, name=proxy.name)
        with pytest.raises(InvalidToxic):
            proxy.add_toxic(type="no_such_toxic")
        proxy.add_toxic(type="noop")
        with pytest.raises(ProxyExists):
            proxy.add_toxic(type="noop")
        with pytest.raises(NotFound):
            proxy.destroy_toxic("missing")
    finally:
        proxy.destroy()


def test_client_side_populate(toxiproxy_client, echo_address: str) -> None:
    name = unique("py")
    created = toxiproxy_client.populate([{"name": name, "upstream": echo_address, "listen": listen()}])
    try:
        assert [p.name for p in created] == [name]
        round_trip(created[0].listen)
    finally:
        toxiproxy_client.get_proxy(name).destroy()
