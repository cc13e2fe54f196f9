"""Scale: one scenario with many tasks and many clients, run by the harness with an
in-process client; prints wall time, tasks/s, frames/s, peak memory and the verdict.

Default scenario: benchmarks/scenarios/scale-10k-tasks-200-clients.yaml (10,000 tasks,
200 clients; not in the default suite). `--tasks`/`--clients` shrink it for a quick look.
Peak memory is the whole process (harness + fake server + Toxiproxy in-process + the
200 reference clients): `ru_maxrss`, plus the tracemalloc peak of Python objects when
`--tracemalloc` is given (slower). Usage:

    python benchmarks/scale_bench.py [--client reference] [--tasks N] [--clients N] [SCENARIO]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "benchmarks" / "scenarios" / "scale-10k-tasks-200-clients.yaml"


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def run(path: Path, client: str, tasks: int | None, clients: int | None) -> int:
    from comfy_chaos.harness.runner import Harness, RunError
    from comfy_chaos.harness.scenario import load_scenario
    from comfy_chaos.harness.scoring import score

    scenario = load_scenario(path)
    update: dict = {}
    if tasks is not None:
        update["workload"] = scenario.workload.model_copy(update={"tasks": tasks})
    if clients is not None:
        update["clients"] = clients
    if update:
        scenario = scenario.model_copy(update=update)
    n_tasks, n_clients = len(scenario.plan()), scenario.clients
    async with Harness() as harness:
        rss_before = _rss_mib()
        start = time.perf_counter()
        try:
            record = await harness.run(scenario, client)
        except RunError as exc:
            record = exc.record
        wall = time.perf_counter() - start
        judged = record.t_end - record.t0
        t_score = time.perf_counter()
        result = score(record)
        score_s = time.perf_counter() - t_score
    prompts = record.ledger.prompts
    frames = sum(len(p.messages) for p in prompts.values())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics = result.metrics if isinstance(result.metrics, dict) else {}
    rows = [
        ("scenario", f"{scenario.name} ({n_tasks} tasks × {n_clients} clients, time_scale {record.time_scale})"),
        ("client", client),
        ("verdict", f"{result.verdict}  completeness {metrics.get('completeness')}  reasons {len(result.reasons)}"),
        ("wall time", f"{wall:.1f} s (start → judgement {judged:.1f} s, teardown {wall - judged:.1f} s)"),
        ("scoring", f"{score_s:.2f} s"),
        ("throughput", f"{n_tasks / judged:,.0f} tasks/s, {frames / judged:,.0f} prompt frames/s recorded"),
        ("ledger", f"{len(prompts)} prompts, {frames:,} prompt frames, {len(record.ledger.http):,} HTTP requests"),
        ("memory", f"peak RSS {peak_mib:,.0f} MiB (before the run {rss_before:,.0f} MiB, after {_rss_mib():,.0f} MiB)"),
    ]
    if tracemalloc.is_tracing():
        rows.append(("python heap peak", f"{tracemalloc.get_traced_memory()[1] / 2**20:,.0f} MiB"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    for reason in result.reasons[:10]:
        print(f"  reason: {reason}")
    return 0 if result.verdict == "pass" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--client", default="reference")
    parser.add_argument("--tasks", type=int, help="override workload.tasks")
    parser.add_argument("--clients", type=int, help="override clients")
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    if args.tracemalloc:
        tracemalloc.start()
    return asyncio.run(run(args.scenario, args.client, args.tasks, args.clients))


if __name__ == "__main__":
    sys.exit(main())
