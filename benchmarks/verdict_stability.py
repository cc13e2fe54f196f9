"""Verdict stability: the same scenario and seed, run many times under CPU load, must give
the same verdict and the same per-task classification every time.

    python benchmarks/verdict_stability.py [--repeats 20] [--load [N]] [--client naive ...] [PATH ...]

PATH: scenario files or directories (default: the default suite, scenarios/, without the
ones tagged slow). `--load` starts busy-loop processes (N, default one per CPU) for the
whole measurement, so the event loop, the fake server and the clients compete for the CPU
as on a noisy CI machine; they are killed at the end, also on Ctrl-C. Prints one row per
scenario × client (distinct outcomes, agreement with the most common one, seconds) and a
summary; exits 1 if any pair flipped.
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


def start_load(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


async def measure(paths: list[Path], clients: list[str], repeats: int) -> tuple[int, int]:
    """Returns (pairs measured, pairs that flipped)."""
    from comfy_chaos.harness.runner import Harness
    from comfy_chaos.harness.suite import load_all, run_one

    loaded = [item for item in load_all(paths) if item.scenario is not None and not item.slow]
    flipped = 0
    pairs = 0
    async with Harness(done_margin=1.0) as harness:
        for item in loaded:
            scenario = item.scenario
            assert scenario is not None
            for client in clients:
                outcomes: collections.Counter[tuple] = collections.Counter()
                started = time.monotonic()
                for _ in range(repeats):
                    result = await run_one(harness, scenario, client)
                    classes = tuple(sorted((t.task_id, t.cls) for t in result.tasks))
                    outcomes[(result.verdict, classes)] += 1
                pairs += 1
                (verdict, classes), top = outcomes.most_common(1)[0]
                problems = [f"{task}={cls}" for task, cls in classes if cls != "ok"]
                shown = " ".join(problems[:6]) + (" …" if len(problems) > 6 else "")
                print(f"{scenario.name:<34} {client:<10} distinct {len(outcomes)}  agreement {top}/{repeats}  "
                      f"verdict {verdict:<12} {time.monotonic() - started:6.1f} s  {shown or 'all ok'}", flush=True)
                if len(outcomes) > 1:
                    flipped += 1
                    for (other_verdict, other_classes), count in outcomes.most_common()[1:]:
                        diff = sorted(set(other_classes) - set(classes))
                        print(f"    {count}× {other_verdict}: {diff[:10]}", flush=True)
    return pairs, flipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "scenarios"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--load", type=int, nargs="?", const=os.cpu_count() or 1, default=0,
                        help="busy-loop processes (flag alone: one per CPU; default: none)")
    parser.add_argument("--client", action="append", dest="clients")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    clients = args.clients or ["reference", "naive"]
    load = start_load(args.load)
    print(f"{args.repeats} repeats per scenario × client ({', '.join(clients)}), {args.load} busy-loop processes",
          flush=True)
    started = time.monotonic()
    try:
        pairs, flipped = asyncio.run(measure(args.paths, clients, args.repeats))
    finally:
        for proc in load:
            proc.kill()
            proc.wait(timeout=10)
    print(f"{pairs} scenario × client pairs, {pairs * args.repeats} runs in {time.monotonic() - started:.0f} s: "
          f"{flipped} flipped — {'stable' if not flipped else 'UNSTABLE'}")
    return 0 if not flipped else 1


if __name__ == "__main__":
    sys.exit(main())
