"""`--shard K/N`: a deterministic split of the work across N machines.

Every job has a key (scenario, client, seed, ComfyUI version); the keys are sorted and the
K-th shard takes every N-th of them, starting at the K-th. Every shard that is given the
same scenarios, clients and seeds computes the same split, so the N shards together run
every job exactly once, whatever order they were listed in; `comfy-chaos merge` joins the
shards' results.json files."""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
ShardKey = tuple[str, str, int, str]

_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A --shard value that is not K/N with 1 <= K <= N."""


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as written
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"

    def select(self, jobs: Sequence[T], key: Callable[[T], ShardKey]) -> list[T]:
        """This shard's jobs, in their given order."""
        order = sorted(range(len(jobs)), key=lambda i: key(jobs[i]))
        mine = {i for rank, i in enumerate(order) if rank % self.total == self.index - 1}
        return [job for i, job in enumerate(jobs) if i in mine]


def parse_shard(text: str) -> Shard:
    match = _PATTERN.match(text)
    if not match:
        raise ShardError(f"--shard: expected K/N (e.g. 1/4), got {text!r}")
    index, total = int(match.group(1)), int(match.group(2))
    if total < 1 or not 1 <= index <= total:
        raise ShardError(f"--shard: expected 1 <= K <= N, got {text!r}")
    return Shard(index, total)


def job_key(scenario: object, client: str, seed: int | None = None, comfyui_version: str | None = None) -> ShardKey:
    """The shard key of one run: the scenario's name and seed (or the override), the client,
    and the ComfyUI version it runs against ('' when the scenario does not say)."""
    name = str(getattr(scenario, "name", scenario))
    own_seed = getattr(scenario, "seed", 0)
    version = comfyui_version if comfyui_version is not None else str(getattr(scenario, "comfyui_version", "") or "")
    return (name, client, int(own_seed if seed is None else seed), version)
