"""Random chaos: a scenario field `chaos: {faults: 6, kinds: [...]}` expanded from the
scenario's seed into concrete `FaultSpec`s.

The expansion is a pure function of (chaos settings, seed, task count): the same seed
always gives the same schedule, another seed another one, so a failing random schedule is
replayed with `--seed N` and can be shrunk (`harness.shrink`) into a plain `faults:` list.

How a fault of each kind is drawn lives in its registry entry (`Kind.draw`,
`fake_comfy.faults.draws`): anchored to a protocol moment that happens in every run (a
task's start, one of its first two node starts, its completion) rather than to a frame that
a disconnected client might never be sent, so a generated spec always fires and the run is
not inconclusive for want of a trigger. The Toxiproxy toxic types are drawn here.
"""
from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field, field_validator

from comfy_chaos.fake_comfy.faults import draws
from comfy_chaos.fake_comfy.faults.kinds import KINDS
from comfy_chaos.fake_comfy.faults.spec import FaultSpec


def _toxic_types() -> dict[str, draws.Draw]:
    """The Toxiproxy toxic types random chaos can draw (the `toxic` kind itself is not drawn)."""
    return {
        "reset_peer": draws.toxic("reset_peer", lambda rng: {"timeout": 0}, 1, 4),
        "timeout": draws.toxic("timeout", lambda rng: {"timeout": 0}, 2, 8),
        "latency": draws.toxic(
            "latency", lambda rng: {"latency": rng.randint(50, 300), "jitter": rng.randint(0, 100)}, 3, 10
        ),
        "bandwidth": draws.toxic("bandwidth", lambda rng: {"rate": rng.randint(16, 256)}, 3, 10),
        "slicer": draws.toxic(
            "slicer",
            lambda rng: {"average_size": rng.randint(1, 64), "size_variation": 0, "delay": rng.randint(0, 500)},
            3,
            10,
        ),
        "limit_data": draws.toxic("limit_data", lambda rng: {"bytes": rng.randint(200, 20000)}, 1, 3),
    }


GENERATORS: dict[str, draws.Draw] = {
    **{name: kind.draw for name, kind in KINDS.items() if kind.draw is not None},
    **_toxic_types(),
}
"""Every chaos kind: the fault kinds of the fake server, `restart` (keeping history) and
the Toxiproxy toxic types by name."""

DEFAULT_KINDS = tuple(name for name in GENERATORS if name not in KINDS or KINDS[name].chaos_default)
"""The kinds used when a scenario names none: everything a correct client survives without
losing work. Left out (`Kind.chaos_default`): restart (it empties the queue), oversize (slow
to push through a toxic), prompt_queued_5xx (the client never learns the prompt_id of a
prompt that runs; one that resubmits runs the workflow twice) — a scenario names them."""


class Chaos(BaseModel):
    """`chaos:` in a scenario: `faults` random faults of the given kinds, drawn from the seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: int = Field(4, ge=1, le=100, description="How many random faults to generate")
    kinds: list[str] | None = Field(
        None,
        min_length=1,
        description="Kinds to draw from (fault kinds, 'restart', or toxic types); null = the default set",
        json_schema_extra={"items": {"enum": [*sorted(GENERATORS)]}},
    )
    tasks: list[str] | None = Field(
        None, min_length=1, description="Task ids the faults are anchored to; null = any planned task"
    )

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str] | None) -> list[str] | None:
        unknown = [k for k in kinds or [] if k not in GENERATORS]
        if unknown:
            raise ValueError(f"expected chaos kinds from {sorted(GENERATORS)}, got unknown {unknown}")
        return kinds


def expand(chaos: Chaos, *, seed: int, tasks: int) -> list[FaultSpec]:
    """The concrete fault specs of `chaos` for this seed and task count (deterministic)."""
    rng = random.Random(f"chaos:{seed}")
    kinds = list(chaos.kinds or DEFAULT_KINDS)
    # Not the last task: once it finishes the server is quiet and the runner heals, so a
    # fault anchored to its frames could be cut off before it fires (an inconclusive run).
    task_ids = list(chaos.tasks or [f"t{i}" for i in range(max(1, tasks - 1))])
    specs = []
    for index in range(chaos.faults):
        kind = rng.choice(kinds)
        task = rng.choice(task_ids)
        raw = GENERATORS[kind](rng, task)
        raw["description"] = f"chaos #{index} (seed {seed}): {kind} around {task}"
        specs.append(FaultSpec.model_validate(raw))
    return specs
