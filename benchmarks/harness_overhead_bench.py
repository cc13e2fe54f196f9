"""Harness overhead: wall time of a scenario run by the harness ÷ the time its workload
needs with no harness at all.

"No harness" = the same tasks (the scenario's plan, same workflows, same due times, same
time scale) sent by the reference client straight to a FakeComfy — no Toxiproxy, no
fault engine, no adapter session, no scoring. "Harness" = `harness.suite.run_one` with
the reference client (server + proxy + adapter + judge + teardown + score), the Toxiproxy
backend started once outside the timing as in a suite run, and the scenario's faults
removed (the bare run cannot inject them; with them the client's own recovery time
would count as overhead). `--with-faults` keeps them, for the total cost. Prints per scenario: both wall
times, the ratio, the fixed cost per scenario (difference) and where the harness spent it
(start → judgement vs judgement → scored). Usage:

    python benchmarks/harness_overhead_bench.py [--runs 3] [SCENARIO ...]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIOS = [
    ROOT / "scenarios" / "baseline" / "clean.yaml",
    ROOT / "scenarios" / "baseline" / "mixed-workflows.yaml",
    ROOT / "scenarios" / "load" / "clients-50.yaml",
    ROOT / "scenarios" / "load" / "tasks-1000.yaml",
]
WAIT_S = 600.0


async def bare(scenario) -> float:  # noqa: ANN001 - harness.scenario.Scenario
    """The workload with no harness: reference clients straight against a fault-free fake."""
    from comfy_chaos.client import ClientConfig, ComfyClient
    from comfy_chaos.fake_comfy import FakeComfy, FakeConfig
    from comfy_chaos.fake_comfy.ledger import tag_workflow

    scale = scenario.time_scale
    plan = scenario.plan()
    times = scenario.scaled(scale)
    start = time.perf_counter()
    server = FakeComfy(FakeConfig(time_scale=scale, seed=scenario.seed))
    await server.start()
    try:
        config = ClientConfig.reference().scaled(scale)
        clients = [ComfyClient(server.base_url, config=config) for _ in range(scenario.clients)]
        for comfy in clients:
            await comfy.__aenter__()
        try:
            t0 = time.monotonic()

            async def one(task) -> str:  # noqa: ANN001 - PlannedTask
                delay = times.due_s[task.index] - (time.monotonic() - t0)
                if delay > 0:
                    await asyncio.sleep(delay)  # the workload's own submit schedule
                handle = await clients[task.client_index].submit(tag_workflow(task.workflow, task.task_id))
                return (await handle.result()).status

            async with asyncio.timeout(WAIT_S):
                statuses = await asyncio.gather(*(one(task) for task in plan))
        finally:
            for comfy in clients:
                await comfy.__aexit__(None, None, None)
    finally:
        await server.stop()
    elapsed = time.perf_counter() - start
    if statuses.count("success") + statuses.count("error") != len(plan):
        raise RuntimeError(f"{scenario.name}: the bare workload did not finish cleanly: {statuses}")
    return elapsed


async def with_harness(harness, scenario) -> tuple[float, float, str]:  # noqa: ANN001
    """(wall seconds, seconds from start to judgement, verdict) of one harness run."""
    from comfy_chaos.harness.runner import RunError
    from comfy_chaos.harness.scoring import score

    start = time.perf_counter()
    try:
        record = await harness.run(scenario, "reference")
    except RunError as exc:
        record = exc.record
    result = score(record)
    wall = time.perf_counter() - start
    return wall, record.t_end - record.t0, result.verdict


async def measure(paths: list[Path], runs: int, with_faults: bool) -> None:
    from comfy_chaos.harness.runner import Harness
    from comfy_chaos.harness.scenario import load_scenario

    rows = []
    async with Harness() as harness:
        for path in paths:
            scenario = load_scenario(path)
            if not with_faults:
                scenario = scenario.model_copy(update={"faults": [], "chaos": None})
            bare_s = statistics.median([await bare(scenario) for _ in range(runs)])
            runs_h = [await with_harness(harness, scenario) for _ in range(runs)]
            wall = statistics.median(r[0] for r in runs_h)
            judged = statistics.median(r[1] for r in runs_h)
            verdicts = ",".join(sorted({r[2] for r in runs_h}))
            rows.append((scenario.name, f"{len(scenario.plan())}×{scenario.clients}", f"{bare_s:.2f}", f"{wall:.2f}",
                         f"{wall / bare_s:.2f}", f"{wall - bare_s:+.2f}", f"{judged:.2f}", f"{wall - judged:.2f}", verdicts))
            print(f"  measured {scenario.name}", file=sys.stderr, flush=True)
    header = ("scenario", "tasks×clients", "bare s", "harness s", "ratio", "overhead s", "to judge s", "after s", "verdict")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"harness overhead, reference client, median of {runs} (bare = client → fake, no proxy/engine/judge; "
          f"harness runs {'with' if with_faults else 'without'} the scenario's faults)")
    for row in [header, *rows]:
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", type=Path, default=DEFAULT_SCENARIOS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--with-faults", action="store_true", help="keep the scenario's faults in the harness runs")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    asyncio.run(measure(args.scenarios, args.runs, args.with_faults))


if __name__ == "__main__":
    main()
