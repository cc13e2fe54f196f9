"""Thin aiohttp wrapper for the few ComfyUI endpoints the client uses; every call bounded."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from comfy_chaos.client.jobs import JOBS_QUEUE_PATH, queue_from_jobs
from comfy_chaos.client.stats import ClientStats

log = structlog.get_logger(__name__)


class HttpFailure(Exception):
    """A request that produced no usable JSON answer (network error, timeout, non-200, bad body)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of a non-200 answer


@dataclass(frozen=True)
class PostResult:
    status: int | None  # None: no HTTP reply was read
    body: Any  # parsed JSON, else the text, else None
    sent: bool  # False only when the TCP connection could not be opened
    error: str | None = None


class ComfyHttp:
    """Requests wait for one of `concurrency` slots *before* their timeout starts, so a burst
    of submissions cannot time out in the pool queue (a POST that never left would look
    ambiguous)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        stats: ClientStats,
        timeout: float,
        concurrency: int,
        jobs_api: bool = True,
    ) -> None:
        self._session = session
        #: Whether to ask the Jobs API for the queue: None = not known yet, False = the
        #: server has none (404) or the config says no.
        self.jobs_api: bool | None = None if jobs_api else False
        self.base_url = base_url.rstrip("/")
        self._stats = stats
        self._timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)

    async def get_json(self, path: str) -> Any:
        """GET `path` and return its JSON body; raises HttpFailure on anything else."""
        async with self._slots:
            return await self._get_json(path)

    async def _get_json(self, path: str) -> Any:
        self._stats.http_requests += 1
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.get(self.base_url + path) as resp:
                    raw = await resp.read()
                    if resp.status != 200:
                        raise HttpFailure(f"GET {path}: HTTP {resp.status}", resp.status)
        except HttpFailure:
            self._stats.http_failures += 1
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._stats.http_failures += 1
            raise HttpFailure(f"GET {path}: {type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            self._stats.http_failures += 1
            raise HttpFailure(f"GET {path}: body is not JSON ({len(raw)} bytes)") from exc

    async def get_history(self, prompt_id: str) -> Any:
        return await self.get_json(f"/history/{prompt_id}")

    async def get_queue(self) -> Any:
        """Running and pending prompts, `/queue`-shaped: from the Jobs API where the server
        has one, else (or when that request fails) from `/queue`."""
        if self.jobs_api is not False:
            try:
                queue = queue_from_jobs(await self.get_json(JOBS_QUEUE_PATH))
            except HttpFailure as exc:
                queue = None
                if exc.status == 404:
                    self.jobs_api = False
                    log.info("jobs_api.absent", detail="the server has no Jobs API; asking /queue from now on")
            if queue is not None:
                self.jobs_api = True
                self._stats.jobs_reads += 1
                return queue
            if self.jobs_api:
                self._stats.jobs_fallbacks += 1
        return await self.get_json("/queue")

    async def post_prompt(self, body: dict[str, Any]) -> PostResult:
        """POST /prompt once; never raises for network trouble (the caller classifies the result)."""
        async with self._slots:
            return await self._post_prompt(body)

    async def _post_prompt(self, body: dict[str, Any]) -> PostResult:
        self._stats.http_requests += 1
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.post(self.base_url + "/prompt", json=body) as resp:
                    raw = await resp.read()
                    status = resp.status
        except aiohttp.ClientConnectorError as exc:
            self._stats.http_failures += 1
            return PostResult(None, None, sent=False, error=f"{type(exc).__name__}: {exc}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._stats.http_failures += 1
            return PostResult(None, None, sent=True, error=f"{type(exc).__name__}: {exc}")
        try:
            parsed: Any = json.loads(raw)
        except (ValueError, RecursionError):
            parsed = raw.decode("utf-8", errors="replace")
        if status != 200:
            self._stats.http_failures += 1
        return PostResult(status, parsed, sent=True)
