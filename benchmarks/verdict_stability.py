"""Verdict stability: the same scenario and seed, run many times under CPU load, must give
the same verdict and the same per-task classification every time.

    python benchmarks/verdict_stability.py [--repeats 20] [--load N] [--client naive ...] [SCENARIO ...]

`--load N` starts N busy-loop processes (default: one per CPU) for the whole measurement,
so the event loop, the fake server and the clients compete for the CPU as on a noisy CI
machine. Prints, per scenario × client, how many distinct outcomes were seen and the
share of runs that agreed with the most common one; exits 1 if any pair was unstable.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIOS = [
    ROOT / "scenarios" / "message" / "drop-completion.yaml",
    ROOT / "scenarios" / "frame" / "junk-prefix.yaml",
    ROOT / "scenarios" / "connection" / "abort-mid-run.yaml",
]


def start_load(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


async def measure(paths: list[Path], clients: list[str], repeats: int) -> bool:
    from harness.runner import Harness
    from harness.scenario import load_scenario
    from harness.suite import run_one

    stable = True
    async with Harness(done_margin=1.0) as harness:
        for path in paths:
            scenario = load_scenario(path)
            for client in clients:
                outcomes: collections.Counter[tuple] = collections.Counter()
                started = time.monotonic()
                for _ in range(repeats):
                    result = await run_one(harness, scenario, client)
                    classes = tuple(sorted((t.task_id, t.cls) for t in result.tasks))
                    outcomes[(result.verdict, classes)] += 1
                (verdict, classes), top = outcomes.most_common(1)[0]
                problems = [f"{task}={cls}" for task, cls in classes if cls != "ok"]
                print(f"{scenario.name:<18} {client:<10} distinct outcomes {len(outcomes)}  "
                      f"agreement {top}/{repeats} = {top / repeats:.2f}  verdict {verdict}  "
                      f"{' '.join(problems) or 'all ok'}  ({time.monotonic() - started:.1f} s)", flush=True)
                if len(outcomes) > 1:
                    stable = False
                    for (other_verdict, other_classes), count in outcomes.most_common()[1:]:
                        diff = sorted(set(other_classes) - set(classes))
                        print(f"    {count}× {other_verdict}: {diff}")
    return stable


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", type=Path, default=DEFAULT_SCENARIOS)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--load", type=int, default=os.cpu_count() or 1, help="busy-loop processes (0: none)")
    parser.add_argument("--client", action="append", dest="clients")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    load = start_load(args.load)
    print(f"{args.repeats} repeats per scenario × client, {args.load} busy-loop processes", flush=True)
    try:
        stable = asyncio.run(measure(args.scenarios, args.clients or ["reference", "naive"], args.repeats))
    finally:
        for proc in load:
            proc.kill()
            proc.wait(timeout=10)
    print("stable" if stable else "UNSTABLE")
    return 0 if stable else 1


if __name__ == "__main__":
    sys.exit(main())
