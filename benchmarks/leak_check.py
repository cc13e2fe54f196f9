"""No leaks at volume: run N scenarios back to back in one process (the default suite,
cycled, with the given clients) and compare what the process holds before and after:
file descriptors, live child processes, listening sockets, asyncio tasks — and RSS, to
show memory does not creep. Prints a checkpoint row every `--every` runs and exits 1 if
anything was left behind (also after leaving the Harness). The CI version with ~14
scenarios is tests/reliability/test_no_leaks.py. Usage:

    python benchmarks/leak_check.py [--runs 100] [--client reference --client naive] [PATH ...]
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import sys
import time
from pathlib import Path

import structlog

from comfy_chaos.fake_comfy.testing.resources import Resources, snapshot

ROOT = Path(__file__).resolve().parents[1]


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _row(label: str, res: Resources, verdicts: dict[str, int], elapsed: float) -> str:
    counts = " ".join(f"{k}={v}" for k, v in sorted(verdicts.items()))
    return (f"{label:>8}  fds {res.fds:>4}  children {len(res.children):>2}  listening {len(res.listening):>2}  "
            f"tasks {len(res.tasks):>2}  rss {_rss_mib():6.1f} MiB  {elapsed:6.1f} s  {counts}")


async def measure(paths: list[Path], clients: list[str], runs: int, every: int) -> bool:
    from comfy_chaos.harness.runner import Harness
    from comfy_chaos.harness.suite import load_all, run_one

    loaded = [item for item in load_all(paths) if item.scenario is not None and not item.slow]
    if not loaded:
        raise SystemExit(f"no runnable scenarios under {paths}")
    outside = snapshot()
    ok = True
    async with Harness() as harness:
        await run_one(harness, loaded[0].scenario, clients[0])  # warm-up
        before = snapshot()
        started = time.monotonic()
        print(_row("start", before, {}, 0.0), flush=True)
        verdicts: dict[str, int] = {}
        pairs = itertools.cycle(itertools.product(loaded, clients))
        for n in range(1, runs + 1):
            item, client = next(pairs)
            result = await run_one(harness, item.scenario, client)
            verdicts[result.verdict] = verdicts.get(result.verdict, 0) + 1
            if n % every == 0 or n == runs:
                print(_row(f"run {n}", snapshot(), verdicts, time.monotonic() - started), flush=True)
        after = snapshot()
        for line in before.diff(after):
            ok = False
            print(f"LEAK after {runs} runs: {line}")
    left = snapshot()
    for line in outside.diff(left):
        ok = False
        print(f"LEAK after leaving the Harness: {line}")
    print(_row("closed", left, {}, time.monotonic() - started))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "scenarios"])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--every", type=int, default=10, help="checkpoint row every N runs")
    parser.add_argument("--client", action="append", dest="clients")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    ok = asyncio.run(measure(args.paths, args.clients or ["reference", "naive"], args.runs, args.every))
    print("no leaks" if ok else "LEAKED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
