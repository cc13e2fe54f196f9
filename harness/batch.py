"""Run many (scenario, client) jobs on one harness, a bounded number at a time.

Plain library code (no argparse, no printing): the CLI commands, bench and merge-free
callers pass callbacks to watch progress."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from comfy_chaos.harness.results import ScenarioResult

#: called once the Toxiproxy backend is up, with the harness's backend description and URL
OnStart = Callable[[dict[str, Any], str], None]
#: called for every finished run with its result and the run's wall time in seconds
OnResult = Callable[[ScenarioResult, float], None]


async def run_batch(
    jobs: Sequence[tuple[Any, str]],
    *,
    seed: int | None = None,
    time_scale: float | None = None,
    parallel: int = 2,
    log_dir: Path | None = None,
    on_start: OnStart | None = None,
    on_result: OnResult | None = None,
    harness_options: dict[str, Any] | None = None,
) -> list[ScenarioResult]:
    """Run every (scenario, client) job, `parallel` at a time; results in job order. With
    `log_dir`, each run's events go to `<log_dir>/<scenario>--<client>--seed<N>.jsonl`.
    `harness_options` are `Harness` keywords (`control`, `unscalable`)."""
    from comfy_chaos.harness.runner import Harness
    from comfy_chaos.harness.shutdown import gather_all
    from comfy_chaos.harness.suite import run_one

    limit = asyncio.Semaphore(parallel)
    results: list[ScenarioResult | None] = [None] * len(jobs)

    async with Harness(log_dir=log_dir, **(harness_options or {})) as harness:
        if on_start is not None:
            on_start(harness.backend_info, harness.url)

        async def one(index: int, scenario: Any, client: str) -> None:
            async with limit:
                started = time.monotonic()
                result = await run_one(harness, scenario, client, seed=seed, time_scale=time_scale)
                results[index] = result
                if on_result is not None:
                    on_result(result, time.monotonic() - started)

        await gather_all(one(i, s, c) for i, (s, c) in enumerate(jobs))  # waits for every teardown
    return [r for r in results if r is not None]
