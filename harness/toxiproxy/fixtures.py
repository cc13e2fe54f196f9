"""pytest fixtures: a Toxiproxy for the whole session, and a toxiproxy-python client for it.

Registered by the ``comfy_chaos`` pytest plugin (or ``pytest_plugins`` in a top-level
conftest). The backend is resolved like everywhere else (``TOXIPROXY_URL`` →
``toxiproxy-server`` on PATH → bundled). A bundled server runs on its own event-loop thread, so it keeps serving
while tests block (toxiproxy-python is synchronous) or run on their own loops.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from comfy_chaos.harness.toxiproxy.backend import Backend, resolve_backend

T = TypeVar("T")
START_TIMEOUT = 30.0


class LoopThread:
    """An asyncio event loop running in a daemon thread; coroutines are submitted to it."""

    def __init__(self, name: str = "toxiproxy-backend") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


@pytest.fixture(scope="session")
def toxiproxy_backend() -> Iterator[Backend]:
    """The session's Toxiproxy (``backend.url``, ``backend.kind``); stopped at the end."""
    thread = LoopThread()
    thread.start()
    try:
        backend = thread.run(resolve_backend(timeout=START_TIMEOUT), START_TIMEOUT + 5)
    except BaseException:
        thread.stop()
        raise
    try:
        yield backend
    finally:
        try:
            thread.run(backend.stop(), START_TIMEOUT)
        finally:
            thread.stop()


@pytest.fixture
def toxiproxy_client(toxiproxy_backend: Backend) -> Iterator[Any]:
    """A ``toxiproxy.Toxiproxy`` (toxiproxy-python) pointed at the session backend.

    toxiproxy-python keeps its server address in class attributes; they are restored
    afterwards.
    """
    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer

    parts = urlsplit(toxiproxy_backend.url)
    saved = (APIConsumer.host, APIConsumer.port)
    client = Toxiproxy()
    client.update_api_consumer(parts.hostname, parts.port or 80)
    try:
        yield client
    finally:
        APIConsumer.host, APIConsumer.port = saved
