"""`comfy-chaos replay FILE --seed N`: run one scenario with a given seed."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from comfy_chaos.harness.cli import common
from comfy_chaos.harness.cli.outputs import fresh_logs
from comfy_chaos.harness.comfyui_version import with_version
from comfy_chaos.harness.scenario import ScenarioError, load_scenario
from comfy_chaos.harness.suite import write_report

PROG = "comfy-chaos replay"


def parser() -> argparse.ArgumentParser:
    p = common.Parser(prog=PROG, description="Run one scenario with a given seed.")
    p.add_argument("file", help="the scenario file")
    p.add_argument("--seed", type=int, required=True)
    common.add_client_option(p, ["reference"])
    common.add_scale_and_output_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    common.check_time_scale(PROG, args.time_scale)
    try:
        scenario = with_version(load_scenario(args.file), args.comfyui_version)
    except ScenarioError as exc:
        raise common.UsageError(str(exc)) from None
    clients = common.chosen_clients(args, ["reference"])
    common.configure_logging(args.verbose)
    out = common.report_dir(args, "replay")
    executed = common.execute([(scenario, c) for c in clients], seed=args.seed, time_scale=args.time_scale,
                              parallel=1, log_dir=fresh_logs(out), harness_options=common.harness_options(args, clients))
    if executed is None:
        return common.EXIT_INCONCLUSIVE
    for result in executed.results:
        for line in result.reasons:
            print(f"  {line}")
    path = write_report(executed.results, out, executed.run_info(PROG))
    print(f"comfy-chaos: report written to {out / 'index.html'} and {path}")
    return common.exit_code(executed.results)


def main(argv: Sequence[str]) -> int:
    return common.guarded(run, parser, argv)
