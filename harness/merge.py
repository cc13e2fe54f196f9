"""Join results files of several shards (or machines) into one `ResultsFile`."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from comfy_chaos.harness.results import ResultsError, ResultsFile, load_results


class MergeError(Exception):
    """An unreadable file, or one run present in two files (a shard given twice)."""


def merge_results(paths: Iterable[str | Path]) -> ResultsFile:
    """All results of all files, in file order. The merged `run` says what was merged; a
    bench's per-client totals are dropped (recomputed over all runs by the caller)."""
    results = []
    sources: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, int], str] = {}
    bench = False
    for path in paths:
        try:
            part = load_results(path)
        except ResultsError as exc:
            raise MergeError(str(exc)) from None
        for result in part.results:
            key = (result.scenario, result.client, result.seed)
            if key in seen:
                raise MergeError(f"{path}: {result.scenario} [{result.client}] seed {result.seed} is also in "
                                 f"{seen[key]} (the same shard twice?)")
            seen[key] = str(path)
        results.extend(part.results)
        bench |= part.run.get("bench") is not None
        sources.append({"file": str(path), "runner": part.run.get("runner"), "shard": part.run.get("shard"),
                        "started": part.run.get("started"), "toxiproxy": part.run.get("toxiproxy")})
    if not sources:
        raise MergeError("no results files given")
    runners = {s["runner"] for s in sources}
    run: dict[str, Any] = {"runner": "comfy-chaos merge", "merged": sources}
    if len(runners) == 1:
        run["merged_runner"] = runners.pop()
    if bench:
        run["bench"] = {}
    return ResultsFile(run=run, results=results)
