"""`comfy-chaos shrink FILE --client X --seed N [--out DIR] [--replays 3]`: exit 0 with a
regression written, 2 when the failure does not reproduce on every replay, 3 on bad input."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from comfy_chaos.harness import shrink as shrinking
from comfy_chaos.harness.cli import common
from comfy_chaos.harness.runner import Harness
from comfy_chaos.harness.scenario import ScenarioError, load_scenario
from comfy_chaos.harness.shutdown import Interrupted, run_guarded
from comfy_chaos.harness.toxiproxy.backend import BackendError

PROG = "comfy-chaos shrink"


def parser() -> argparse.ArgumentParser:
    p = common.Parser(prog=PROG, description="Shrink a failing fault schedule into a regression scenario.")
    p.add_argument("file", help="the scenario file (a chaos: scenario or any with faults:)")
    p.add_argument("--client", required=True, help="the client adapter that fails")
    p.add_argument("--seed", type=int, required=True, help="the seed it fails with")
    p.add_argument("--out", default="scenarios/regressions", help="where to write the regression (default scenarios/regressions)")
    p.add_argument("--replays", type=int, default=shrinking.DEFAULT_REPLAYS, help="runs per candidate; kept only if all fail (default 3)")
    p.add_argument("--time-scale", type=float, default=None, help="override the scenario's time_scale")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def run(args: argparse.Namespace) -> int:
    if args.replays < 1:
        raise common.UsageError(f"{PROG}: --replays: expected at least 1, got {args.replays}")
    common.check_time_scale(PROG, args.time_scale)
    try:
        scenario = load_scenario(args.file)
    except ScenarioError as exc:
        raise common.UsageError(str(exc)) from None
    common.check_clients([args.client])
    common.configure_logging(args.verbose)

    async def go() -> shrinking.ShrinkResult:
        async with Harness() as harness:
            return await shrinking.shrink(scenario, args.client, seed=args.seed, harness=harness, replays=args.replays,
                                time_scale=args.time_scale, progress=lambda line: print(line, flush=True))
    try:
        result = run_guarded(go())
    except BackendError as exc:
        raise common.UsageError(f"comfy-chaos: toxiproxy: {exc}") from None
    except Interrupted as stopped:
        common.report_interrupted(stopped)
        return common.EXIT_INCONCLUSIVE
    if not result.reproducible:
        print(f"{PROG}: {scenario.name} [{args.client}] seed {args.seed} does not fail on every "
              f"replay ({args.replays}); no regression written")
        return common.EXIT_INCONCLUSIVE
    path = shrinking.write_regression(shrinking.regression_scenario(scenario, result.shrunk, client=args.client, seed=args.seed), args.out)
    print(f"{PROG}: {len(result.original)} → {len(result.shrunk)} faults "
          f"({result.candidates} candidates, {result.runs} runs)")
    for spec in result.shrunk:
        print(f"  {shrinking.describe_spec(spec)}")
    print(f"{PROG}: regression written to {path}")
    print(f"  check: comfy-chaos run {path} --client {args.client}")
    return common.EXIT_PASS


def main(argv: Sequence[str]) -> int:
    return common.guarded(run, parser, argv)
