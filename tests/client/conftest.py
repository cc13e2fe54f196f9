"""Fixtures for the client's integration tests: an in-process FakeComfy, always stopped.

`make_fake` runs each test against both protocol profiles (ComfyUI 0.33 and 0.3.64): the
reference client must handle the server it meets, old or new."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
from comfy_chaos.fake_comfy.faults import FaultEngine, FaultSchedule


@pytest.fixture(params=["0.33", "0.3.64"])
async def make_fake(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Any]]:
    started: list[FakeComfy] = []

    async def make(faults: list[dict] | None = None, seed: int = 1, time_scale: float = 0.0) -> FakeComfy:
        engine = None
        if faults:
            engine = FaultEngine(FaultSchedule.of(faults), seed=seed, time_scale=max(time_scale, 0.01))
        config = FakeConfig(time_scale=time_scale, seed=seed, comfyui_version=request.param)
        server = FakeComfy(config, faults=engine)
        await server.start(host="127.0.0.1", port=0)
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()
