"""Fixtures for the fake server tests: a started FakeComfy and an aiohttp client session."""
from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from comfy_chaos.fake_comfy import FakeComfy, FakeConfig


@pytest.fixture
async def server() -> AsyncIterator[FakeComfy]:
    fake = FakeComfy(FakeConfig(time_scale=0.0, seed=7))
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
