"""`comfy-chaos report RESULTS`: re-render the HTML report from a results file."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from comfy_chaos.harness.cli import common
from comfy_chaos.harness.results import ResultsError, load_results
from comfy_chaos.harness.suite import render_html

PROG = "comfy-chaos report"


def parser() -> argparse.ArgumentParser:
    p = common.Parser(prog=PROG, description="Re-render the HTML report from a results file.")
    p.add_argument("results", help="results.json written by comfy-chaos run")
    p.add_argument("--out", default=None, help="output directory (default: next to the results file)")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        results_file = load_results(args.results)
    except ResultsError as exc:
        raise common.UsageError(str(exc)) from None
    out = Path(args.out) if args.out else Path(args.results).parent
    render_html(results_file, out)
    print(f"comfy-chaos: report written to {out / 'index.html'}")
    return common.exit_code(results_file.results)


def main(argv: Sequence[str]) -> int:
    return common.guarded(run, parser, argv)
