"""`comfy-chaos merge RESULTS...`: join the results.json files of several shards (or
machines) into one report and one gate decision, exactly as one run of all of them.

Exit codes as `run`: 0 pass, 1 fail (or a regression with --baseline), 2 inconclusive,
3 usage (an unreadable file, the same run in two files)."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from comfy_chaos.harness.bench import client_totals, render_totals, write_bench_report
from comfy_chaos.harness.cli import common
from comfy_chaos.harness.cli.outputs import add_gate_options, decide, finish
from comfy_chaos.harness.merge import MergeError, merge_results
from comfy_chaos.harness.report import render_matrix

PROG = "comfy-chaos merge"


def parser() -> argparse.ArgumentParser:
    p = common.Parser(prog=PROG, description="Merge results.json files (e.g. of --shard K/N runs) into one report.")
    p.add_argument("results", nargs="+", help="results.json files, or report directories holding one")
    p.add_argument("--report-dir", default=None, help="where to write the merged report (default comfy-chaos-merged)")
    add_gate_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) / "results.json" if Path(p).is_dir() else Path(p) for p in args.results]
    try:
        merged = merge_results(paths)
    except MergeError as exc:
        raise common.UsageError(f"{PROG}: {exc}") from None
    out = common.report_dir(args, "merge")
    print(f"{PROG}: {len(merged.results)} runs from {len(paths)} files", flush=True)
    if merged.run.get("bench") is not None:
        totals = client_totals(merged.results)
        clients = list(dict.fromkeys(r.client for r in merged.results))
        write_bench_report(merged.results, totals, out, clients=clients, run=merged.run)
        print()
        print(render_matrix(merged.results), end="")
        print()
        print(render_totals(totals), end="")
        print(f"{PROG}: report written to {out / 'index.html'} and {out / 'results.json'}")
        return decide(merged.results, args)
    return finish(merged.results, args, out, run=merged.run)


def main(argv: Sequence[str]) -> int:
    return common.guarded(run, parser, argv)
