"""Shrink a failing fault schedule to a minimal one that still fails on every replay, and
write it out as a regression scenario (library code; the command is harness/cli/shrink.py,
`comfy-chaos shrink FILE --client X --seed N`).

The search is delta debugging (ddmin) over the list of faults — a random-chaos scenario's
`chaos:` is expanded from the seed first, so the list is concrete: remove chunks (halves,
quarters, …) down to single faults, then simplify what is left (params back to their
defaults, `count` 1, durations halved). A candidate is kept only if it fails on every one
of `replays` runs, so the result is a failure that reproduces, not a lucky interleaving.
The search logic is sans-IO (`minimize`, fed a predicate); `shrink` drives it with real runs.
"""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import yaml

from comfy_chaos.fake_comfy.faults.spec import FaultSpec
from comfy_chaos.harness.scenario import Scenario

log = structlog.get_logger(__name__)

Predicate = Callable[[list[FaultSpec]], Awaitable[bool]]
Progress = Callable[[str], None]

DEFAULT_REPLAYS = 3
MIN_DURATION = 0.5  # scenario seconds: durations are not halved below this


@dataclass
class ShrinkResult:
    """What the shrink found: the original and minimal schedules, and the work it took."""

    scenario: str
    client: str
    seed: int
    original: list[FaultSpec]
    shrunk: list[FaultSpec]
    reproducible: bool
    candidates: int = 0
    runs: int = 0
    path: Path | None = None
    reasons: list[str] = field(default_factory=list)


async def minimize(specs: Sequence[FaultSpec], fails: Predicate, progress: Progress = lambda _: None) -> list[FaultSpec]:
    """The smallest, simplest sub-schedule of `specs` for which `fails` holds (assumed to
    hold for `specs`): ddmin over the list, then per-fault simplification."""
    current = list(specs)
    if current and await fails([]):
        progress("fails with no faults at all")
        return []
    granularity = 2
    while len(current) >= 2:
        chunks = _split(current, granularity)
        for chunk in chunks:
            candidate = [s for s in current if not any(s is c for c in chunk)]
            if await fails(candidate):
                current = candidate
                granularity = max(granularity - 1, 2)
                progress(f"removed {len(chunk)} fault(s): {len(current)} left")
                break
        else:
            if granularity >= len(current):
                break
            granularity = min(granularity * 2, len(current))
    for index in range(len(current)):
        improved = True
        while improved:  # after each success, try the simpler variants of the simplified fault
            improved = False
            for simpler in _simplifications(current[index]):
                candidate = [*current[:index], simpler, *current[index + 1:]]
                if await fails(candidate):
                    current = candidate
                    improved = True
                    progress(f"simplified fault {index}: {describe_spec(simpler)}")
                    break
    return current


def _split(items: list[FaultSpec], parts: int) -> list[list[FaultSpec]]:
    size, extra = divmod(len(items), parts)
    chunks, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        if end > start:
            chunks.append(items[start:end])
        start = end
    return chunks


def _simplifications(spec: FaultSpec) -> list[FaultSpec]:
    """Simpler variants of one fault, most aggressive first; each is tried once in turn."""
    raw = spec.model_dump(mode="json", exclude_unset=True)
    variants: list[dict[str, Any]] = []
    if raw.get("params"):
        variants.append({**raw, "params": {}})
    if spec.effective_count not in (None, 1) and "count" in raw:
        variants.append({**raw, "count": 1})
    halved = []
    duration = spec.duration
    while duration is not None and duration / 2 >= MIN_DURATION:
        duration = round(duration / 2, 3)
        halved.append({**raw, "duration": duration})
    variants.extend(reversed(halved))  # shortest first
    out = []
    for variant in variants:
        try:
            out.append(FaultSpec.model_validate(variant))
        except ValueError:
            continue  # e.g. a kind whose params cannot all default
    return out


def describe_spec(spec: FaultSpec) -> str:
    """One line: kind (or toxic type), trigger, and what is set."""
    raw = spec.model_dump(mode="json", exclude_unset=True, exclude={"description"})
    kind = f"toxic {spec.toxic.type}" if spec.toxic is not None else spec.kind
    rest = {k: v for k, v in raw.items() if k not in ("kind", "toxic")}
    return f"{kind} {rest}"


def regression_scenario(scenario: Scenario, shrunk: list[FaultSpec], *, client: str, seed: int) -> dict[str, Any]:
    """The YAML-ready regression scenario: the origin's workload and bar, the shrunk faults."""
    data = scenario.to_dict()
    data.pop("source", None)
    data.pop("chaos", None)
    origin = scenario.source or scenario.name
    data["name"] = f"{scenario.name}-{_slug(client)}-seed{seed}"
    data["seed"] = seed
    data["description"] = (
        f"Regression found by `comfy-chaos shrink {origin} --client {client} --seed {seed}`: "
        f"the {len(shrunk)} fault(s) below, shrunk from the schedule of scenario {scenario.name!r} "
        f"(seed {seed}), made client {client!r} fail on every replay. "
        f"Origin: {scenario.description.strip()}"
    )
    data["tags"] = sorted({*scenario.tags, "regression"} - {"slow"})
    data["faults"] = [s.model_dump(mode="json", exclude_unset=True) for s in shrunk]
    ordered: dict[str, Any] = {k: data[k] for k in ("name", "description", "seed", "time_scale", "tags", "clients",
                                    "workload", "faults", "deadline", "grace", "expect") if k in data}
    return ordered


def write_regression(data: dict[str, Any], out_dir: str | Path) -> Path:
    """Write the regression scenario as `<out_dir>/<name>.yaml` (validated by loading it back)."""
    from comfy_chaos.harness.scenario import load_scenario

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")
    load_scenario(path)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "client"


async def shrink(
    scenario: Scenario,
    client: str,
    *,
    seed: int,
    harness: Any,
    replays: int = DEFAULT_REPLAYS,
    time_scale: float | None = None,
    progress: Progress = lambda _: None,
) -> ShrinkResult:
    """Shrink `scenario`'s fault schedule (chaos expanded from `seed`) for `client`."""
    from comfy_chaos.harness.suite import run_one

    seeded = scenario.model_copy(update={"seed": seed})
    original = seeded.fault_schedule()
    result = ShrinkResult(scenario.name, client, seed, original, list(original), reproducible=False)

    async def fails(specs: list[FaultSpec]) -> bool:
        result.candidates += 1
        candidate = seeded.model_copy(update={"faults": specs, "chaos": None})
        for attempt in range(replays):
            scored = await run_one(harness, candidate, client, seed=seed, time_scale=time_scale)
            result.runs += 1
            if scored.verdict != "fail":
                progress(f"  candidate {result.candidates} ({len(specs)} faults): {scored.verdict} on replay {attempt + 1} — kept the larger schedule")
                return False
            if not result.reasons:
                result.reasons = list(scored.reasons)
        progress(f"  candidate {result.candidates} ({len(specs)} faults): failed {replays}/{replays}")
        return True

    progress(f"shrinking {scenario.name} [{client}] seed {seed}: {len(original)} faults, {replays} replays per candidate")
    if not await fails(original):
        progress("the original schedule does not fail on every replay: nothing to shrink")
        return result
    result.reproducible = True
    result.shrunk = await minimize(original, fails, progress)
    log.info("shrink.done", scenario=scenario.name, client=client, seed=seed,
             original=len(original), shrunk=len(result.shrunk), runs=result.runs)
    return result
