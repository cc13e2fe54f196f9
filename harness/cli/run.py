"""`comfy-chaos run`: scenarios × clients, a summary, the report, the baseline gate."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from comfy_chaos.harness.cli import common
from comfy_chaos.harness.cli.outputs import add_gate_options, finish, fresh_logs
from comfy_chaos.harness.comfyui_version import with_version

PROG = "comfy-chaos run"


def parser() -> argparse.ArgumentParser:
    p = common.Parser(prog=PROG, description="Run scenarios against clients and score them.")
    common.add_selection_options(p)
    common.add_client_option(p, ["reference"])
    common.add_scale_and_output_options(p)
    p.add_argument("--seed", type=int, default=None, help="override every scenario's seed")
    add_gate_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    common.check_time_scale(PROG, args.time_scale)
    selection = common.select_scenarios(args, PROG)
    clients = common.chosen_clients(args, ["reference"])
    options = common.harness_options(args, clients)
    common.configure_logging(args.verbose)
    jobs = [(with_version(entry.scenario, args.comfyui_version), client) for entry in selection.chosen for client in clients]
    print(f"comfy-chaos: {len(selection.chosen)} scenarios × {len(clients)} clients = {len(jobs)} runs, -j {args.jobs}"
          + (f" ({selection.skipped_slow} slow scenarios skipped; --run-slow to include)" if selection.skipped_slow else ""),
          flush=True)
    common.report_broken(selection.broken)
    jobs = common.shard_jobs(args, jobs, seed=args.seed)
    out = common.report_dir(args, "run")
    executed = common.execute(jobs, seed=args.seed, time_scale=args.time_scale, parallel=args.jobs,
                              log_dir=fresh_logs(out), harness_options=options)
    if executed is None:
        return common.EXIT_INCONCLUSIVE
    return finish(executed.results, args, out, broken=selection.broken,
                  run=executed.run_info(f"{PROG}", shard=args.shard))


def main(argv: Sequence[str]) -> int:
    return common.guarded(run, parser, argv)
