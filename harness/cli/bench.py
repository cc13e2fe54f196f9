"""`comfy-chaos bench`: scenarios × clients × seeds, the graded matrix and per-client totals."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from comfy_chaos.harness import bench
from comfy_chaos.harness.cli import common
from comfy_chaos.harness.cli.outputs import fresh_logs
from comfy_chaos.harness.comfyui_version import with_version
from comfy_chaos.harness.report import render_matrix

PROG = "comfy-chaos bench"


def parser() -> argparse.ArgumentParser:
    p = common.Parser(prog=PROG, description="Run scenarios × clients × seeds and print the matrix.")
    common.add_selection_options(p)
    common.add_client_option(p, bench.DEFAULT_CLIENTS)
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=None,
                       help=f"seeds per scenario: its own, then +{bench.SEED_STRIDE}, +{2 * bench.SEED_STRIDE}, … (default 1)")
    seeds.add_argument("--seed", type=int, action="append", dest="seed_list", metavar="N",
                       help="run every scenario with this seed (repeatable)")
    common.add_scale_and_output_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    if args.seeds is not None and args.seeds < 1:
        raise common.UsageError(f"{PROG}: --seeds: expected at least 1, got {args.seeds}")
    common.check_time_scale(PROG, args.time_scale)
    selection = common.select_scenarios(args, PROG)
    clients = common.chosen_clients(args, bench.DEFAULT_CLIENTS)
    common.configure_logging(args.verbose)
    scenarios = [with_version(entry.scenario, args.comfyui_version) for entry in selection.chosen]
    jobs = bench.bench_jobs(scenarios, clients, count=args.seeds, explicit=args.seed_list)
    print(f"{PROG}: {len(scenarios)} scenarios × {len(clients)} clients × "
          f"{len(jobs) // max(1, len(scenarios) * len(clients))} seeds = {len(jobs)} runs, -j {args.jobs}", flush=True)
    common.report_broken(selection.broken)
    jobs = common.shard_jobs(args, jobs)
    out = common.report_dir(args, "bench")
    executed = common.execute(jobs, seed=None, time_scale=args.time_scale, parallel=args.jobs, log_dir=fresh_logs(out),
                              harness_options=common.harness_options(args, clients))
    if executed is None:
        return common.EXIT_INCONCLUSIVE
    results = executed.results
    scales = {s.name: args.time_scale or s.time_scale for s in scenarios}
    totals = bench.client_totals(results, scales)
    bench.write_bench_report(results, totals, out, clients=clients,
                       run=executed.run_info(PROG, clients=", ".join(clients), shard=args.shard))
    print()
    print(render_matrix(results), end="")
    print()
    print(bench.render_totals(totals), end="")
    print(f"{PROG}: report written to {out / 'index.html'} and {out / 'results.json'}")
    return common.EXIT_USAGE if selection.broken else common.exit_code(results)


def main(argv: Sequence[str]) -> int:
    return common.guarded(run, parser, argv)
