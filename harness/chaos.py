"""Random chaos: a scenario field `chaos: {faults: 6, kinds: [...]}` expanded from the
scenario's seed into concrete `FaultSpec`s.

The expansion is a pure function of (chaos settings, seed, task count): the same seed
always gives the same schedule, another seed another one, so a failing random schedule is
replayed with `--seed N` and can be shrunk (`harness.shrink`) into a plain `faults:` list.

Every generated fault is anchored to a protocol moment that happens in every run (a
task's start, one of its first two node starts, its completion) rather than to a frame
that a disconnected client might never be sent, so a generated spec always fires and the
run is not inconclusive for want of a trigger.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from comfy_chaos.fake_comfy.faults.spec import FaultSpec

Generator = Callable[[random.Random, str], dict[str, Any]]

FRAME_TYPES = ("executing", "executed", "execution_success", "executing:null", "execution_start")
"""Message types every task of the named workflows receives (targets of frame/message faults)."""


def _anchor(rng: random.Random, task: str) -> dict[str, Any]:
    """A trigger that fires once in every run for `task`: its start or one of its first two nodes."""
    choice = rng.randrange(3)
    if choice == 0:
        return {"on": "task_start", "task": task}
    return {"on": "node_start", "task": task, "node_index": choice - 1}


def _frame(kind: str, params: Callable[[random.Random], dict[str, Any]] | None = None) -> Generator:
    """A frame/message fault hitting one frame of a chosen type of the task."""

    def generate(rng: random.Random, task: str) -> dict[str, Any]:
        frame_type = rng.choice(FRAME_TYPES)
        spec: dict[str, Any] = {
            "kind": kind,
            "when": {"on": "task_start", "task": task},
            "target": {"task": task, "type": frame_type},
            "count": 1,
        }
        if params is not None:
            spec["params"] = params(rng)
        return spec

    return generate


def _connection(kind: str) -> Generator:
    def generate(rng: random.Random, task: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"kind": kind, "when": _anchor(rng, task)}
        if kind == "close":
            spec["params"] = {"code": rng.choice([1001, 1011, 1012, 4000])}
        return spec

    return generate


def _silent(rng: random.Random, task: str) -> dict[str, Any]:
    return {"kind": "silent", "when": _anchor(rng, task), "duration": float(rng.randint(5, 40))}


def _refuse(rng: random.Random, task: str) -> dict[str, Any]:
    return {"kind": "refuse", "when": _anchor(rng, task), "duration": float(rng.randint(2, 10))}


def _http_error(rng: random.Random, task: str) -> dict[str, Any]:
    return {
        "kind": "http_error",
        "when": {"on": "task_complete", "task": task},
        "duration": float(rng.randint(2, 10)),
        "params": {
            "route": "/history",
            "status": rng.choice([500, 502, 503, 504]),
            "body": rng.choice(["comfy", "html", "empty"]),
        },
    }


def _http_slow(rng: random.Random, task: str) -> dict[str, Any]:
    return {
        "kind": "http_slow",
        "when": {"on": "task_start", "task": task},
        "duration": float(rng.randint(3, 10)),
        "params": {"route": "/history", "delay": round(rng.uniform(0.5, 3.0), 1)},
    }


def _http_truncate(rng: random.Random, task: str) -> dict[str, Any]:
    return {
        "kind": "http_truncate",
        "when": {"on": "task_complete", "task": task},
        "count": 1,
        "params": {"route": "/history", "at": rng.choice([None, 0, 1, rng.randint(2, 64)])},
    }


def _history_lag(rng: random.Random, task: str) -> dict[str, Any]:
    return {
        "kind": "history_lag",
        "when": {"on": "task_start", "task": task},
        "count": 1,
        "params": {"delay": round(rng.uniform(0.5, 3.0), 1)},
    }


def _prompt_response_lost(rng: random.Random, task: str) -> dict[str, Any]:
    # Burst submissions all happen at the start: only a time trigger at 0 meets one.
    return {"kind": "prompt_response_lost", "when": {"at": 0}, "count": 1}


def _prompt_queued_5xx(rng: random.Random, task: str) -> dict[str, Any]:
    # As for prompt_response_lost: the burst's POSTs all happen at the start.
    return {
        "kind": "prompt_queued_5xx",
        "when": {"at": 0},
        "count": 1,
        "params": {"status": rng.choice([500, 502, 503, 504]), "body": rng.choice(["comfy", "html", "empty"])},
    }


def _restart(rng: random.Random, task: str) -> dict[str, Any]:
    return {"kind": "restart", "when": _anchor(rng, task), "params": {"keep_history": True}}


def _toxic(type_: str, attributes: Callable[[random.Random], dict[str, Any]], lo: int, hi: int) -> Generator:
    def generate(rng: random.Random, task: str) -> dict[str, Any]:
        return {
            "kind": "toxic",
            "when": _anchor(rng, task),
            "duration": float(rng.randint(lo, hi)),
            "toxic": {"type": type_, "stream": "downstream", "attributes": attributes(rng)},
        }

    return generate


GENERATORS: dict[str, Generator] = {
    "bom": _frame("bom"),
    "junk_prefix": _frame("junk_prefix"),
    "python_repr": _frame("python_repr"),
    "truncate": _frame("truncate"),
    "garble": _frame("garble"),
    "invalid_utf8": _frame("invalid_utf8"),
    "concat": _frame("concat"),
    "heartbeat": _frame("heartbeat", lambda rng: {"text": rng.choice(["ping", "pong", "heartbeat"])}),
    "noise": _frame("noise"),
    "noise_binary": _frame("noise_binary", lambda rng: {"size": rng.randint(0, 4096)}),
    "oversize": _frame("oversize", lambda rng: {"size": rng.randint(4, 6) * 1024 * 1024}),
    "drop": _frame("drop"),
    "duplicate": _frame("duplicate", lambda rng: {"times": rng.randint(2, 4)}),
    "reorder": _frame("reorder", lambda rng: {"after": rng.randint(1, 3)}),
    "delay": _frame("delay", lambda rng: {"seconds": round(rng.uniform(0.2, 1.5), 1)}),
    "strip_prompt_id": _frame("strip_prompt_id"),
    "close": _connection("close"),
    "abort": _connection("abort"),
    "silent": _silent,
    "refuse": _refuse,
    "http_error": _http_error,
    "http_slow": _http_slow,
    "http_truncate": _http_truncate,
    "history_lag": _history_lag,
    "prompt_response_lost": _prompt_response_lost,
    "prompt_queued_5xx": _prompt_queued_5xx,
    "restart": _restart,
    "reset_peer": _toxic("reset_peer", lambda rng: {"timeout": 0}, 1, 4),
    "timeout": _toxic("timeout", lambda rng: {"timeout": 0}, 2, 8),
    "latency": _toxic("latency", lambda rng: {"latency": rng.randint(50, 300), "jitter": rng.randint(0, 100)}, 3, 10),
    "bandwidth": _toxic("bandwidth", lambda rng: {"rate": rng.randint(16, 256)}, 3, 10),
    "slicer": _toxic(
        "slicer", lambda rng: {"average_size": rng.randint(1, 64), "size_variation": 0, "delay": rng.randint(0, 500)}, 3, 10
    ),
    "limit_data": _toxic("limit_data", lambda rng: {"bytes": rng.randint(200, 20000)}, 1, 3),
}
"""Every chaos kind: the fault kinds of the fake server, `restart` (keeping history) and
the Toxiproxy toxic types by name."""

DEFAULT_KINDS = tuple(kind for kind in GENERATORS if kind not in ("restart", "oversize", "prompt_queued_5xx"))
"""The kinds used when a scenario names none: everything a correct client survives without
losing work (a restart empties the queue; oversize is slow to push through a toxic; after
prompt_queued_5xx the client never learns the prompt_id of a prompt that runs, and one that
resubmits runs the workflow twice — a choice the scenario author makes by naming the kind)."""


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
