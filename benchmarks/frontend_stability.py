"""Browser verdict stability: one scenario, the same seed, N runs in a row per browser client,
with each run's verdict, stuck tasks, stuck times and wall time (docs/browser.md "measured").

    python benchmarks/frontend_stability.py scenarios/connection/silent-window-ui.yaml \\
        --client frontend --client frontend@1.58.1 --repeats 5 [--clean]

Runs one at a time in one harness (one shared Chromium, a fresh browser context per run).
Per run it prints: verdict; the tasks not ok with their class; for stuck-UI tasks how long
the page still showed them running after the server finished them; the page load (warm-up,
not in any figure); the wall time of the whole run; and the premise of a fault anchored to
the server's progress: when the page's last task was accepted and when the first fault
began (seconds after t0). `--clean` adds one run per client of the same workload without
faults, which must pass. Exits 1 if a client's runs disagree (verdict or task classes), or
a clean run fails.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import re
import sys
import time
from pathlib import Path

import structlog

STUCK = re.compile(r"^(t\d+) .*stuck UI: the page still showed it running at the judgement, ([\d.]+) s after")


async def measure(path: Path, clients: list[str], repeats: int, clean: bool) -> int:
    from comfy_chaos.harness.runner import Harness
    from comfy_chaos.harness.scenario import parse_scenario
    from comfy_chaos.harness.scoring import score

    scenario = parse_scenario(path.read_text(encoding="utf-8"), source=str(path))
    status = 0
    async with Harness() as harness:
        for client in clients:
            outcomes: collections.Counter[tuple[str, tuple[tuple[str, str], ...]]] = collections.Counter()
            for i in range(1, repeats + 1):
                started = time.monotonic()
                record = await harness.run(scenario, client)
                result = await asyncio.to_thread(score, record)
                wall = time.monotonic() - started
                classes = tuple(sorted((t.task_id, str(t.cls)) for t in result.tasks if t.cls != "ok"))
                outcomes[(result.verdict, classes)] += 1
                stuck = [f"{m[1]} {float(m[2]):.0f} s" for m in (STUCK.match(r) for r in result.reasons) if m]
                accepted = [p.accepted_at - record.t0 for p in record.ledger.prompts.values()]
                first_fault = min((f.t for f in result.faults), default=None)
                version = next((r.extra.get("version") for r in record.reports if r.type == "ready"), "?")
                premise = (f"last accepted +{max(accepted):.1f} s, first fault +{first_fault:.1f} s"
                           if accepted and first_fault is not None else "no fault")
                print(f"{scenario.name} {client} ({version}) run {i}/{repeats}: {result.verdict.upper()}"
                      f" {' '.join(f'{t}={c}' for t, c in classes) or 'all ok'}"
                      f"{'; stuck ' + ', '.join(stuck) if stuck else ''}; page load "
                      f"{record.client_stats.get('page_load_s', 0):.1f} s, wall {wall:.0f} s; {premise}", flush=True)
            (verdict, _), top = outcomes.most_common(1)[0]
            print(f"{scenario.name} {client}: {top}/{repeats} the same ({verdict})", flush=True)
            if len(outcomes) > 1:
                status = 1
            if clean:
                record = await harness.run(scenario.model_copy(update={"faults": []}), client)
                result = await asyncio.to_thread(score, record)
                print(f"{scenario.name} {client} without faults: {result.verdict.upper()}"
                      f" ({int(result.metrics['reported'])}/{int(result.metrics['tasks'])} reported)", flush=True)
                if result.verdict != "pass":
                    status = 1
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--client", action="append", dest="clients", help="(repeatable) default: frontend")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clean", action="store_true", help="also one run per client without the faults")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    return asyncio.run(measure(args.scenario, args.clients or ["frontend"], args.repeats, args.clean))


if __name__ == "__main__":
    sys.exit(main())
